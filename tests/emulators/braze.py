"""Braze's `POST /users/track` as its public documentation describes it, for `attributes`
objects: a REST API key as `Authorization: Bearer`, at most 75 objects a request (400 "Max Input
Length Exceeded"), an empty request refused (400), objects that name no user or carry a
malformed standard attribute refused one by one in a 201 (`errors: [{type, input_array,
index}]`), `subscription_groups` inside an object, `_update_existing_only`, and `null` removing
a custom attribute. The window (3 000 requests / 3 s) answers 429 with `X-RateLimit-*` headers
(`X-RateLimit-Reset` in epoch seconds, no `Retry-After`).

Users are keyed by `external_id` (email-only and phone-only profiles by `email:…`/`phone:…`);
`members()` are the users whose `membership_attribute` is true.

https://www.braze.com/docs/api/endpoints/user_data/post_user_track/
https://www.braze.com/docs/api/objects_filters/user_attributes_object/
https://www.braze.com/docs/api/api_limits/
https://www.braze.com/docs/api/errors/
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.base import EmulatorBase, RateWindow

MAX_OBJECTS = 75
ARRAYS = ("attributes", "events", "purchases")
NO_IDENTIFIER = "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_COUNTRY = re.compile(r"[A-Z]{2}")
STATES = frozenset({"subscribed", "unsubscribed"})


def braze_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


@dataclass
class BrazeEmulator(EmulatorBase):
    membership_attribute: str = "in_signalsmith_audience"
    #: Users by key: `external_id`, or `email:…` / `phone:…` for profiles without one.
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Subscription group id → user keys subscribed to it.
    groups: dict[str, set[str]] = field(default_factory=dict)
    window: RateWindow | None = field(default_factory=lambda: RateWindow(3000, 3.0))
    #: The JSON body of every authenticated request, in order.
    seen: list[Any] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/users/track", self.track, methods=["POST"])])

    def members(self) -> dict[str, dict[str, Any]]:
        return {
            key: dict(attributes)
            for key, attributes in self.users.items()
            if attributes.get(self.membership_attribute) is True
        }

    def subscribed(self, group: str) -> set[str]:
        return set(self.groups.get(group, set()))

    async def track(self, request: Request) -> Response:
        given = request.headers.get("authorization", "")
        if given != f"Bearer {self.token}":
            self.record("POST", "/users/track", 0, 401)
            return braze_error(401, f"Invalid API key: {given.removeprefix('Bearer ')}")
        try:
            body = json.loads(await request.body())
        except ValueError:
            self.record("POST", "/users/track", 0, 400)
            return braze_error(400, "Bad Request: the body is not valid JSON")
        self.seen.append(body)
        items = sum(len(v) for v in body.values() if isinstance(v, list)) if isinstance(
            body, dict
        ) else 0  # fmt: skip
        answer = self._throttle() or self._shape(body) or await self.scripted()
        if answer is None and self.poison & {_identity(o) for o in body.get("attributes", [])}:
            answer = braze_error(400, "Bad Request: the request was refused")
        if answer is None:
            answer = self._apply(body.get("attributes", []))
        self.record("POST", "/users/track", items, answer.status_code)
        return answer

    def _throttle(self) -> Response | None:
        if self.window is None or (wait := self.window.admit()) is None:
            return None
        self.throttled += 1
        answer = braze_error(429, "Too Many Requests")
        answer.headers.update(
            {
                "X-RateLimit-Limit": str(self.window.requests),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(time.time() + wait)),
            }
        )
        return answer

    @staticmethod
    def _shape(body: Any) -> Response | None:
        """Braze's fatal errors for the request as a whole."""
        if not isinstance(body, dict) or set(body) - set(ARRAYS):
            unknown = sorted(set(body) - set(ARRAYS)) if isinstance(body, dict) else []
            return braze_error(400, f"Bad Request: unknown fields {unknown}")
        arrays: list[list[Any]] = [body[name] for name in ARRAYS if name in body]
        if not all(isinstance(a, list) for a in arrays) or not any(arrays):
            return braze_error(
                400,
                "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields.",
            )
        if sum(len(a) for a in arrays) > MAX_OBJECTS:
            return braze_error(400, "Max Input Length Exceeded")
        return None

    def _apply(self, objects: list[Any]) -> Response:
        errors: list[dict[str, Any]] = []
        for index, attributes in enumerate(objects):
            problem = _problem(attributes)
            if not problem and _identity(attributes) in self.reject:
                problem = f"user {_identity(attributes)} was refused"
            if problem:
                errors.append({"type": problem, "input_array": "attributes", "index": index})
            else:
                self._update(attributes)
        payload: dict[str, Any] = {
            "message": "success",
            "attributes_processed": len(objects) - len(errors),
        }
        if errors:
            payload["errors"] = errors
        return JSONResponse(payload, status_code=201)

    def _update(self, attributes: dict[str, Any]) -> None:
        key = self._find(attributes)
        if key is None:
            if attributes.get("_update_existing_only"):
                return  # update-only: no profile is created
            key = _identity(attributes)
        user = self.users.setdefault(key, {})
        for name, value in attributes.items():
            if name == "_update_existing_only":
                continue
            if name == "subscription_groups":
                for group in value:
                    subscribers = self.groups.setdefault(group["subscription_group_id"], set())
                    if group["subscription_state"] == "subscribed":
                        subscribers.add(key)
                    else:
                        subscribers.discard(key)
            elif value is None:
                user.pop(name, None)
            else:
                user[name] = value

    def _find(self, attributes: dict[str, Any]) -> str | None:
        """The user these attributes name: by external_id, else the profile with that email
        (or phone), else None."""
        if attributes.get("external_id"):
            key = str(attributes["external_id"])
            return key if key in self.users else None
        for name in ("email", "phone"):
            if attributes.get(name):
                found = [k for k, u in self.users.items() if u.get(name) == attributes[name]]
                return found[0] if found else None
        return None


def _identity(attributes: Any) -> str:
    if not isinstance(attributes, dict):
        return ""
    if attributes.get("external_id"):
        return str(attributes["external_id"])
    for name in ("email", "phone"):
        if attributes.get(name):
            return f"{name}:{attributes[name]}"
    return ""


def _problem(attributes: Any) -> str:
    """Why Braze would refuse this attributes object ("" when it would not)."""
    if not isinstance(attributes, dict):
        return "attributes must be objects"
    if not any(attributes.get(n) for n in ("external_id", "braze_id", "user_alias", "email",
                                           "phone")):  # fmt: skip
        return NO_IDENTIFIER
    checks = {
        "external_id": lambda v: isinstance(v, str),
        "email": lambda v: isinstance(v, str) and bool(_EMAIL.fullmatch(v)),
        "phone": lambda v: isinstance(v, str) and bool(_E164.fullmatch(v)),
        "country": lambda v: isinstance(v, str) and bool(_COUNTRY.fullmatch(v)),
        "_update_existing_only": lambda v: isinstance(v, bool),
        "subscription_groups": _valid_groups,
    }
    for name, valid in checks.items():
        if name in attributes and attributes[name] is not None and not valid(attributes[name]):
            return f"'{name}' is not valid"
    return ""


def _valid_groups(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(g, dict)
        and set(g) == {"subscription_group_id", "subscription_state"}
        and isinstance(g["subscription_group_id"], str)
        and g["subscription_state"] in STATES
        for g in value
    )
