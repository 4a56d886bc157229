"""The contract every connector keeps, run against each one's strict emulator through the whole
product path: a triggered run builds the connector from the catalogue, the engine normalises,
diffs, batches and sends, and the emulator ends up holding exactly what the mode promises."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlmodel import col, select

from app.destinations.base import AccessDenied
from app.destinations.registry import build_connector, spec_for
from app.runtime import Runtime
from app.services import audiences, destinations, parent_models, runs, sources, syncs
from app.settings import Settings
from models import AudienceSync, RowResult, SyncRun, SyncRunEvent
from models.enums import DestinationType, RunStatus
from tests.destinations.contract.harness import HARNESSES, Harness
from tests.destinations.contract.people import (
    AUDIENCE_MIN_LTV,
    Person,
    people,
    save,
    unusable,
    write_people,
)
from tests.emulators.base import EmulatorBase, Scripted
from tests.factories import World, as_token, create_world
from tests.servers import serve_in_thread


@pytest.fixture(params=HARNESSES, ids=lambda h: h.id)
def harness(request: pytest.FixtureRequest) -> Harness:
    return request.param  # type: ignore[no-any-return]


#: The connectors whose vendor takes credentials (all but the webhook).
with_credentials = pytest.mark.parametrize(
    "harness",
    [h for h in HARNESSES if h.bad_config is not None],
    indirect=True,
    ids=lambda h: h.id,
)


@pytest.fixture
def emulator(harness: Harness) -> Iterator[EmulatorBase]:
    emulator = harness.emulator()
    yield emulator
    emulator.close()


@pytest.fixture
def base_url(emulator: EmulatorBase) -> Iterator[str]:
    with serve_in_thread(emulator.app()) as base:
        yield base


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The emulators listen on 127.0.0.1: private destinations are allowed here."""
    runtime = Runtime(settings.model_copy(update={"allow_private_destinations": True}))
    yield runtime
    await runtime.close()


@dataclass
class Stage:
    """One connector's world: the people source, and syncs to the emulator."""

    runtime: Runtime
    world: World
    harness: Harness
    emulator: EmulatorBase
    config: dict[str, Any]
    people: dict[int, Person]
    destination_id: str = ""
    audience_id: str = ""

    async def setup(self) -> Stage:
        path = write_people(self.runtime.settings.resolved_source_files_dir, self.people.values())
        self.path = path
        async with as_token(self.runtime, self.world.admin_token) as ctx:
            wid = self.world.workspace_id
            source = await sources.create_source(
                ctx,
                workspace_id=wid,
                data={
                    "name": "people",
                    "type": "sqlite",
                    "config": {"url": f"sqlite:///{path.name}"},
                },
            )
            model = await parent_models.create_model(
                ctx,
                workspace_id=wid,
                data={
                    "name": "people",
                    "source_id": str(source.id),
                    "table": "people",
                    "primary_key": "id",
                },
            )
            audience = await audiences.create_audience(
                ctx,
                workspace_id=wid,
                data={
                    "name": "valuable",
                    "model_id": str(model.id),
                    "filter": {"column": "ltv", "op": "gte", "value": AUDIENCE_MIN_LTV},
                },
            )
            destination = await destinations.create_destination(
                ctx,
                workspace_id=wid,
                data={"name": "vendor", "type": self.harness.type, "config": self.config},
            )
        self.destination_id, self.audience_id = str(destination.id), str(audience.id)
        return self

    async def sync(self, mode: str = "mirror", **config: Any) -> AudienceSync:
        async with as_token(self.runtime, self.world.admin_token) as ctx:
            return await syncs.create_audience_sync(
                ctx,
                workspace_id=self.world.workspace_id,
                data={
                    "name": f"to {self.harness.type}",
                    "audience_id": self.audience_id,
                    "destination_id": self.destination_id,
                    "field_mapping": self.harness.mapping,
                    "sync_mode": mode,
                    "config": config,
                },
            )

    def change(self, *changed: Person) -> None:
        for person in changed:
            self.people[person.id] = person
        save(self.path, changed)

    async def run(self, sync: AudienceSync, **options: bool) -> SyncRun:
        async with as_token(self.runtime, self.world.editor_token) as ctx:
            run = await runs.trigger_sync_run(
                ctx, workspace_id=self.world.workspace_id, sync_id=sync.id, data=options
            )
        await self.runtime.queue.drain()  # type: ignore[attr-defined]
        async with self.runtime.database.session() as session:
            finished = await session.get(SyncRun, run.id)
        assert finished is not None
        assert finished.query_size == (
            finished.planned["add"]
            + finished.planned["update"]
            + finished.unchanged
            + finished.invalid
        )
        return finished

    async def row_results(self, run: SyncRun) -> list[RowResult]:
        async with self.runtime.database.session() as session:
            rows = await session.execute(select(RowResult).where(col(RowResult.run_id) == run.id))
            return list(rows.scalars())

    def expected(self, members: list[Person] | None = None) -> set[str]:
        chosen = members if members is not None else [p for p in self.people.values() if p.member]
        return {self.harness.identity(p) for p in chosen}

    def held(self) -> set[str]:
        return set(self.emulator.members())


