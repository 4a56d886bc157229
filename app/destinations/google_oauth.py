"""Google OAuth 2.0 access tokens for the Google connectors: a fixed access token, or fresh
ones from a refresh token (offline access), so a sync keeps working past the hour an access
token lives, schedule after schedule.

A refresh is `POST {token_url}` with the form `grant_type=refresh_token`, `client_id`,
`client_secret` and `refresh_token`; Google answers `{"access_token", "expires_in",
"token_type": "Bearer", …}`. A token is renewed a minute before it expires and when the API
answers 401 with it (once: a second 401 denies access). Concurrent requests that find the
token stale renew it once. A refresh token Google refuses (400 `invalid_grant`: expired or
revoked; 401 `invalid_client`) denies access, and the run stops (`destination_access_denied`).
The client secret, the refresh token and every access token are cut out of any message.

Docs: https://developers.google.com/identity/protocols/oauth2/web-server#offline
https://developers.google.com/identity/protocols/oauth2/web-server#httprest_7
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from app.destinations.base import AccessDenied, TerminalError
from app.destinations.spec import BuildOptions
from app.destinations.vendor_http import VendorClient

TOKEN_URL = "https://oauth2.googleapis.com/token"
#: Seconds before its stated expiry that a token is renewed.
EARLY = 60.0
#: The token endpoint's errors that mean the credentials themselves are refused (RFC 6749 §5.2).
DENIED = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


class FixedToken:
    """An access token given in the config: used as it is, never renewed."""

    renews = False

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    async def renew(self, stale: str) -> str:
        raise AssertionError("a fixed access token is not renewed")

    async def close(self) -> None:
        return None


class RefreshedToken:
    """Access tokens obtained with a refresh token, renewed before they expire and when the
    API refuses one. `on_token` hears of every new token (its client redacts it)."""

    renews = True

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        token_url: str,
        options: BuildOptions,
        on_token: Callable[[str], None],
    ) -> None:
        parts = urlsplit(token_url)
        self._path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        self._client = VendorClient(
            "google_oauth",
            urlunsplit((parts.scheme, parts.netloc, "", "", "")),
            options,
            secrets=[client_secret, refresh_token],
        )
        self._form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
        self._on_token = on_token
        self._access: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A token that is not about to expire."""
        if self._access is not None and time.monotonic() < self._expires:
            return self._access
        return await self.renew(self._access)

    async def renew(self, stale: str | None) -> str:
        """A new token in place of `stale` (unless another request renewed it meanwhile)."""
        async with self._lock:
            current = self._access
            if current is not None and current != stale and time.monotonic() < self._expires:
                return current
            response = await self._client.request(
                "POST", self._path, data=self._form, passthrough=(400, 401)
            )
            if response.status_code >= 400:
                error = _error_code(response.text)
                if error in DENIED:
                    detail = self._client.detail(response)
                    raise AccessDenied(f"google refused the refresh token ({error}){detail}")
                self._client.raise_for_status(response)
            access, lifetime = _token_of(response.text)
            self._client.add_secret(access)
            self._on_token(access)
            self._access, self._expires = access, time.monotonic() + max(lifetime - EARLY, 0.0)
            return access

    async def close(self) -> None:
        await self._client.close()


def _error_code(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


def _token_of(text: str) -> tuple[str, float]:
    """(access token, seconds it lives) from the token endpoint's answer."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    token = body.get("access_token") if isinstance(body, dict) else None
    lifetime = body.get("expires_in", 3600) if isinstance(body, dict) else None
    if not isinstance(token, str) or not token or not isinstance(lifetime, int | float):
        raise TerminalError("google's token endpoint answered without an access token")
    return token, float(lifetime)
