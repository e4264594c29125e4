"""Rate limits at the door: who the client is and the per-address checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from fastapi import Request

from handoff.service.ratelimit import Limit
from handoff.settings import Settings
from handoff.web.deps import get_handoff

Network = IPv4Network | IPv6Network


def _is_proxy(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str, forwarded: Sequence[str], settings: Settings) -> str:
    """Return the address a request is counted against.

    It is the connection's peer, unless the peer is one of `trusted_proxies` and a
    `trusted_proxy_header` is configured: then it is the rightmost address in that header
    that is not itself a trusted proxy. Each proxy appends the address it saw, so addresses
    to the left of that one are whatever the client chose to send.
    """
    if not settings.trusted_proxy_header or not _is_proxy(peer, settings.trusted_proxies):
        return peer
    hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_proxy(hop, settings.trusted_proxies):
            return hop
    return hops[0] if hops else peer  # every hop is ours: the first one is the client


def request_address(request: Request) -> str:
    settings = get_handoff(request).settings
    peer = request.client.host if request.client else "unknown"
    header = settings.trusted_proxy_header
    forwarded = request.headers.getlist(header) if header else []
    return client_address(peer, forwarded, settings)


def per_address(limit: Limit) -> Callable[[Request], Awaitable[None]]:
    """Return a route dependency that counts the request against `limit` for its address."""

    async def check(request: Request) -> None:
        await get_handoff(request).limits.hit(limit, request_address(request))

    return check
