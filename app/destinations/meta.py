"""Meta Custom Audiences through the Marketing API's users edge.

Adds are `POST /{api_version}/{custom_audience_id}/users`, removals `DELETE` on the same edge,
both with a JSON body `{"payload": {"schema": [...], "data": [[...], ...]}, "session": {...}}`
of at most 10 000 users. The multi-key schema uses EMAIL, PHONE, FN, LN, COUNTRY and ZIP (the
keys the batch carries, in that order; a missing value is an empty string), every value the
SHA-256 of Meta's normalisation: email trimmed and lower-cased, phone digits with the country
code and no `+`, names letters only and lower-cased, country two lower-case letters, zip
lower-case without spaces. The access token travels in the `Authorization` header, never in
the URL. `check()` reads the audience (`GET /{api_version}/{custom_audience_id}?fields=id,name`).

Sessions: each run opens one session per operation (`session_id` derived from the run and the
operation, `batch_seq` counting that session's requests from 1). The connector cannot know
which batch ends a run (the engine streams them), so `last_batch_flag` is always false and
`estimated_num_total` is left out; Meta closes an unfinished session on its own, and the
session still groups the run's batches in Meta's reporting.

Per-row results: Meta answers `num_received`, `num_invalid_entries` and `invalid_entry_samples`
(a map of string to string). A sample whose key is a value only one row carried (or a row
index) rejects that row with the sample's text; invalid entries beyond the samples cannot be
told apart and count as accepted. A record with no value to send at all (a removal of a member
held without identifiers) is rejected without a request.

Errors: Graph API errors come as `{"error": {"code", "message", "type", ...}}`, mostly with
HTTP 400, so the code decides: 190/102/2500 (token) and 10/200-299 (permissions) deny access
(the run stops); 4/17/32/613/80000-80014 (throttling) or `is_transient` are transient, retried
after the `estimated_time_to_regain_access` of `X-Business-Use-Case-Usage`; anything else
refuses the request as a whole (delivery bisects it). Meta documents no fixed request rate for
this edge (its limits are usage scores), so none is declared: throttling is honoured when it
comes.

Docs: https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users
https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences
https://developers.facebook.com/docs/marketing-api/overview/rate-limiting
https://developers.facebook.com/docs/marketing-api/error-reference
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from pydantic import Field

from app.destinations.base import (
    AccessDenied,
    Batch,
    BatchResult,
    Operation,
    TransientError,
)
from app.destinations.config import VendorConfig, secret_field
from app.destinations.identifiers import Normalizer
from app.destinations.spec import BuildOptions, DestinationSpec, FieldSpec
from app.destinations.vendor_http import VendorClient
from models.enums import DestinationType

API_URL = "https://graph.facebook.com"
API_VERSION = "v25.0"
MAX_USERS = 10_000

#: Destination field → Meta's multi-key schema key, in the order the schema lists them.
SCHEMA_KEYS: dict[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "first_name": "FN",
    "last_name": "LN",
    "country": "COUNTRY",
    "zip": "ZIP",
}
TOKEN_ERRORS = frozenset({102, 190, 2500})
THROTTLE_ERRORS = frozenset({4, 17, 32, 613, *range(80000, 80015)})


class MetaConfig(VendorConfig):
    base_url: str = Field(default=API_URL, max_length=2000)
    api_version: str = Field(
        default=API_VERSION, pattern=r"^v\d{1,3}\.\d$", description="Graph API version"
    )
    access_token: str = secret_field(
        min_length=1,
        max_length=4000,
        description="A system-user access token with ads_management on the audience's account",
    )
    custom_audience_id: str = Field(
        pattern=r"^\d{1,30}$", description="The customer-list Custom Audience to keep in step"
    )


FIELDS = (
    FieldSpec("email", "Email address", Normalizer.email, hashed=True, identifier=True),
    FieldSpec(
        "phone",
        "Phone number (digits with country code)",
        Normalizer.phone_digits,
        hashed=True,
        identifier=True,
    ),
    FieldSpec("first_name", "First name", Normalizer.meta_name, hashed=True),
    FieldSpec("last_name", "Last name", Normalizer.meta_name, hashed=True),
    FieldSpec("country", "Country, ISO 3166-1 alpha-2", Normalizer.meta_country, hashed=True),
    FieldSpec("zip", "Postal code", Normalizer.meta_zip, hashed=True),
)


@dataclass
class UploadSession:
    """One run's requests for one operation, as Meta tracks them."""

    session_id: int
    batch_seq: int = 0

    @classmethod
    def of(cls, run_id: uuid.UUID, operation: Operation) -> UploadSession:
        digest = hashlib.sha256(f"{run_id}:{operation.value}".encode()).digest()
        return cls(session_id=int.from_bytes(digest[:7], "big") or 1)

    def next(self) -> dict[str, Any]:
        self.batch_seq += 1
        return {
            "session_id": self.session_id,
            "batch_seq": self.batch_seq,
            "last_batch_flag": False,
        }


