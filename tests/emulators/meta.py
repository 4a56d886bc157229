"""The Meta Marketing API's Custom Audience users edge, as documented: `POST` (add) and `DELETE`
(remove) on `/{version}/{custom_audience_id}/users`, and reading the audience.

It checks the access token the way the Graph API does (an error object in a 400: code 190 for
a token it cannot use, 2500 for none), the audience id (code 100, subcode 33), and the exact
body: `payload` with a multi-key `schema` and `data` rows as long as the schema, at most 10 000
rows (code 100 beyond), and `session` with `session_id`, `batch_seq`, `last_batch_flag`
(`estimated_num_total` optional). Unknown parameters are refused (code 100).

Rows are refused one by one inside a 200, as Meta reports them: `num_invalid_entries` and
`invalid_entry_samples`, a map from the refused entry (its first value as sent) to the reason.
Malformed hashes count there, and so do the people in `reject`. `poison` refuses the request
whole with code 100 ("Invalid parameter"). Meta documents no fixed rate for the edge; when a
test sets `window`, the emulator throttles as Meta does: code 80003 in a 400, with
`X-Business-Use-Case-Usage` saying when access returns (minutes), never `Retry-After`.

Docs: https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users
https://developers.facebook.com/docs/marketing-api/overview/rate-limiting
https://developers.facebook.com/docs/graph-api/guides/error-handling
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.base import EmulatorBase

MAX_USERS = 10_000
#: Multi-key schema keys; every one but EXTERN_ID is sent hashed.
KEYS = {
    "EXTERN_ID",
    "EMAIL",
    "PHONE",
    "GEN",
    "DOBY",
    "DOBM",
    "DOBD",
    "LN",
    "FN",
    "FI",
    "CT",
    "ST",
    "ZIP",
    "MADID",
    "COUNTRY",
    "LOOKALIKE_VALUE",
}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"v\d+\.\d+")


class Refusal(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    status: int = 400,
    kind: str = "OAuthException",
    transient: bool = False,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": "AEmulatorTrace",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient:
        error["is_transient"] = True
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def invalid_parameter(message: str, subcode: int | None = None) -> Refusal:
    return Refusal(graph_error(100, f"(#100) {message}", subcode=subcode))


@dataclass
class MetaEmulator(EmulatorBase):
    #: Short on purpose: the contract suite treats any config value of 8+ characters as a
    #: credential, and the audience id is in every URL (real ids are ~17 digits).
    audience_id: str = "2385001"
    #: The audience: identity (EMAIL hash, else PHONE hash) → the keys it holds.
    held: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Every users-edge body that passed authentication, with its method (for tests).
    bodies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{version}/{audience_id}/users", self.users, methods=["POST", "DELETE"]),
                Route("/{version}/{audience_id}", self.audience, methods=["GET"]),
            ]
        )

    def members(self) -> dict[str, dict[str, Any]]:
        return dict(self.held)

    @property
    def sessions(self) -> list[dict[str, Any]]:
        return [body["session"] for _, body in self.bodies if "session" in body]

    # --- routes ------------------------------------------------------------------------------

    async def audience(self, request: Request) -> Response:
        path = request.url.path
        try:
            self._authenticate(request, {})
            self._target(request, "get")
        except Refusal as refusal:
            self.record("GET", path, 0, refusal.response.status_code)
            return refusal.response
        self.record("GET", path, 0, 200)
        return JSONResponse({"id": self.audience_id, "name": "Signalsmith audience"})

    async def users(self, request: Request) -> Response:
        path, method = request.url.path, request.method
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        count = _count(body)
        try:
            self._authenticate(request, body if isinstance(body, dict) else {})
            self._target(request, method.lower())
            self.bodies.append((method, body))
            schema, rows = self._validate(body)
        except Refusal as refusal:
            self.record(method, path, count, refusal.response.status_code)
            return refusal.response
        answer = self._throttle() or await self.scripted()
        if answer is not None:
            self.record(method, path, count, answer.status_code)
            return answer
        people = [dict(zip(schema, row, strict=True)) for row in rows]
        if self.poison & {identity(p) for p in people}:
            self.record(method, path, count, 400)
            return graph_error(100, "Invalid parameter")
        samples: dict[str, str] = {}
        for person, row in zip(people, rows, strict=True):
            problem = _problem(person)
            if problem is None and identity(person) in self.reject:
                problem = "The entry was refused"
            if problem is not None:
                samples[next((v for v in row if v), "")] = problem
            elif method == "DELETE":
                self._forget(person)
            else:
                self.held[identity(person)] = {k: v for k, v in person.items() if v}
        self.record(method, path, count, 200)
        session = body.get("session") or {}
        return JSONResponse(
            {
                "audience_id": self.audience_id,
                "session_id": str(session.get("session_id", 0)),
                "num_received": len(rows),
                "num_invalid_entries": len(samples),
                "invalid_entry_samples": samples,
            }
        )

    # --- checks ------------------------------------------------------------------------------

    def _authenticate(self, request: Request, body: dict[str, Any]) -> None:
        self.headers.append(dict(request.headers))
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        token = (
            credential
            if scheme.lower() in ("bearer", "oauth")
            else request.query_params.get("access_token") or body.get("access_token")
        )
        if not token:
            text = "An active access token must be used to query information about the user."
            raise Refusal(graph_error(2500, text))
        if token != self.token:
            raise Refusal(
                graph_error(190, "Invalid OAuth access token - Cannot parse access token")
            )

    def _target(self, request: Request, verb: str) -> None:
        version, audience = request.path_params["version"], request.path_params["audience_id"]
        if not _VERSION.fullmatch(version):
            raise Refusal(graph_error(2500, "Unknown path components", kind="OAuthException"))
        if audience != self.audience_id:
            raise Refusal(
                graph_error(
                    100,
                    f"Unsupported {verb} request. Object with ID '{audience}' does not exist, "
                    "cannot be loaded due to missing permissions, or does not support this "
                    "operation.",
                    subcode=33,
                    kind="GraphMethodException",
                )
            )

    def _validate(self, body: Any) -> tuple[list[str], list[list[str]]]:
        if not isinstance(body, dict):
            raise invalid_parameter("The parameter payload is required")
        for name in body:
            if name not in ("payload", "session", "namespace", "access_token"):
                raise invalid_parameter(f"Param {name} is not a valid parameter")
        payload = body.get("payload")
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError:
                raise invalid_parameter("Param payload must be a JSON object") from None
        if not isinstance(payload, dict):
            raise invalid_parameter("The parameter payload is required")
        for name in payload:
            if name not in ("schema", "data", "app_ids", "page_ids", "is_raw", "data_source"):
                raise invalid_parameter(f"Param payload[{name}] is not a valid parameter")
        schema = payload.get("schema")
        if isinstance(schema, str):
            schema = [schema]
        if (
            not isinstance(schema, list)
            or not schema
            or any(key not in KEYS for key in schema)
            or len(set(schema)) != len(schema)
        ):
            raise invalid_parameter("Invalid schema", subcode=1870053)
        data = payload.get("data")
        if not isinstance(data, list) or not data:
            raise invalid_parameter("The parameter payload[data] is required")
        if len(data) > MAX_USERS:
            raise invalid_parameter(
                f"The number of users per request must be at most {MAX_USERS}", subcode=1870056
            )
        rows = [row if isinstance(row, list) else [row] for row in data]
        for row in rows:
            if len(row) != len(schema) or not all(isinstance(v, str) for v in row):
                raise invalid_parameter(
                    "Each data row must have one string per schema key", subcode=1870058
                )
        if "session" in body:
            self._session(body["session"])
        return schema, rows

    def _session(self, session: Any) -> None:
        if not isinstance(session, dict):
            raise invalid_parameter("Param session must be an object")
        for name in session:
            if name not in ("session_id", "batch_seq", "last_batch_flag", "estimated_num_total"):
                raise invalid_parameter(f"Param session[{name}] is not a valid parameter")
        for name, check in (
            ("session_id", lambda v: type(v) is int and v > 0),
            ("batch_seq", lambda v: type(v) is int and v >= 1),
            ("last_batch_flag", lambda v: isinstance(v, bool)),
        ):
            if name not in session or not check(session[name]):
                raise invalid_parameter(f"Param session[{name}] is required and must be valid")
        total = session.get("estimated_num_total")
        if total is not None and (type(total) is not int or total < 0):
            raise invalid_parameter("Param session[estimated_num_total] must be an integer")

    def _throttle(self) -> Response | None:
        if self.window is None:
            return None
        wait = self.window.admit()
        if wait is None:
            return None
        self.throttled += 1
        usage = {
            self.audience_id: [
                {
                    "type": "custom_audience",
                    "call_count": 100,
                    "total_cputime": 10,
                    "total_time": 10,
                    "estimated_time_to_regain_access": round(wait / 60),
                }
            ]
        }
        return graph_error(
            80003,
            "There have been too many calls to this ad-account. Wait a bit and try again.",
            subcode=2446079,
            transient=True,
            headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
        )

    def _forget(self, person: dict[str, str]) -> None:
        for who, held in list(self.held.items()):
            if any(person.get(k) and held.get(k) == person[k] for k in ("EMAIL", "PHONE")):
                del self.held[who]


def _count(body: Any) -> int:
    payload = body.get("payload") if isinstance(body, dict) else None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return 0
    data = payload.get("data") if isinstance(payload, dict) else None
    return len(data) if isinstance(data, list) else 0


def _problem(person: dict[str, str]) -> str | None:
    """Why Meta could not use this entry (a malformed hash, nothing to match on), if so."""
    if not any(person.values()):
        return "The entry is empty"
    for key, value in person.items():
        if value and key not in ("EXTERN_ID", "LOOKALIKE_VALUE") and not _HEX64.fullmatch(value):
            return f"Invalid {key}: not a lower-case SHA-256 hash"
    return None


def identity(person: dict[str, str]) -> str:
    """The emulator's name for a person: the EMAIL hash, else PHONE, else all keys together."""
    for key in ("EMAIL", "PHONE"):
        if person.get(key):
            return person[key]
    return hashlib.sha256(json.dumps(person, sort_keys=True).encode()).hexdigest()
