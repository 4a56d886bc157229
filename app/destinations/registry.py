"""The destination catalogue: every type's declaration, and building a connector by type."""

from __future__ import annotations

from typing import Any

from app.destinations import braze, google_ads, hubspot, klaviyo, mailchimp, meta, postgres, webhook
from app.destinations.address_guard import allow_all, public_only
from app.destinations.base import Connector, TerminalError
from app.destinations.config import ConnectorConfig
from app.destinations.rate_limit import account_key
from app.destinations.spec import BuildOptions, DestinationSpec
from models.enums import DestinationType, OnExit

_AVAILABLE: tuple[DestinationSpec, ...] = (
    webhook.SPEC,
    hubspot.SPEC,
    google_ads.SPEC,
    meta.SPEC,
    braze.SPEC,
    klaviyo.SPEC,
    mailchimp.SPEC,
    postgres.SPEC,
)


def _unavailable(kind: DestinationType) -> DestinationSpec:
    return DestinationSpec(
        kind=kind,
        title=kind.value,
        description="No connector yet: destinations may be stored, runs to them fail.",
        config=ConnectorConfig,
        build=None,
        max_batch_size=1,
        default_batch_size=1,
    )


SPECS: dict[DestinationType, DestinationSpec] = {
    kind: next((spec for spec in _AVAILABLE if spec.kind is kind), None) or _unavailable(kind)
    for kind in DestinationType
}


def spec_for(destination_type: DestinationType) -> DestinationSpec:
    return SPECS[destination_type]


def public_view(destination_type: DestinationType, config: dict[str, Any]) -> dict[str, Any]:
    public = spec_for(destination_type).public_config_fields
    return {key: value for key, value in config.items() if key in public}


def secret_fields(destination_type: DestinationType, config: dict[str, Any]) -> list[str]:
    public = spec_for(destination_type).public_config_fields
    return sorted(key for key, value in config.items() if key not in public and value)


def build_connector(
    destination_type: DestinationType,
    config: dict[str, Any],
    *,
    allow_private: bool,
    on_exit: OnExit = OnExit.remove,
) -> Connector:
    """The connector for `destination_type`; a type without one yet is a terminal error."""
    spec = spec_for(destination_type)
    if spec.build is None:
        raise TerminalError(f"the {destination_type.value} connector is not available yet")
    options = BuildOptions(
        policy=allow_all if allow_private else public_only,
        on_exit=on_exit,
        account=account_key(spec, config),
    )
    return spec.build(config, options)
