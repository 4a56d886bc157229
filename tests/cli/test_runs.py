"""`signalsmith runs trigger|follow`, the real console script against a real server (uvicorn in
a thread, runs executed in-process) that sends to a real webhook receiver."""

from __future__ import annotations

import os
import pty
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.asgi import create_app
from app.runtime import Runtime
from app.settings import Settings
from models import AudienceSync
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import World, create_world
from tests.runs.test_trigger import hooked_sync
from tests.servers import serve_in_thread

SIGNALSMITH = str(Path(sys.executable).parent / "signalsmith")


@dataclass
class Served:
    base: str
    world: World
    sync: AudienceSync
    receiver: Receiver

    def cli(
        self, *args: str, token: str | None = None, stdout: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`signalsmith runs …` against this server, with the editor's token in the env."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALSMITH_")}
        env["SIGNALSMITH_TOKEN"] = self.world.editor_token if token is None else token
        return subprocess.run(
            [SIGNALSMITH, "runs", *args, "--url", self.base],
            env=env,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=90,
            check=False,
        )

    def trigger(
        self, *args: str, token: str | None = None, stdout: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        where = ["--workspace", str(self.world.workspace_id)]
        return self.cli("trigger", str(self.sync.id), *where, *args, token=token, stdout=stdout)

    def slow_batches(self, count: int, delay: float = 0.4) -> None:
        self.receiver.script.extend(Scripted(200, delay=delay) for _ in range(count))


@pytest.fixture
async def served(settings: Settings, receiver: Receiver, hook_url: str) -> AsyncIterator[Served]:
    """The API on a free port (runs in-process, events in memory) and a world whose sync
    sends its 4 members to the receiver one batch at a time."""
    local = settings.model_copy(update={"allow_private_destinations": True})
    runtime = Runtime(local)
    try:
        world = await create_world(runtime)
        sync = await hooked_sync(
            runtime, world, hook_url, config={"batch_size": 1, "concurrency": 1}
        )
        with serve_in_thread(create_app(local), ws="websockets-sansio") as base:
            yield Served(base, world, sync, receiver)
    finally:
        await runtime.close()


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_trigger_follow_prints_each_event_and_a_summary_and_exits_0(served: Served) -> None:
    served.slow_batches(2)
    result = served.trigger("--follow")
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    run_id = out[0].split()[1]
    assert out[0] == f"run {run_id} queued"
    events = out[1:-1]
    assert [line.split()[1] for line in events] == [str(seq) for seq in range(1, len(events) + 1)]
    assert events[0].endswith("status queued") and events[1].endswith("status running")
    progress = [line.split("progress", 1)[1].split() for line in events if " progress " in line]
    assert progress, events  # one per group of acknowledged batches, then the final count
    percents = [int(words[0].rstrip("%")) for words in progress]
    assert percents == sorted(percents) and 0 < percents[0]
    assert progress[-1][1:] == ["succeeded", "4", "failed", "0", "planned", "4", "syncing"]
    assert "status succeeded" in events[-1]
    assert out[-1].startswith(f"run {run_id} succeeded in ")
    assert out[-1].endswith(
        "planned 4 (add 4, update 0, remove 0), succeeded 4, failed 0, invalid 0, unchanged 0"
    )
    assert sorted(int(key) for key in served.receiver.members) == [1, 2, 5, 6]
    assert result.stderr == ""


def test_without_follow_only_the_run_id_is_printed(served: Served) -> None:
    result = served.trigger("--dry-run")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    assert len(run_id) == 36 and "\n" not in run_id
    # The run can be followed to its end afterwards; a dry run sends nothing.
    followed = served.cli("follow", run_id)
    assert followed.returncode == 0, followed.stderr
    assert lines(followed.stdout)[-1].startswith(f"run {run_id} succeeded")
    assert served.receiver.members == {}


def test_a_terminal_shows_one_redrawn_progress_line(served: Served) -> None:
    served.slow_batches(2)
    leader, follower = pty.openpty()
    try:
        result = served.trigger("--follow", stdout=follower)
        os.close(follower)
        follower = -1
        shown = b""
        while chunk := _read(leader):
            shown += chunk
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert result.returncode == 0, result.stderr
    screen = shown.decode()
    assert "\r\x1b[K" in screen  # redrawn in place, not one line per event
    bars = [part for part in screen.split("\r") if part.startswith("[")]
    assert bars[0] == "[" + "-" * 24 + "]   0%  succeeded 0  failed 0  planned 0  queued\x1b[K"
    assert bars[1] == "[" + "-" * 24 + "]   0%  succeeded 0  failed 0  planned 0  querying\x1b[K"
    assert any(bar.endswith("%  succeeded 4  failed 0  planned 4  syncing\x1b[K") for bar in bars)
    assert bars[-1] == "[" + "#" * 24 + "] 100%  succeeded 4  failed 0  planned 4  succeeded\x1b[K"
    final = screen.rsplit("\x1b[K", 1)[1].strip()
    assert final.startswith("run ") and " succeeded in " in final
    assert " progress " not in screen  # the plain per-event lines are for pipes


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the writer has gone
        return b""


def test_a_failed_run_exits_1_with_its_error(served: Served) -> None:
    with sqlite3.connect(served.world.source_path) as source:
        source.execute("DROP TABLE customers")
    result = served.trigger("--follow")
    assert result.returncode == 1, (result.stdout, result.stderr)
    out = lines(result.stdout)
    assert "status failed" in out[-2]
    run_id = out[0].split()[1]
    assert out[-1].startswith(f"run {run_id} failed")
    assert "; error " in out[-1]


def test_rows_refused_by_the_destination_make_a_partial_run_exit_3(served: Served) -> None:
    served.receiver.reject_ids.update({"2", "5"})
    result = served.trigger("--follow")
    assert result.returncode == 3, (result.stdout, result.stderr)
    summary = lines(result.stdout)[-1]
    assert " partial in " in summary and "succeeded 2, failed 2" in summary


def test_a_bad_token_exits_2_without_echoing_it(served: Served) -> None:
    token = "ssk_not-a-real-token-0123456789"
    result = served.trigger("--follow", token=token)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "signalsmith runs trigger: invalid or revoked token (UNAUTHENTICATED); "
        "check SIGNALSMITH_TOKEN"
    )
    followed = served.cli("follow", "00000000-0000-0000-0000-000000000000", token=token)
    assert followed.returncode == 2 and "UNAUTHENTICATED" in followed.stderr
    for output in (result, followed):
        assert token not in output.stdout + output.stderr
        assert "not-a-real" not in output.stdout + output.stderr


def test_a_token_of_another_workspace_is_refused_before_triggering(served: Served) -> None:
    other = "00000000-0000-0000-0000-000000000001"
    result = served.cli("trigger", str(served.sync.id), "--workspace", other)
    assert result.returncode == 2 and result.stdout == ""
    assert other in result.stderr and "(FORBIDDEN)" in result.stderr
    assert served.receiver.requests == 0


def test_a_viewer_cannot_trigger(served: Served) -> None:
    result = served.trigger(token=served.world.viewer_token)
    assert result.returncode == 2
    assert "editor role" in result.stderr and "(FORBIDDEN)" in result.stderr


def test_a_second_trigger_names_the_active_run_and_exits_2(served: Served) -> None:
    served.slow_batches(4, delay=0.5)
    first = served.trigger()
    assert first.returncode == 0, first.stderr
    active = first.stdout.strip()
    second = served.trigger("--follow")
    assert second.returncode == 2 and second.stdout == ""
    assert f"already has an active run {active} (CONFLICT)" in second.stderr
    assert f"follow it with: signalsmith runs follow {active}" in second.stderr
    # Attaching to the active run follows it to its end.
    followed = served.cli("follow", active)
    assert followed.returncode == 0, followed.stderr
    assert lines(followed.stdout)[-1].startswith(f"run {active} succeeded")


def test_following_an_unknown_run_exits_2(served: Served) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    result = served.cli("follow", missing)
    assert result.returncode == 2 and result.stdout == ""
    assert "(NOT_FOUND)" in result.stderr and missing in result.stderr


def test_an_unreachable_server_or_a_missing_token_exits_2(served: Served) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALSMITH_")}
    run_id = "00000000-0000-0000-0000-000000000000"
    missing = subprocess.run(
        [SIGNALSMITH, "runs", "follow", run_id, "--url", served.base],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2
    assert "no token: set SIGNALSMITH_TOKEN" in missing.stderr
    down = subprocess.run(
        [SIGNALSMITH, "runs", "trigger", str(served.sync.id), "--workspace", run_id],
        env={**env, "SIGNALSMITH_TOKEN": "x", "SIGNALSMITH_URL": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert down.returncode == 2 and down.stdout == ""
    assert "could not reach http://127.0.0.1:9 (ConnectError) (UNREACHABLE)" in down.stderr
