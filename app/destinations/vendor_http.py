"""The HTTP client every SaaS connector talks through, so each rule lives once: the
private-address guard, the account's rate limit, timeouts, and what a status means.

408/425/429/5xx and network failures are transient (with `Retry-After`), 401/403 deny access
(the run stops), any other 4xx refuses the request as a whole. Error messages name the vendor
and status and carry the vendor's own words with every credential cut out.

A request is built by httpx's client (default headers, timeouts, query) and handed straight to
its connection pool: the client's send path (auth flows, redirects, which we never follow,
cookies, event hooks) cost about 0.5 ms a request and did nothing here. When the environment
names proxies, the client sends it, as it picks a proxy per URL.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import httpx

from app.destinations.address_guard import HostPins
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
        self._pins = HostPins(options.policy)
        self._rate_limit = rate_limit
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._transport = httpx.AsyncHTTPTransport()
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            headers=dict(headers or {}),
            transport=self._transport,
        )
        self._direct = not urllib.request.getproxies()
        #: Requests sent (for tests and benchmarks).
        self.requests = 0

    def add_secret(self, secret: str) -> None:
        """Cut `secret` out of messages too (a credential obtained while running)."""
        self._secrets = sorted({*self._secrets, secret}, key=len, reverse=True)

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
        data: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        passthrough: Collection[int] = (),
    ) -> httpx.Response:
        """Send one request (a JSON body, or `data` as a form) within the rate limit; a
        2xx/3xx response comes back, anything else raises the matching `DestinationError`.
        Statuses in `passthrough` come back too, for vendors whose error body says what the
        status does not (per-row errors inside a 400, an expired token inside a 400): the
        caller reads them, then `raise_for_status`."""
        target = await self._pins.pin(f"{self.base_url}{path}")
        if self._rate_limit is not None:
            await limiter_for(self._options.account, self._rate_limit).acquire()
        self.requests += 1
        request = self._client.build_request(
            method,
            target.url,
            json=json,
            data=data,
            params=params,
            headers={**(headers or {}), **target.headers},
            extensions=target.extensions,
        )
        try:
            response = await self._send(request)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{self.vendor} timed out") from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"{self.vendor} could not be reached ({type(exc).__name__})"
            ) from exc
        if response.status_code not in passthrough:
            self.raise_for_status(response)
        return response

    async def _send(self, request: httpx.Request) -> httpx.Response:
        if not self._direct:
            return await self._client.send(request)
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
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
