"""API tokens through GraphQL: minted with the secret once, listed without it, revoked."""

from __future__ import annotations

import httpx
import pytest

from app.runtime import Runtime
from tests.factories import World, table_counts
from tests.graphql.client import data, error_codes, error_fields, gql

CREATE = """
mutation($ws: ID!, $input: ApiTokenCreateInput!) {
  createApiToken(workspaceId: $ws, input: $input) {
    secret
    token { id name prefix role accountId workspaceId expiresAt revokedAt }
  }
}"""


async def test_mint_use_list_and_revoke(client: httpx.AsyncClient, world: World) -> None:
    minted = data(
        await gql(
            client,
            CREATE,
            {
                "ws": str(world.workspace_id),
                "input": {
                    "name": "ci",
                    "email": "ci-bot@example.com",
                    "role": "editor",
                    "expiresAt": "2999-01-01T00:00:00+02:00",
                },
            },
            token=world.admin_token,
        )
    )["createApiToken"]
    secret, token = minted["secret"], minted["token"]
    assert secret.startswith(token["prefix"])
    assert token["role"] == "editor" and token["revokedAt"] is None
    assert token["expiresAt"] == "2998-12-31T22:00:00Z"

    as_new = data(await gql(client, "{ viewer { role account { email } } }", token=secret))
    assert as_new["viewer"] == {"role": "editor", "account": {"email": "ci-bot@example.com"}}

    listed = await gql(client, "{ apiTokens { id name prefix role } }", token=world.admin_token)
    assert secret not in str(listed)
    by_name = {t["name"]: t for t in data(listed)["apiTokens"]}
    assert set(by_name) == {"bootstrap", "editor", "viewer", "ci"}
    assert by_name["ci"]["id"] == token["id"]

    revoked = data(
        await gql(
            client,
            "mutation($id: ID!) { revokeApiToken(id: $id) { id revokedAt } }",
            {"id": token["id"]},
            token=world.admin_token,
        )
    )["revokeApiToken"]
    assert revoked["id"] == token["id"] and revoked["revokedAt"].endswith("Z")
    after = await gql(client, "{ viewer { role } }", token=secret)
    assert error_codes(after) == ["UNAUTHENTICATED"]


async def test_only_admins_manage_tokens(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    before = await table_counts(runtime)
    for token in (world.editor_token, world.viewer_token):
        body = await gql(
            client, CREATE, {"ws": str(world.workspace_id), "input": {"name": "x"}}, token=token
        )
        assert error_codes(body) == ["FORBIDDEN"]
        listed = await gql(client, "{ apiTokens { id } }", token=token)
        assert error_codes(listed) == ["FORBIDDEN"]
    assert await table_counts(runtime) == before


async def test_expiry_in_the_past_names_the_field(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    before = await table_counts(runtime)
    body = await gql(
        client,
        CREATE,
        {
            "ws": str(world.workspace_id),
            "input": {"name": "old", "expiresAt": "2001-01-01T00:00:00Z"},
        },
        token=world.admin_token,
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert error_fields(body) == ["expires_at"]
    assert await table_counts(runtime) == before


@pytest.mark.parametrize(
    "expires_at", ["2999-01-01T00:00", "9999-12-31T23:59:59-05:00", "tomorrow", 20990101]
)
async def test_expiry_that_is_not_an_instant_is_bad_user_input(
    client: httpx.AsyncClient, world: World, expires_at: object
) -> None:
    body = await gql(
        client,
        CREATE,
        {"ws": str(world.workspace_id), "input": {"name": "x", "expiresAt": expires_at}},
        token=world.admin_token,
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "expiresAt" in body["errors"][0]["message"]
