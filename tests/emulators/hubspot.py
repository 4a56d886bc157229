"""HubSpot's CRM as its public documentation describes it: contacts (batch upsert by email, batch
read, batch archive) and a static contact list (read, add and remove members), date-versioned
paths (`2026-03`), private-app tokens as `Authorization: Bearer`.

Strict where HubSpot is: unknown body fields, more than 100 inputs, duplicate ids, unknown or
read-only properties and invalid emails are refused (400, `category: VALIDATION_ERROR`; per
input in a 207 when every input carries an `objectWriteTraceId`); a DYNAMIC list takes no
members by API. The rolling window (100 requests / 10 s) answers 429 with HubSpot's body and
`X-HubSpot-RateLimit-*` headers, no `Retry-After`. People are known by their lower-cased email.

https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis
https://developers.hubspot.com/docs/api-reference/2026-03/crm/lists/memberships/add-to-list
https://developers.hubspot.com/docs/api-reference/error-handling
https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.base import EmulatorBase, RateWindow

VERSION = "2026-03"
CONTACTS = f"/crm/objects/{VERSION}/contacts/batch"
LISTS = f"/crm/lists/{VERSION}"
MAX_INPUTS = 100
#: Contact properties every portal has; the read-only ones HubSpot sets itself.
STANDARD_PROPERTIES = frozenset(
    {
        "email", "firstname", "lastname", "phone", "mobilephone", "company", "jobtitle",
        "city", "state", "zip", "country", "website", "address", "lifecyclestage",
    }
)  # fmt: skip
READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_RECORD_ID = re.compile(r"\d{1,20}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hubspot_error(status: int, category: str, message: str, **extra: Any) -> JSONResponse:
    """HubSpot's error body (`status`, `message`, `correlationId`, `category`, …)."""
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return JSONResponse(body, status_code=status)


def invalid(message: str) -> JSONResponse:
    return hubspot_error(400, "VALIDATION_ERROR", message)


@dataclass
class Contact:
    id: str
    properties: dict[str, str]
    created_at: str
    updated_at: str
    archived: bool = False

    def view(self, names: list[str] | None = None) -> dict[str, Any]:
        shown = self.properties if names is None else {
            k: v for k, v in self.properties.items() if k in names or k in READ_ONLY
        }  # fmt: skip
        return {
            "id": self.id,
            "properties": dict(shown),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": self.archived,
        }


class Refusal(Exception):
    """A request HubSpot refuses whole; carries the answer."""

    def __init__(self, answer: JSONResponse) -> None:
        self.answer = answer