class MetaConnector:
    type: ClassVar[str] = "meta"
    max_batch_size: ClassVar[int] = MAX_USERS
    default_batch_size: ClassVar[int] = 5_000

    def __init__(self, config: dict[str, Any], options: BuildOptions) -> None:
        settings = MetaConfig.model_validate(config)
        self._settings = settings
        self._edge = f"/{settings.api_version}/{settings.custom_audience_id}"
        self._sessions: dict[tuple[uuid.UUID, Operation], UploadSession] = {}
        self.client = VendorClient(
            "meta",
            settings.base_url,
            options,
            headers={"Authorization": f"Bearer {settings.access_token}"},
            secrets=[settings.access_token],
        )

    async def check(self) -> None:
        """Reads the audience: the token and its access to the audience in one call."""
        response = await self.client.request(
            "GET", self._edge, params={"fields": "id,name"}, passthrough=(400, 401, 403)
        )
        self._raise_for_error(response)

    def body(self, batch: Batch, session: dict[str, Any]) -> tuple[dict[str, Any], list[list[str]]]:
        """The request body for a batch, and the rows it carries (in the records' order)."""
        used = [
            name for name in SCHEMA_KEYS if any(record.fields.get(name) for record in batch.records)
        ]
        rows = [[str(record.fields.get(name) or "") for name in used] for record in batch.records]
        payload = {"schema": [SCHEMA_KEYS[name] for name in used], "data": rows}
        return {"payload": payload, "session": session}, rows

    async def send(self, batch: Batch) -> BatchResult:
        # A removal of a member held without identifiers has nothing Meta could match on.
        unmatched = [r for r in batch.records if not any(r.fields.get(n) for n in SCHEMA_KEYS)]
        sendable = [r for r in batch.records if r not in unmatched]
        rejected = [(r.key, "no email or phone number to match on") for r in unmatched]
        if not sendable:
            return BatchResult(accepted=(), rejected=tuple(rejected))
        batch = Batch(batch.sync_id, batch.run_id, batch.operation, tuple(sendable))
        key = (batch.run_id, batch.operation)
        session = self._sessions.setdefault(key, UploadSession.of(*key))
        body, rows = self.body(batch, session.next())
        method = "DELETE" if batch.operation is Operation.remove else "POST"
        response = await self.client.request(
            method, f"{self._edge}/users", json=body, passthrough=(400, 401, 403)
        )
        self._raise_for_error(response)
        refused = _invalid_rows(response, rows)
        keys = [record.key for record in batch.records]
        rejected += [(keys[i], reason) for i, reason in sorted(refused.items())]
        return BatchResult(
            accepted=tuple(k for i, k in enumerate(keys) if i not in refused),
            rejected=tuple(rejected),
        )

    def _raise_for_error(self, response: httpx.Response) -> None:
        """A Graph API error, classified by its code rather than its HTTP status."""
        if response.status_code < 400:
            return
        try:
            error = response.json().get("error") or {}
        except (ValueError, AttributeError):
            error = {}
        code = error.get("code") if isinstance(error, dict) else None
        detail = self.client.detail(response)
        if code in TOKEN_ERRORS:
            raise AccessDenied(f"meta refused the access token ({code}){detail}")
        if code == 10 or (isinstance(code, int) and 200 <= code <= 299):
            raise AccessDenied(f"meta refused access to the audience ({code}){detail}")
        if code in THROTTLE_ERRORS or (isinstance(error, dict) and error.get("is_transient")):
            raise TransientError(
                f"meta is throttling requests ({code}){detail}",
                retry_after=_regain_access(response),
            )
        self.client.raise_for_status(response)

    async def close(self) -> None:
        await self.client.close()


def _invalid_rows(response: httpx.Response, rows: list[list[str]]) -> dict[int, str]:
    """{row index: reason} for the `invalid_entry_samples` that name a row we sent."""
    try:
        samples = response.json().get("invalid_entry_samples") or {}
    except (ValueError, AttributeError):
        return {}
    if not isinstance(samples, Mapping):
        return {}
    # Only a value that one row alone carries names that row (names, zips repeat).
    seen: dict[str, list[int]] = {}
    for position, row in enumerate(rows):
        for value in dict.fromkeys(v for v in row if v):
            seen.setdefault(value, []).append(position)
    where = {value: found[0] for value, found in seen.items() if len(found) == 1}
    refused: dict[int, str] = {}
    for sample, reason in samples.items():
        index = where.get(str(sample))
        if index is None and str(sample).isdigit() and int(sample) < len(rows):
            index = int(sample)
        if index is not None:
            refused[index] = f"meta refused the entry: {reason}"[:500]
    return refused


def _regain_access(response: httpx.Response) -> float | None:
    """Seconds until Meta lifts the throttle (`estimated_time_to_regain_access` is minutes)."""
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage", ""))
    except ValueError:
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in (usage.values() if isinstance(usage, dict) else [])
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    ]
    known = [float(m) for m in minutes if isinstance(m, int | float)]
    return max(known) * 60.0 if known else None


SPEC = DestinationSpec(
    kind=DestinationType.meta,
    title="Meta Custom Audience",
    description=(
        "A customer-list Custom Audience through the Marketing API: hashed emails, phone "
        "numbers, names, country and zip."
    ),
    config=MetaConfig,
    build=lambda config, options: MetaConnector(config, options),
    max_batch_size=MetaConnector.max_batch_size,
    default_batch_size=MetaConnector.default_batch_size,
    fields=FIELDS,
    custom_fields=False,
    needs_identifier=True,
    rate_limit=None,
    account_fields=("custom_audience_id",),
)
