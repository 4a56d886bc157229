"""Braze: user profiles updated through `POST /users/track` (`attributes` objects, at most 75 a
request), audience membership kept as a boolean custom attribute and/or a subscription group.

Each attributes object names the user by `external_id` (else `email`, else `phone`, Braze's
order) and carries the mapped attributes (standard ones such as `email`, `first_name`,
`country`, and any custom attribute). Membership: `membership_attribute` is set `true` on adds
and updates and `false` on exits; `subscription_group_id` subscribes on adds and updates and
unsubscribes on exits, inline in the same object (`subscription_groups`), so it costs no extra
request. Use a subscription group only when it stands for the audience, not for consent the
user gave. `check()` sends one `/users/track` request that can change nothing (an
`_update_existing_only` object naming no real user and no attribute): it proves the key, the
instance and the `users.track` permission.

Choices where the documentation leaves room:

- **Per-row errors**: Braze answers 201 with `errors: [{type, input_array, index}]` for
  objects it refused ("non-fatal errors"); those rows are rejected with Braze's words, the
  rest accepted. A 400 (a fatal error) refuses the request whole (delivery bisects it).
- **Throttling**: 3 000 requests per 3 s per workspace for `/users/track`, paced up front per
  API key and instance. A 429 carries `X-RateLimit-Reset` (epoch seconds), not `Retry-After`;
  the connector waits until then.
- **Values** keep their JSON type (numbers, booleans, text; dates as ISO 8601); `null`
  removes a custom attribute, as Braze documents.

Docs: https://www.braze.com/docs/api/endpoints/user_data/post_user_track/
https://www.braze.com/docs/api/objects_filters/user_attributes_object/
https://www.braze.com/docs/api/api_limits/
https://www.braze.com/docs/api/errors/
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx
from pydantic import Field, model_validator

from app.destinations.base import Batch, BatchResult, Operation, Record, TransientError
from app.destinations.config import VendorConfig, secret_field
from app.destinations.identifiers import Normalizer
from app.destinations.spec import BuildOptions, DestinationSpec, FieldSpec, RateLimit
from app.destinations.vendor_http import VendorClient
from app.destinations.webhook import parse_retry_after
from models.enums import DestinationType, OnExit

TRACK = "/users/track"
MAX_OBJECTS = 75
RATE_LIMIT = RateLimit(requests=3000, per_seconds=3.0)
#: Braze's order of identifiers: the first one present names the user.
IDENTIFIERS = ("external_id", "email", "phone")
#: The user `check()` names: update-only, so no profile is ever created for it.
CHECK_USER = "signalsmith-connection-check"
REASON_LIMIT = 500


class BrazeConfig(VendorConfig):
    base_url: str = Field(
        max_length=2000,
        description="Your instance's REST endpoint, e.g. https://rest.iad-01.braze.com",
    )
    api_key: str = secret_field(
        min_length=1, max_length=200, description="REST API key with the users.track permission"
    )
    membership_attribute: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[^$]",
        description="Boolean custom attribute set true while the user is in the audience",
    )
    subscription_group_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Subscription group users are subscribed to while in the audience",
    )

    @model_validator(mode="after")
    def _membership(self) -> BrazeConfig:
        if not self.membership_attribute and not self.subscription_group_id:
            raise ValueError("set membership_attribute, subscription_group_id, or both")
        return self


FIELDS = (
    FieldSpec("external_id", "External user id", Normalizer.external_id, identifier=True),
    FieldSpec("email", "Email address", Normalizer.email, identifier=True),
    FieldSpec("phone", "Phone number (E.164)", Normalizer.phone_e164, identifier=True),
    FieldSpec("first_name", "First name", Normalizer.text),
    FieldSpec("last_name", "Last name", Normalizer.text),
    FieldSpec("country", "Country, ISO 3166-1 alpha-2", Normalizer.country),
    FieldSpec("home_city", "Home city", Normalizer.text),
    FieldSpec("language", "Language, ISO 639-1", Normalizer.text),
)


def attribute_value(value: Any) -> Any:
    """A source value as Braze takes it: JSON numbers, booleans and text; dates in ISO 8601."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class BrazeClient(VendorClient):
    """Braze's 429 names when its window resets (`X-RateLimit-Reset`), not how long to wait."""

    def raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code == 429 and "retry-after" not in response.headers:
            raise TransientError(
                f"{self.vendor} answered 429{self.detail(response)}",
                retry_after=_reset_wait(response.headers),
            )
        super().raise_for_status(response)


