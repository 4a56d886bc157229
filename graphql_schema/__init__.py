"""The GraphQL gateway over app.services, served at /graphql (DESIGN §3.3).

Conventions a client can rely on:

- Resolvers are thin: parse the arguments, call one service function, render the result.
  Validation and authorisation live in the services only, so GraphQL and REST agree.
- Ids are the same UUIDs as in REST, typed `ID`; datetimes are UTC ISO 8601 with `Z`.
- Lists are Relay connections (`edges { cursor node }`, `pageInfo`, `totalCount`) taking
  `first` (default 20, at most 100) and `after` (an opaque cursor). List queries take an
  optional `workspaceId`, by default the token's; objects by id are looked up in the
  token's workspace, and one elsewhere is NOT_FOUND.
- Inputs mirror the REST bodies in camelCase; fields left out are not sent (updates change
  only what is given) and `null` clears a nullable field. JSON fields (`config`, `filter`)
  are passed through as JSON with the REST (snake_case) keys.
- Root fields are nullable: a failed field answers null with its error, its siblings keep
  their data. Deletes return the deleted id.
- Every error has `extensions.code` (see `graphql_schema.errors`); errors from the services
  also carry `extensions.details` [{field, message}] naming the field as REST does.
"""
