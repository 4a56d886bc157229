"""The HTTP client every SaaS connector talks through, so each rule lives once: the
private-address guard, the account's rate limit, timeouts, and what a status means.

408/425/429/5xx and network failures are transient (with `Retry-After`), 401/403 deny access
(the run stops), any other 4xx refuses the request as a whole. Error messages name the vendor
and status and carry the vendor's own words with every credential cut out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import httpx

from app.destinations.address_guard import pin
from app.destinations.base import AccessDenied, TerminalError, TransientError
from app.destinations.rate_limit import limiter_for
from app.destinations.spec import BuildOptions, RateLimit
from app.destinations.webhook import TRANSIENT_STATUSES, parse_retry_after

DENIED_STATUSES = frozenset({401, 403})
DETAIL_LIMIT = 300


class VendorClient:
    def __init__(
        self,
        vendor: str,
        base_url: str,
        options: BuildOptions,
        *,
        headers: Mapping[str, str] | None = None,
        rate_limit: RateLimit | None = None,
        secrets: Iterable[str | None] = (),
        timeout: float = 30.0,
    ) -> None:
        self.vendor = vendor
        self.base_url = base_url.rstrip("/")
        self._options = options
        self._rate_limit = rate_limit
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._client = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, headers=dict(headers or {})
        )
        #: Requests sent (for tests and benchmarks).
        self.requests = 0

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        passthrough: Collection[int] = (),
    ) -> httpx.Response:
        """Send one request within the rate limit; a 2xx/3xx response comes back, anything
        else raises the matching `DestinationError`. Statuses in `passthrough` come back too,
        for vendors whose error body says what the status does not (per-row errors inside a
        400, an expired token inside a 400): the caller reads them, then `raise_for_status`."""
        target = await pin(f"{self.base_url}{path}", self._options.policy)
        if self._rate_limit is not None:
            await limiter_for(self._options.account, self._rate_limit).acquire()
        self.requests += 1
        try:
            response = await self._client.request(
                method,
                target.url,
                json=json,
                params=params,
                headers={**(headers or {}), **target.headers},
                extensions=target.extensions,
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"{self.vendor} timed out") from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"{self.vendor} could not be reached ({type(exc).__name__})"
            ) from exc
        if response.status_code not in passthrough:
            self.raise_for_status(response)
        return response

    def raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = self.detail(response)
        if status in TRANSIENT_STATUSES:
            raise TransientError(
                f"{self.vendor} answered {status}{detail}",
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status in DENIED_STATUSES:
            raise AccessDenied(f"{self.vendor} refused the credentials ({status}){detail}")
        raise TerminalError(f"{self.vendor} refused the request ({status}){detail}")

    def detail(self, response: httpx.Response) -> str:
        """The vendor's own words, short and without credentials (": …", or "")."""
        text = " ".join(response.text.split())[:DETAIL_LIMIT]
        return f": {self.redact(text)}" if text else ""

    async def close(self) -> None:
        await self._client.aclose()
