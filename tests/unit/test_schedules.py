"""Cron evaluation: time zones, DST, the missed-tick rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.schedules import due_tick, next_tick


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_next_tick_in_utc_by_default() -> None:
    assert next_tick("0 */4 * * *", None, utc(2024, 1, 15, 9, 30)) == utc(2024, 1, 15, 12)
    assert next_tick("0 */4 * * *", None, utc(2024, 1, 15, 12)) == utc(2024, 1, 15, 16)


def test_next_tick_in_the_sync_time_zone() -> None:
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
    assert next_tick("0 9 * * *", "Europe/Paris", utc(2024, 1, 15)) == utc(2024, 1, 15, 8)
    assert next_tick("0 9 * * *", "Europe/Paris", utc(2024, 7, 15)) == utc(2024, 7, 15, 7)


def test_a_tick_skipped_by_dst_fires_once_after_the_gap() -> None:
    # 02:30 does not exist in Paris on 2026-03-29; the tick lands at 03:00 local (01:00 UTC).
    assert next_tick("30 2 * * *", "Europe/Paris", utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)


@pytest.mark.parametrize(
    ("since", "now", "expected"),
    [
        (utc(2024, 1, 15, 8), utc(2024, 1, 15, 9, 59), None),  # nothing due yet
        (utc(2024, 1, 15, 8), utc(2024, 1, 15, 12), utc(2024, 1, 15, 12)),  # exactly on it
        (utc(2024, 1, 15, 12), utc(2024, 1, 15, 12, 5), None),  # already fired
        # three days down: the missed ticks collapse into the latest one
        (utc(2024, 1, 12, 8), utc(2024, 1, 15, 13), utc(2024, 1, 15, 12)),
    ],
)
def test_due_tick(since: datetime, now: datetime, expected: datetime | None) -> None:
    assert due_tick("0 */4 * * *", None, since=since, now=now) == expected
