"""HubSpot: contacts upserted by email, and kept in a static (MANUAL or SNAPSHOT) contact list.

Adds and updates: `POST /crm/objects/2026-03/contacts/batch/upsert` (`idProperty: "email"`, at
most 100 inputs), then `PUT /crm/lists/2026-03/{listId}/memberships/add` with the record ids the
upsert answered. Exits: the contacts are found by the email they were last sent under
(`POST /crm/objects/2026-03/contacts/batch/read`, `idProperty: "email"`), then leave the list
(`PUT …/memberships/remove`) or, with `on_exit: delete_record`, are archived
(`POST /crm/objects/2026-03/contacts/batch/archive`: HubSpot's recycling bin, 90 days).
`check()` reads the list (`GET /crm/lists/2026-03/{listId}`): the token, the list id, and that
the list holds contacts and takes members by API.

Choices where the documentation leaves room:

- **Date-versioned paths** (`2026-03`): HubSpot's reference calls the `/crm/v3/` paths legacy,
  unsupported from September 2027; the shapes are the same.
- **Per-row errors**: each upsert input carries its index as `objectWriteTraceId`, so a
  207 Multi-Status names the inputs it refused in `errors[].context.objectWriteTraceId`; those
  rows are rejected and never added to the list. An input the answer does not mention at all
  is rejected too (never assumed). A contact the list call reports in `recordIdsMissing` is
  rejected. A 400 refuses the request whole (delivery bisects it).
- **Record ids** for the list come from the upsert's answer (no extra call); removals look
  them up by email in one batch read per batch (contacts no longer found have already left).
- **Throttling**: 100 requests per 10 s per app (Free and Starter; Professional and Enterprise
  allow 190, the API add-on 250): the lowest documented limit is paced up front, per token.
  A 429 carries no `Retry-After`; the connector waits the interval HubSpot names in
  `X-HubSpot-RateLimit-Interval-Milliseconds` (10 s without it). 423 Locked waits 2 s, as
  documented; 477 (a data migration) honours its `Retry-After`.
- **Property values** are sent as text (HubSpot's own representation); an empty source value
  (`null`) clears the property (`""`).

Docs: https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
https://developers.hubspot.com/docs/api-reference/2026-03/crm/objects/contacts/batch/upsert-contacts
https://developers.hubspot.com/docs/api-reference/2026-03/crm/lists/memberships/add-to-list
https://developers.hubspot.com/docs/api-reference/error-handling
https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines
https://developers.hubspot.com/docs/api-reference/legacy/migration-guide
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

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
from app.destinations.config import VendorConfig, secret_field
from app.destinations.identifiers import Normalizer
from app.destinations.spec import BuildOptions, DestinationSpec, FieldSpec, RateLimit
from app.destinations.vendor_http import VendorClient
from app.destinations.webhook import parse_retry_after
from models.enums import DestinationType, OnExit

API_URL = "https://api.hubapi.com"
VERSION = "2026-03"
CONTACTS = f"/crm/objects/{VERSION}/contacts"
LISTS = f"/crm/lists/{VERSION}"
MAX_INPUTS = 100
RATE_LIMIT = RateLimit(requests=100, per_seconds=10.0)
CONTACT_OBJECT_TYPE = "0-1"
#: List processing types that take members by API.
STATIC_LISTS = frozenset({"MANUAL", "SNAPSHOT"})
#: Seconds to wait on 423 Locked ("a delay of at least 2 seconds").
LOCKED_WAIT = 2.0
#: Seconds to wait on a 429 that names no interval (the ten-second rolling window).
THROTTLED_WAIT = 10.0
REASON_LIMIT = 500
NO_EMAIL = "no email for this member: HubSpot knows contacts by email"


class HubSpotConfig(VendorConfig):
    base_url: str = Field(default=API_URL, max_length=2000)
    access_token: str = secret_field(
        min_length=1,
        max_length=4000,
        description="Access token of a private app (or service key) with the scopes "
        "crm.objects.contacts.read, crm.objects.contacts.write, crm.lists.read, crm.lists.write",
    )
    list_id: str = Field(
        pattern=r"^\d{1,20}$",
        description="ILS id of the MANUAL or SNAPSHOT contact list the audience is kept in",
    )


FIELDS = (
    FieldSpec(
        "email", "Email (the contact's identity)", Normalizer.email, identifier=True, required=True
    ),
    FieldSpec("firstname", "First name", Normalizer.text),
    FieldSpec("lastname", "Last name", Normalizer.text),
    FieldSpec("phone", "Phone number", Normalizer.text),
    FieldSpec("mobilephone", "Mobile phone number", Normalizer.text),
    FieldSpec("company", "Company name", Normalizer.text),
    FieldSpec("jobtitle", "Job title", Normalizer.text),
    FieldSpec("city", "City", Normalizer.text),
    FieldSpec("state", "State or region", Normalizer.text),
    FieldSpec("zip", "Postal code", Normalizer.text),
    FieldSpec("country", "Country", Normalizer.text),
    FieldSpec("website", "Website", Normalizer.text),
)


def property_value(value: Any) -> str:
    """A source value as HubSpot property text (`""` clears the property)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class HubSpotClient(VendorClient):
    """HubSpot's transient statuses beyond the shared ones, with the waits HubSpot documents."""

    def raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status in (423, 429, 477):
            wait = parse_retry_after(response.headers.get("retry-after"))
            if wait is None:
                wait = LOCKED_WAIT if status == 423 else _interval(response)
            raise TransientError(
                f"{self.vendor} answered {status}{self.detail(response)}", retry_after=wait
            )
        super().raise_for_status(response)


