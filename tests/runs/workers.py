"""Worker processes and Redis servers for the run tests: a Redis-backed runtime and the
environment a `signalsmith worker` process shares with it, and a private Redis server that a
test may kill and restart (never the shared one other tests use)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys

import pytest

from app.runtime import Runtime
from app.settings import Settings
from tests.services import REDIS_URL, require_reachable, unique_name


def redis_runtime(
    settings: Settings, secret_key: str, redis_url: str = REDIS_URL, **changes: object
) -> tuple[Runtime, dict[str, str], str]:
    """(runtime, worker environment, queue name): same database, key and queue of its own."""
    require_reachable("Redis", redis_url)
    queue = unique_name("signalsmith:test")
    runtime = Runtime(
        settings.model_copy(
            update={
                "redis_url": redis_url,
                "queue_name": queue,
                "allow_private_destinations": True,
                **changes,
            }
        )
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIGNALSMITH_")},
        "SIGNALSMITH_DATABASE_URL": settings.database_url,
        "SIGNALSMITH_SECRET_KEY": secret_key,
        "SIGNALSMITH_REDIS_URL": redis_url,
        "SIGNALSMITH_QUEUE_NAME": queue,
        "SIGNALSMITH_ALLOW_PRIVATE_DESTINATIONS": "true",
        "SIGNALSMITH_SOURCE_FILES_DIR": str(settings.resolved_source_files_dir),
    }
    return runtime, env, queue


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    """A `signalsmith worker` process."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()


class PrivateRedis:
    """A `redis-server` of the test's own on a free port, without persistence, which the test
    may kill (-9) and start again on the same port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(30):
            while not await self._answers():
                assert self.process.returncode is None, "redis-server exited"
                await asyncio.sleep(0.05)

    async def _answers(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            return (await reader.readline()).startswith(b"+PONG")
        finally:
            writer.close()
            await writer.wait_closed()

    async def kill(self) -> None:
        """kill -9: Redis and everything it held are gone."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
