"""The `signalsmith` command line, run as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings

from app.queue import deserialize_job, serialize_job
from tests.services import REDIS_URL, require_reachable, unique_name


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALSMITH_")}
    env["SIGNALSMITH_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'signalsmith.db'}"
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_migrate_then_bootstrap_prints_one_json_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli(env, "migrate").returncode == 0
    first = run_cli(env, "bootstrap", "--workspace", "Acme", "--email", "Ada@Example.com")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert set(data) == {"workspace_id", "account_id", "token"}
    again = json.loads(
        run_cli(env, "bootstrap", "--workspace", "Acme", "--email", "ada@example.com").stdout
    )
    assert again["workspace_id"] == data["workspace_id"]
    assert again["account_id"] == data["account_id"]
    assert again["token"] != data["token"]
    assert data["token"] not in first.stderr


def test_bootstrap_rejects_a_bad_email(tmp_path: Path) -> None:
    result = run_cli(cli_env(tmp_path), "bootstrap", "--workspace", "Acme", "--email", "nope")
    assert result.returncode == 2 and "email" in result.stderr


def test_worker_without_redis_says_what_it_needs(tmp_path: Path) -> None:
    result = run_cli(cli_env(tmp_path), "worker")
    assert result.returncode == 2
    assert "SIGNALSMITH_REDIS_URL" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`signalsmith serve` on a free port over a fresh SQLite file."""
    env = cli_env(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("signalsmith serve did not come up")
        yield base, env
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
        for line in output.splitlines():  # every log line is one JSON object
            if line.strip():
                json.loads(line)


def test_serve_migrates_and_answers_with_a_bootstrapped_token(
    served: tuple[str, dict[str, str]],
) -> None:
    base, env = served
    assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
    boot = json.loads(run_cli(env, "bootstrap", "--workspace", "w", "--email", "a@b.co").stdout)
    headers = {"Authorization": f"Bearer {boot['token']}"}
    listed = httpx.get(
        f"{base}/api/v1/workspaces/{boot['workspace_id']}/audience-syncs", headers=headers
    )
    assert listed.status_code == 200 and listed.json() == []
    assert (
        httpx.get(f"{base}/api/v1/workspaces/{boot['workspace_id']}/audience-syncs").status_code
        == 401
    )


async def test_worker_with_redis_processes_jobs(tmp_path: Path) -> None:
    require_reachable("Redis", REDIS_URL)
    queue = unique_name("signalsmith:test")
    env = cli_env(tmp_path, SIGNALSMITH_REDIS_URL=REDIS_URL, SIGNALSMITH_QUEUE_NAME=queue)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    pool = await create_pool(
        RedisSettings.from_dsn(REDIS_URL),
        default_queue_name=queue,
        job_serializer=serialize_job,
        job_deserializer=deserialize_job,
    )
    try:
        job = await pool.enqueue_job("ping")
        assert job is not None
        assert await job.result(timeout=30) == "pong"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)
        await pool.delete(queue)
        await pool.aclose()
