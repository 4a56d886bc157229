"""Destination config shapes shared by several types, and the URL rules they apply."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.destinations.base import TerminalError

Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], config: Mapping[str, Any], vendor: str) -> Model:
    """`config` read as `model`. One that no longer validates (stored before a rule changed)
    is a terminal error naming the fields and the rules, never the values (credentials)."""
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise TerminalError(f"the {vendor} config is invalid ({problems})") from None


def secret_field(**kwargs: Any) -> Any:
    """A write-only config field: stored encrypted, never shown back, named in `secret_fields`."""
    return Field(json_schema_extra={"secret": True}, **kwargs)


def http_url(value: str) -> str:
    """An http(s) URL with a host (a malformed one, e.g. `http://[::1`, is a ValueError)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    return value


class VendorConfig(BaseModel):
    """The base of every SaaS connector's config: the API's base URL (the vendor's own by
    default; tests point it at an emulator) and the country for phone numbers without `+`."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(max_length=2000)
    default_phone_region: str | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        pattern="^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 country for phone numbers written without +",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value.rstrip("/"))


class ConnectorConfig(BaseModel):
    """Types without a connector yet: any object; every value but `base_url` is secret."""

    model_config = ConfigDict(extra="allow")

    base_url: str | None = Field(default=None, max_length=2000)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)


def is_private_host(host: str) -> bool:
    """True for loopback, private, link-local and other non-public literal addresses."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: resolved and checked again at send time
    return not address.is_global
