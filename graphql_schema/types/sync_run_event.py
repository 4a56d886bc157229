"""One event of a run's log, as a subscription delivers it (DESIGN §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.events import RunEvent
from graphql_schema.scalars import to_id


@strawberry.type(description="One entry of a run's event log: status, phase, progress, log, error.")
class SyncRunEvent:
    run_id: strawberry.ID
    seq: int = strawberry.field(description="1, 2, 3 … within the run; resume with `after`.")
    type: str
    payload: JSON
    at: datetime

    def shared_result_key(self) -> tuple[str, int]:
        """Every field depends only on the stored event, never on the caller: subscribers
        with the same document share one execution per event (`graphql_schema.shared_results`)."""
        return (str(self.run_id), self.seq)

    @classmethod
    def from_event(cls, event: RunEvent) -> SyncRunEvent:
        payload: Any = event.payload
        return cls(
            run_id=to_id(event.run_id), seq=event.seq, type=event.type, payload=payload, at=event.at
        )
