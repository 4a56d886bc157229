"""Building a connector for a stored destination, by type."""

from __future__ import annotations

from typing import Any

from app.destinations.address_guard import allow_all, public_only
from app.destinations.base import Connector, TerminalError
from app.destinations.webhook import WebhookConnector
from models.enums import DestinationType


def build_connector(
    destination_type: DestinationType, config: dict[str, Any], *, allow_private: bool
) -> Connector:
    """The connector for `destination_type`; a type without one yet is a terminal error."""
    policy = allow_all if allow_private else public_only
    if destination_type is DestinationType.webhook:
        return WebhookConnector(config, policy=policy)
    raise TerminalError(f"the {destination_type.value} connector is not available yet")
