"""Tokens: minting, hashing, bearer parsing, roles."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from app.auth import Principal, hash_token, mint_token, parse_bearer
from app.errors import Forbidden, Unauthenticated
from models.enums import Role


def test_minted_token_is_random_and_only_its_digest_is_kept() -> None:
    a, b = mint_token(), mint_token()
    assert a.secret != b.secret and len(a.secret) > 40
    assert a.token_hash == hashlib.sha256(a.secret.encode()).hexdigest() == hash_token(a.secret)
    assert a.secret.startswith(a.prefix) and len(a.prefix) == 12


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "token abc"])
def test_bad_authorization_headers_are_unauthenticated(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        parse_bearer(header)


def test_bearer_is_case_insensitive() -> None:
    assert parse_bearer("bearer abc") == "abc"


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [(r, n, r.rank >= n.rank) for r in Role for n in Role],
)
def test_role_ranks(role: Role, needed: Role, allowed: bool) -> None:
    principal = Principal(account_id=uuid.uuid4(), workspace_id=uuid.uuid4(), role=role)
    if allowed:
        principal.require(needed)
    else:
        with pytest.raises(Forbidden):
            principal.require(needed)


def test_other_workspace_is_forbidden() -> None:
    principal = Principal(account_id=uuid.uuid4(), workspace_id=uuid.uuid4(), role=Role.admin)
    principal.require_workspace(principal.workspace_id)
    with pytest.raises(Forbidden):
        principal.require_workspace(uuid.uuid4())
