"""How much of a vendor's documented request budget a real sync uses — issue 6, Benchmark.

    python -m bench.budget --members 100000 [--only hubspot|braze] [--json]

For each connector (HubSpot, Braze) a mirror sync of N members runs through the real engine on
an in-process runtime (SQLite metadata, a SQLite people source, the run queued and executed in
this process) against the vendor's emulator from `tests/emulators/`, which enforces the
documented window (HubSpot 100 requests / 10 s, Braze 3 000 / 3 s) and answers 429 beyond it.
The emulator runs in a process of its own (`--serve-emulator NAME`, uvicorn with httptools),
as the vendor is not in the engine's process in production.
Prints, per connector: `members`, `requests` (every request the emulator saw), `elapsed_s`
(the run's `started_at` → `finished_at`), `allowed_requests` (the window's rate times elapsed),
`budget_used` (requests / allowed), `throttled` (429s from the window), the run's `status` and
`held` (members the emulator holds afterwards), `ms_per_request` (elapsed / requests: the
engine's round trip when the budget is not the bound), `process_cpu_s` (this process's CPU
during the sync) and `emulator_cpu_s` (the emulator process's). Everything lives in a
temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from app.db import migrate
from app.runtime import Runtime
from app.services import audiences, destinations, parent_models, runs, sources, syncs
from app.services.workspaces import bootstrap
from app.settings import Settings
from models import SyncRun
from tests.destinations.contract.harness import Harness
from tests.destinations.contract.harnesses.braze import HARNESS as BRAZE
from tests.destinations.contract.harnesses.hubspot import HARNESS as HUBSPOT
from tests.destinations.contract.people import person, write_people

HARNESSES = {"hubspot": HUBSPOT, "braze": BRAZE}


#: The emulator process's own route for what it saw (not a vendor route; never logged).
STATS = "/_bench/stats"


def serve_emulator(name: str) -> None:
    """The emulator process: serves HARNESSES[name]'s emulator on uvicorn's default (httptools)
    protocol on a free port, after printing one JSON line, {"base_url", "config"}. (The tests'
    h11 server waits out TCP's delayed ACK, about 40 ms a request.)"""
    harness = HARNESSES[name]
    emulator = harness.emulator()

    async def stats(_: Request) -> JSONResponse:
        return JSONResponse(
            {
                "requests": len(emulator.log),
                "throttled": emulator.throttled,
                "held": len(emulator.members()),
                "cpu_s": time.process_time(),
            }
        )

    app = Starlette(routes=[Route(STATS, stats), Mount("/", app=emulator.app())])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    print(json.dumps({"base_url": base_url, "config": harness.config(emulator, base_url)}))
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


@contextmanager
def emulator_process(name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Starts `serve_emulator(name)` in a process of its own; yields its base URL and the
    connector config for it; stops it at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.budget", "--serve-emulator", name],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        base_url = started["base_url"]
        deadline = time.monotonic() + 30
        while True:  # the port is bound before uvicorn listens on it
            try:
                emulator_stats(base_url)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield base_url, started["config"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def emulator_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url}{STATS}", timeout=10) as answer:
        stats: dict[str, Any] = json.loads(answer.read())
    return stats


async def measure(harness: Harness, members: int, folder: Path) -> dict[str, Any]:
    """One mirror sync of `members` people (all in the audience) to the harness's emulator."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'signalsmith.db'}",
        source_files_dir=folder / "sources",
        secret_key=Fernet.generate_key().decode(),
        allow_private_destinations=True,
        redis_url=None,
        log_level="WARNING",
    )
    await asyncio.to_thread(migrate, settings.database_url)
    path = write_people(folder / "sources", (person(i, ltv=1000.0) for i in range(1, members + 1)))
    window = harness.emulator().window
    assert window is not None
    with emulator_process(harness.type) as (base_url, config):
        before = emulator_stats(base_url)
        cpu = time.process_time()
        run = await _sync(settings, path, harness, config)
        cpu = time.process_time() - cpu
        after = emulator_stats(base_url)
    assert run.started_at is not None and run.finished_at is not None
    elapsed = (run.finished_at - run.started_at).total_seconds()
    requests = after["requests"]
    allowed = window.requests / window.seconds * elapsed
    return {
        "benchmark": "budget",
        "connector": harness.type,
        "members": members,
        "requests": requests,
        "elapsed_s": round(elapsed, 2),
        "allowed_requests": round(allowed),
        "budget_used": round(requests / allowed, 3),
        "throttled": after["throttled"],
        "status": str(run.status),
        "held": after["held"],
        "ms_per_request": round(elapsed / requests * 1000, 2),
        "process_cpu_s": round(cpu, 2),
        "emulator_cpu_s": round(after["cpu_s"] - before["cpu_s"], 2),
        "window": f"{window.requests}/{window.seconds:g}s",
    }


async def _sync(
    settings: Settings, path: Path, harness: Harness, config: dict[str, Any]
) -> SyncRun:
    runtime = Runtime(settings)
    try:
        async with runtime.database.session() as session:
            boot = await bootstrap(session, workspace_name="bench", email="bench@example.com")
        wid = boot.workspace.id
        async with runtime.context(f"Bearer {boot.token}") as ctx:
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
                    "name": "everyone",
                    "model_id": str(model.id),
                    "filter": {"column": "ltv", "op": "gte", "value": 500},
                },
            )
            destination = await destinations.create_destination(
                ctx,
                workspace_id=wid,
                data={"name": harness.type, "type": harness.type, "config": config},
            )
            sync = await syncs.create_audience_sync(
                ctx,
                workspace_id=wid,
                data={
                    "name": "bench",
                    "audience_id": str(audience.id),
                    "destination_id": str(destination.id),
                    "field_mapping": harness.mapping,
                    "sync_mode": "mirror",
                },
            )
            triggered = await runs.trigger_sync_run(ctx, workspace_id=wid, sync_id=sync.id)
        await runtime.queue.drain()  # type: ignore[attr-defined]
        async with runtime.database.session() as session:
            run = await session.get(SyncRun, triggered.id)
        assert run is not None
        return run
    finally:
        await runtime.close()


async def main(arguments: argparse.Namespace) -> None:
    for name in arguments.only or list(HARNESSES):
        with tempfile.TemporaryDirectory(prefix=f"signalsmith-budget-{name}-") as folder:
            result = await measure(HARNESSES[name], arguments.members, Path(folder))
        if arguments.json:
            print(json.dumps(result), flush=True)
        else:
            print("  ".join(f"{key}={value}" for key, value in result.items()), flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.budget", description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--only", action="append", choices=sorted(HARNESSES))
    parser.add_argument("--json", action="store_true", help="one JSON line per connector")
    parser.add_argument("--serve-emulator", choices=sorted(HARNESSES), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    arguments = parse(argv)
    if arguments.serve_emulator:
        serve_emulator(arguments.serve_emulator)
    else:
        asyncio.run(main(arguments))


if __name__ == "__main__":
    run()
