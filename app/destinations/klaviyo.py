"""Klaviyo: profiles upserted by a Bulk Import Profiles job that also adds them to a list;
exits leave the list.

Adds and updates: `POST /api/profile-bulk-import-jobs` (at most 10 000 profiles and 5 MB a
request) naming the list in the job's `lists` relationship: Klaviyo creates or updates each
profile (matched on email, phone number or external id) and adds it to the list. The job runs
asynchronously, so the connector polls `GET /api/profile-bulk-import-jobs/{id}` until it is
`complete` and, when it counts failures, reads `GET …/{id}/import-errors` (100 a page) and
rejects the profiles they point at. Exits: the profiles are found by the identifiers they were
last sent under (`GET /api/profiles?filter=any(email,[…])`, 100 values a call), then leave the
list (`DELETE /api/lists/{id}/relationships/profiles`, 1 000 ids a call); profiles Klaviyo no
longer knows have left already. Leaving a list does not touch consent. `check()` reads the
list (`GET /api/lists/{id}`).

Choices where the documentation leaves room:

- **The import job, not profile-by-profile upserts**: `POST /api/profile-import` takes one
  profile a request (700 a minute); the job takes 10 000 and adds them to the list in the
  same call. The price is polling: a job still running after `job_timeout` counts as a
  transient failure (the whole batch is imported again: upserts are idempotent).
- **Every row's fate**: an import error is matched to its row by its `source.pointer`
  (`/data/attributes/profiles/data/<i>/…`) or, failing that, by the identifiers in its
  `original_payload`; if the errors cannot account for every failure the job counted, the
  request counts as refused whole and delivery bisects it (a single profile is always known).
- **Rate limits** are per account and per endpoint (a 1 s burst and a 1 min steady window):
  each endpoint is paced at its documented steady limit, and a 429's `Retry-After` is
  honoured by delivery.
- **Values**: custom fields go to `properties` as JSON; empty values are left out (the import
  job cannot clear a field with `null`). The API revision is pinned (`revision` header).

Docs: https://developers.klaviyo.com/en/reference/bulk_import_profiles
https://developers.klaviyo.com/en/reference/get_bulk_import_profiles_job
https://developers.klaviyo.com/en/reference/get_errors_for_bulk_import_profiles_job
https://developers.klaviyo.com/en/reference/get_profiles
https://developers.klaviyo.com/en/reference/remove_profiles_from_list
https://developers.klaviyo.com/en/docs/use_klaviyos_bulk_profile_import_api
https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling
https://developers.klaviyo.com/en/docs/filtering_
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import Field

from app.destinations.base import (
    Batch,
    BatchResult,
    Operation,
    Record,
    TerminalError,
    TransientError,
)
from app.destinations.config import VendorConfig, secret_field, validated
from app.destinations.identifiers import Normalizer
from app.destinations.rate_limit import limiter_for
from app.destinations.spec import BuildOptions, DestinationSpec, FieldSpec, RateLimit
from app.destinations.vendor_http import VendorClient
from models.enums import DestinationType, OnExit

API_URL = "https://a.klaviyo.com"
REVISION = "2026-04-15"
JSON_API = "application/vnd.api+json"
MAX_PROFILES = 10_000
#: Profile ids one list-relationship call takes.
MAX_LIST_IDS = 1_000
#: Values one `any(…)` filter names (one page of profiles).
MAX_LOOKUP = 100
PAGE_SIZE = 100
#: Documented steady limits per endpoint (per account).
LIMITS: dict[str, RateLimit] = {
    "import": RateLimit(150, 60.0),
    "job": RateLimit(150, 60.0),
    "import-errors": RateLimit(150, 60.0),
    "profiles": RateLimit(750, 60.0),
    "list": RateLimit(750, 60.0),
    "list-relationships": RateLimit(150, 60.0),
}
#: Seconds between polls of a running job (the last one repeats).
POLL_DELAYS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
JOB_TIMEOUT = 900.0
IDENTIFIERS = ("email", "phone_number", "external_id")
LOCATION = ("address1", "address2", "city", "region", "country", "zip", "timezone")
ATTRIBUTES = ("first_name", "last_name", "organization", "title", "locale", "image")
_POINTER = re.compile(r"^/data/attributes/profiles/data/(\d+)(?:/|$)")
REASON_LIMIT = 500


class KlaviyoConfig(VendorConfig):
    base_url: str = Field(default=API_URL, max_length=2000)
    api_key: str = secret_field(
        min_length=1,
        max_length=200,
        description="Private API key with the profiles:read, profiles:write, lists:read and "
        "lists:write scopes",
    )
    list_id: str = Field(
        pattern=r"^[A-Za-z0-9]{1,64}$", description="Id of the list the audience is kept in"
    )


FIELDS = (
    FieldSpec("email", "Email address", Normalizer.email, identifier=True),
    FieldSpec(
        "phone_number", "Phone number (sent in E.164)", Normalizer.phone_e164, identifier=True
    ),
    FieldSpec("external_id", "Your id for the profile", Normalizer.external_id, identifier=True),
    FieldSpec("first_name", "First name", Normalizer.text),
    FieldSpec("last_name", "Last name", Normalizer.text),
    FieldSpec("organization", "Company or organisation", Normalizer.text),
    FieldSpec("title", "Job title", Normalizer.text),
    FieldSpec("locale", "Locale (IETF BCP 47, e.g. en-US)", Normalizer.text),
    FieldSpec("image", "URL of a profile image", Normalizer.text),
    FieldSpec("address1", "Street address, first line", Normalizer.text),
    FieldSpec("address2", "Street address, second line", Normalizer.text),
    FieldSpec("city", "City", Normalizer.text),
    FieldSpec("region", "State, province or region", Normalizer.text),
    FieldSpec("country", "Country", Normalizer.text),
    FieldSpec("zip", "Postal code", Normalizer.text),
    FieldSpec("timezone", "IANA time zone (e.g. America/New_York)", Normalizer.text),
)


def property_value(value: Any) -> Any:
    """A source value as a JSON profile property."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def profile(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The `profile` resource a prepared payload becomes."""
    attributes: dict[str, Any] = {}
    location: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if name in IDENTIFIERS or name in ATTRIBUTES:
            attributes[name] = value
        elif name in LOCATION:
            location[name] = value
        else:
            properties[name] = property_value(value)
    if location:
        attributes["location"] = location
    if properties:
        attributes["properties"] = properties
    return {"type": "profile", "attributes": attributes}


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _cursor(links: Any) -> str | None:
    """The `page[cursor]` of a JSON:API `links.next` (whatever host it names)."""
    nxt = links.get("next") if isinstance(links, dict) else None
    if not isinstance(nxt, str) or not nxt:
        return None
    values = parse_qs(urlsplit(nxt).query).get("page[cursor]")
    return values[0] if values else None


