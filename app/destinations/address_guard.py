"""The private-address guard: destinations may not reach loopback, private or link-local
addresses (IPv4 and IPv6) unless explicitly allowed; checked after DNS resolution, on every
hop of a redirect.

`pin` resolves once, checks, and hands back the URL with the checked address in place of the
name (plus the Host header and TLS server name to keep), so a second DNS answer between the
check and the connection (DNS rebinding) cannot steer a request to a private address.
`HostPins` does the same for a client that sends many requests: each host is resolved and
checked once, and every request goes to that checked address for the client's life."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from app.destinations.base import TerminalError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]


def public_only(address: IPAddress) -> bool:
    return address.is_global


def allow_all(_: IPAddress) -> bool:
    return True


@dataclass(frozen=True)
class Pinned:
    """A request target whose address was checked: connect to `url`, say `host`, verify
    TLS against `server_name`."""

    url: str
    host: str
    server_name: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": self.host}

    @property
    def extensions(self) -> dict[str, str]:
        return {"sni_hostname": self.server_name}


async def check_host(host: str, port: int, policy: AddressPolicy) -> list[IPAddress]:
    """Resolve `host` and refuse it if any address it resolves to is not allowed; the
    addresses it resolved to. For destinations reached by other protocols too (a database)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TerminalError(f"cannot resolve the destination host {host!r}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if not policy(address):
            raise TerminalError(
                f"the destination host {host!r} resolves to a non-public address "
                "(set SIGNALSMITH_ALLOW_PRIVATE_DESTINATIONS to allow it)"
            )
    return addresses


def _target(url: str) -> tuple[SplitResult, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TerminalError("the destination URL must be http(s) with a host")
    return parts, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, policy: AddressPolicy) -> None:
    """Resolve the URL's host and refuse it if any address it resolves to is not allowed."""
    _, hostname, port = _target(url)
    await check_host(hostname, port, policy)


def _pinned(parts: SplitResult, address: IPAddress, port: int) -> Pinned:
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{port}"
    return Pinned(
        url=urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
        host=parts.netloc.rsplit("@", 1)[-1],
        server_name=parts.hostname or "",
    )


async def pin(url: str, policy: AddressPolicy) -> Pinned:
    """Check the URL's host, then pin the request to the first checked address."""
    parts, hostname, port = _target(url)
    addresses = await check_host(hostname, port, policy)
    return _pinned(parts, addresses[0], port)


class HostPins:
    """`pin` for one client: each host (scheme, name, port) is resolved and checked on its
    first request, and every later request to it goes to the same checked address, with no
    DNS lookup (nor thread hop) of its own. A client lives for one run; a host that was
    refused is asked again, and refused again, on its next request."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._addresses: dict[tuple[str, str, int], IPAddress] = {}
        self._lock = asyncio.Lock()

    async def pin(self, url: str) -> Pinned:
        parts, hostname, port = _target(url)
        key = (parts.scheme, hostname, port)
        address = self._addresses.get(key)
        if address is None:
            async with self._lock:  # concurrent first requests resolve the host once
                address = self._addresses.get(key)
                if address is None:
                    addresses = await check_host(hostname, port, self._policy)
                    address = self._addresses[key] = addresses[0]
        return _pinned(parts, address, port)
