"""A vendor client resolves and checks each host once, on its first request, and sends every
request to that checked address: no DNS lookup per request, and a second, different DNS answer
(rebinding) never reaches a connection. A host that resolves to a refused address is refused on
every request, and nothing is sent to it."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.destinations.address_guard import IPAddress, public_only
from app.destinations.base import TerminalError
from app.destinations.spec import BuildOptions
from app.destinations.vendor_http import VendorClient
from tests.servers import serve_in_thread

SEEN: list[tuple[str, str]] = []


async def track(request: Request) -> JSONResponse:
    SEEN.append((request.url.path, request.headers["host"]))
    return JSONResponse({"ok": True})


@pytest.fixture
def port() -> Iterator[int]:
    SEEN.clear()
    app = Starlette(routes=[Route("/{name}", track, methods=["GET", "POST"])])
    with serve_in_thread(app) as base:
        yield int(base.rsplit(":", 1)[1])


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`vendor.test` answers 127.0.0.1 first, then 127.0.0.2 (a rebinding attack); every
    lookup of it is recorded."""
    asked: list[str] = []
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "vendor.test":
            return await real(host, port, *args, **kwargs)
        asked.append(host)
        address = "127.0.0.1" if len(asked) == 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked


def only_loopback_one(address: IPAddress) -> bool:
    return address == ipaddress.ip_address("127.0.0.1")


async def test_a_client_resolves_each_host_once(port: int, dns: list[str]) -> None:
    client = VendorClient(
        "Vendor", f"http://vendor.test:{port}", BuildOptions(policy=only_loopback_one)
    )
    try:
        await asyncio.gather(*(client.request("POST", "/track", json={"i": i}) for i in range(8)))
        await client.request("GET", "/other")
    finally:
        await client.close()
    assert dns == ["vendor.test"]  # once, for concurrent first requests and later ones alike
    assert len(SEEN) == 9 and {host for _, host in SEEN} == {f"vendor.test:{port}"}


async def test_each_client_resolves_for_itself(port: int, dns: list[str]) -> None:
    """A new client (a new run) asks DNS again, and checks the answer again."""
    first = VendorClient(
        "Vendor", f"http://vendor.test:{port}", BuildOptions(policy=only_loopback_one)
    )
    second = VendorClient(
        "Vendor", f"http://vendor.test:{port}", BuildOptions(policy=only_loopback_one)
    )
    try:
        await first.request("POST", "/track")
        with pytest.raises(TerminalError, match="non-public address"):
            await second.request("POST", "/track")  # DNS now answers 127.0.0.2: refused
        await first.request("POST", "/track")  # the first client keeps its checked address
    finally:
        await first.close()
        await second.close()
    assert dns == ["vendor.test", "vendor.test"]
    assert len(SEEN) == 2


async def test_a_private_address_is_still_refused_on_every_request(port: int) -> None:
    client = VendorClient("Vendor", f"http://127.0.0.1:{port}", BuildOptions(policy=public_only))
    try:
        for _ in range(2):
            with pytest.raises(TerminalError, match="non-public address"):
                await client.request("POST", "/track", json={})
    finally:
        await client.close()
    assert SEEN == []
    assert client.requests == 0