async def stage(
    runtime: Runtime, harness: Harness, emulator: EmulatorBase, base_url: str, crowd: list[Person]
) -> Stage:
    world = await create_world(runtime)
    config = harness.config(emulator, base_url)
    return await Stage(runtime, world, harness, emulator, config, {p.id: p for p in crowd}).setup()


async def test_check_accepts_its_credentials(
    harness: Harness, emulator: EmulatorBase, base_url: str
) -> None:
    good = build_connector(
        DestinationType(harness.type), harness.config(emulator, base_url), allow_private=True
    )
    try:
        await good.check()
    finally:
        await good.close()


@with_credentials
async def test_check_refuses_bad_credentials_without_echoing_them(
    harness: Harness, emulator: EmulatorBase, base_url: str
) -> None:
    kind = DestinationType(harness.type)
    assert harness.bad_config is not None
    bad_config = harness.bad_config(emulator, base_url)
    bad = build_connector(kind, bad_config, allow_private=True)
    try:
        with pytest.raises(AccessDenied) as refused:
            await bad.check()
    finally:
        await bad.close()
    assert harness.type in str(refused.value).lower() or "refused" in str(refused.value)
    for value in _secrets(bad_config, harness.type) | _secrets(
        harness.config(emulator, base_url), harness.type
    ):
        assert value not in str(refused.value)


def _secrets(config: dict[str, Any], kind: str) -> set[str]:
    """The values of the type's write-only config fields (tokens, keys, passwords)."""
    public = spec_for(DestinationType(kind)).public_config_fields
    found: set[str] = set()
    for key, value in config.items():
        if key in public:
            continue
        if isinstance(value, str) and value:
            found.add(value)
        elif isinstance(value, dict):
            found |= {str(v) for v in value.values() if v}
    return found


async def test_mirror_follows_every_membership_change(
    runtime: Runtime, harness: Harness, emulator: EmulatorBase, base_url: str
) -> None:
    crowd = people(12)
    s = await stage(runtime, harness, emulator, base_url, crowd)
    sync = await s.sync("mirror")
    members = [p for p in crowd if p.member]

    first = await s.run(sync)
    assert first.status == RunStatus.succeeded, first.error
    assert first.succeeded["add"] == len(members) and s.held() == s.expected()

    leaver, joiner, changed = members[0], crowd[3], members[1]
    assert not joiner.member
    s.change(leaver.leaving(), joiner.joining(), _replan(changed))
    second = await s.run(sync)
    assert second.status == RunStatus.succeeded, second.error
    assert second.succeeded["remove"] == 1 and second.succeeded["add"] == 1
    assert s.held() == s.expected()
    _assert_attribute(s, s.people[changed.id])

    s.change(leaver)  # re-enters
    third = await s.run(sync)
    assert third.succeeded == {"add": 1, "update": 0, "remove": 0}
    assert s.held() == s.expected()

    unchanged = await s.run(sync)
    assert sum(unchanged.planned.values()) == 0 and unchanged.unchanged == len(s.expected())


