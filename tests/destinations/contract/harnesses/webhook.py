"""The webhook in the contract suite: its peer takes no credentials, normalises nothing."""

from __future__ import annotations

from typing import Any

from tests.destinations.contract.harness import Harness
from tests.emulators.base import EmulatorBase
from tests.emulators.webhook import WebhookEmulator


def _webhook_config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    return {"url": f"{base}/hook", "secret": emulator.token}


HARNESS = Harness(
    type="webhook",
    emulator=WebhookEmulator,
    config=_webhook_config,
    mapping=[
        {"source_column": "id", "destination_field": "id"},
        {"source_column": "email", "destination_field": "email"},
        {"source_column": "plan", "destination_field": "plan"},
    ],
    identity=lambda p: str(p.id),
    attribute=("plan", lambda p: p.plan),
    normalises=False,
    over_one_batch=10_001,
)
