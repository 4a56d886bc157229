"""Executing a queued run: the job function behind both the in-process queue and arq."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from app.destinations.base import AccessDenied, TerminalError
from app.destinations.registry import build_connector, spec_for
from app.destinations.spec import DestinationSpec
from app.errors import AppError
from app.events import publisher
from app.runs import TERMINAL_STATUSES, IllegalTransition, transition_run
from app.runtime import Runtime
from app.services.audience_members import stream_audience_member_batches
from app.sync.engine import EngineInput, SyncEngine
from app.sync.outcome import apply_run_outcome
from app.sync.row_digest import RowDigests, recipe
from models import Audience, AudienceSync, Destination, ParentModel, SyncRun
from models.columns import utcnow
from models.enums import DestinationType, OnExit, RunPhase, RunStatus

log = logging.getLogger("signalsmith.runs")
#: Seconds between heartbeats of a running run (the reaper waits 60 s).
HEARTBEAT_INTERVAL = 10.0


class _Unrunnable(Exception):
    """The run cannot start: it ends `failed` with this code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


async def execute_run(runtime: Runtime, run_id: uuid.UUID) -> None:
    """Run `run_id` to its end. The run is claimed first (queued → running, compare-and-set),
    so however often it is enqueued and by whom, one executor runs it; a run that is no
    longer queued is left alone. Whatever goes wrong afterwards ends the run `failed`."""
    run = await _claim(runtime, run_id)
    if run is None:
        return
    beating = asyncio.create_task(_heartbeat(runtime, run_id))
    try:
        await _execute(runtime, run)
    except _Unrunnable as exc:
        await _fail(runtime, run_id, exc.code, exc.message)
    except AccessDenied as exc:
        await _fail(runtime, run_id, "destination_access_denied", str(exc))
    except AppError as exc:  # the source refused the query, the audience no longer compiles …
        await _fail(runtime, run_id, exc.code, exc.message)
    except Exception:
        log.exception("run failed unexpectedly", extra={"run_id": str(run_id)})
        await _fail(runtime, run_id, "internal_error", "the run failed unexpectedly")
    finally:
        beating.cancel()


async def _claim(runtime: Runtime, run_id: uuid.UUID) -> SyncRun | None:
    async with runtime.database.session() as session:
        run = await session.get(SyncRun, run_id)
        if run is None or run.status != RunStatus.queued:
            return None
        try:
            return await transition_run(
                session,
                run,
                RunStatus.running,
                phase=RunPhase.querying,
                publish=publisher(runtime.events, run.workspace_id),
            )
        except IllegalTransition:
            return None  # another executor claimed it, or it was cancelled meanwhile


async def _execute(runtime: Runtime, run: SyncRun) -> None:
    async with runtime.database.session() as session:
        sync = await session.get(AudienceSync, run.sync_id)
        destination = await session.get(Destination, sync.destination_id) if sync else None
        audience = await session.get(Audience, sync.audience_id) if sync else None
        model = await session.get(ParentModel, audience.model_id) if audience else None
    if sync is None or destination is None or audience is None or model is None:
        raise _Unrunnable("missing_object", "the sync lost a referenced object")
    numeric = any(
        column["name"] == model.primary_key and column["type"] == "number"
        for column in model.columns or []
    )
    columns = sorted({model.primary_key, *(m["source_column"] for m in sync.field_mapping)})
    kind = DestinationType(destination.type)
    config = runtime.cipher.decrypt(destination.config_encrypted)
    spec, region = spec_for(kind), config.get("default_phone_region")
    try:
        connector = build_connector(
            kind,
            config,
            allow_private=runtime.settings.allow_private_destinations,
            on_exit=OnExit(sync.config.get("on_exit") or OnExit.remove),
        )
    except TerminalError as exc:
        raise _Unrunnable("destination_unavailable", str(exc)) from None
    members = stream_audience_member_batches(
        runtime,
        workspace_id=sync.workspace_id,
        audience_id=audience.id,
        split_group_id=sync.split_group_id,
        columns=columns,
        lines=not run.retry_failed_only,
    )
    fields = [item["destination_field"] for item in sync.field_mapping]
    mapped = [spec.by_name[name] for name in fields if name in spec.by_name]
    job = EngineInput(
        run_id=run.id,
        sync=sync,
        members=members,
        numeric_keys=numeric,
        connector=connector,
        full_resync=run.full_resync,
        dry_run=run.dry_run,
        retry_failed_only=run.retry_failed_only,
        timeout=runtime.settings.run_timeout_seconds,
        publish=publisher(runtime.events, sync.workspace_id),
        # Fields the destination neither normalises nor requires go as mapped.
        prepare=(
            (lambda payload: spec.prepare(payload, region))
            if spec.needs_identifier or any(f.normalizer for f in mapped)
            else None
        ),
        identify=spec.identifiers if any(f.identifier for f in mapped) else None,
        concurrency=concurrency_of(spec, sync.config),
        row_digests=RowDigests(
            recipe(sync.field_mapping, kind.value, {"default_phone_region": region})
        ),
    )
    try:
        await SyncEngine(runtime.database.engine, job).run(run)
    finally:
        await connector.close()


def concurrency_of(spec: DestinationSpec, config: dict[str, Any]) -> int:
    """Batches a run keeps in flight: the sync's `config.concurrency`, else the destination
    type's default; always 1 for a type that sends one batch at a time."""
    asked = config.get("concurrency")
    if spec.concurrency <= 1 or not asked:
        return max(1, spec.concurrency)
    return int(asked)


async def _heartbeat(runtime: Runtime, run_id: uuid.UUID) -> None:
    """Tell the reaper this run's worker is alive, even while the source is slow; a missed
    beat (the database briefly away) is not the end of the run."""
    while True:
        await asyncio.sleep(HEARTBEAT_INTERVAL)
        try:
            async with runtime.database.session() as session:
                await session.execute(
                    update(SyncRun).where(col(SyncRun.id) == run_id).values(heartbeat_at=utcnow())
                )
                await session.commit()
        except Exception:
            log.warning("could not record a heartbeat", exc_info=True)


async def _fail(runtime: Runtime, run_id: uuid.UUID, code: str, message: str) -> None:
    async with runtime.database.session() as session:
        run = await session.get(SyncRun, run_id)
        if run is None or run.status in TERMINAL_STATUSES:
            return
        error = {"code": code, "message": message}
        sync = await session.get(AudienceSync, run.sync_id)
        if sync is not None:
            apply_run_outcome(sync, run.id, RunStatus.failed, error)
        await transition_run(
            session,
            run,
            RunStatus.failed,
            error=error,
            publish=publisher(runtime.events, run.workspace_id),
        )
