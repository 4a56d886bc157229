"""Live run events fanned out to many WebSocket subscribers — issue 5, Benchmark.

    python -m bench.fanout --subscribers 1000 [--json]

One `signalsmith serve` process (PostgreSQL metadata, Redis) serves N graphql-transport-ws
subscribers of `syncRunEvents`, all opened by this process. A `signalsmith worker` process
executes the run they follow: a real sync from PostgreSQL into a webhook receiver (in this
process) that waits `--batch-delay-ms` per batch, so the run publishes about one progress
event per batch. Prints `subscribers`, `p50_ms` and `p99_ms` (from publish to receipt, over
every event of the run and every subscriber) and `kb_per_subscriber` (growth of the API
process's VmRSS from before the subscribers connect to when all are subscribed, over N).
Creates its own databases and Redis queue, and removes them at the end whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import signal
import socket
import statistics
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvloop
from cryptography.fernet import Fernet
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from app.db import migrate
from app.runtime import Runtime
from app.services import runs
from app.settings import Settings
from bench.membership import DEFAULT_URL, bench_database, load, rows_for
from bench.profiling import start_profiler
from bench.sync import create_webhook_sync, rss_mb, serve

REDIS_URL = os.environ.get("SIGNALSMITH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
EVENTS = """subscription ($runId: ID!) {
  syncRunEvents(runId: $runId) { runId seq type payload at }
}"""
PROTOCOL = Subprotocol("graphql-transport-ws")
#: Sockets opened at once while the subscribers connect.
CONNECTING = 64


class PacedReceiver:
    """A webhook that takes `delay` seconds to acknowledge each batch (the run's pace)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def hook(self, request: Request) -> Response:
        await request.body()
        await asyncio.sleep(self.delay)
        return Response(b"{}", media_type="application/json")


@dataclass
class Subscriber:
    """One socket following the run: what it received, and when (epoch seconds)."""

    socket: ClientConnection
    received: list[tuple[float, str]] = field(default_factory=list)
    completed: bool = False

    async def read_until_complete(self) -> None:
        async for raw in self.socket:
            now = time.time()
            text = raw if isinstance(raw, str) else raw.decode()
            if len(text) > 64:  # a `next`; parsed after the run, not on the clock
                self.received.append((now, text))
                continue
            kind = json.loads(text)["type"]
            if kind == "ping":
                await self.socket.send('{"type": "pong"}')
            elif kind == "complete":
                self.completed = True
                break
        await self.socket.close()

    def delays(
        self, published: dict[int, float], since: float
    ) -> tuple[list[tuple[int, float]], list[int]]:
        """(seq, delay in ms) of each event published after `since`, and every sequence
        number received."""
        delays: list[tuple[int, float]] = []
        seqs: list[int] = []
        for at, text in self.received:
            result = json.loads(text)["payload"]
            if result.get("errors"):
                raise RuntimeError(f"a subscriber received an error: {result['errors']}")
            seq = result["data"]["syncRunEvents"]["seq"]
            seqs.append(seq)
            if published[seq] >= since:
                delays.append((seq, (at - published[seq]) * 1000))
        return delays, seqs


async def subscribe(url: str, token: str, run_id: str) -> Subscriber:
    """Connected, acknowledged, subscribed; the server has answered a ping sent after the
    subscribe message."""
    socket = await connect(url, subprotocols=[PROTOCOL], open_timeout=120, max_queue=None)
    payload = {"Authorization": f"Bearer {token}"}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    request = {"query": EVENTS, "variables": {"runId": run_id}}
    await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": request}))
    await socket.send('{"type": "ping"}')
    assert json.loads(await socket.recv())["type"] == "pong"
    return Subscriber(socket)


async def connect_all(count: int, url: str, token: str, run_id: str) -> list[Subscriber]:
    gate = asyncio.Semaphore(CONNECTING)

    async def one() -> Subscriber:
        async with gate:
            return await subscribe(url, token, run_id)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


async def settled(pid: int, quiet: float = 0.5, limit: float = 120.0) -> None:
    """Wait until the process has used (almost) no CPU for `quiet` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(quiet)
        if cpu_seconds(pid) - before <= 0.02:
            return


class PublishLog:
    """When each run event was put on the bus (`published_at` of the bus message), read
    from the same Redis channel the API process listens to."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self.times: dict[str, dict[int, float]] = defaultdict(dict)
        self._redis = Redis.from_url(redis_url)
        self._channel = channel
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel)
        self._task = asyncio.create_task(self._collect(pubsub))

    async def _collect(self, pubsub: Any) -> None:
        try:
            async for message in pubsub.listen():
                data = json.loads(message["data"])
                self.times[data["run_id"]][int(data["seq"])] = float(data["published_at"])
        finally:
            await pubsub.aclose()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()


