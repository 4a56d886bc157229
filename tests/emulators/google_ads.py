"""The Google Data Manager API as documented for Customer Match: `audienceMembers:ingest`,
`audienceMembers:remove` and reading a user list.

It checks the OAuth bearer token (401 `UNAUTHENTICATED`), the account the destination names
(403 `PERMISSION_DENIED`) and the list id, and the exact request shape: unknown fields, missing
required ones, enum values, HEX-encoded SHA-256 identifiers, complete addresses, at most 10
identifiers a member, 10 destinations and 10 000 members a request; ingesting requires the
Customer Match terms to be accepted (in the request, or already on the account). Errors are
Google's: `{"error": {"code", "message", "status", "details": [ErrorInfo, BadRequest]}}`.

The API fails fast: a request with an invalid member is refused whole with 400
`INVALID_ARGUMENT`, its `BadRequest.fieldViolations` naming the member
(`audience_members.audience_members[i]`), and nothing in it is applied. So `reject` answers
that way (the vendor's per-member error format), and `poison` with a 400 naming no member.
Access tokens come from `/token`, Google's OAuth 2.0 token endpoint (refresh-token grant):
each lives `token_lifetime` seconds, a revoked refresh token is `invalid_grant`.
The documented quota, 300 requests a minute a project, answers 429 `RESOURCE_EXHAUSTED`
(without `Retry-After`, as Google sends it).

Docs: https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers/ingest
https://developers.google.com/data-manager/api/devguides/concepts/understand-errors
https://developers.google.com/data-manager/api/devguides/limits
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.base import EmulatorBase, RateWindow

MAX_MEMBERS = 10_000
MAX_IDENTIFIERS = 10
MAX_DESTINATIONS = 10
ACCOUNT_TYPES = {"GOOGLE_ADS", "DISPLAY_VIDEO_PARTNER", "DISPLAY_VIDEO_ADVERTISER", "DATA_PARTNER"}
CONSENT = {"CONSENT_STATUS_UNSPECIFIED", "CONSENT_GRANTED", "CONSENT_DENIED"}
TERMS = {"TERMS_OF_SERVICE_STATUS_UNSPECIFIED", "ACCEPTED", "REJECTED"}
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_PROBLEM = "There was a problem with the request."
FORM = "application/x-www-form-urlencoded"


class Refusal(Exception):
    """A request the API refuses; carries the answer."""

    def __init__(self, response: Response) -> None:
        self.response = response


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """An OAuth 2.0 token endpoint's error (RFC 6749 §5.2)."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def google_error(
    status: int,
    code: str,
    message: str,
    *,
    reason: str | None = None,
    violations: list[dict[str, str]] | None = None,
    metadata: dict[str, str] | None = None,
    domain: str = "datamanager.googleapis.com",
) -> JSONResponse:
    info: dict[str, Any] = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason or code,
        "domain": domain,
    }
    if metadata:
        info["metadata"] = metadata
    details: list[dict[str, Any]] = [info]
    if violations:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}
        )
    body = {"error": {"code": status, "message": message, "status": code, "details": details}}
    return JSONResponse(body, status_code=status)


def invalid(field_path: str, reason: str, description: str) -> Refusal:
    return Refusal(
        google_error(
            400,
            "INVALID_ARGUMENT",
            _PROBLEM,
            reason="INVALID_ARGUMENT",
            violations=[{"field": field_path, "description": description, "reason": reason}],
        )
    )


def unknown_name(name: str, where: str = "") -> Refusal:
    at = f" at '{where}'" if where else ""
    text = f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    return Refusal(
        google_error(
            400,
            "INVALID_ARGUMENT",
            text,
            reason="INVALID_ARGUMENT",
            violations=[{"field": where or name, "description": text}],
        )
    )


