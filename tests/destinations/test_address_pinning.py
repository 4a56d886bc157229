"""A destination's name is resolved once per request and the request goes to the address that
was checked: a second, different DNS answer (rebinding) never reaches the connection."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.destinations.address_guard import IPAddress, pin
from app.destinations.base import Batch, Operation, Record
from app.destinations.webhook import WebhookConnector
from tests.servers import serve_in_thread

HOSTS: list[str] = []


async def hook(request: Request) -> JSONResponse:
    HOSTS.append(request.headers["host"])
    return JSONResponse({})


@pytest.fixture
def port() -> Iterator[int]:
    HOSTS.clear()
    with serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        yield int(base.rsplit(":", 1)[1])


@pytest.fixture
async def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`hooks.test` answers 127.0.0.1 first, then 127.0.0.2 (the rebinding attack)."""
    answers = ["127.0.0.1", "127.0.0.2"]
    asked: list[str] = []
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.test":
            return await real(host, port, *args, **kwargs)
        asked.append(host)
        address = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked


def only_loopback_one(address: IPAddress) -> bool:
    return address == ipaddress.ip_address("127.0.0.1")


async def test_pin_replaces_the_name_with_the_checked_address(rebinding_dns: list[str]) -> None:
    pinned = await pin("https://hooks.test:8443/in?x=1", only_loopback_one)
    assert pinned.url == "https://127.0.0.1:8443/in?x=1"
    assert pinned.host == "hooks.test:8443" and pinned.server_name == "hooks.test"
    assert rebinding_dns == ["hooks.test"]


async def test_a_webhook_request_goes_to_the_address_that_was_checked(
    port: int, rebinding_dns: list[str]
) -> None:
    connector = WebhookConnector(
        {"url": f"http://hooks.test:{port}/hook"}, policy=only_loopback_one
    )
    batch = Batch(uuid.uuid4(), uuid.uuid4(), Operation.add, (Record("1", {"id": 1}),))
    try:
        result = await connector.send(batch)
    finally:
        await connector.close()
    assert result.accepted == ("1",)
    assert rebinding_dns == ["hooks.test"]  # resolved once: httpx connected to the pinned IP
    assert HOSTS == [f"hooks.test:{port}"]  # and the Host header still names the host
