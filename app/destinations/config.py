"""Per-type destination configuration: what is accepted, what is secret (write-only)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.enums import DestinationType


def http_url(value: str) -> str:
    """An http(s) URL with a host (a malformed one, e.g. `http://[::1`, is a ValueError)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    return value


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict)
    secret: str | None = Field(default=None, min_length=1, max_length=1000)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)


class ConnectorConfig(BaseModel):
    """Connectors that land later: any object; every value is treated as secret."""

    model_config = ConfigDict(extra="allow")

    base_url: str | None = Field(default=None, max_length=2000)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)


@dataclass(frozen=True)
class ConfigSpec:
    shape: type[BaseModel]
    #: Fields shown back to callers; everything else is write-only.
    public_fields: frozenset[str]


CONFIG_SPECS: dict[DestinationType, ConfigSpec] = {
    DestinationType.webhook: ConfigSpec(WebhookConfig, frozenset({"url"})),
}
DEFAULT_SPEC = ConfigSpec(ConnectorConfig, frozenset({"base_url"}))


def spec_for(destination_type: DestinationType) -> ConfigSpec:
    return CONFIG_SPECS.get(destination_type, DEFAULT_SPEC)


def public_view(destination_type: DestinationType, config: dict[str, Any]) -> dict[str, Any]:
    public = spec_for(destination_type).public_fields
    return {key: value for key, value in config.items() if key in public}


def secret_fields(destination_type: DestinationType, config: dict[str, Any]) -> list[str]:
    public = spec_for(destination_type).public_fields
    return sorted(key for key, value in config.items() if key not in public and value)


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
