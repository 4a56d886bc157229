"""The GraphQL gateway over app.services."""
