"""`signalsmith runs trigger|follow`: start a run on a running server and watch it finish.

On a terminal, the progress is one line redrawn in place. When stdout is not a terminal, each
event is printed on its own line. A summary line comes last. The exit code is the outcome:
0 succeeded, 1 failed or cancelled, 3 partial, 2 when the command could not do its job
(usage, token, HTTP or WebSocket errors; the message is on stderr).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from app.client import ClientError, SignalsmithClient

#: The exit code of each terminal status.
OUTCOMES = {"succeeded": 0, "failed": 1, "cancelled": 1, "partial": 3}
USAGE_ERROR = 2
INTERRUPTED = 130
BAR_WIDTH = 24


@dataclass
class RunProgress:
    """What a follower knows of a run, built from its events."""

    run_id: str
    status: str = "queued"
    phase: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def apply(self, event: dict[str, Any]) -> None:
        kind, payload = event["type"], event.get("payload") or {}
        at = datetime.fromisoformat(event["at"])
        if kind == "status":
            self.status = str(payload.get("status", self.status))
            if self.status == "running" and self.started_at is None:
                self.started_at, self.phase = at, self.phase or "querying"
            if payload.get("error"):
                self.error = payload["error"]
            if self.finished:
                self.finished_at, self.phase = at, None
        elif kind == "progress":
            self.counts = payload
            self.phase = str(payload.get("phase") or "syncing")
        elif kind == "phase":
            self.phase = str(payload.get("phase") or self.phase)
        elif kind == "error" and payload.get("code"):
            self.error = payload

    @property
    def finished(self) -> bool:
        return self.status in OUTCOMES

    def total(self, name: str) -> int:
        counts = self.counts.get(name) or {}
        return sum(int(value) for value in counts.values()) if isinstance(counts, dict) else 0

    @property
    def fraction(self) -> float:
        """The event's `progress` when it carries one, else done over planned so far (as the
        server computes a run's `progress`); 1 once the run completed."""
        if self.status in ("succeeded", "partial"):
            return 1.0
        if isinstance(given := self.counts.get("progress"), int | float):
            return float(given)
        planned = self.total("planned")
        done = self.total("succeeded") + self.total("failed")
        return min(done / planned, 0.99) if planned else 0.0

    def counts_text(self) -> str:
        return (
            f"succeeded {self.total('succeeded')}  failed {self.total('failed')}  "
            f"planned {self.total('planned')}"
        )

    def summary(self) -> str:
        took = ""
        if self.started_at and self.finished_at:
            took = f" in {(self.finished_at - self.started_at).total_seconds():.1f} s"
        planned = self.counts.get("planned") or {}
        split = ", ".join(f"{op} {planned.get(op, 0)}" for op in ("add", "update", "remove"))
        line = (
            f"run {self.run_id} {self.status}{took}: planned {self.total('planned')} ({split}), "
            f"succeeded {self.total('succeeded')}, failed {self.total('failed')}, "
            f"invalid {self.counts.get('invalid', 0)}, unchanged {self.counts.get('unchanged', 0)}"
        )
        if self.error:
            line += f"; error {self.error.get('code')}: {self.error.get('message')}"
        return line


class ProgressPrinter:
    """Draws a run's progress on `out`: one redrawn line when `live`, else a line per event."""

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self.out, self.live = out, live
        self._drawn = False

    def show(self, run: RunProgress, event: dict[str, Any]) -> None:
        if not self.live:
            self.line(f"{event['at'][11:19]}  {event['seq']:>4}  {describe(run, event)}")
            return
        if event["type"] in ("log", "error"):
            self.line(describe(run, event))
        percent = int(run.fraction * 100)
        filled = BAR_WIDTH * percent // 100
        bar = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {percent:>3}%"
        text = f"{bar}  {run.counts_text()}  {run.phase or run.status}"
        width = shutil.get_terminal_size().columns - 1
        self.out.write(f"\r{text[:width]}\x1b[K")
        self.out.flush()
        self._drawn = True

    def line(self, text: str) -> None:
        """A line of its own (above the progress line, on a terminal)."""
        self.clear()
        self.out.write(text + "\n")
        self.out.flush()

    def clear(self) -> None:
        """Erase the progress line, if one is drawn."""
        if self._drawn:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._drawn = False


