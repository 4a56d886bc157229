"""The private-address guard: destinations may not reach loopback, private or link-local
addresses (IPv4 and IPv6) unless explicitly allowed; checked after DNS resolution, on every
hop of a redirect."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from app.destinations.base import TerminalError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]


def public_only(address: IPAddress) -> bool:
    return address.is_global


def allow_all(_: IPAddress) -> bool:
    return True


async def check_url(url: str, policy: AddressPolicy) -> None:
    """Resolve the URL's host and refuse it if any address it resolves to is not allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TerminalError("the destination URL must be http(s) with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise TerminalError(f"cannot resolve the destination host {parts.hostname!r}") from exc
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if not policy(address):
            raise TerminalError(
                f"the destination host {parts.hostname!r} resolves to a non-public address "
                "(set SIGNALSMITH_ALLOW_PRIVATE_DESTINATIONS to allow it)"
            )
