"""The scheduler and reaper loop that `signalsmith serve` runs beside the APIs.

Any number of these may run (one per API process): every tick is claimed exactly once in the
database, so more processes mean more availability, not more runs.
"""

from __future__ import annotations

import asyncio
import logging

from app.runtime import Runtime
from app.services.scheduling import fire_due_schedules, reap_lost_runs

log = logging.getLogger("signalsmith.scheduler")
#: Seconds between passes; a tick fires at most this late.
INTERVAL = 5.0


async def run_scheduler(runtime: Runtime, stop: asyncio.Event, interval: float = INTERVAL) -> None:
    while not stop.is_set():
        try:
            await fire_due_schedules(runtime)
            await reap_lost_runs(runtime)
        except Exception:  # a bad pass must not stop scheduling for good
            log.exception("scheduler pass failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
