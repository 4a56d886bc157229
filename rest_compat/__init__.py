"""The REST compatibility layer: the published /api/v1 contract over app.services."""
