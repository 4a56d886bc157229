"""How the shared contract suite drives each connector: its emulator, a valid and a refused
config, a field mapping over the contract people, and how the emulator names a person.

A connector joins the suite with a module in `harnesses/` that defines `HARNESS`; every such
module is found and run, so adding a connector touches no shared file here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.destinations.contract.people import Person
from tests.emulators.base import EmulatorBase

Config = Callable[[EmulatorBase, str], dict[str, Any]]


@dataclass(frozen=True)
class Harness:
    type: str
    emulator: Callable[[], EmulatorBase]
    #: A config that works against the emulator served at the given base URL.
    config: Config
    mapping: list[dict[str, str]]
    #: The emulator's name for a person (the key of `EmulatorBase.members()`).
    identity: Callable[[Person], str]
    #: A config whose credentials the emulator refuses (None: the type has no credentials).
    bad_config: Config | None = None
    #: (field as the emulator stores it, expected value) proving an update landed; None for
    #: platforms that keep nothing but identifiers (ad audiences).
    attribute: tuple[str, Callable[[Person], Any]] | None = None
    #: Normalises identifiers (rows without a usable one are invalid, never sent).
    normalises: bool = True
    #: People in one audience that need more than one request at the vendor's batch limit.
    over_one_batch: int = 0
    #: How the suite names this harness (default: the type; a second harness of a type, say
    #: other credentials, needs a name of its own).
    name: str = ""

    @property
    def id(self) -> str:
        return self.name or self.type


def discover() -> list[Harness]:
    """Every connector's harness, in module-name order."""
    from tests.destinations.contract import harnesses

    found = []
    for module in sorted(pkgutil.iter_modules(harnesses.__path__), key=lambda m: m.name):
        loaded = importlib.import_module(f"{harnesses.__name__}.{module.name}")
        found.append(loaded.HARNESS)
    return found


HARNESSES: list[Harness] = discover()
