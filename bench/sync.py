"""A whole sync from PostgreSQL into a local webhook receiver, through the real engine on a
real `signalsmith worker` (arq over Redis, PostgreSQL metadata) — issue 4, Benchmark.

    python -m bench.sync --members 1000000 [--json]

Prints `members`, `floor_s` (COPY of the audience query into nothing, same run),
`first_sync_s`, `noop_rerun_s`, `churn_rerun_s` (1 % of members changed), `peak_rss_mb` of the
worker (and at the first sync), and `trigger_to_running_ms` (median over the runs). Creates
its own databases and Redis queue, and removes them at the end whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import uvicorn
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from cryptography.fernet import Fernet
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.db import migrate
from app.queue import deserialize_job, run_job_id, serialize_job
from app.runtime import Runtime
from app.services import audiences, destinations, parent_models, runs, sources, syncs
from app.services.workspaces import bootstrap
from app.settings import Settings
from app.sources.connection import open_source
from app.sources.filters import compile_audience
from app.sources.introspect import describe_model
from app.sources.model import ModelSpec
from bench.membership import (
    DEFAULT_URL,
    FILTER,
    _NoOtherModels,
    bench_database,
    copy_sql,
    load,
    rows_for,
    time_floor,
)
from bench.profiling import start_profiler
from models import SyncRun
from models.enums import SourceType

REDIS_URL = os.environ.get("SIGNALSMITH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


class Receiver:
    """The fastest honest webhook: reads each batch and acknowledges it."""

    def __init__(self) -> None:
        self.records = 0

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.records += body.count(b"},{") + 1 if body.endswith(b"}]}") else 0
        return Response(b"{}", media_type="application/json")


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    """CPU seconds used so far by every PostgreSQL process of this machine (the source's and
    the metadata's backends; a server elsewhere counts nothing)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                name, rest = stat.read().split(" (", 1)[1].rsplit(")", 1)
        except OSError:
            continue
        if name == "postgres":
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    rows = rows_for(arguments.members)
    async with bench_database(arguments.url) as source_url, bench_database(arguments.url) as meta:
        await load(source_url, rows)
        metadata_url = meta.replace("postgresql://", "postgresql+asyncpg://", 1)
        await asyncio.to_thread(migrate, metadata_url)
        settings = Settings(
            database_url=metadata_url,
            redis_url=REDIS_URL,
            queue_name=f"signalsmith:bench:{uuid.uuid4().hex[:8]}",
            secret_key=Fernet.generate_key().decode(),
            allow_private_destinations=True,
        )
        async with open_source(settings, SourceType.postgres, source_url) as connection:
            columns = await describe_model(
                connection, query=None, table="customers", primary_key="id"
            )
            query = await compile_audience(
                FILTER,
                ModelSpec(primary_key="id", columns=columns, table="customers"),
                _NoOtherModels(),
            )
        floor = await time_floor(source_url, copy_sql(query))
        receiver = Receiver()
        app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
        with serve(app) as hook_url:
            return {
                **await sync_runs(settings, source_url, hook_url, arguments),
                "floor_s": round(floor.seconds, 3),
                "rows": rows,
            }


async def create_webhook_sync(
    runtime: Runtime,
    source_url: str,
    hook_url: str,
    *,
    mode: str,
    config: dict[str, Any],
    columns: list[str],
) -> tuple[str, uuid.UUID, uuid.UUID]:
    """A workspace, its admin token, and a sync of the bench audience (the `customers` of
    `source_url`, filtered by `FILTER`) into the webhook at `hook_url`, mapping `columns`:
    (token, workspace id, sync id)."""
    async with runtime.database.session() as session:
        boot = await bootstrap(session, workspace_name="bench", email="bench@example.com")
    wid = boot.workspace.id
    async with runtime.context(f"Bearer {boot.token}") as ctx:
        source = await sources.create_source(
            ctx,
            workspace_id=wid,
            data={"name": "pg", "type": "postgres", "config": {"url": source_url}},
        )
        model = await parent_models.create_model(
            ctx,
            workspace_id=wid,
            data={
                "name": "customers",
                "source_id": str(source.id),
                "table": "customers",
                "primary_key": "id",
            },
        )
        audience = await audiences.create_audience(
            ctx,
            workspace_id=wid,
            data={"name": "bench", "model_id": str(model.id), "filter": FILTER},
        )
        hook = await destinations.create_destination(
            ctx,
            workspace_id=wid,
            data={"name": "hook", "type": "webhook", "config": {"url": hook_url}},
        )
        sync = await syncs.create_audience_sync(
            ctx,
            workspace_id=wid,
            data={
                "name": "bench",
                "audience_id": str(audience.id),
                "destination_id": str(hook.id),
                "sync_mode": mode,
                "config": config,
                "field_mapping": [
                    {"source_column": column, "destination_field": column} for column in columns
                ],
            },
        )
    return boot.token, wid, sync.id


async def sync_runs(
    settings: Settings, source_url: str, hook_url: str, arguments: argparse.Namespace
) -> dict[str, Any]:
    runtime = Runtime(settings)
    config: dict[str, Any] = {"batch_size": arguments.batch_size}
    if arguments.concurrency:
        config["concurrency"] = arguments.concurrency
    token, wid, sync_id = await create_webhook_sync(
        runtime, source_url, hook_url, mode="mirror", config=config, columns=["email", "plan"]
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIGNALSMITH_")},
        "SIGNALSMITH_DATABASE_URL": settings.database_url,
        "SIGNALSMITH_REDIS_URL": REDIS_URL,
        "SIGNALSMITH_QUEUE_NAME": settings.queue_name,
        "SIGNALSMITH_SECRET_KEY": settings.secret_key or "",
        "SIGNALSMITH_ALLOW_PRIVATE_DESTINATIONS": "true",
        "SIGNALSMITH_LOG_LEVEL": "WARNING",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker", env=env
    )
    pool = await create_pool(
        RedisSettings.from_dsn(REDIS_URL),
        default_queue_name=settings.queue_name,
        job_serializer=serialize_job,
        job_deserializer=deserialize_job,
    )
    # A run triggered while the worker still starts would time its start-up, not its pickup.
    ping = await pool.enqueue_job("ping", _queue_name=settings.queue_name)
    assert ping is not None
    await ping.result(timeout=60)
    finished: list[SyncRun] = []
    cpu: list[float] = []
    server_cpu: list[float] = []

    async def one_run(name: str) -> SyncRun:
        path = f"{arguments.profile}.{name}" if arguments.profile else None
        profiler = await start_profiler(worker.pid, path)
        try:
            return await timed_run()
        finally:
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                await profiler.wait()

    async def timed_run() -> SyncRun:
        before, server_before = cpu_s(worker.pid), postgres_cpu_s()
        async with runtime.context(f"Bearer {token}") as ctx:
            run = await runs.trigger_sync_run(ctx, workspace_id=wid, sync_id=sync_id)
        await Job(
            run_job_id(run.id), pool, _queue_name=settings.queue_name, _deserializer=deserialize_job
        ).result(timeout=3600)
        async with runtime.database.session() as session:
            done = await session.get(SyncRun, run.id)
        assert done is not None and done.status == "succeeded", done
        finished.append(done)
        cpu.append(round(cpu_s(worker.pid) - before, 2))
        server_cpu.append(round(postgres_cpu_s() - server_before, 2))
        return done

    def seconds(run: SyncRun) -> float:
        assert run.started_at and run.finished_at
        return round((run.finished_at - run.started_at).total_seconds(), 3)

    try:
        first = await one_run("first")
        rss_after_first = rss_mb(worker.pid, "VmHWM")
        refresh = None
        if arguments.stale_digests:  # held as by an older version: no line digests
            async with runtime.database.engine.begin() as connection:
                await connection.execute(text("UPDATE synced_members SET row_digest = NULL"))
            refresh = await one_run("refresh")
        noop = await one_run("noop")
        connection = await asyncpg.connect(source_url)
        try:
            await connection.execute("UPDATE customers SET plan = plan || '+' WHERE id % 100 = 7")
        finally:
            await connection.close()
        churn = await one_run("churn")
        peak = rss_mb(worker.pid, "VmHWM")
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()
        await pool.delete(settings.queue_name)
        await pool.aclose()
        await runtime.close()
    latency = [
        (r.started_at - r.created_at).total_seconds() * 1000 for r in finished if r.started_at
    ]
    names = ["first", "refresh", "noop", "churn"] if refresh else ["first", "noop", "churn"]
    more = {"refresh_rerun_s": seconds(refresh)} if refresh else {}
    return {
        "benchmark": "sync",
        "members": first.query_size,
        "first_sync_s": seconds(first),
        "first_rows_per_s": round(first.query_size / seconds(first)),
        "noop_rerun_s": seconds(noop),
        "churn_rerun_s": seconds(churn),
        "churn_updates": churn.succeeded["update"],
        **more,
        "peak_rss_mb": round(peak, 1),
        "rss_after_first_mb": round(rss_after_first, 1),
        "trigger_to_running_ms": round(statistics.median(latency), 1),
        "trigger_to_running_each_ms": [round(ms, 1) for ms in latency],
        "worker_cpu_s": dict(zip(names, cpu, strict=True)),
        "postgres_cpu_s": dict(zip(names, server_cpu, strict=True)),
        "batch_size": arguments.batch_size,
        "concurrency": arguments.concurrency or "default",
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--concurrency", type=int, default=0, help="the sync's config.concurrency (0: default)"
    )
    parser.add_argument(
        "--stale-digests",
        action="store_true",
        help="after the first sync, drop the held line digests (as an older version left "
        "them) and time the run that writes them again (refresh_rerun_s)",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL admin URL")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument(
        "--profile", metavar="PATH", help="py-spy the worker during each run (PATH.first, …)"
    )
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    arguments = parse(argv)
    result = asyncio.run(main(arguments))
    ratios = {
        "noop_over_floor": round(result["noop_rerun_s"] / result["floor_s"], 2),
        "churn_over_floor": round(result["churn_rerun_s"] / result["floor_s"], 2),
    }
    result.update(ratios)
    if arguments.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}  {value}")


if __name__ == "__main__":
    run()
