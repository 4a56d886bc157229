"""The webhook destination's peer: a receiver that checks the HMAC signature and the batch
shape of DESIGN §8 and keeps the members it was told, by their `id` (or `member_key`)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.base import EmulatorBase

BATCH_LIMIT = 10_000


@dataclass
class WebhookEmulator(EmulatorBase):
    held: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    def members(self) -> dict[str, dict[str, Any]]:
        return dict(self.held)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        expected = "sha256=" + hmac.new(self.token.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("x-signalsmith-signature", ""), expected):
            self.record("POST", "/hook", 0, 401)
            return JSONResponse({"error": "bad signature"}, status_code=401)
        batch = json.loads(body)
        records = batch["records"]
        if set(batch) != {"sync_id", "run_id", "operation", "records"} or not (
            0 < len(records) <= BATCH_LIMIT
        ):
            self.record("POST", "/hook", len(records), 422)
            return JSONResponse({"error": "malformed batch"}, status_code=422)
        answer = await self.scripted()
        if answer is not None:
            self.record("POST", "/hook", len(records), answer.status_code)
            return answer
        keys = [str(r.get("id", r.get("member_key"))) for r in records]
        if self.poison & set(keys):
            self.record("POST", "/hook", len(records), 400)
            return JSONResponse({"error": "invalid batch"}, status_code=400)
        rejected = []
        for index, (key, record) in enumerate(zip(keys, records, strict=True)):
            if key in self.reject:
                rejected.append({"index": index, "error": f"refused {key}"})
            elif batch["operation"] == "remove":
                self.held.pop(key, None)
            else:
                self.held[key] = record
        self.record("POST", "/hook", len(records), 200)
        return JSONResponse({"rejected": rejected})