def raise_fd_limit(needed: int) -> None:
    """Enough descriptors here and in the processes started from here (they inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit(2 * arguments.subscribers + 512)
    async with bench_database(arguments.url) as source_url, bench_database(arguments.url) as meta:
        await load(source_url, rows_for(arguments.members))
        metadata_url = meta.replace("postgresql://", "postgresql+asyncpg://", 1)
        await asyncio.to_thread(migrate, metadata_url)
        settings = Settings(
            database_url=metadata_url,
            redis_url=REDIS_URL,
            queue_name=f"signalsmith:bench:{uuid.uuid4().hex[:8]}",
            secret_key=Fernet.generate_key().decode(),
            allow_private_destinations=True,
        )
        receiver = PacedReceiver(arguments.batch_delay_ms / 1000)
        app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
        with serve(app) as hook_url:
            return await fan_out(settings, source_url, hook_url, arguments)


async def fan_out(
    settings: Settings, source_url: str, hook_url: str, arguments: argparse.Namespace
) -> dict[str, Any]:
    runtime = Runtime(settings)
    # One batch in flight: one progress event per batch, paced by the receiver.
    token, workspace_id, sync_id = await create_webhook_sync(
        runtime,
        source_url,
        hook_url,
        mode="upsert",
        config={"batch_size": arguments.batch_size, "concurrency": 1},
        columns=["email"],
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
    port = free_port()
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/graphql"
    output = None if arguments.verbose else asyncio.subprocess.DEVNULL
    api = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", "--port", str(port), env=env, stderr=output
    )
    processes = [api]

    async def start_worker() -> asyncio.subprocess.Process:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.cli", "worker", env=env, stderr=output
        )
        processes.append(worker)
        return worker

    async def trigger() -> str:
        """A run that sends every member again (the warm-up run already sent them)."""
        async with runtime.context(f"Bearer {token}") as ctx:
            run = await runs.trigger_sync_run(
                ctx, workspace_id=workspace_id, sync_id=sync_id, data={"full_resync": True}
            )
        return str(run.id)

    subscribers: list[Subscriber] = []
    log: PublishLog | None = None
    try:
        await until_healthy(base)
        # Warm up every path once (imports, pools, the Redis listener), then stop the worker,
        # so the measured run stays queued until all subscribers are in place.
        worker = await start_worker()
        warm = await subscribe(ws_url, token, await trigger())
        await asyncio.wait_for(warm.read_until_complete(), timeout=600)
        worker.terminate()
        await worker.wait()
        log = PublishLog(REDIS_URL, f"{settings.queue_name}:run-events")
        await log.start()
        run_id = await trigger()
        await settled(api.pid)
        rss_before = rss_mb(api.pid, "VmRSS")
        started = time.monotonic()
        subscribers = await connect_all(arguments.subscribers, ws_url, token, run_id)
        connect_s = time.monotonic() - started
        # The bench's own sockets and what they receive must not pause its reading with a
        # full collection in the middle of the run (that delay would count as the API's).
        gc.collect()
        gc.freeze()
        full_collections = gc.get_stats()[2]["collections"]
        await settled(api.pid)
        rss_after = rss_mb(api.pid, "VmRSS")
        profiler = await start_profiler(api.pid, arguments.profile)
        cpu_before, own_before = cpu_times(api.pid), time.process_time()
        started, live_from = time.monotonic(), time.time()
        await start_worker()
        await asyncio.wait_for(
            asyncio.gather(*(s.read_until_complete() for s in subscribers)), timeout=1800
        )
        elapsed = time.monotonic() - started
        api_user, api_system = (
            after - before for after, before in zip(cpu_times(api.pid), cpu_before, strict=True)
        )
        own_cpu = time.process_time() - own_before
        bench_full_collections = gc.get_stats()[2]["collections"] - full_collections
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            await profiler.wait()
        await asyncio.sleep(0.2)  # the last messages on the side channel
        published = dict(log.times[run_id])
    finally:
        for subscriber in subscribers:
            with contextlib.suppress(Exception):
                await subscriber.socket.close()
        if log is not None:
            await log.close()
        for process in processes:
            if process.returncode is None:
                process.terminate()
                await process.wait()
        await runtime.close()
        async with Redis.from_url(REDIS_URL) as redis:
            keys = [key async for key in redis.scan_iter(f"{settings.queue_name}*")]
            if keys:
                await redis.delete(*keys)
    return report(subscribers, published, live_from, arguments, rss_before, rss_after) | {
        "connect_s": round(connect_s, 2),
        "run_s": round(elapsed, 2),
        "api_cpu_s": round(api_user + api_system, 2),
        "api_system_cpu_s": round(api_system, 2),
        "bench_cpu_s": round(own_cpu, 2),
        "bench_full_collections": bench_full_collections,
    }


def report(
    subscribers: list[Subscriber],
    published: dict[int, float],
    live_from: float,
    arguments: argparse.Namespace,
    rss_before: float,
    rss_after: float,
) -> dict[str, Any]:
    """Delays count the events published once every subscriber was in place (the run's
    `queued` event comes before them, and they receive it from the table)."""
    delays: list[float] = []
    worst: dict[int, float] = {}
    whole = True
    for subscriber in subscribers:
        mine, seqs = subscriber.delays(published, live_from)
        delays.extend(delay for _, delay in mine)
        for seq, delay in mine:
            worst[seq] = max(worst.get(seq, 0.0), delay)
        whole &= subscriber.completed and seqs == sorted(published)
    delays.sort()
    live = sorted(at for at in published.values() if at >= live_from)
    # The events whose last subscriber waited longest, and how soon each was published after
    # the event before it (a burst of events queues behind itself).
    slowest = [
        {
            "seq": seq,
            "max_ms": round(delay, 1),
            "after_previous_ms": round((published[seq] - published[seq - 1]) * 1000, 1)
            if seq - 1 in published
            else None,
        }
        for seq, delay in sorted(worst.items(), key=lambda item: -item[1])[:5]
    ]
    span = live[-1] - live[0]
    return {
        "benchmark": "fanout",
        "subscribers": len(subscribers),
        "events": len(live),
        "events_per_s": round((len(live) - 1) / span, 1) if span else None,
        "p50_ms": round(statistics.median(delays), 1),
        "p99_ms": round(delays[int(len(delays) * 0.99)], 1),
        "max_ms": round(delays[-1], 1),
        "kb_per_subscriber": round((rss_after - rss_before) * 1024 / len(subscribers), 1),
        "api_rss_before_mb": round(rss_before, 1),
        "api_rss_subscribed_mb": round(rss_after, 1),
        "every_subscriber_got_every_event": whole,
        "slowest_events": slowest,
        "members": arguments.members,
        "batch_size": arguments.batch_size,
    }


async def until_healthy(base: str) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{base}/readyz", timeout=1)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("signalsmith serve did not become ready")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--members", type=int, default=1000, help="audience size")
    parser.add_argument("--batch-size", type=int, default=10, help="one progress event each")
    parser.add_argument("--batch-delay-ms", type=float, default=50, help="receiver's pace")
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL admin URL")
    parser.add_argument("--verbose", action="store_true", help="show the servers' logs")
    parser.add_argument("--profile", metavar="PATH", help="py-spy the API during the run")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    arguments = parse(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM too
    result = uvloop.run(main(arguments))
    if arguments.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>34}  {value}")


if __name__ == "__main__":
    run()
