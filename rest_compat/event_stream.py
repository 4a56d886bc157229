"""A run's events as Server-Sent Events (`Accept: text/event-stream`): `id: <seq>`,
`event: <type>`, `data: <the JSON of the event, as the JSON endpoint renders it>`.

The stream ends after the terminal event; a comment line every few seconds keeps proxies
from closing a quiet stream and lets the server notice a client that left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.responses import StreamingResponse

from app.events import RunEvent
from models.shapes.run import SyncRunEventPublic

MEDIA_TYPE = "text/event-stream"
LAST_EVENT_ID = "Last-Event-ID"


def wants_event_stream(accept: str | None) -> bool:
    return MEDIA_TYPE in (accept or "").lower()


def resume_after(after: int, last_event_id: str | None) -> int:
    """`Last-Event-ID` (sent by a reconnecting EventSource) wins over an older `after`."""
    value = (last_event_id or "").strip()
    return max(after, int(value)) if value.isdigit() and len(value) < 19 else after


def render_event(event: RunEvent) -> str:
    data = SyncRunEventPublic(
        seq=event.seq, type=event.type, payload=event.payload, at=event.at
    ).model_dump(mode="json")
    return f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(data)}\n\n"


def event_stream(events: AsyncGenerator[RunEvent, None], keepalive: float) -> StreamingResponse:
    return StreamingResponse(
        _body(events, keepalive),
        media_type=MEDIA_TYPE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _body(events: AsyncGenerator[RunEvent, None], keepalive: float) -> AsyncIterator[str]:
    async with contextlib.aclosing(events):
        pending = asyncio.ensure_future(anext(events))
        try:
            while True:
                done, _ = await asyncio.wait({pending}, timeout=keepalive)
                if not done:
                    yield ": keep-alive\n\n"
                    continue
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    return
                yield render_event(event)
                pending = asyncio.ensure_future(anext(events))
        finally:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