def _reset_wait(headers: Mapping[str, str]) -> float | None:
    wait = parse_retry_after(headers.get("x-ratelimit-retry-after"))
    if wait is not None:
        return wait
    try:
        return max(float(headers["x-ratelimit-reset"]) - time.time(), 0.0)
    except (KeyError, ValueError):
        return None


class BrazeConnector:
    type: ClassVar[str] = "braze"
    max_batch_size: ClassVar[int] = MAX_OBJECTS
    default_batch_size: ClassVar[int] = MAX_OBJECTS

    def __init__(
        self,
        config: dict[str, Any],
        options: BuildOptions,
        *,
        rate_limit: RateLimit | None = RATE_LIMIT,
    ) -> None:
        settings = BrazeConfig.model_validate(config)
        self._attribute = settings.membership_attribute
        self._group = settings.subscription_group_id
        self.client = BrazeClient(
            "Braze",
            settings.base_url,
            options,
            headers={"Authorization": f"Bearer {settings.api_key}"},
            rate_limit=rate_limit,
            secrets=[settings.api_key],
        )

    async def check(self) -> None:
        await self.client.request(
            "POST",
            TRACK,
            json={"attributes": [{"external_id": CHECK_USER, "_update_existing_only": True}]},
        )

    async def send(self, batch: Batch) -> BatchResult:
        member = batch.operation is not Operation.remove
        sent: list[Record] = []
        objects: list[dict[str, Any]] = []
        rejected: list[tuple[str, str]] = []
        for record in batch.records:
            attributes = self._attributes(record.fields, member=member)
            if attributes is None:
                rejected.append((record.key, "no external_id, email or phone names this user"))
            else:
                sent.append(record)
                objects.append(attributes)
        if sent:
            response = await self.client.request("POST", TRACK, json={"attributes": objects})
            refused = _refused_objects(response, len(sent))
            rejected.extend((sent[i].key, reason) for i, reason in sorted(refused.items()))
            sent = [record for i, record in enumerate(sent) if i not in refused]
        return BatchResult(accepted=tuple(r.key for r in sent), rejected=tuple(rejected))

    def _attributes(self, fields: Mapping[str, Any], *, member: bool) -> dict[str, Any] | None:
        """The attributes object: on an exit only the identifier and the membership."""
        identifier = next((name for name in IDENTIFIERS if fields.get(name)), None)
        if identifier is None:
            return None
        if member:
            attributes = {name: attribute_value(value) for name, value in fields.items()}
        else:
            attributes = {identifier: fields[identifier]}
        if self._attribute:
            attributes[self._attribute] = member
        if self._group:
            state = "subscribed" if member else "unsubscribed"
            attributes["subscription_groups"] = [
                {"subscription_group_id": self._group, "subscription_state": state}
            ]
        return attributes

    async def close(self) -> None:
        await self.client.close()


def _refused_objects(response: httpx.Response, size: int) -> dict[int, str]:
    """{object index: reason} from the non-fatal `errors` of a successful answer."""
    try:
        payload = response.json()
    except ValueError:
        return {}
    errors = payload.get("errors") if isinstance(payload, dict) else None
    refused: dict[int, str] = {}
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict) or error.get("input_array") != "attributes":
            continue
        index = error.get("index")
        if isinstance(index, int) and 0 <= index < size:
            reason = f"Braze refused the user: {error.get('type') or 'no reason given'}"
            refused[index] = reason[:REASON_LIMIT]
    return refused


SPEC = DestinationSpec(
    kind=DestinationType.braze,
    title="Braze",
    description=(
        "User profiles updated through /users/track (standard and custom attributes), "
        "membership kept as a boolean attribute and/or a subscription group."
    ),
    config=BrazeConfig,
    build=lambda config, options: BrazeConnector(config, options),
    max_batch_size=BrazeConnector.max_batch_size,
    default_batch_size=BrazeConnector.default_batch_size,
    concurrency=16,
    fields=FIELDS,
    custom_fields=True,
    needs_identifier=True,
    rate_limit=RATE_LIMIT,
    on_exit=frozenset({OnExit.remove}),
    account_fields=("base_url", "api_key"),
)
