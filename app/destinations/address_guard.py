"""The private-address guard: destinations may not reach loopback, private or link-local
addresses (IPv4 and IPv6) unless explicitly allowed; checked after DNS resolution, on every
hop of a redirect.

`pin` resolves once, checks, and hands back the URL with the checked address in place of the
name (plus the Host header and TLS server name to keep), so a second DNS answer between the
check and the connection (DNS rebinding) cannot steer a request to a private address."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

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


async def _checked_addresses(url: str, policy: AddressPolicy) -> tuple[list[IPAddress], int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TerminalError("the destination URL must be http(s) with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return await check_host(parts.hostname, port, policy), port


async def check_url(url: str, policy: AddressPolicy) -> None:
    """Resolve the URL's host and refuse it if any address it resolves to is not allowed."""
    await _checked_addresses(url, policy)


async def pin(url: str, policy: AddressPolicy) -> Pinned:
    """Check the URL's host, then pin the request to the first checked address."""
    addresses, port = await _checked_addresses(url, policy)
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{port}"
    host = parts.netloc.rsplit("@", 1)[-1]
    return Pinned(
        url=urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
        host=host,
        server_name=hostname,
    )
