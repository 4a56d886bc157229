"""PostgreSQL in the contract suite: the emulator is a real database on the test server, its
table keyed by the member key (a `bigint` primary key, so keys cross a type), the mapped
columns stored as given (nothing is normalised). Credentials are refused by the server itself
(a role that does not exist). `reject` cannot mean a row refused inside a committed
transaction: it refuses its batch like `poison`, and bisection isolates it (see the
emulator)."""

from __future__ import annotations

from typing import Any

from tests.destinations.contract.harness import Harness
from tests.emulators.base import EmulatorBase
from tests.emulators.postgres import KEY, TABLE, PostgresEmulator

MAX_ROWS = 10_000


def _config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    assert isinstance(emulator, PostgresEmulator)
    return {"url": emulator.url, "table": f"public.{TABLE}", "key_column": KEY}


def _bad_config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    assert isinstance(emulator, PostgresEmulator)
    url = (
        f"postgresql://signalsmith_refused:refused-password-0000@{emulator.host}:{emulator.port}"
        f"/{emulator.database}"
    )
    return {**_config(emulator, base), "url": url}


HARNESS = Harness(
    type="postgres",
    emulator=PostgresEmulator,
    config=_config,
    bad_config=_bad_config,
    mapping=[
        {"source_column": "email", "destination_field": "email"},
        {"source_column": "phone", "destination_field": "phone"},
        {"source_column": "first_name", "destination_field": "first_name"},
        {"source_column": "last_name", "destination_field": "last_name"},
        {"source_column": "plan", "destination_field": "plan"},
        {"source_column": "ltv", "destination_field": "ltv"},
    ],
    identity=lambda p: str(p.id),
    attribute=("plan", lambda p: p.plan),
    normalises=False,
    over_one_batch=MAX_ROWS + 1,
)
