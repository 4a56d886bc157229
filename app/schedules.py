"""Cron schedules (DESIGN §7): five-field expressions evaluated in the sync's time zone.

The scheduler asks `due_tick` for the one tick to fire: the latest tick in `(since, now]`.
Ticks missed during downtime collapse into that one, so a sync runs once after an outage,
not once per missed tick. Ticks are returned in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter


def _zone(timezone: str | None) -> ZoneInfo:
    return ZoneInfo(timezone or "UTC")


def next_tick(schedule: str, timezone: str | None, after: datetime) -> datetime:
    """The first tick strictly after `after`."""
    local = after.astimezone(_zone(timezone))
    tick: datetime = croniter(schedule, local).get_next(datetime)
    return tick.astimezone(UTC)


def due_tick(
    schedule: str, timezone: str | None, *, since: datetime, now: datetime
) -> datetime | None:
    """The latest tick in `(since, now]`, or None when nothing is due."""
    # croniter's get_prev is strict; a second past `now` makes a tick at exactly `now` count.
    local = (now + timedelta(seconds=1)).astimezone(_zone(timezone))
    tick: datetime = croniter(schedule, local).get_prev(datetime)
    tick = tick.astimezone(UTC)
    return tick if since < tick <= now else None
