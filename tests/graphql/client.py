"""Posting GraphQL documents to /graphql, as a client would."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import World


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    operation_name: str | None = None,
) -> dict[str, Any]:
    """The response body; the transport itself must answer 200 with JSON."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload: dict[str, Any] = {"query": query, "variables": variables or {}}
    if operation_name:
        payload["operationName"] = operation_name
    response = await client.post("/graphql", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def data(body: dict[str, Any]) -> dict[str, Any]:
    """The data of a response that must have no errors."""
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    errors = body.get("errors", [])
    assert len(errors) == 1, body
    error: dict[str, Any] = errors[0]
    return error


def error_fields(body: dict[str, Any]) -> list[str]:
    return [d["field"] for e in body.get("errors", []) for d in e["extensions"].get("details", [])]


def sync_input(world: World, **overrides: Any) -> dict[str, Any]:
    """The GraphQL input for World.sync_body()."""
    values: dict[str, Any] = {
        "name": "High-Value Customers to Google Ads",
        "audienceId": str(world.audience_id),
        "destinationId": str(world.destination_id),
        "fieldMapping": [{"sourceColumn": "email", "destinationField": "hashedEmail"}],
        "syncMode": "mirror",
        "schedule": "0 */4 * * *",
    }
    values.update(overrides)
    return values


SYNC_FIELDS = """
    id workspaceId audienceId destinationId name description
    fieldMapping { sourceColumn destinationField }
    syncMode schedule config status statusError createdBy createdAt updatedAt
    lastSyncedAt lastRunId splitGroupId
"""