def describe(run: RunProgress, event: dict[str, Any]) -> str:
    """One event in words (plain output, and log or error lines on a terminal)."""
    kind, payload = event["type"], event.get("payload") or {}
    if kind == "progress":
        return f"progress {int(run.fraction * 100):>3}%  {run.counts_text()}  {run.phase}"
    if kind == "status":
        error = payload.get("error")
        reason = f" ({error.get('code')}: {error.get('message')})" if error else ""
        return f"status {payload.get('status')}{reason}"
    if kind == "phase":
        return f"phase {payload.get('phase')}"
    if kind in ("log", "error") and payload.get("message"):
        return f"{kind} {payload['message']}"
    return f"{kind} {json.dumps(payload, sort_keys=True)}"


def trigger(
    *,
    url: str,
    token: str | None,
    workspace_id: uuid.UUID,
    sync_id: uuid.UUID,
    follow: bool,
    full_resync: bool,
    dry_run: bool,
) -> int:
    """`signalsmith runs trigger`: the run id, then (with `follow`) its progress."""

    async def run(client: SignalsmithClient, printer: ProgressPrinter) -> int:
        await client.check_workspace(workspace_id)
        started = await client.trigger_run(sync_id, full_resync=full_resync, dry_run=dry_run)
        if not follow:
            print(started["id"], flush=True)
            return 0
        printer.line(f"run {started['id']} {started['status']}")
        return await _follow(client, printer, uuid.UUID(started["id"]))

    return _command("trigger", url, token, run)


def follow(*, url: str, token: str | None, run_id: uuid.UUID) -> int:
    """`signalsmith runs follow`: an existing run's progress from its first event."""

    async def run(client: SignalsmithClient, printer: ProgressPrinter) -> int:
        return await _follow(client, printer, run_id)

    return _command("follow", url, token, run)


async def _follow(client: SignalsmithClient, printer: ProgressPrinter, run_id: uuid.UUID) -> int:
    progress = RunProgress(str(run_id))
    try:
        async for event in client.run_events(run_id):
            progress.apply(event)
            printer.show(progress, event)
    except asyncio.CancelledError:  # Ctrl-C
        printer.clear()
        print(
            f"signalsmith runs: stopped following run {run_id}; it goes on "
            f"(signalsmith runs follow {run_id})",
            file=sys.stderr,
        )
        raise
    except ClientError:
        printer.clear()
        raise
    if not progress.finished:
        printer.clear()
        raise ClientError(f"the event stream of run {run_id} ended before the run did", "PROTOCOL")
    printer.line(progress.summary())
    return OUTCOMES[progress.status]


def _command(
    name: str,
    url: str,
    token: str | None,
    body: Callable[[SignalsmithClient, ProgressPrinter], Coroutine[Any, Any, int]],
) -> int:
    if not token:
        _fail(name, "no token: set SIGNALSMITH_TOKEN (or pass --token)")
        return USAGE_ERROR
    client = SignalsmithClient(url, token)
    printer = ProgressPrinter(sys.stdout, live=sys.stdout.isatty())
    try:
        return asyncio.run(body(client, printer))
    except ClientError as exc:
        message = f"{exc.message} ({exc.code})"
        if exc.code == "CONFLICT" and (active := exc.detail("run_id")):
            message += f"; follow it with: signalsmith runs follow {active}"
        elif exc.code == "UNAUTHENTICATED":
            message += "; check SIGNALSMITH_TOKEN"
        _fail(name, message)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return INTERRUPTED


def _fail(name: str, message: str) -> None:
    print(f"signalsmith runs {name}: {message}", file=sys.stderr, flush=True)