def _interval(response: httpx.Response) -> float:
    try:
        return int(response.headers["x-hubspot-ratelimit-interval-milliseconds"]) / 1000
    except (KeyError, ValueError):
        return THROTTLED_WAIT


class HubSpotConnector:
    type: ClassVar[str] = "hubspot"
    max_batch_size: ClassVar[int] = MAX_INPUTS
    default_batch_size: ClassVar[int] = MAX_INPUTS

    def __init__(
        self,
        config: dict[str, Any],
        options: BuildOptions,
        *,
        rate_limit: RateLimit | None = RATE_LIMIT,
    ) -> None:
        settings = HubSpotConfig.model_validate(config)
        self._list_id = settings.list_id
        self._on_exit = options.on_exit
        self.client = HubSpotClient(
            "HubSpot",
            settings.base_url,
            options,
            headers={"Authorization": f"Bearer {settings.access_token}"},
            rate_limit=rate_limit,
            secrets=[settings.access_token],
        )

    async def check(self) -> None:
        """Reads the list: refused credentials deny access; a list that is missing, holds
        other objects or is DYNAMIC (HubSpot fills it itself) is a terminal error."""
        response = await self.client.request("GET", f"{LISTS}/{self._list_id}")
        found = _json(response).get("list")
        found = found if isinstance(found, dict) else {}
        if found.get("objectTypeId") != CONTACT_OBJECT_TYPE:
            raise TerminalError(f"HubSpot list {self._list_id} does not hold contacts")
        if found.get("processingType") not in STATIC_LISTS:
            raise TerminalError(
                f"HubSpot list {self._list_id} is {found.get('processingType')}: only MANUAL "
                "and SNAPSHOT lists take members by API"
            )

    async def send(self, batch: Batch) -> BatchResult:
        if batch.operation is Operation.remove:
            return await self._leave(batch.records)
        return await self._upsert_and_join(batch.records)

    async def _upsert_and_join(self, records: Sequence[Record]) -> BatchResult:
        sent = [r for r in records if isinstance(r.fields.get("email"), str)]
        rejected = [(r.key, NO_EMAIL) for r in records if r not in sent]
        ids, refused = await self._upsert(sent) if sent else ({}, {})
        if ids:
            joined = _json(
                await self.client.request(
                    "PUT",
                    f"{LISTS}/{self._list_id}/memberships/add",
                    json=list(dict.fromkeys(ids.values())),
                )
            )
            missing = {str(m) for m in joined.get("recordIdsMissing") or []}
            for index, record_id in list(ids.items()):
                if record_id in missing:
                    del ids[index]
                    refused[index] = f"HubSpot has no contact {record_id} to add to the list"
        rejected.extend((sent[i].key, refused[i][:REASON_LIMIT]) for i in sorted(refused))
        return BatchResult(
            accepted=tuple(sent[i].key for i in sorted(ids)), rejected=tuple(rejected)
        )

    async def _upsert(self, sent: Sequence[Record]) -> tuple[dict[int, str], dict[int, str]]:
        """({input index: record id}, {input index: reason}) for every record. HubSpot refuses
        a batch naming an email twice: members sharing one go as a single input (the last
        one's properties), and its fate is each of theirs."""
        last = {record.fields["email"]: index for index, record in enumerate(sent)}
        inputs = [
            {
                "idProperty": "email",
                "id": email,
                "properties": {
                    name: property_value(value)
                    for name, value in sent[index].fields.items()
                    if name != "email"
                },
                "objectWriteTraceId": str(index),
            }
            for email, index in last.items()
        ]
        answer = _json(
            await self.client.request("POST", f"{CONTACTS}/batch/upsert", json={"inputs": inputs})
        )
        refused = _refused_inputs(answer, len(sent))
        ids: dict[int, str] = {}
        for result in _items(answer.get("results")):
            index = _trace_index(result.get("objectWriteTraceId"), len(sent))
            if index is not None and index not in refused and result.get("id"):
                ids[index] = str(result["id"])
        for index, record in enumerate(sent):
            sent_as = last[record.fields["email"]]
            if sent_as in ids:
                ids[index] = ids[sent_as]
            else:
                refused[index] = refused.get(
                    sent_as, "HubSpot's answer did not mention this contact"
                )
        return ids, refused

    async def _leave(self, records: Sequence[Record]) -> BatchResult:
        """Exits by the email each member was sent under; contacts HubSpot no longer has
        have left already."""
        known = [r for r in records if isinstance(r.fields.get("email"), str)]
        unknown = [r for r in records if r not in known]
        ids = await self._find({r.fields["email"] for r in known})
        if ids and self._on_exit is OnExit.delete_record:
            await self.client.request(
                "POST", f"{CONTACTS}/batch/archive", json={"inputs": [{"id": i} for i in ids]}
            )
        elif ids:
            await self.client.request(
                "PUT", f"{LISTS}/{self._list_id}/memberships/remove", json=ids
            )
        return BatchResult(
            accepted=tuple(r.key for r in known), rejected=tuple((r.key, NO_EMAIL) for r in unknown)
        )

    async def _find(self, emails: set[str]) -> list[str]:
        """Record ids of the contacts with these emails (missing ones are left out)."""
        if not emails:
            return []
        answer = _json(
            await self.client.request(
                "POST",
                f"{CONTACTS}/batch/read",
                json={
                    "idProperty": "email",
                    "inputs": [{"id": email} for email in sorted(emails)],
                    "properties": ["email"],
                    "propertiesWithHistory": [],
                },
            )
        )
        return list(
            dict.fromkeys(str(r["id"]) for r in _items(answer.get("results")) if r.get("id"))
        )

    async def close(self) -> None:
        await self.client.close()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _trace_index(trace: Any, size: int) -> int | None:
    if isinstance(trace, str) and trace.isdigit() and int(trace) < size:
        return int(trace)
    return None