@dataclass
class HubSpotEmulator(EmulatorBase):
    list_id: str = "4242"
    #: MANUAL or SNAPSHOT lists take members by API; DYNAMIC ones refuse.
    processing_type: str = "MANUAL"
    #: Properties the portal defines (standard ones, and the custom `plan` and `ltv`).
    properties: set[str] = field(default_factory=lambda: {*STANDARD_PROPERTIES, "plan", "ltv"})
    contacts: dict[str, Contact] = field(default_factory=dict)
    by_email: dict[str, str] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    next_id: int = 1001
    #: (method, path, JSON body) of every authenticated request, in order.
    seen: list[tuple[str, str, Any]] = field(default_factory=list)
    window: RateWindow | None = field(default_factory=lambda: RateWindow(100, 10.0))

    def app(self) -> Starlette:
        base = f"{LISTS}/{{list_id}}"
        return Starlette(
            routes=[
                Route(f"{CONTACTS}/upsert", self.upsert, methods=["POST"]),
                Route(f"{CONTACTS}/read", self.read, methods=["POST"]),
                Route(f"{CONTACTS}/archive", self.archive, methods=["POST"]),
                Route(base, self.get_list, methods=["GET"]),
                Route(f"{base}/memberships/add", self.add_members, methods=["PUT"]),
                Route(f"{base}/memberships/remove", self.remove_members, methods=["PUT"]),
            ]
        )

    def members(self) -> dict[str, dict[str, Any]]:
        listed = (self.contacts[i] for i in self.listed)
        return {c.properties["email"]: dict(c.properties) for c in listed if not c.archived}

    # --- what every route does first ------------------------------------------------------

    async def _admit(self, request: Request, *, write: bool) -> tuple[Any, Response | None]:
        """(body, None), or (body, the answer that ends the request): credentials, JSON,
        the rate window, and for writes the script."""
        path = request.url.path
        if request.headers.get("authorization") != f"Bearer {self.token}":
            self.record(request.method, path, 0, 401)
            return None, hubspot_error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        body: Any = None
        if request.method != "GET":
            try:
                body = json.loads(await request.body())
            except ValueError as exc:
                self.record(request.method, path, 0, 400)
                return None, invalid(f"Invalid input JSON on line 1, column 1: {exc}")
        self.seen.append((request.method, path, body))
        items = _count(body) if write else 0
        if (throttled := self._throttle()) is not None:
            self.record(request.method, path, items, 429)
            return body, throttled
        if write and (answer := await self.scripted()) is not None:
            self.record(request.method, path, items, answer.status_code)
            return body, answer
        return body, None

    def _throttle(self) -> Response | None:
        if self.window is None or self.window.admit() is None:
            return None
        self.throttled += 1
        answer = hubspot_error(
            429,
            "RATE_LIMITS",
            "You have reached your ten_secondly_rolling limit.",
            errorType="RATE_LIMIT",
            policyName="TEN_SECONDLY_ROLLING",
            groupName="publicapi:private-app",
        )
        answer.headers.update(
            {
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window.seconds * 1000)),
                "X-HubSpot-RateLimit-Max": str(self.window.requests),
                "X-HubSpot-RateLimit-Remaining": "0",
            }
        )
        return answer

    def _done(self, request: Request, items: int, answer: Response) -> Response:
        self.record(request.method, request.url.path, items, answer.status_code)
        return answer

    # --- contacts ---------------------------------------------------------------------------

    async def upsert(self, request: Request) -> Response:
        body, answer = await self._admit(request, write=True)
        if answer is not None:
            return answer
        items = _count(body)
        try:
            inputs = _inputs(body, {"inputs"}, {"id", "idProperty", "properties",
                                                "objectWriteTraceId"})  # fmt: skip
            checked = [self._check_upsert(item) for item in inputs]
            traced = all("objectWriteTraceId" in item for item in inputs)
            problems = [problem for problem in checked if problem]
            if problems and not traced:
                raise Refusal(invalid(problems[0]))
            emails = [str(item["id"]).lower() for item in inputs]
            if len(set(emails)) < len(emails):
                raise Refusal(invalid(f"Duplicate IDs found in batch input: {sorted(emails)}"))
            if self.poison & set(emails):
                raise Refusal(invalid("Property values were not valid: the request was refused"))
        except Refusal as refusal:
            return self._done(request, items, refusal.answer)
        results, errors = [], []
        for item, email, problem in zip(inputs, emails, checked, strict=True):
            trace = item.get("objectWriteTraceId")
            if email in self.reject:
                problem = f"Property values were not valid: contact {email} was refused"
            if problem:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": problem,
                        "context": {"objectWriteTraceId": [trace]},
                    }
                )
                continue
            contact, new = self._store(email, item["properties"])
            result = {**contact.view(), "new": new}
            if trace is not None:
                result["objectWriteTraceId"] = trace
            results.append(result)
        payload: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            payload |= {"numErrors": len(errors), "errors": errors}
        payload |= {"requestedAt": _now(), "startedAt": _now(), "completedAt": _now()}
        return self._done(request, items, JSONResponse(payload, 207 if errors else 200))

    def _check_upsert(self, item: dict[str, Any]) -> str:
        """Why HubSpot would refuse this input ("" when it would not); shape errors raise."""
        if item.get("idProperty") != "email":
            raise Refusal(invalid(f"Unable to upsert by property {item.get('idProperty')!r}"))
        email, properties = item.get("id"), item.get("properties")
        if not isinstance(email, str) or not isinstance(properties, dict):
            raise Refusal(invalid("Invalid input JSON: id must be a string, properties an object"))
        if not all(isinstance(v, str) for v in properties.values()):
            raise Refusal(invalid("Invalid input JSON: property values must be strings"))
        if not _EMAIL.fullmatch(email):
            return f"Email address {email} is invalid"
        for name, value in properties.items():
            if name in READ_ONLY:
                return f'Property "{name}" is read-only'
            if name not in self.properties:
                detail = {
                    "isValid": False,
                    "message": f'Property "{name}" does not exist',
                    "error": "PROPERTY_DOESNT_EXIST",
                    "name": name,
                }
                return f"Property values were not valid: {json.dumps([detail])}"
            if name == "email" and value.lower() != email.lower():
                return "Property email does not match the id it is upserted by"
        return ""

    def _store(self, email: str, properties: dict[str, str]) -> tuple[Contact, bool]:
        record_id = self.by_email.get(email)
        new = record_id is None
        if record_id is None:
            record_id, self.next_id = str(self.next_id), self.next_id + 1
            now = _now()
            self.contacts[record_id] = Contact(
                record_id, {"email": email, "hs_object_id": record_id, "createdate": now}, now, now
            )
            self.by_email[email] = record_id
        contact = self.contacts[record_id]
        for name, value in properties.items():
            if value == "":
                contact.properties.pop(name, None)
            else:
                contact.properties[name] = value
        contact.updated_at = contact.properties["lastmodifieddate"] = _now()
        return contact, new

    async def read(self, request: Request) -> Response:
        body, answer = await self._admit(request, write=False)
        if answer is not None:
            return answer
        try:
            inputs = _inputs(body, {"inputs", "properties", "propertiesWithHistory", "idProperty"},
                             {"id"})  # fmt: skip
            names = body.get("properties")
            if not isinstance(names, list) or body.get("idProperty") not in (None, "email"):
                raise Refusal(invalid("Invalid input JSON: properties must be a list of names"))
        except Refusal as refusal:
            return self._done(request, 0, refusal.answer)
        by_email = body.get("idProperty") == "email"
        results, missing = [], []
        for item in inputs:
            wanted = str(item.get("id"))
            record_id = self.by_email.get(wanted.lower()) if by_email else wanted
            contact = self.contacts.get(record_id or "")
            if contact is None or contact.archived:
                missing.append(wanted)
            else:
                results.append(contact.view(names))
        payload: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            payload |= {
                "numErrors": 1,
                "errors": [
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": "Could not get some CONTACT objects, they may be deleted or "
                        "not exist. Check that ids are valid.",
                        "context": {"ids": missing},
                    }
                ],
            }
        return self._done(request, 0, JSONResponse(payload, 207 if missing else 200))

    async def archive(self, request: Request) -> Response:
        body, answer = await self._admit(request, write=True)
        if answer is not None:
            return answer
        items = _count(body)
        try:
            ids = [str(item.get("id")) for item in _inputs(body, {"inputs"}, {"id"})]
            self._refuse_poisoned(ids)
        except Refusal as refusal:
            return self._done(request, items, refusal.answer)
        for record_id in ids:
            contact = self.contacts.get(record_id)
            if contact is not None and not contact.archived:
                contact.archived = True
                self.by_email.pop(contact.properties["email"], None)
                self.listed.discard(record_id)
        return self._done(request, items, Response(status_code=204))

    def _refuse_poisoned(self, ids: list[str]) -> None:
        emails = {self.contacts[i].properties["email"] for i in ids if i in self.contacts}
        if self.poison & emails:
            raise Refusal(invalid("The request was refused"))

    # --- the list ---------------------------------------------------------------------------

    def _the_list(self, request: Request) -> None:
        list_id = request.path_params["list_id"]
        if list_id != self.list_id:
            raise Refusal(
                hubspot_error(404, "OBJECT_NOT_FOUND", f"List does not exist with ID {list_id}.")
            )

    async def get_list(self, request: Request) -> Response:
        _, answer = await self._admit(request, write=False)
        if answer is not None:
            return answer
        try:
            self._the_list(request)
        except Refusal as refusal:
            return self._done(request, 0, refusal.answer)
        listing = {
            "listId": self.list_id,
            "name": "Signalsmith audience",
            "objectTypeId": "0-1",
            "processingType": self.processing_type,
            "processingStatus": "COMPLETE",
            "listVersion": 1,
            "size": len(self.listed),
        }
        return self._done(request, 0, JSONResponse({"list": listing}))

    async def add_members(self, request: Request) -> Response:
        return await self._membership(request, add=True)

    async def remove_members(self, request: Request) -> Response:
        return await self._membership(request, add=False)

    async def _membership(self, request: Request, *, add: bool) -> Response:
        body, answer = await self._admit(request, write=True)
        if answer is not None:
            return answer
        items = _count(body)
        try:
            self._the_list(request)
            if not isinstance(body, list) or not body:
                raise Refusal(invalid("Invalid input JSON: expected a non-empty array of ids"))
            if not all(isinstance(i, str) and _RECORD_ID.fullmatch(i) for i in body):
                raise Refusal(invalid("Invalid input JSON: record ids must be numeric strings"))
            if self.processing_type not in ("MANUAL", "SNAPSHOT"):
                raise Refusal(
                    invalid(
                        f"List {self.list_id} has processingType {self.processing_type}: "
                        "memberships can only be managed for MANUAL or SNAPSHOT lists"
                    )
                )
            self._refuse_poisoned(body)
        except Refusal as refusal:
            return self._done(request, items, refusal.answer)
        present = {i for i in body if i in self.contacts and not self.contacts[i].archived}
        changed = sorted(present - self.listed if add else present & self.listed)
        if add:
            self.listed |= present
        else:
            self.listed -= present
        payload = {
            "recordIdsMissing": sorted(set(body) - present),
            "recordsIdsAdded": changed if add else [],
            "recordIdsRemoved": [] if add else changed,
        }
        return self._done(request, items, JSONResponse(payload))


def _count(body: Any) -> int:
    if isinstance(body, list):
        return len(body)
    inputs = body.get("inputs") if isinstance(body, dict) else None
    return len(inputs) if isinstance(inputs, list) else 0


def _inputs(body: Any, allowed: set[str], input_fields: set[str]) -> list[dict[str, Any]]:
    """The body's `inputs`, checked: known fields only, 1 to 100 objects."""
    if not isinstance(body, dict) or "inputs" not in body or set(body) - allowed:
        unknown = sorted(set(body) - allowed) if isinstance(body, dict) else []
        raise Refusal(invalid(f"Invalid input JSON: unrecognized or missing fields {unknown}"))
    inputs = body["inputs"]
    if not isinstance(inputs, list) or not inputs:
        raise Refusal(invalid("Invalid input JSON: inputs must be a non-empty array"))
    if len(inputs) > MAX_INPUTS:
        raise Refusal(
            invalid(f"Batch input limit exceeded: {len(inputs)} inputs, at most {MAX_INPUTS}")
        )
    for item in inputs:
        if not isinstance(item, dict) or set(item) - input_fields or "id" not in item:
            raise Refusal(invalid(f"Invalid input JSON: unrecognized field in input {item!r}"))
    return inputs
