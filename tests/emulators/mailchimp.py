"""Mailchimp's Marketing API (3.0) as its public reference describes it: one audience (list)
read, its batch subscribe-or-unsubscribe call, and archiving a member; HTTP basic
authentication with any user name and the API key; errors as problem documents
(`{type, title, status, detail, instance}`, `application/problem+json`).

Strict where Mailchimp is: unknown members of a body or query, more than 500 members, a member
without `email_address` or with an unknown `status`, the same address twice (without
`skip_duplicate_check`) are refused whole (400, "Invalid Resource" with `errors[]`). Inside a
200 answer, `errors[]` names the members Mailchimp would not take (an address that looks fake,
a merge tag the audience does not define, a required merge field left out, an existing member
without `update_existing`, the people in `reject`). Mailchimp documents no request quota, only
10 simultaneous connections per account: one more is answered 429 without `Retry-After`. People
are known by their lower-cased email; archived and unsubscribed members are not in the audience.

https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/
https://mailchimp.com/developer/marketing/api/list-members/archive-list-member/
https://mailchimp.com/developer/marketing/docs/fundamentals/
https://mailchimp.com/developer/marketing/docs/errors/
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.base import EmulatorBase

MAX_MEMBERS = 500
MAX_CONNECTIONS = 10
MEMBER_FIELDS = frozenset(
    {
        "email_address", "email_type", "status", "merge_fields", "interests", "language", "vip",
        "location", "ip_signup", "timestamp_signup", "ip_opt", "timestamp_opt",
    }
)  # fmt: skip
STATUSES = frozenset({"subscribed", "unsubscribed", "cleaned", "pending", "transactional"})
#: Statuses of members who are not (or no longer) in the audience.
OUTSIDE = frozenset({"unsubscribed", "cleaned", "archived"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": ERRORS_DOC, "title": title, "status": status, "detail": detail}
    body |= {"instance": str(uuid.uuid4()), **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def invalid_resource(field_name: str, message: str) -> JSONResponse:
    return problem(
        400,
        "Invalid Resource",
        "The resource submitted could not be validated. For field-specific details, see the "
        "'errors' array.",
        errors=[{"field": field_name, "message": message}],
    )


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


class Refusal(Exception):
    """A request Mailchimp refuses whole; carries the answer."""

    def __init__(self, answer: Response) -> None:
        self.answer = answer


@dataclass
class Member:
    email_address: str
    status: str
    merge_fields: dict[str, Any]

    def view(self, list_id: str) -> dict[str, Any]:
        return {
            "id": subscriber_hash(self.email_address),
            "email_address": self.email_address,
            "unique_email_id": subscriber_hash(self.email_address)[:10],
            "email_type": "html",
            "status": self.status,
            "merge_fields": dict(self.merge_fields),
            "list_id": list_id,
        }


@dataclass
class MailchimpEmulator(EmulatorBase):
    token: str = "0123456789abcdef0123456789abcdef-us21"
    list_id: str = "a1b2c3d4e5"
    #: The audience's merge fields (tag → required).
    merge_fields: dict[str, bool] = field(
        default_factory=lambda: {
            "FNAME": False, "LNAME": False, "ADDRESS": False, "PHONE": False,
            "BIRTHDAY": False, "PLAN": False,
        }
    )  # fmt: skip
    #: Members by subscriber hash (archived ones keep their entry, status `archived`).
    contacts: dict[str, Member] = field(default_factory=dict)
    max_connections: int = MAX_CONNECTIONS
    in_flight: int = 0
    #: The most requests this emulator ever served at once.
    peak_in_flight: int = 0
    #: (method, path, query, headers, body) of every authenticated request.
    seen: list[tuple[str, str, dict[str, str], dict[str, str], Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        base = "/3.0/lists/{list_id}"
        return Starlette(
            routes=[
                Route(base, self.get_list, methods=["GET"]),
                Route(base, self.batch, methods=["POST"]),
                Route(f"{base}/members/{{subscriber_hash}}", self.archive, methods=["DELETE"]),
            ]
        )

    def members(self) -> dict[str, dict[str, Any]]:
        return {
            m.email_address.lower(): {"status": m.status, **m.merge_fields}
            for m in self.contacts.values()
            if m.status not in OUTSIDE
        }

    # --- what every route does first ------------------------------------------------------

    def _authenticated(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            _, _, key = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return key == self.token

    async def _serve(self, request: Request, handle: Any, *, write: bool) -> Response:
        """Counts the connection, checks the credentials, the list, the body, the script,
        then lets `handle(request, body)` answer."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        items = 0
        try:
            if self.in_flight > self.max_connections:
                self.throttled += 1
                raise Refusal(
                    problem(
                        429,
                        "Too Many Requests",
                        f"You have exceeded the limit of {self.max_connections} simultaneous "
                        "connections.",
                    )
                )
            if not self._authenticated(request):
                raise Refusal(
                    problem(
                        401,
                        "API Key Invalid",
                        "Your API key may be invalid, or you've attempted to access the wrong "
                        "datacenter.",
                    )
                )
            if request.path_params["list_id"] != self.list_id:
                raise Refusal(
                    problem(404, "Resource Not Found", "The requested resource could not be found.")
                )
            body: Any = None
            if request.method == "POST":
                try:
                    body = json.loads(await request.body())
                except ValueError:
                    raise Refusal(
                        problem(
                            400,
                            "JSON Schema Validation Failed",
                            "We encountered an unspecified JSON parsing error.",
                        )
                    ) from None
            self.seen.append(
                (
                    request.method,
                    request.url.path,
                    dict(request.query_params),
                    dict(request.headers),
                    body,
                )
            )
            items = _count(request, body) if write else 0
            if write and (answer := await self.scripted()) is not None:
                raise Refusal(answer)
            response: Response = await handle(request, body)
        except Refusal as refusal:
            response = refusal.answer
        finally:
            self.in_flight -= 1
        self.record(request.method, request.url.path, items, response.status_code)
        return response

    # --- routes -----------------------------------------------------------------------------

    async def get_list(self, request: Request) -> Response:
        return await self._serve(request, self._list_info, write=False)

    async def _list_info(self, request: Request, _: Any) -> Response:
        allowed = {"fields", "exclude_fields", "include_total_contacts"}
        if set(request.query_params) - allowed:
            raise Refusal(invalid_resource("query", "unknown query parameter"))
        inside = [m for m in self.contacts.values() if m.status not in OUTSIDE]
        return JSONResponse(
            {
                "id": self.list_id,
                "name": "Signalsmith audience",
                "stats": {"member_count": len(inside)},
            }
        )

    async def batch(self, request: Request) -> Response:
        return await self._serve(request, self._batch, write=True)

    async def _batch(self, request: Request, body: Any) -> Response:
        query = request.query_params
        if set(query) - {"skip_merge_validation", "skip_duplicate_check"}:
            raise Refusal(invalid_resource("query", "unknown query parameter"))
        skip_merge = query.get("skip_merge_validation") == "true"
        skip_duplicates = query.get("skip_duplicate_check") == "true"
        if not isinstance(body, dict) or "members" not in body:
            raise Refusal(invalid_resource("members", "Required property missing"))
        unknown = set(body) - {"members", "update_existing", "sync_tags"}
        if unknown:
            raise Refusal(invalid_resource(sorted(unknown)[0], "Unknown property"))
        members = body["members"]
        if not isinstance(members, list) or not members:
            raise Refusal(invalid_resource("members", "Schema describes array, NULL found"))
        if len(members) > MAX_MEMBERS:
            raise Refusal(
                invalid_resource("members", f"Array must have at most {MAX_MEMBERS} items")
            )
        update_existing = body.get("update_existing", False)
        if not isinstance(update_existing, bool):
            raise Refusal(invalid_resource("update_existing", "Schema describes boolean"))
        seen: set[str] = set()
        for index, member in enumerate(members):
            where = f"members.item:{index}"
            if not isinstance(member, dict) or set(member) - MEMBER_FIELDS:
                raise Refusal(invalid_resource(where, "Unknown property"))
            if not isinstance(member.get("email_address"), str):
                raise Refusal(invalid_resource(f"{where}.email_address", "Required property"))
            if member.get("status") not in STATUSES:
                raise Refusal(
                    invalid_resource(f"{where}.status", "Value is not one of the enum values")
                )
            merge = member.get("merge_fields", {})
            if not isinstance(merge, dict):
                raise Refusal(invalid_resource(f"{where}.merge_fields", "Schema describes object"))
            email = member["email_address"].lower()
            if email in seen and not skip_duplicates:
                raise Refusal(invalid_resource(where, f"{email} is in this request more than once"))
            seen.add(email)
        if self.poison & seen:
            raise Refusal(invalid_resource("members", "The request was refused"))
        created, updated, errors = [], [], []
        for member in members:
            email = member["email_address"]
            error = self._error(member, update_existing, skip_merge)
            if error is not None:
                errors.append({"email_address": email, **error})
                continue
            current = self.contacts.get(subscriber_hash(email))
            if current is None or current.status == "archived":
                stored = Member(email, member["status"], dict(member.get("merge_fields", {})))
                self.contacts[subscriber_hash(email)] = stored
                created.append(stored.view(self.list_id))
            else:
                current.status = member["status"]
                current.merge_fields.update(member.get("merge_fields", {}))
                updated.append(current.view(self.list_id))
        return JSONResponse(
            {
                "new_members": created,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(created),
                "total_updated": len(updated),
                "error_count": len(errors),
                "_links": [],
            }
        )

    def _error(
        self, member: dict[str, Any], update_existing: bool, skip_merge: bool
    ) -> dict[str, Any] | None:
        """Why Mailchimp would not take this member (as an `errors[]` entry), or None."""
        email = member["email_address"]
        generic = {"error_code": "ERROR_GENERIC", "field": "", "field_message": ""}
        if not _EMAIL.fullmatch(email):
            return generic | {
                "error": f"{email} looks fake or invalid, please enter a real email address.",
                "field": "email_address",
                "field_message": "Please provide a valid email address.",
            }
        if email.lower() in self.reject:
            return generic | {
                "error": f"{email} has signed up to a lot of lists very recently; we're not "
                "allowing more signups for now",
            }
        current = self.contacts.get(subscriber_hash(email))
        if current is not None and current.status != "archived" and not update_existing:
            return {
                "error": f"{email} is already a list member, do you want to update? please "
                "provide update_existing:true in the request body",
                "error_code": "ERROR_CONTACT_EXISTS",
                "field": "",
                "field_message": "",
            }
        merge = member.get("merge_fields", {})
        for tag in merge:
            if tag not in self.merge_fields:
                return generic | {
                    "error": "Your merge fields were invalid.",
                    "field": tag,
                    "field_message": "This merge field does not exist in the audience",
                }
            if not isinstance(merge[tag], str | int | float):
                return generic | {
                    "error": "Your merge fields were invalid.",
                    "field": tag,
                    "field_message": "Please enter a value",
                }
        if member["status"] != "unsubscribed" and not skip_merge:
            known = current.merge_fields if current is not None else {}
            for tag, required in self.merge_fields.items():
                if required and not (merge.get(tag) or known.get(tag)):
                    return generic | {
                        "error": "Your merge fields were invalid.",
                        "field": tag,
                        "field_message": "Please enter a value",
                    }
        return None

    async def archive(self, request: Request) -> Response:
        return await self._serve(request, self._archive, write=True)

    async def _archive(self, request: Request, _: Any) -> Response:
        member = self.contacts.get(request.path_params["subscriber_hash"])
        if member is None or member.status == "archived":
            raise Refusal(
                problem(404, "Resource Not Found", "The requested resource could not be found.")
            )
        if member.email_address.lower() in self.poison:
            raise Refusal(problem(405, "Method Not Allowed", "This list member cannot be removed."))
        member.status = "archived"
        return Response(status_code=204)


def _count(request: Request, body: Any) -> int:
    if request.method == "DELETE":
        return 1
    members = body.get("members") if isinstance(body, dict) else None
    return len(members) if isinstance(members, list) else 0