class KlaviyoConnector:
    type: ClassVar[str] = "klaviyo"
    max_batch_size: ClassVar[int] = MAX_PROFILES
    default_batch_size: ClassVar[int] = 1_000

    def __init__(
        self,
        config: dict[str, Any],
        options: BuildOptions,
        *,
        limits: Mapping[str, RateLimit | None] = LIMITS,
        poll_delays: Sequence[float] = POLL_DELAYS,
        job_timeout: float = JOB_TIMEOUT,
    ) -> None:
        settings = validated(KlaviyoConfig, config, "Klaviyo")
        self._list_id = settings.list_id
        self._account = options.account
        self._limits = limits
        self._poll_delays = tuple(poll_delays) or (0.0,)
        self._job_timeout = job_timeout
        self.client = VendorClient(
            "Klaviyo",
            settings.base_url,
            options,
            headers={
                "Authorization": f"Klaviyo-API-Key {settings.api_key}",
                "revision": REVISION,
                "Accept": JSON_API,
            },
            secrets=[settings.api_key],
        )

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """One request, paced at the endpoint's own limit (Klaviyo limits each endpoint)."""
        limit = self._limits.get(endpoint)
        if limit is not None:
            await limiter_for(f"{self._account}:{endpoint}", limit).acquire()
        headers = {"Content-Type": JSON_API} if body is not None else None
        return await self.client.request(method, path, json=body, params=params, headers=headers)

    async def check(self) -> None:
        """Reads the list: refused credentials deny access, a missing list is terminal."""
        await self._call("list", "GET", f"/api/lists/{self._list_id}")

    async def send(self, batch: Batch) -> BatchResult:
        if batch.operation is Operation.remove:
            return await self._leave(batch.records)
        return await self._import(batch.records)

    # --- adds and updates -----------------------------------------------------------------

    async def _import(self, records: Sequence[Record]) -> BatchResult:
        profiles = [profile(record.fields) for record in records]
        body = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": profiles}},
                "relationships": {"lists": {"data": [{"type": "list", "id": self._list_id}]}},
            }
        }
        path = "/api/profile-bulk-import-jobs"
        created = _body(await self._call("import", "POST", path, body=body))
        job_id = (created.get("data") or {}).get("id")
        if not isinstance(job_id, str) or not job_id:
            raise TerminalError("Klaviyo accepted the import job without naming it")
        attributes = await self._finished(job_id)
        failed = int(attributes.get("failed_count") or 0)
        if failed == 0:
            return BatchResult(accepted=tuple(record.key for record in records))
        refused = await self._import_errors(job_id, profiles)
        if len(refused) < failed:
            raise TerminalError(
                f"Klaviyo's import job {job_id} failed {failed} profile(s) it does not name"
            )
        return BatchResult(
            accepted=tuple(r.key for i, r in enumerate(records) if i not in refused),
            rejected=tuple((records[i].key, reason) for i, reason in sorted(refused.items())),
        )

    async def _finished(self, job_id: str) -> dict[str, Any]:
        """The job's attributes once it is complete."""
        deadline = time.monotonic() + self._job_timeout
        for delay in self._delays():
            if time.monotonic() + delay > deadline:
                break
            await asyncio.sleep(delay)
            job = _body(await self._call("job", "GET", f"/api/profile-bulk-import-jobs/{job_id}"))
            attributes = (job.get("data") or {}).get("attributes") or {}
            status = attributes.get("status")
            if status == "complete":
                return dict(attributes)
            if status == "cancelled":
                raise TransientError(f"Klaviyo cancelled the import job {job_id}")
        raise TransientError(
            f"Klaviyo's import job {job_id} did not finish within {self._job_timeout:g} s"
        )

    def _delays(self) -> Iterator[float]:
        return itertools.chain(self._poll_delays, itertools.repeat(self._poll_delays[-1]))

    async def _import_errors(
        self, job_id: str, profiles: Sequence[dict[str, Any]]
    ) -> dict[int, str]:
        """Row index → Klaviyo's reason, for each import error that names its row."""
        by_identifier = {
            (name, str(value).lower()): index
            for index, sent in enumerate(profiles)
            for name, value in sent["attributes"].items()
            if name in IDENTIFIERS
        }
        refused: dict[int, str] = {}
        cursor: str | None = None
        path = f"/api/profile-bulk-import-jobs/{job_id}/import-errors"
        while True:
            params = {"page[size]": PAGE_SIZE, **({"page[cursor]": cursor} if cursor else {})}
            page = _body(await self._call("import-errors", "GET", path, params=params))
            for item in page.get("data") or []:
                attributes = item.get("attributes") if isinstance(item, dict) else None
                if not isinstance(attributes, dict):
                    continue
                index = _row(attributes, by_identifier, len(profiles))
                if index is not None:
                    refused[index] = _reason(attributes)
            cursor = _cursor(page.get("links"))
            if cursor is None:
                return refused

    # --- exits --------------------------------------------------------------------------------

    async def _leave(self, records: Sequence[Record]) -> BatchResult:
        """Find each member's profile by the identifier it was sent under, then take the
        profiles off the list. A member without an identifier, or unknown to Klaviyo, has no
        profile on the list: it has left."""
        wanted: dict[str, dict[str, None]] = {name: {} for name in IDENTIFIERS}
        for record in records:
            name = next((n for n in IDENTIFIERS if record.fields.get(n)), None)
            if name is not None:
                wanted[name][str(record.fields[name])] = None
        ids: dict[str, None] = {}
        for name, found in wanted.items():
            values = list(found)
            for start in range(0, len(values), MAX_LOOKUP):
                chunk = values[start : start + MAX_LOOKUP]
                ids.update(dict.fromkeys(await self._profile_ids(name, chunk)))
        listed = list(ids)
        path = f"/api/lists/{self._list_id}/relationships/profiles"
        for start in range(0, len(listed), MAX_LIST_IDS):
            data = [{"type": "profile", "id": pid} for pid in listed[start : start + MAX_LIST_IDS]]
            await self._call("list-relationships", "DELETE", path, body={"data": data})
        return BatchResult(accepted=tuple(record.key for record in records))

    async def _profile_ids(self, name: str, values: Sequence[str]) -> list[str]:
        quoted = ",".join(json.dumps(value, ensure_ascii=False) for value in values)
        params: dict[str, Any] = {
            "filter": f"any({name},[{quoted}])",
            "fields[profile]": name,
            "page[size]": PAGE_SIZE,
        }
        found: list[str] = []
        while True:
            page = _body(await self._call("profiles", "GET", "/api/profiles", params=params))
            found.extend(
                str(item["id"])
                for item in page.get("data") or []
                if isinstance(item, dict) and item.get("id")
            )
            cursor = _cursor(page.get("links"))
            if cursor is None:
                return found
            params["page[cursor]"] = cursor

    async def close(self) -> None:
        await self.client.close()