async def test_a_changed_identifier_leaves_the_vendor_holding_only_the_new_one(
    runtime: Runtime, harness: Harness, emulator: EmulatorBase, base_url: str
) -> None:
    crowd = people(8)
    s = await stage(runtime, harness, emulator, base_url, crowd)
    sync = await s.sync("mirror")
    await s.run(sync)
    assert s.held() == s.expected()
    mover, stayer = [p for p in crowd if p.member][:2]
    s.change(replace(mover, email=f"moved.{mover.id}@example.org"))
    moved = await s.run(sync)
    assert moved.status == RunStatus.succeeded, moved.error
    assert moved.succeeded == {"add": 0, "update": 1, "remove": 0}
    assert s.held() == s.expected()  # the vendor no longer holds the old address
    s.change(s.people[mover.id].leaving(), replace(stayer, phone="+1 650 253 9999"))
    left = await s.run(sync)
    assert left.status == RunStatus.succeeded, left.error
    assert left.succeeded["remove"] == 1 and s.held() == s.expected()


@pytest.mark.parametrize(
    "harness", [h for h in HARNESSES if h.id == "google_ads"], indirect=True, ids=lambda h: h.id
)
async def test_an_identity_change_the_vendor_refuses_is_reported_and_retried(
    runtime: Runtime, harness: Harness, emulator: EmulatorBase, base_url: str
) -> None:
    crowd = people(6)
    s = await stage(runtime, harness, emulator, base_url, crowd)
    sync = await s.sync("mirror")
    await s.run(sync)
    mover = next(p for p in crowd if p.member)
    # Google refuses the removal of the identity the member was sent under.
    emulator.reject.add(harness.identity(mover))
    s.change(replace(mover, email=f"moved.{mover.id}@example.org"))
    refused = await s.run(sync)
    assert refused.status == RunStatus.partial, refused.error
    assert refused.failed["update"] == 1 and refused.succeeded["update"] == 0
    async with runtime.database.session() as session:
        rows = (
            await session.execute(select(RowResult).where(col(RowResult.run_id) == refused.id))
        ).scalars()
        assert [(r.member_key, r.operation) for r in rows] == [(str(mover.id), "update")]
    emulator.reject.clear()
    retried = await s.run(sync)
    assert retried.status == RunStatus.succeeded, retried.error
    assert retried.succeeded["update"] == 1 and s.held() == s.expected()


def _replan(person: Person) -> Person:
    return replace(person, plan="enterprise")


def _assert_attribute(s: Stage, person: Person) -> None:
    if s.harness.attribute is None:
        return
    field, expected = s.harness.attribute
    stored = s.emulator.members()[s.harness.identity(person)]
    assert stored[field] == expected(person)


async def test_add_and_upsert_never_remove_and_remove_sends_only_exits(
    runtime: Runtime, harness: Harness, emulator: EmulatorBase, base_url: str
) -> None:
    crowd = people(10)
    s = await stage(runtime, harness, emulator, base_url, crowd)
    members = [p for p in crowd if p.member]
    adder, upserter = await s.sync("add"), await s.sync("upsert")
    await s.run(adder)
    remover = await s.sync("remove")
    baseline = await s.run(remover)  # records who is there; sends nothing
    assert sum(baseline.succeeded.values()) == 0 and s.held() == s.expected()

    leaver, changed = members[0], members[1]
    s.change(leaver.leaving(), _replan(changed))
    added = await s.run(adder)
    assert added.succeeded == {"add": 0, "update": 0, "remove": 0}
    assert s.harness.identity(leaver) in s.held()  # add mode never removes
    upserted = await s.run(upserter)
    assert upserted.succeeded["remove"] == 0 and upserted.status == RunStatus.succeeded
    _assert_attribute(s, s.people[changed.id])
    removed = await s.run(remover)
    assert removed.succeeded == {"add": 0, "update": 0, "remove": 1}
    assert s.held() == s.expected()


