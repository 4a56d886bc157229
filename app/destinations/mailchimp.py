"""Mailchimp: members of one audience (list), subscribed, updated and unsubscribed in batches.

Adds and updates: `POST /3.0/lists/{list_id}` ("batch subscribe or unsubscribe", at most 500
members a call) with `update_existing: true`; each member carries the configured status
(`subscribed` unless set otherwise) and its merge fields. Mailchimp answers 200 with
`new_members`, `updated_members` and `errors[]`: a member named in `errors` is rejected with
Mailchimp's words, and so is a member the answer does not mention at all (never assumed
accepted). Exits (`on_exit`):

- `remove` (default): the same batch call with `status: "unsubscribed"`: the contact stays in
  the audience, unsubscribed, and receives no campaigns; it is resubscribed if it comes back.
- `delete_record`: the member is archived, `DELETE /3.0/lists/{list_id}/members/{hash}` (the
  MD5 of the lower-cased email), one call per member, at most `CONCURRENCY` at once; a 404
  (already archived or unknown) counts as done. Mailchimp's permanent delete is not offered:
  a permanently deleted address can never be imported again, so a member who came back could
  not be synced.

`check()` reads the audience (`GET /3.0/lists/{list_id}`). Authentication is HTTP basic with
any user name and the API key; the key's `-<dc>` suffix names the data center, so the base
URL defaults to `https://<dc>.api.mailchimp.com`.

Limits: 500 members a batch call; Mailchimp documents no per-second or per-minute quota, only
at most 10 simultaneous connections per account (answered 429 beyond that, without
`Retry-After`): the connector holds one connection for batch calls and `CONCURRENCY` for
archiving, and delivery retries a 429 with backoff. Merge field values are sent as text.

Docs: https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/
https://mailchimp.com/developer/marketing/api/list-members/archive-list-member/
https://mailchimp.com/developer/marketing/api/lists/get-list-info/
https://mailchimp.com/developer/marketing/docs/fundamentals/ (API limits, authentication)
https://mailchimp.com/developer/marketing/docs/errors/
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, Self

import httpx
from pydantic import Field, model_validator

from app.destinations.base import (
    AccessDenied,
    Batch,
    BatchResult,
    Operation,
    Record,
    TerminalError,
)
from app.destinations.config import VendorConfig, secret_field, validated
from app.destinations.identifiers import Normalizer
from app.destinations.spec import BuildOptions, DestinationSpec, FieldSpec
from app.destinations.vendor_http import VendorClient
from models.enums import DestinationType, OnExit

MAX_MEMBERS = 500
#: Archive calls in flight at once (Mailchimp allows 10 connections per account in all).
CONCURRENCY = 4
EMAIL = "email_address"
_DATA_CENTER = re.compile(r"^[a-z]{2,10}\d{1,4}$")
REASON_LIMIT = 500
UNREPORTED = "Mailchimp's answer did not mention this member"


class MailchimpConfig(VendorConfig):
    base_url: str = Field(
        default="",
        max_length=2000,
        description="https://<dc>.api.mailchimp.com (derived from the API key when left out)",
    )
    api_key: str = secret_field(
        min_length=1, max_length=200, description="API key; its -<dc> suffix names the data center"
    )
    list_id: str = Field(
        pattern=r"^[A-Za-z0-9]{1,64}$", description="Id of the audience (list) to keep"
    )
    status: Literal["subscribed", "pending", "transactional"] = Field(
        default="subscribed",
        description="Status members are sent with: subscribed, pending (double opt-in email) "
        "or transactional",
    )

    @model_validator(mode="after")
    def _data_center(self) -> Self:
        if not self.base_url:
            _, _, suffix = self.api_key.rpartition("-")
            if not _DATA_CENTER.fullmatch(suffix):
                raise ValueError(
                    "the api_key does not end in its data center (-us21 …): set base_url"
                )
            self.base_url = f"https://{suffix}.api.mailchimp.com"
        return self


FIELDS = (
    FieldSpec(EMAIL, "Email address", Normalizer.email, identifier=True, required=True),
    FieldSpec("FNAME", "First name (merge field)", Normalizer.text),
    FieldSpec("LNAME", "Last name (merge field)", Normalizer.text),
    FieldSpec("PHONE", "Phone number (merge field)", Normalizer.text),
    FieldSpec("BIRTHDAY", "Birthday, MM/DD (merge field)", Normalizer.text),
)


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lower-cased address."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def merge_value(value: Any) -> str:
    """A source value as merge field text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class MailchimpConnector:
    type: ClassVar[str] = "mailchimp"
    max_batch_size: ClassVar[int] = MAX_MEMBERS
    default_batch_size: ClassVar[int] = MAX_MEMBERS

    def __init__(
        self, config: dict[str, Any], options: BuildOptions, *, concurrency: int = CONCURRENCY
    ) -> None:
        settings = validated(MailchimpConfig, config, "Mailchimp")
        self._list = f"/3.0/lists/{settings.list_id}"
        self._status = settings.status
        self._on_exit = options.on_exit
        self._concurrency = concurrency
        credentials = base64.b64encode(f"signalsmith:{settings.api_key}".encode()).decode()
        self.client = VendorClient(
            "Mailchimp",
            settings.base_url,
            options,
            headers={"Authorization": f"Basic {credentials}"},
            secrets=[settings.api_key, credentials],
            timeout=120.0,
        )

    async def check(self) -> None:
        """Reads the audience: refused credentials deny access, a missing list is terminal."""
        await self.client.request("GET", self._list, params={"fields": "id,name"})

    async def send(self, batch: Batch) -> BatchResult:
        if batch.operation is not Operation.remove:
            return await self._batch(batch.records, self._status, merge=True)
        if self._on_exit is OnExit.delete_record:
            return await self._archive(batch.records)
        return await self._batch(batch.records, "unsubscribed", merge=False)

    async def _batch(self, records: Sequence[Record], status: str, *, merge: bool) -> BatchResult:
        """One batch call; every member's fate read from the answer."""
        members: list[dict[str, Any]] = []
        by_email: dict[str, list[str]] = {}
        rejected: list[tuple[str, str]] = []
        for record in records:
            email = record.fields.get(EMAIL)
            if not isinstance(email, str) or not email:
                rejected.append((record.key, "no email address: Mailchimp knows members by it"))
                continue
            if email.lower() in by_email:  # one contact: sent once, same fate for both rows
                by_email[email.lower()].append(record.key)
                continue
            by_email[email.lower()] = [record.key]
            member: dict[str, Any] = {EMAIL: email, "status": status}
            fields = {
                name: merge_value(value)
                for name, value in record.fields.items()
                if name not in (EMAIL, "member_key") and value is not None
            }
            if merge and fields:
                member["merge_fields"] = fields
            members.append(member)
        if not members:
            return BatchResult(accepted=(), rejected=tuple(rejected))
        response = await self.client.request(
            "POST", self._list, json={"members": members, "update_existing": True}
        )
        answer = _json(response)
        errors = {
            str(item.get(EMAIL, "")).lower(): _reason(item)
            for item in answer.get("errors") or []
            if isinstance(item, dict)
        }
        done = {
            str(item.get(EMAIL, "")).lower()
            for name in ("new_members", "updated_members")
            for item in answer.get(name) or []
            if isinstance(item, dict)
        }
        accepted: list[str] = []
        for email, keys in by_email.items():
            if email in errors:
                rejected.extend((key, errors[email]) for key in keys)
            elif email in done:
                accepted.extend(keys)
            else:
                rejected.extend((key, UNREPORTED) for key in keys)
        return BatchResult(accepted=tuple(accepted), rejected=tuple(rejected))

    async def _archive(self, records: Sequence[Record]) -> BatchResult:
        """Archive each member (its own request, so a refusal is that member's alone); one
        Mailchimp no longer has (404) is gone already. A transient failure or refused
        credentials stop the others and fail the batch (archiving twice is harmless)."""
        gate = asyncio.Semaphore(self._concurrency)

        async def archive(record: Record) -> str | None:
            email = record.fields.get(EMAIL)
            if not isinstance(email, str) or not email:
                return None  # never sent with an address: nothing to archive
            path = f"{self._list}/members/{subscriber_hash(email)}"
            async with gate:
                try:
                    await self.client.request("DELETE", path, passthrough={404})
                except TerminalError as exc:
                    return str(exc)[:REASON_LIMIT]
            return None

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(archive(record)) for record in records]
        except BaseExceptionGroup as failed:
            raise _first(failed) from None
        outcomes = [
            (record.key, task.result()) for record, task in zip(records, tasks, strict=True)
        ]
        return BatchResult(
            accepted=tuple(key for key, reason in outcomes if reason is None),
            rejected=tuple((key, reason) for key, reason in outcomes if reason is not None),
        )

    async def close(self) -> None:
        await self.client.close()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        raise TerminalError("Mailchimp answered the batch without a JSON body") from None
    if not isinstance(payload, dict):
        raise TerminalError("Mailchimp answered the batch with an unexpected body")
    return payload


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The failure that decides a batch: refused credentials first, then the first one."""
    flat: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        error = pending.pop(0)
        if isinstance(error, BaseExceptionGroup):
            pending[:0] = list(error.exceptions)
        else:
            flat.append(error)
    return next((e for e in flat if isinstance(e, AccessDenied)), flat[0])


def _reason(item: dict[str, Any]) -> str:
    parts = [str(item.get("error") or "refused by Mailchimp")]
    if item.get("field"):
        parts.append(f"{item['field']}: {item.get('field_message') or 'invalid'}")
    return "; ".join(parts)[:REASON_LIMIT]


SPEC = DestinationSpec(
    kind=DestinationType.mailchimp,
    title="Mailchimp",
    description="Members of one Mailchimp audience, subscribed and updated in batches of 500 "
    "with their merge fields; exits are unsubscribed (or archived with on_exit "
    "delete_record).",
    config=MailchimpConfig,
    build=lambda config, options: MailchimpConnector(config, options),
    max_batch_size=MailchimpConnector.max_batch_size,
    default_batch_size=MailchimpConnector.default_batch_size,
    fields=FIELDS,
    custom_fields=True,
    needs_identifier=True,
    rate_limit=None,
    on_exit=frozenset({OnExit.remove, OnExit.delete_record}),
    account_fields=("api_key",),
)
