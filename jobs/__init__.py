"""arq worker, scheduler and reaper: thin wrappers over app.services."""
