"""Per-caller rate limit (SPEC §4: 100 requests/s by default): RESOURCE_EXHAUSTED beyond it.

A token bucket per principal (tenant and username); before login (Login, Refresh,
reflection) per client address. Health checks are not limited: probes must always get an
answer. The client address is resolved here once per call (:class:`ClientAddresses`) and made
available to the servicer (:func:`grpc_services.context.current_client_address`), where Login
throttles per username and per address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

from grpc_services.context import client_address_scope, current_principal_or_none
from grpc_services.interceptors.base import Call, CallInterceptor
from rag.core.errors import Overloaded
from rag.core.throttle import TokenBuckets

__all__ = ["ClientAddresses", "RateLimitInterceptor", "TokenBuckets", "client_address"]

_UNLIMITED_SERVICES = frozenset({"grpc.health.v1.Health"})
# More hops than any real proxy chain; the rest of a longer header is not looked at.
_MAX_HOPS = 32

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(peer: str) -> str:
    """The address part of a grpc peer string ("ipv4:127.0.0.1:5555" -> "127.0.0.1")."""
    address = _peer_ip(peer)
    return str(address) if address is not None else peer


def _peer_ip(peer: str) -> IPAddress | None:
    kind, _, rest = peer.partition(":")
    if kind not in {"ipv4", "ipv6"}:
        return None  # unix socket, or something grpc adds later
    return _ip(rest.rsplit(":", 1)[0])


def _ip(text: str) -> IPAddress | None:
    """An address written bare, in brackets, or with a port ("[::1]:80", "10.0.0.1:80")."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddresses:
    """Who is calling: the peer address, or, when the peer is one of the ``trusted`` proxies, the
    client it names.

    ``X-Forwarded-For`` is read from the right (each proxy appends the address it was called
    from): the first hop that is not a trusted proxy is the client, and hops further left,
    which the client may have written itself, are never looked at. Without that header,
    ``X-Real-IP``. An untrusted peer's headers are ignored: anyone can send them.
    """

    def __init__(self, trusted: Sequence[IPNetwork] = ()) -> None:
        self._trusted = tuple(trusted)

    def resolve(self, peer: str, metadata: Iterable[tuple[str, str | bytes]]) -> str:
        address = _peer_ip(peer)
        if address is None or not self._is_trusted(address):
            return str(address) if address is not None else peer
        forwarded: list[str] = []
        real_ip: str | None = None
        for key, value in metadata:
            if not isinstance(value, str):
                continue
            if key.lower() == "x-forwarded-for":
                forwarded.extend(value.split(","))
            elif key.lower() == "x-real-ip":
                real_ip = value
        if forwarded:
            for hop in reversed(forwarded[-_MAX_HOPS:]):
                hop_address = _ip(hop)
                if hop_address is None:  # garbage: trust stops at the last proxy that was read
                    break
                address = hop_address
                if not self._is_trusted(hop_address):
                    break
            return str(address)
        if real_ip is not None and (named := _ip(real_ip)) is not None:
            return str(named)
        return str(address)

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)


class RateLimitInterceptor(CallInterceptor):
    def __init__(self, buckets: TokenBuckets, clients: ClientAddresses | None = None) -> None:
        self._buckets = buckets
        self._clients = clients or ClientAddresses()

    @asynccontextmanager
    async def scope(self, call: Call) -> AsyncIterator[None]:
        client = self._clients.resolve(call.context.peer() or "", call.context.invocation_metadata() or ())
        if call.service not in _UNLIMITED_SERVICES:
            principal = current_principal_or_none()
            if principal is not None:
                key = f"user:{principal.tenant}/{principal.username}"
            else:
                key = f"addr:{client}"
            wait = self._buckets.try_acquire(key)
            if wait:
                raise Overloaded(
                    f"rate limit of {self._buckets.rate:g} requests/s exceeded; retry in {wait:.2f} s",
                    retry_after_s=wait,
                )
        with client_address_scope(client):
            yield
