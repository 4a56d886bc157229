"""Klaviyo's API as its public reference describes it: Bulk Import Profiles jobs (with a list
relationship), their status and import errors, profiles filtered by identifier, a list and its
profile relationships; private keys as `Authorization: Klaviyo-API-Key …`, a required
`revision` header, JSON:API bodies and JSON:API errors (`{"errors": [{id, status, code, title,
detail, source}]}`).

Strict where Klaviyo is: unknown members of a body, a wrong `type`, more than 10 000 profiles
or 5 MB in a job, more than 1 000 ids in a list call, a `page[size]` over 100 or a filter the
endpoint does not offer are refused (400; 413 for the size). A profile with an invalid email,
a phone number not in E.164, or no identifier at all is not refused with the request: the job
completes with it counted in `failed_count` and described under `import-errors`, as are the
people in `reject`. Every endpoint has its own burst (1 s) and steady (1 min) window per
account, answered with 429, Klaviyo's `throttled` error and `Retry-After`. A job is
`processing` for `polls_before_complete` status reads, then `complete`. People are known by
their email (lower-cased), else their phone number, else their external id.

https://developers.klaviyo.com/en/reference/bulk_import_profiles
https://developers.klaviyo.com/en/reference/get_errors_for_bulk_import_profiles_job
https://developers.klaviyo.com/en/reference/get_profiles
https://developers.klaviyo.com/en/reference/remove_profiles_from_list
https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling
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

MAX_PROFILES = 10_000
MAX_PAYLOAD = 5 * 1024 * 1024
MAX_LIST_IDS = 1_000
MAX_PAGE = 100
JSON_API = "application/vnd.api+json"
#: Documented (burst per second, steady per minute) limits of each endpoint.
LIMITS = {
    "import": (10, 150),
    "job": (10, 150),
    "import-errors": (10, 150),
    "profiles": (75, 750),
    "list": (75, 750),
    "list-relationships": (10, 150),
}
ATTRIBUTES = frozenset(
    {
        "email", "phone_number", "external_id", "_kx", "first_name", "last_name",
        "organization", "locale", "title", "image", "location", "properties",
    }
)  # fmt: skip
LOCATION = frozenset(
    {"address1", "address2", "city", "country", "latitude", "longitude", "region", "zip",
     "timezone", "ip"}
)  # fmt: skip
IDENTIFIERS = ("email", "phone_number", "external_id")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_REVISION = re.compile(r"\d{4}-\d{2}-\d{2}(\.\w+)?")
_PROFILE_ID = re.compile(r"[0-9A-Z]{26}")
_FILTER = re.compile(r"^(any|equals)\((\w+),(.*)\)$", re.DOTALL)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def klaviyo_error(
    status: int, code: str, title: str, detail: str, pointer: str | None = None, **headers: str
) -> JSONResponse:
    error: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
    }
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return JSONResponse(
        {"errors": [error]}, status_code=status, media_type=JSON_API, headers=headers or None
    )


def invalid(detail: str, pointer: str = "/data/") -> JSONResponse:
    return klaviyo_error(400, "invalid", "Invalid input.", detail, pointer)


class Refusal(Exception):
    """A request Klaviyo refuses whole; carries the answer."""

    def __init__(self, answer: Response) -> None:
        self.answer = answer


@dataclass
class Profile:
    id: str
    attributes: dict[str, Any]

    @property
    def identity(self) -> str:
        return _identity(self.attributes)


@dataclass
class Job:
    id: str
    total: int
    errors: list[dict[str, Any]]
    polls: int = 0
    created_at: str = field(default_factory=_now)


@dataclass
class KlaviyoEmulator(EmulatorBase):
    token: str = "pk_emulator_0123456789abcdef0123"
    list_id: str = "Y6nRLr"
    profiles: dict[str, Profile] = field(default_factory=dict)
    #: Ids of the profiles on the list.
    listed: set[str] = field(default_factory=set)
    #: (identifier, lower-cased value) → profile id.
    by_identifier: dict[tuple[str, str], str] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    #: Status reads that still find a new job `processing`.
    polls_before_complete: int = 0
    #: Endpoint → its rate windows (burst, steady); tests may shrink them.
    windows: dict[str, list[RateWindow]] = field(
        default_factory=lambda: {
            name: [RateWindow(burst, 1.0), RateWindow(steady, 60.0)]
            for name, (burst, steady) in LIMITS.items()
        }
    )
    #: (method, path, query, headers, body) of every authenticated request.
    seen: list[tuple[str, str, dict[str, str], dict[str, str], Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        jobs = "/api/profile-bulk-import-jobs"
        return Starlette(
            routes=[
                Route("/api/lists/{list_id}", self.get_list, methods=["GET"]),
                Route(
                    "/api/lists/{list_id}/relationships/profiles",
                    self.remove_from_list,
                    methods=["DELETE"],
                ),
                Route(jobs, self.create_job, methods=["POST"]),
                Route(f"{jobs}/{{job_id}}", self.get_job, methods=["GET"]),
                Route(f"{jobs}/{{job_id}}/import-errors", self.import_errors, methods=["GET"]),
                Route("/api/profiles", self.get_profiles, methods=["GET"]),
            ]
        )

    def members(self) -> dict[str, dict[str, Any]]:
        found = {}
        for profile_id in self.listed:
            attributes = dict(self.profiles[profile_id].attributes)
            properties = attributes.pop("properties", {})
            found[self.profiles[profile_id].identity] = {**attributes, **properties}
        return found

    # --- what every route does first ------------------------------------------------------

    async def _admit(self, request: Request, endpoint: str, *, write: bool) -> Any:
        """The JSON body (None for reads), after the credentials, the revision header, the
        media type, the endpoint's rate windows and, for writes, the script; raises a
        `Refusal` with the answer that ends the request."""
        method, path = request.method, request.url.path
        if request.headers.get("authorization") != f"Klaviyo-API-Key {self.token}":
            self.record(method, path, 0, 401)
            raise Refusal(
                klaviyo_error(
                    401,
                    "not_authenticated",
                    "Authentication credentials were not provided.",
                    "Missing or invalid private key.",
                    "/data/",
                )
            )
        if not _REVISION.fullmatch(request.headers.get("revision", "")):
            self.record(method, path, 0, 400)
            raise Refusal(invalid("The revision header is missing or malformed.", "/revision"))
        body: Any = None
        raw = b""
        if method != "GET":
            media = request.headers.get("content-type", "").split(";")[0].strip()
            if media not in (JSON_API, "application/json"):
                self.record(method, path, 0, 415)
                raise Refusal(
                    klaviyo_error(
                        415,
                        "unsupported_media_type",
                        "Unsupported media type.",
                        f'Unsupported media type "{media}" in request.',
                    )
                )
            raw = await request.body()
            try:
                body = json.loads(raw)
            except ValueError:
                self.record(method, path, 0, 400)
                raise Refusal(invalid("JSON parse error: the body is not valid JSON.")) from None
        self.seen.append((method, path, dict(request.query_params), dict(request.headers), body))
        items = _count(body) if write else 0
        for window in self.windows.get(endpoint, []):
            wait = window.admit()
            if wait is not None:
                self.throttled += 1
                self.record(method, path, items, 429)
                seconds = max(1, round(wait + 0.5))
                raise Refusal(
                    klaviyo_error(
                        429,
                        "throttled",
                        "Request was throttled.",
                        f"Request was throttled. Expected available in {seconds} second.",
                        **{"Retry-After": str(seconds)},
                    )
                )
        if len(raw) > MAX_PAYLOAD:
            self.record(method, path, items, 413)
            raise Refusal(
                klaviyo_error(
                    413, "request_too_large", "Request too large.", "The payload exceeds 5MB."
                )
            )
        if write and (answer := await self.scripted()) is not None:
            self.record(method, path, items, answer.status_code)
            raise Refusal(answer)
        return body

    def _done(self, request: Request, items: int, answer: Response) -> Response:
        self.record(request.method, request.url.path, items, answer.status_code)
        return answer

    def _the_list(self, request: Request) -> None:
        list_id = request.path_params["list_id"]
        if list_id != self.list_id:
            raise Refusal(
                klaviyo_error(
                    404, "not_found", "Not found.", f"A list with id {list_id} does not exist."
                )
            )

    # --- lists ------------------------------------------------------------------------------

    async def get_list(self, request: Request) -> Response:
        try:
            await self._admit(request, "list", write=False)
            self._the_list(request)
        except Refusal as refusal:
            return self._done(request, 0, refusal.answer)
        data = {
            "type": "list",
            "id": self.list_id,
            "attributes": {
                "name": "Signalsmith audience",
                "created": "2026-01-01T00:00:00+00:00",
                "updated": _now(),
                "opt_in_process": "single_opt_in",
            },
            "links": {"self": f"{request.base_url}api/lists/{self.list_id}/"},
        }
        return self._done(request, 0, JSONResponse({"data": data}, media_type=JSON_API))

    async def remove_from_list(self, request: Request) -> Response:
        items = 0
        try:
            body = await self._admit(request, "list-relationships", write=True)
            items = _count(body)
            self._the_list(request)
            if (
                not isinstance(body, dict)
                or set(body) != {"data"}
                or not isinstance(body["data"], list)
            ):
                raise Refusal(invalid('The body must be {"data": [profile identifiers]}.'))
            if not 0 < len(body["data"]) <= MAX_LIST_IDS:
                raise Refusal(
                    invalid(f"Between 1 and {MAX_LIST_IDS} profiles may be removed per call.")
                )
            ids = []
            for index, item in enumerate(body["data"]):
                if (
                    not isinstance(item, dict)
                    or set(item) != {"type", "id"}
                    or item["type"] != "profile"
                    or not isinstance(item["id"], str)
                    or not _PROFILE_ID.fullmatch(item["id"])
                ):
                    raise Refusal(invalid("Invalid profile identifier.", f"/data/{index}"))
                ids.append(item["id"])
            named = {self.profiles[i].identity for i in ids if i in self.profiles}
            if self.poison & named:
                raise Refusal(invalid("The request was refused."))
        except Refusal as refusal:
            return self._done(request, items, refusal.answer)
        self.listed -= set(ids)
        return self._done(request, items, Response(status_code=204))

    # --- bulk import jobs -------------------------------------------------------------------

    async def create_job(self, request: Request) -> Response:
        items = 0
        try:
            body = await self._admit(request, "import", write=True)
            items = _count(body)
            profiles, lists = self._job_request(body)
        except Refusal as refusal:
            return self._done(request, items, refusal.answer)
        job = Job(f"{uuid.uuid4().hex}", len(profiles), [])
        for index, sent in enumerate(profiles):
            problem = self._problem(sent["attributes"])
            if problem is None and _identity(sent["attributes"]) in self.reject:
                problem = ("invalid", "This profile was refused.")
            if problem is not None:
                job.errors.append(_import_error(index, sent, *problem))
                continue
            stored = self._upsert(sent["attributes"])
            if lists:
                self.listed.add(stored.id)
        self.jobs[job.id] = job
        return self._done(request, items, JSONResponse(self._job(request, job, "queued"), 202))

    def _job_request(self, body: Any) -> tuple[list[dict[str, Any]], list[str]]:
        """The profiles and list ids of a job request, its shape checked."""
        data = body.get("data") if isinstance(body, dict) and set(body) == {"data"} else None
        if not isinstance(data, dict) or set(data) - {"type", "attributes", "relationships"}:
            raise Refusal(invalid('The body must be {"data": {type, attributes, relationships}}.'))
        if data.get("type") != "profile-bulk-import-job":
            raise Refusal(invalid("Type must be profile-bulk-import-job.", "/data/type"))
        attributes = data.get("attributes")
        if not isinstance(attributes, dict) or set(attributes) != {"profiles"}:
            raise Refusal(invalid("'profiles' is a required attribute.", "/data/attributes"))
        profiles = attributes["profiles"]
        if (
            not isinstance(profiles, dict)
            or set(profiles) != {"data"}
            or not isinstance(profiles["data"], list)
        ):
            raise Refusal(invalid("'data' is required.", "/data/attributes/profiles"))
        if not 0 < len(profiles["data"]) <= MAX_PROFILES:
            raise Refusal(
                invalid(
                    f"Between 1 and {MAX_PROFILES} profiles may be imported per job.",
                    "/data/attributes/profiles/data",
                )
            )
        for index, item in enumerate(profiles["data"]):
            self._check_profile(item, f"/data/attributes/profiles/data/{index}")
        lists: list[str] = []
        relationships = data.get("relationships")
        if relationships is not None:
            linked = relationships.get("lists") if isinstance(relationships, dict) else None
            if (
                not isinstance(linked, dict)
                or set(relationships) != {"lists"}
                or set(linked) != {"data"}
                or not isinstance(linked["data"], list)
            ):
                raise Refusal(invalid("Invalid lists relationship.", "/data/relationships"))
            for item in linked["data"]:
                if (
                    not isinstance(item, dict)
                    or set(item) != {"type", "id"}
                    or item["type"] != "list"
                ):
                    raise Refusal(invalid("Invalid list identifier.", "/data/relationships/lists"))
                if item["id"] != self.list_id:
                    raise Refusal(
                        klaviyo_error(
                            404,
                            "not_found",
                            "Not found.",
                            f"A list with id {item['id']} does not exist.",
                        )
                    )
                lists.append(item["id"])
        if self.poison & {_identity(item["attributes"]) for item in profiles["data"]}:
            raise Refusal(invalid("The request was refused."))
        return profiles["data"], lists

    def _check_profile(self, item: Any, pointer: str) -> None:
        if not isinstance(item, dict) or set(item) - {"type", "id", "attributes", "meta"}:
            raise Refusal(invalid("Invalid profile.", pointer))
        if item.get("type") != "profile":
            raise Refusal(invalid("Type must be profile.", f"{pointer}/type"))
        attributes = item.get("attributes")
        if not isinstance(attributes, dict):
            raise Refusal(invalid("'attributes' is required.", f"{pointer}/attributes"))
        for name, value in attributes.items():
            if name not in ATTRIBUTES:
                raise Refusal(
                    invalid(f"'{name}' is not a valid field.", f"{pointer}/attributes/{name}")
                )
            if name == "location" and (not isinstance(value, dict) or set(value) - LOCATION):
                raise Refusal(invalid("Invalid location.", f"{pointer}/attributes/location"))
            if name == "properties" and not isinstance(value, dict):
                raise Refusal(
                    invalid("Properties must be an object.", f"{pointer}/attributes/properties")
                )
            if name not in ("location", "properties") and not isinstance(value, str | None):
                raise Refusal(
                    invalid(f"'{name}' must be a string.", f"{pointer}/attributes/{name}")
                )

    @staticmethod
    def _problem(attributes: dict[str, Any]) -> tuple[str, str] | None:
        """(code, detail) when Klaviyo would fail this profile inside the job."""
        if not any(attributes.get(n) for n in IDENTIFIERS):
            return "invalid", "A profile requires an email, phone_number or external_id."
        email = attributes.get("email")
        if email is not None and not _EMAIL.fullmatch(str(email)):
            return "invalid", "Invalid email address."
        phone = attributes.get("phone_number")
        if phone is not None and not _E164.fullmatch(str(phone)):
            return (
                "invalid",
                "Invalid phone number format (Example of a valid format: +12345678901).",
            )
        return None

    def _upsert(self, attributes: dict[str, Any]) -> Profile:
        """The profile these attributes match (email, then phone, then external id), updated;
        a new one when none does. A `null` clears nothing: the import job cannot clear."""
        known = (
            self.by_identifier.get((name, str(attributes[name]).lower()))
            for name in IDENTIFIERS
            if attributes.get(name) is not None
        )
        found_id = next((i for i in known if i is not None), None)
        found = self.profiles.get(found_id) if found_id else None
        if found is None:
            found = Profile("01" + uuid.uuid4().hex[:24].upper(), {})
            self.profiles[found.id] = found
        for name, value in attributes.items():
            if value is None:
                continue
            if name in ("properties", "location"):
                merged = dict(found.attributes.get(name, {}))
                merged.update({k: v for k, v in value.items() if v is not None})
                found.attributes[name] = merged
            else:
                found.attributes[name] = value
            if name in IDENTIFIERS:
                self.by_identifier[(name, str(value).lower())] = found.id
        return found

    def _job(self, request: Request, job: Job, status: str) -> dict[str, Any]:
        failed = len(job.errors)
        complete = status == "complete"
        base = f"{request.base_url}api/profile-bulk-import-jobs/{job.id}"
        return {
            "data": {
                "type": "profile-bulk-import-job",
                "id": job.id,
                "attributes": {
                    "status": status,
                    "created_at": job.created_at,
                    "total_count": job.total,
                    "completed_count": job.total - failed if complete else 0,
                    "failed_count": failed if complete else 0,
                    "completed_at": _now() if complete else None,
                    "expires_at": None,
                    "started_at": job.created_at,
                },
                "relationships": {
                    "import-errors": {"links": {"related": f"{base}/import-errors/"}},
                },
                "links": {"self": f"{base}/"},
            },
            "links": {"self": f"{base}/"},
        }

    async def get_job(self, request: Request) -> Response:
        try:
            await self._admit(request, "job", write=False)
            job = self._find_job(request)
        except Refusal as refusal:
            return self._done(request, 0, refusal.answer)
        status = "processing" if job.polls < self.polls_before_complete else "complete"
        job.polls += 1
        return self._done(
            request, 0, JSONResponse(self._job(request, job, status), media_type=JSON_API)
        )

    def _find_job(self, request: Request) -> Job:
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            raise Refusal(klaviyo_error(404, "not_found", "Not found.", "The job does not exist."))
        return job

    async def import_errors(self, request: Request) -> Response:
        try:
            await self._admit(request, "import-errors", write=False)
            job = self._find_job(request)
            size, start = _page(request, set())
        except Refusal as refusal:
            return self._done(request, 0, refusal.answer)
        page = job.errors[start : start + size]
        links = _links(request, start, size, len(job.errors))
        return self._done(
            request, 0, JSONResponse({"data": page, "links": links}, media_type=JSON_API)
        )

    # --- profiles ---------------------------------------------------------------------------

    async def get_profiles(self, request: Request) -> Response:
        try:
            await self._admit(request, "profiles", write=False)
            size, start = _page(request, {"filter", "fields[profile]", "sort"})
            name, values = _filter(request.query_params.get("filter"))
        except Refusal as refusal:
            return self._done(request, 0, refusal.answer)
        matched = sorted(
            (
                p
                for p in self.profiles.values()
                if values is None
                or (p.id if name == "id" else str(p.attributes.get(name, "")).lower()) in values
            ),
            key=lambda p: p.id,
        )
        page = [
            {
                "type": "profile",
                "id": p.id,
                "attributes": dict(p.attributes),
                "links": {"self": f"{request.base_url}api/profiles/{p.id}/"},
            }
            for p in matched[start : start + size]
        ]
        links = _links(request, start, size, len(matched))
        return self._done(
            request, 0, JSONResponse({"data": page, "links": links}, media_type=JSON_API)
        )


def _identity(attributes: dict[str, Any]) -> str:
    """How the emulator names a person: email, else phone number, else external id."""
    return next((str(attributes[n]).lower() for n in IDENTIFIERS if attributes.get(n)), "")


def _count(body: Any) -> int:
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, list):
        return len(data)
    try:
        return len(data["attributes"]["profiles"]["data"])  # type: ignore[index]
    except (KeyError, TypeError):
        return 0


def _import_error(index: int, sent: dict[str, Any], code: str, detail: str) -> dict[str, Any]:
    return {
        "type": "import-error",
        "id": str(uuid.uuid4()),
        "attributes": {
            "code": code,
            "title": "Invalid input.",
            "detail": detail,
            "source": {"pointer": f"/data/attributes/profiles/data/{index}/attributes"},
            "original_payload": sent,
        },
    }


def _page(request: Request, allowed: set[str]) -> tuple[int, int]:
    """(page size, offset) from `page[size]` and `page[cursor]`; other parameters refused."""
    params = request.query_params
    unknown = set(params) - allowed - {"page[size]", "page[cursor]", "fields[import-error]"}
    if unknown:
        raise Refusal(invalid(f"'{sorted(unknown)[0]}' is not a valid query parameter.", "/"))
    try:
        size = int(params.get("page[size]", "20"))
        start = int(params.get("page[cursor]", "0"))
    except ValueError:
        raise Refusal(invalid("Invalid page parameter.")) from None
    if not 1 <= size <= MAX_PAGE or start < 0:
        raise Refusal(invalid(f"page[size] must be between 1 and {MAX_PAGE}."))
    return size, start


def _links(request: Request, start: int, size: int, total: int) -> dict[str, Any]:
    links: dict[str, Any] = {"self": str(request.url), "next": None, "prev": None}
    if start + size < total:
        query = {**request.query_params, "page[cursor]": str(start + size)}
        links["next"] = str(request.url.replace_query_params(**query))
    return links


def _filter(raw: str | None) -> tuple[str, set[str] | None]:
    """(field, matching values) of `any(field,[…])` or `equals(field,"…")`; (`""`, None)
    without a filter."""
    if raw is None:
        return "", None
    match = _FILTER.match(raw.strip())
    if match is None:
        raise Refusal(invalid(f"Invalid filter provided: {raw}", "/filter"))
    operator, name, argument = match.groups()
    if name not in ("id", *IDENTIFIERS):
        raise Refusal(invalid(f"'{name}' is not a valid field for the resource 'profile'."))
    try:
        parsed = json.loads(argument)
    except ValueError:
        raise Refusal(invalid(f"Invalid filter provided: {raw}", "/filter")) from None
    if operator == "any":
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise Refusal(invalid("'any' takes a list of strings.", "/filter"))
        values = parsed
    elif isinstance(parsed, str):
        values = [parsed]
    else:
        raise Refusal(invalid("'equals' takes a string.", "/filter"))
    return name, {v if name == "id" else v.lower() for v in values}
