"""GraphQL object types: camelCase views of the same objects the REST layer renders."""
