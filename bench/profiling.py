"""py-spy sampling a benchmark's server process (`--profile PATH`)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


async def start_profiler(pid: int, path: str | None) -> asyncio.subprocess.Process | None:
    """py-spy sampling process `pid` (raw collapsed stacks in `path`) until interrupted,
    without pausing it; None without a path."""
    if path is None:
        return None
    spy = str(Path(sys.executable).parent / "py-spy")
    return await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--output",
        path,
        "--nonblocking",  # sample without pausing the process
        "--rate",
        "200",
        stdout=asyncio.subprocess.DEVNULL,
    )