def _row(
    attributes: dict[str, Any], by_identifier: dict[tuple[str, str], int], size: int
) -> int | None:
    """Which sent profile an import error is about: its pointer, else its identifiers."""
    source = attributes.get("source")
    pointer = source.get("pointer") if isinstance(source, dict) else None
    match = _POINTER.match(pointer) if isinstance(pointer, str) else None
    if match and int(match.group(1)) < size:
        return int(match.group(1))
    payload = attributes.get("original_payload")
    if isinstance(payload, dict) and isinstance(payload.get("attributes"), dict):
        payload = payload["attributes"]
    for name in IDENTIFIERS:
        value = payload.get(name) if isinstance(payload, dict) else None
        if value is not None and (name, str(value).lower()) in by_identifier:
            return by_identifier[(name, str(value).lower())]
    return None


def _reason(attributes: dict[str, Any]) -> str:
    words = [str(attributes.get(k)) for k in ("title", "detail") if attributes.get(k)]
    return (": ".join(words) or "refused by Klaviyo")[:REASON_LIMIT]


SPEC = DestinationSpec(
    kind=DestinationType.klaviyo,
    title="Klaviyo",
    description="Profiles created or updated by Klaviyo's bulk import jobs and kept in one "
    "list; exits leave the list (their profiles and consent stay).",
    config=KlaviyoConfig,
    build=lambda config, options: KlaviyoConnector(config, options),
    max_batch_size=KlaviyoConnector.max_batch_size,
    default_batch_size=KlaviyoConnector.default_batch_size,
    concurrency=2,
    fields=FIELDS,
    custom_fields=True,
    needs_identifier=True,
    rate_limit=LIMITS["import"],
    on_exit=frozenset({OnExit.remove}),
    account_fields=("api_key",),
)
