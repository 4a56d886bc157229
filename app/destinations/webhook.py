"""The webhook destination: JSON batches POSTed to a URL, signed with HMAC-SHA256.

Body: `{"sync_id", "run_id", "operation", "records": [mapped fields…]}`. A 2xx accepts the
batch; a 2xx JSON body `{"rejected": [{"index": i, "error": "…"}]}` refuses single rows.
408, 429 and 5xx (and timeouts) are transient; other 4xx refuse the batch as a whole.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.destinations.address_guard import AddressPolicy, HostPins, check_url
from app.destinations.base import Batch, BatchResult, TerminalError, TransientError
from app.destinations.config import http_url, secret_field
from app.destinations.spec import DestinationSpec
from models.enums import DestinationType

SIGNATURE_HEADER = "X-Signalsmith-Signature"
MAX_REDIRECTS = 3
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="where batches are POSTed")
    headers: dict[str, str] = secret_field(
        default_factory=dict, description="extra request headers (e.g. an API key)"
    )
    secret: str | None = secret_field(
        default=None,
        min_length=1,
        max_length=1000,
        description="HMAC-SHA256 key: signs each body in X-Signalsmith-Signature",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)


class WebhookConnector:
    type: ClassVar[str] = "webhook"
    max_batch_size: ClassVar[int] = 10_000
    default_batch_size: ClassVar[int] = 500

    def __init__(
        self, config: dict[str, Any], *, policy: AddressPolicy, timeout: float = 10.0
    ) -> None:
        self._url: str = config["url"]
        self._headers: dict[str, str] = dict(config.get("headers") or {})
        self._secret: str | None = config.get("secret")
        self._policy = policy
        self._pins = HostPins(policy)  # each host resolved and checked once per run
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def check(self) -> None:
        await check_url(self._url, self._policy)

    async def send(self, batch: Batch) -> BatchResult:
        body = json.dumps(
            {
                "sync_id": str(batch.sync_id),
                "run_id": str(batch.run_id),
                "operation": batch.operation.value,
                "records": [record.fields for record in batch.records],
            },
            separators=(",", ":"),
            default=str,
        ).encode()
        headers = {**self._headers, "Content-Type": "application/json"}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        response = await self._post(body, headers)
        return self._result(batch, response)

    async def _post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        url = self._url
        for _ in range(MAX_REDIRECTS + 1):
            target = await self._pins.pin(url)
            try:
                response = await self._client.post(
                    target.url,
                    content=body,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                )
            except httpx.TimeoutException as exc:
                raise TransientError("the webhook timed out") from exc
            except httpx.TransportError as exc:
                raise TransientError(
                    f"the webhook could not be reached ({type(exc).__name__})"
                ) from exc
            if not response.is_redirect:
                return response
            url = urljoin(url, response.headers.get("location", ""))
        raise TerminalError(f"the webhook redirected more than {MAX_REDIRECTS} times")

    def _result(self, batch: Batch, response: httpx.Response) -> BatchResult:
        status = response.status_code
        if status in TRANSIENT_STATUSES:
            raise TransientError(
                f"the webhook answered {status}",
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if not 200 <= status < 300:
            raise TerminalError(f"the webhook refused the batch with {status}")
        refused = self._rejections(response, len(batch.records))
        keys = [record.key for record in batch.records]
        return BatchResult(
            accepted=tuple(key for i, key in enumerate(keys) if i not in refused),
            rejected=tuple((keys[i], reason) for i, reason in sorted(refused.items())),
        )

    @staticmethod
    def _rejections(response: httpx.Response, size: int) -> dict[int, str]:
        try:
            payload = response.json()
        except ValueError:
            return {}
        items = payload.get("rejected") if isinstance(payload, dict) else None
        refused: dict[int, str] = {}
        for item in items if isinstance(items, list) else []:
            index = item.get("index") if isinstance(item, dict) else None
            if isinstance(index, int) and 0 <= index < size:
                refused[index] = str(item.get("error") or "rejected")[:500]
        return refused

    async def close(self) -> None:
        await self._client.aclose()


SPEC = DestinationSpec(
    kind=DestinationType.webhook,
    title="Webhook",
    description="JSON batches POSTed to your URL, signed with HMAC-SHA256 when a secret is set.",
    config=WebhookConfig,
    build=lambda config, options: WebhookConnector(config, policy=options.policy),
    max_batch_size=WebhookConnector.max_batch_size,
    default_batch_size=WebhookConnector.default_batch_size,
    concurrency=8,
)