def _only(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise invalid(where, "INVALID_FORMAT", f"{where or 'body'} must be an object")
    for key in obj:
        if key not in allowed:
            raise unknown_name(key, where)
    return obj


@dataclass
class GoogleAdsEmulator(EmulatorBase):
    operating_account: str = "1234567890"
    user_list: str = "5550001"
    #: Manager accounts with write access to the operating account.
    login_accounts: set[str] = field(default_factory=lambda: {"9990001111"})
    #: The account already accepted the Customer Match terms (in the Google Ads UI).
    terms_accepted: bool = False
    window: RateWindow | None = field(default_factory=lambda: RateWindow(300, 60.0))
    #: The user list: identity → the identifiers it holds for that person.
    held: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every write request body that passed authentication, in order (for tests).
    bodies: list[dict[str, Any]] = field(default_factory=list)
    #: Headers of every request (for tests).
    headers: list[dict[str, str]] = field(default_factory=list)
    #: The OAuth client and the refresh token its token endpoint (`/token`) honours.
    client_id: str = "signalsmith-emulator.apps.googleusercontent.com"
    client_secret: str = "GOCSPX-emulator-client-secret"
    refresh_token: str = "1//0emulator-refresh-token"
    #: Seconds an access token from the refresh token lives (Google's: 3599).
    token_lifetime: int = 3599
    #: The refresh token was revoked (by the user, or after six months unused).
    revoked: bool = False
    #: Access tokens issued from the refresh token, each with when it expires (monotonic).
    issued: dict[str, float] = field(default_factory=dict)
    #: The form of every token request, in order (for tests).
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/audienceMembers:ingest", self.ingest, methods=["POST"]),
                Route("/v1/audienceMembers:remove", self.remove, methods=["POST"]),
                Route(
                    "/v1/accountTypes/{account_type}/accounts/{account}/userLists/{user_list}",
                    self.user_list_get,
                    methods=["GET"],
                ),
                Route("/token", self.token_endpoint, methods=["POST"]),
            ]
        )

    def members(self) -> dict[str, dict[str, Any]]:
        return dict(self.held)

    # --- routes ----------------------------------------------------------------------------

    async def user_list_get(self, request: Request) -> Response:
        path = request.url.path
        denied = self._authenticate(request)
        if denied is not None:
            self.record("GET", path, 0, denied.status_code)
            return denied
        params = request.path_params
        if params["account_type"] != "GOOGLE_ADS" or params["account"] != self.operating_account:
            self.record("GET", path, 0, 403)
            return google_error(403, "PERMISSION_DENIED", "The caller does not have permission")
        if params["user_list"] != self.user_list:
            self.record("GET", path, 0, 404)
            return google_error(404, "NOT_FOUND", "Requested entity was not found.")
        self.record("GET", path, 0, 200)
        name = (
            f"accountTypes/GOOGLE_ADS/accounts/{self.operating_account}/userLists/{self.user_list}"
        )
        return JSONResponse(
            {"name": name, "id": self.user_list, "displayName": "Signalsmith audience"}
        )

    async def ingest(self, request: Request) -> Response:
        return await self._write(request, remove=False)

    async def remove(self, request: Request) -> Response:
        return await self._write(request, remove=True)

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now (as after an hour)."""
        self.issued = dict.fromkeys(self.issued, 0.0)

    async def token_endpoint(self, request: Request) -> Response:
        """Google's OAuth 2.0 token endpoint, refresh-token grant only: a form in, a token
        out; RFC 6749 §5.2 errors as Google words them."""
        if request.headers.get("content-type", "").split(";")[0] != FORM:
            return oauth_error(400, "invalid_request", "Invalid content type.")
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        self.token_requests.append(form)
        if form.get("grant_type") != "refresh_token":
            return oauth_error(400, "unsupported_grant_type", "Invalid grant_type.")
        if form.get("client_id") != self.client_id:
            return oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if form.get("client_secret") != self.client_secret:
            return oauth_error(401, "invalid_client", "Unauthorized")
        if form.get("refresh_token") != self.refresh_token or self.revoked:
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        token = f"ya29.emulated-{len(self.issued) + 1}-{secrets.token_hex(8)}"
        self.issued[token] = time.monotonic() + self.token_lifetime
        return JSONResponse(
            {
                "access_token": token,
                "expires_in": self.token_lifetime,
                "scope": "https://www.googleapis.com/auth/datamanager",
                "token_type": "Bearer",
            }
        )

    # --- the write path ----------------------------------------------------------------------

    async def _write(self, request: Request, *, remove: bool) -> Response:
        path = request.url.path
        denied = self._authenticate(request)
        if denied is not None:
            self.record("POST", path, 0, denied.status_code)
            return denied
        try:
            body = json.loads(await request.body())
        except ValueError:
            self.record("POST", path, 0, 400)
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        self.bodies.append(body)
        count = len(body.get("audienceMembers") or []) if isinstance(body, dict) else 0
        try:
            members = self._validate(body, remove=remove)
        except Refusal as refusal:
            self.record("POST", path, count, refusal.response.status_code)
            return refusal.response
        answer = self._throttle() or await self.scripted()
        if answer is not None:
            self.record("POST", path, count, answer.status_code)
            return answer
        identities = [identity(m) for m in members]
        if self.poison & set(identities):
            self.record("POST", path, count, 400)
            return google_error(400, "INVALID_ARGUMENT", _PROBLEM, reason="INVALID_AUDIENCE_MEMBER")
        refused = [
            {
                "field": f"audience_members.audience_members[{i}]",
                "description": "This audience member is not valid.",
                "reason": "INVALID_AUDIENCE_MEMBER",
            }
            for i, who in enumerate(identities)
            if who in self.reject
        ]
        if refused:
            self.record("POST", path, count, 400)
            return google_error(
                400, "INVALID_ARGUMENT", _PROBLEM, reason="INVALID_ARGUMENT", violations=refused
            )
        if not body.get("validateOnly"):
            for who, member in zip(identities, members, strict=True):
                if remove:
                    self._forget(member)
                else:
                    self.held[who] = member
        self.record("POST", path, count, 200)
        return JSONResponse({"requestId": hashlib.sha256(json.dumps(body).encode()).hexdigest()})

    def _authenticate(self, request: Request) -> Response | None:
        self.headers.append(dict(request.headers))
        given = request.headers.get("authorization", "")
        if given == f"Bearer {self.token}":
            return None
        expires = self.issued.get(given.removeprefix("Bearer "))
        if expires is not None and time.monotonic() < expires:
            return None
        if expires is not None:
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                reason="ACCESS_TOKEN_EXPIRED",
                domain="googleapis.com",
            )
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            reason="ACCESS_TOKEN_TYPE_UNSUPPORTED"
            if request.headers.get("authorization")
            else "CREDENTIALS_MISSING",
            domain="googleapis.com",
        )

    def _throttle(self) -> Response | None:
        if self.window is None or self.window.admit() is None:
            return None
        self.throttled += 1
        return google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Ingestion mutate requests' and limit "
            "'Ingestion mutate requests per minute per project' of service "
            "'datamanager.googleapis.com'.",
            reason="RATE_LIMIT_EXCEEDED",
            domain="googleapis.com",
            metadata={
                "quota_limit": "IngestionMutateRequestsPerMinutePerProject",
                "service": "datamanager.googleapis.com",
            },
        )

    def _forget(self, member: dict[str, Any]) -> None:
        values = {json.dumps(v, sort_keys=True) for v in member.values()}
        for who, held in list(self.held.items()):
            if values & {json.dumps(v, sort_keys=True) for v in held.values()}:
                del self.held[who]

    # --- shape -------------------------------------------------------------------------------

    def _validate(self, body: Any, *, remove: bool) -> list[dict[str, Any]]:
        allowed = {"destinations", "audienceMembers", "validateOnly", "encoding", "encryptionInfo"}
        if not remove:
            allowed |= {"consent", "termsOfService"}
        body = _only(body, allowed, "")
        self._destinations(body.get("destinations"))
        raw = body.get("audienceMembers")
        if not isinstance(raw, list) or not raw:
            raise invalid(
                "audience_members", "REQUIRED_FIELD_MISSING", "Required field is missing."
            )
        if len(raw) > MAX_MEMBERS:
            raise Refusal(
                google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "Maximum number of audience members allowed per request is 10,000.",
                    reason="TOO_MANY_AUDIENCE_MEMBERS",
                )
            )
        if body.get("encoding") not in ("HEX", "BASE64"):
            raise invalid("encoding", "INVALID_ENUM_VALUE", "encoding must be HEX or BASE64")
        if "validateOnly" in body and not isinstance(body["validateOnly"], bool):
            raise invalid("validate_only", "INVALID_FORMAT", "validateOnly must be a boolean")
        if "consent" in body:
            self._consent(body["consent"], "consent")
        if not remove:
            self._terms(body.get("termsOfService"))
        return [self._member(member, i) for i, member in enumerate(raw)]

    def _destinations(self, destinations: Any) -> None:
        if not isinstance(destinations, list) or not destinations:
            raise invalid("destinations", "REQUIRED_FIELD_MISSING", "Required field is missing.")
        if len(destinations) > MAX_DESTINATIONS:
            raise Refusal(
                google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "Maximum number of destinations allowed per request is 10.",
                    reason="TOO_MANY_DESTINATIONS",
                )
            )
        keys = {
            "reference",
            "loginAccount",
            "linkedAccount",
            "operatingAccount",
            "productDestinationId",
        }
        for i, destination in enumerate(destinations):
            where = f"destinations[{i}]"
            destination = _only(destination, keys, where)
            for name in ("operatingAccount", "productDestinationId"):
                if not destination.get(name):
                    raise invalid(f"{where}.{name}", "REQUIRED_FIELD_MISSING", "Required field.")
            operating = self._account(destination["operatingAccount"], f"{where}.operatingAccount")
            login = destination.get("loginAccount")
            if login is not None:
                login = self._account(login, f"{where}.loginAccount")
            if operating != self.operating_account or (
                login is not None and login not in self.login_accounts
            ):
                raise Refusal(
                    google_error(403, "PERMISSION_DENIED", "The caller does not have permission")
                )
            if destination["productDestinationId"] != self.user_list:
                raise invalid(
                    f"{where}.product_destination_id",
                    "INVALID_USER_LIST_ID",
                    "User list is invalid.",
                )

    def _account(self, account: Any, where: str) -> str:
        account = _only(account, {"accountType", "product", "accountId"}, where)
        kinds = [account[k] for k in ("accountType", "product") if k in account]
        if len(kinds) != 1 or kinds[0] not in ACCOUNT_TYPES:
            raise invalid(
                f"{where}.account_type", "INVALID_ENUM_VALUE", "Enum value cannot be used."
            )
        if not re.fullmatch(r"\d+", str(account.get("accountId", ""))):
            raise invalid(f"{where}.account_id", "INVALID_FORMAT", "Format is invalid.")
        return str(account["accountId"])

    def _consent(self, consent: Any, where: str) -> None:
        consent = _only(consent, {"adUserData", "adPersonalization"}, where)
        for value in consent.values():
            if value not in CONSENT:
                raise invalid(where, "INVALID_ENUM_VALUE", "Enum value cannot be used.")

    def _terms(self, terms: Any) -> None:
        status = None
        if terms is not None:
            terms = _only(terms, {"customerMatchTermsOfServiceStatus"}, "terms_of_service")
            status = terms.get("customerMatchTermsOfServiceStatus")
            if status not in TERMS:
                raise invalid(
                    "terms_of_service", "INVALID_ENUM_VALUE", "Enum value cannot be used."
                )
        if status != "ACCEPTED" and not self.terms_accepted:
            raise Refusal(
                google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "Required terms and conditions were not accepted.",
                    reason="TERMS_AND_CONDITIONS_NOT_SIGNED",
                )
            )

    def _member(self, member: Any, i: int) -> dict[str, Any]:
        where = f"audience_members.audience_members[{i}]"
        member = _only(member, {"userData", "consent", "destinationReferences"}, where)
        if "consent" in member:
            self._consent(member["consent"], f"{where}.consent")
        data = _only(member.get("userData"), {"userIdentifiers"}, f"{where}.user_data")
        identifiers = data.get("userIdentifiers")
        here = f"{where}.user_data.user_identifiers"
        if not isinstance(identifiers, list) or not identifiers:
            raise invalid(here, "REQUIRED_FIELD_MISSING", "At least one identifier is required.")
        if len(identifiers) > MAX_IDENTIFIERS:
            raise invalid(here, "TOO_MANY_USER_IDENTIFIERS", "At most 10 user identifiers.")
        kept: dict[str, Any] = {}
        for identifier in identifiers:
            identifier = _only(identifier, {"emailAddress", "phoneNumber", "address"}, here)
            if len(identifier) != 1:
                raise invalid(here, "INVALID_FORMAT", "Exactly one identifier must be specified.")
            [(kind, value)] = identifier.items()
            if kind == "address":
                value = self._address(value, f"{here}.address")
            elif not isinstance(value, str) or not _HEX64.fullmatch(value):
                raise invalid(here, "INVALID_SHA256_FORMAT", f"{kind} is not a hex SHA-256 hash.")
            kept[kind] = value.lower() if isinstance(value, str) else value
        return kept

    def _address(self, address: Any, where: str) -> dict[str, str]:
        parts = ("givenName", "familyName", "regionCode", "postalCode")
        address = _only(address, set(parts), where)
        for part in parts:
            if not isinstance(address.get(part), str) or not address[part]:
                raise invalid(f"{where}.{part}", "REQUIRED_FIELD_MISSING", f"{part} is required.")
        for part in ("givenName", "familyName"):
            if not _HEX64.fullmatch(address[part]):
                raise invalid(f"{where}.{part}", "INVALID_SHA256_FORMAT", "Not a SHA-256 hash.")
        if not re.fullmatch(r"[A-Z]{2}", address["regionCode"]):
            raise invalid(f"{where}.region_code", "INVALID_FORMAT", "Not an ISO 3166-1 code.")
        if _HEX64.fullmatch(address["postalCode"]):
            raise invalid(f"{where}.postal_code", "INVALID_POSTAL_CODE", "Postal code is hashed.")
        return dict(address)


def identity(member: dict[str, Any]) -> str:
    """How the emulator names a member: its email hash, else phone hash, else address."""
    if member.get("emailAddress"):
        return str(member["emailAddress"])
    if member.get("phoneNumber"):
        return str(member["phoneNumber"])
    return hashlib.sha256(json.dumps(member["address"], sort_keys=True).encode()).hexdigest()
