"""Request and response shapes (pydantic): what the APIs validate with and document."""