async def test_no_request_exceeds_the_vendor_batch_limit(
    runtime: Runtime, harness: Harness, emulator: EmulatorBase, base_url: str
) -> None:
    crowd = [p for p in people(harness.over_one_batch * 4 // 3 + 4) if p.member]
    crowd = crowd[: harness.over_one_batch]
    assert len(crowd) == harness.over_one_batch
    s = await stage(runtime, harness, emulator, base_url, crowd)
    sync = await s.sync("mirror", batch_size=100_000)  # asks for more than any vendor takes
    run = await s.run(sync)
    assert run.status == RunStatus.succeeded, run.error
    assert s.held() == s.expected()
    assert emulator.write_requests >= 2  # the limit split the audience


async def test_throttling_and_server_errors_are_retried(
    runtime: Runtime, harness: Harness, emulator: EmulatorBase, base_url: str
) -> None:
    crowd = people(8)
    s = await stage(runtime, harness, emulator, base_url, crowd)
    emulator.script.extend([Scripted(429, {"Retry-After": "0"}), Scripted(503)])
    run = await s.run(await s.sync("mirror"))
    assert run.status == RunStatus.succeeded, run.error
    assert s.held() == s.expected() and not emulator.script
    statuses = [e.status for e in emulator.log if e.items][:3]
    assert statuses[:2] == [429, 503] and 200 <= statuses[2] < 300  # Braze accepts with 201


async def test_refused_people_are_recorded_and_retried_next_run(
    runtime: Runtime, harness: Harness, emulator: EmulatorBase, base_url: str
) -> None:
    crowd = people(9)
    s = await stage(runtime, harness, emulator, base_url, crowd)
    members = [p for p in crowd if p.member]
    refused, poisoned = members[0], members[1]
    emulator.reject.add(harness.identity(refused))
    emulator.poison.add(harness.identity(poisoned))
    sync = await s.sync("mirror")
    run = await s.run(sync)
    assert run.status == RunStatus.partial
    assert run.failed["add"] == 2 and run.succeeded["add"] == len(members) - 2
    results = {(r.member_key, r.status) for r in await s.row_results(run)}
    assert results == {(str(refused.id), "rejected"), (str(poisoned.id), "rejected")}
    assert s.held() == s.expected([p for p in members if p not in (refused, poisoned)])

    emulator.reject.clear()
    emulator.poison.clear()
    again = await s.run(sync)
    assert again.status == RunStatus.succeeded and again.succeeded["add"] == 2
    assert s.held() == s.expected()


async def test_people_without_a_usable_identifier_are_invalid_and_never_sent(
    runtime: Runtime, harness: Harness, emulator: EmulatorBase, base_url: str
) -> None:
    crowd = [*people(6), unusable(50)]
    s = await stage(runtime, harness, emulator, base_url, crowd)
    run = await s.run(await s.sync("mirror"))
    valid = [p for p in crowd if p.member and p.id != 50]
    if not harness.normalises:
        assert run.invalid == 0 and s.held() == s.expected()  # sent as it is
        return
    assert run.status == RunStatus.partial and run.invalid == 1
    [result] = await s.row_results(run)
    assert (result.member_key, result.status) == ("50", "invalid") and result.error
    assert s.held() == s.expected(valid)


@with_credentials
async def test_refused_credentials_fail_the_run_without_leaking_them(
    runtime: Runtime,
    harness: Harness,
    emulator: EmulatorBase,
    base_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert harness.bad_config is not None
    crowd = people(5)
    bad = harness.bad_config(emulator, base_url)
    world = await create_world(runtime)
    s = await Stage(runtime, world, harness, emulator, bad, {p.id: p for p in crowd}).setup()
    with caplog.at_level(logging.DEBUG):
        run = await s.run(await s.sync("mirror"))
    assert run.status == RunStatus.failed and run.error is not None
    assert run.error["code"] == "destination_access_denied"
    assert emulator.members() == {}
    async with runtime.database.session() as session:
        events = (
            await session.execute(select(SyncRunEvent).where(col(SyncRunEvent.run_id) == run.id))
        ).scalars()
        texts = [str(e.payload) for e in events]
    everything = "\n".join([str(run.error), *texts, caplog.text])
    for value in _secrets(bad, harness.type):
        assert value not in everything