def _refused_inputs(answer: Mapping[str, Any], size: int) -> dict[int, str]:
    """{input index: reason} from a 207's `errors[].context.objectWriteTraceId`."""
    refused: dict[int, str] = {}
    for error in _items(answer.get("errors")):
        context = error.get("context")
        traces = context.get("objectWriteTraceId") if isinstance(context, dict) else None
        reason = f"HubSpot refused the contact ({error.get('category') or 'error'}): " + str(
            error.get("message") or "no reason given"
        )
        for trace in traces if isinstance(traces, list) else []:
            index = _trace_index(trace, size)
            if index is not None:
                refused[index] = reason
    return refused


SPEC = DestinationSpec(
    kind=DestinationType.hubspot,
    title="HubSpot",
    description=(
        "Contacts upserted by email (standard and custom properties) and kept in a static "
        "HubSpot contact list."
    ),
    config=HubSpotConfig,
    build=lambda config, options: HubSpotConnector(config, options),
    max_batch_size=HubSpotConnector.max_batch_size,
    default_batch_size=HubSpotConnector.default_batch_size,
    concurrency=2,
    fields=FIELDS,
    custom_fields=True,
    needs_identifier=True,
    rate_limit=RATE_LIMIT,
    on_exit=frozenset({OnExit.remove, OnExit.delete_record}),
    account_fields=("base_url", "access_token"),
)
