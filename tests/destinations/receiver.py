"""A real webhook receiver (served by uvicorn in the tests) that keeps the membership it is told
and can be scripted to misbehave: 429s, 5xx, slowness, per-row and whole-batch refusals."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class Scripted:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Receiver:
    secret: str | None = None
    #: Responses to give first, in order, before behaving normally.
    script: deque[Scripted] = field(default_factory=deque)
    #: Records whose "id" is here are refused one by one inside a 200.
    reject_ids: set[str] = field(default_factory=set)
    #: A batch holding any of these ids is refused whole with a 400.
    poison_ids: set[str] = field(default_factory=set)
    redirect_to: str | None = None
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0
    bad_signatures: int = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.requests += 1
        body = await request.body()
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(
                request.headers.get("x-signalsmith-signature", ""), expected
            ):
                self.bad_signatures += 1
                return JSONResponse({"error": "bad signature"}, status_code=401)
        if self.redirect_to:
            return RedirectResponse(self.redirect_to, status_code=307)
        if self.script:
            scripted = self.script.popleft()
            await asyncio.sleep(scripted.delay)
            if scripted.status != 200:
                return JSONResponse({}, status_code=scripted.status, headers=scripted.headers)
        batch = json.loads(body)
        records = batch["records"]
        if any(str(r.get("id")) in self.poison_ids for r in records):
            return JSONResponse({"error": "invalid batch"}, status_code=400)
        rejected = []
        for index, record in enumerate(records):
            key = str(record.get("id", record.get("member_key")))
            if key in self.reject_ids:
                rejected.append({"index": index, "error": f"invalid record {key}"})
            elif batch["operation"] == "remove":
                self.members.pop(key, None)
            else:
                self.members[key] = record
        return JSONResponse({"rejected": rejected})
