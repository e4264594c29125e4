"""Outbound HTTP that reaches public addresses only: the guard against server-side request forgery.

Admins type URLs the service then calls with credentials (a webhook endpoint, an API base URL,
a Salesforce instance, the Graph API): left alone, such a URL points the service at itself, at
the cloud metadata endpoint (169.254.169.254) or at anything on the private network. So the
shared client checks every connection it opens, not only the form when it is saved (DNS
answers change): the host is resolved once, refused when any of its addresses is not public,
and the socket is opened to an address that was checked, so a name that resolves elsewhere a
moment later (DNS rebinding) gains nothing. TLS still verifies the certificate against the host
name. The client follows no redirects; a client that does opens each hop through the same check.

Operators who run a helpdesk on their own network allow it with HANDOFF_ALLOW_PRIVATE_URLS
(everything) or HANDOFF_ALLOWED_PRIVATE_HOSTS (named hosts, addresses or networks).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from pydantic import BaseModel

from handoff.service.errors import Invalid
from handoff.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Names that never mean a public service, refused before any lookup: `localhost` resolves to
# loopback without DNS, and `.internal` is the cloud metadata zone (metadata.google.internal).
PRIVATE_NAMES = frozenset({"localhost"})
PRIVATE_NAME_SUFFIXES = (".localhost", ".internal")
# NAT64 gateways translate this prefix to the IPv4 address in its last 32 bits (RFC 6052).
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
ALLOW_HINT = "HANDOFF_ALLOW_PRIVATE_URLS or HANDOFF_ALLOWED_PRIVATE_HOSTS allows it"


class AddressRefused(httpx.ConnectError):
    """The host is, or resolves to, an address the service may not call.

    A ConnectError, so every caller that already turns "cannot reach" into its own error
    (a connector's Unavailable, WhatsApp's) handles it unchanged; it is raised before any
    socket is opened.
    """


def is_public(address: IPAddress) -> bool:
    """Tell whether an address belongs to the public internet.

    Loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 with the metadata endpoint,
    fe80::/10), carrier-grade NAT (100.64/10), multicast, reserved and unspecified (0.0.0.0)
    are not; an IPv6 address that carries an IPv4 one (mapped, NAT64) is judged by that one.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None
        )
        if embedded is not None:
            return is_public(embedded)
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which non-public destinations the operator allows; by default none."""

    allow_private: bool = False
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def build(cls, *, allow_private: bool = False, allowed: Iterable[str] = ()) -> AddressPolicy:
        """Sort the allow-list into host names and networks (an address is a /32 or /128)."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in allowed:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(_bare(entry))
        return cls(allow_private=allow_private, hosts=frozenset(hosts), networks=tuple(networks))

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressPolicy:
        return cls.build(
            allow_private=settings.allow_private_urls, allowed=settings.allowed_private_hosts
        )

    def host_allowed(self, host: str) -> bool:
        """Tell whether the operator allows this host whatever it resolves to."""
        return self.allow_private or _bare(host) in self.hosts

    def name_refused(self, host: str) -> bool:
        """Tell whether the host name alone marks a destination that is not public."""
        name = _bare(host)
        private = name in PRIVATE_NAMES or name.endswith(PRIVATE_NAME_SUFFIXES)
        return private and not self.host_allowed(host)

    def address_refused(self, host: str, address: IPAddress) -> bool:
        if self.host_allowed(host) or is_public(address):
            return False
        return not any(address in network for network in self.networks)


def _bare(host: str) -> str:
    """Return a host name as compared: lower case, without the root dot or IPv6 brackets."""
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


async def system_resolve(host: str, port: int) -> list[str]:
    """Resolve a host with the system resolver, in a worker thread (never on the event loop)."""
    answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in answers))


@dataclass(frozen=True, slots=True)
class AddressGuard:
    """The policy and the resolver it checks names with."""

    policy: AddressPolicy = field(default_factory=AddressPolicy)
    resolve: Resolver = system_resolve

    async def addresses(self, host: str, port: int) -> list[str]:
        """Return the addresses to connect to; raise AddressRefused when any is not allowed.

        Every address is checked, not only the first: a name with one public and one private
        address would otherwise reach the private one whenever the first fails.
        """
        if self.policy.name_refused(host):
            raise AddressRefused(f"{host} is not a public host; {ALLOW_HINT}")
        literal = _literal(host)
        found = [literal] if literal is not None else await self._lookup(host, port)
        for address in found:
            if self.policy.address_refused(host, address):
                raise AddressRefused(f"{_shown(host, address)} not public; {ALLOW_HINT}")
        return [str(address) for address in found]

    async def _lookup(self, host: str, port: int) -> list[IPAddress]:
        try:
            answers = await self.resolve(host, port)
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        if not answers:
            raise httpcore.ConnectError(f"cannot resolve {host}")
        return [ipaddress.ip_address(answer) for answer in answers]

    async def check_url(self, url: str) -> None:
        """Refuse a URL whose host is not public; a host that does not resolve passes.

        Run when a form is saved, for a clear error naming the field; the connection is checked
        again when it is made. A name that does not resolve now is left for the connection
        attempt to report.
        """
        parts = urlsplit(url)
        if not parts.hostname or self.policy.host_allowed(parts.hostname):
            return  # no lookup when the answer cannot matter
        port = parts.port or (443 if parts.scheme == "https" else 80)  # ValueError: bad port
        try:
            await self.addresses(parts.hostname, port)
        except (httpcore.ConnectError, httpcore.ConnectTimeout):
            return


async def refuse_private_urls(guard: AddressGuard, form: BaseModel, *, prefix: str = "") -> None:
    """Refuse a connect form whose URL fields (`url`, `*_url`) point to a non-public address.

    A 422 naming the field, before any call goes out; the connection is checked again anyway.
    """
    for name, value in form:
        if not (name == "url" or name.endswith("_url")) or not isinstance(value, str):
            continue
        try:
            await guard.check_url(value)
        except AddressRefused as error:
            reason = f"points to an address that is not public: {error}"
            raise Invalid(f"{prefix}{name}", reason) from None
        except ValueError:
            raise Invalid(f"{prefix}{name}", "is not a valid URL (check the port)") from None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(_bare(host))
    except ValueError:
        return None


def _shown(host: str, address: IPAddress) -> str:
    # The address a name resolves to stays unsaid: the error must not map the private network.
    if _literal(host) is not None:
        return f"{address} is"
    return f"{host} resolves to an address that is"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the guard allows."""

    def __init__(self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend) -> None:
        self._guard = guard
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self._guard.addresses(host, port), timeout)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from error
        failure: Exception | None = None
        for address in addresses:  # the checked addresses, in the resolver's order
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # addresses() returns at least one address or raises
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend signature
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("the service calls no local sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    guard: AddressGuard, *, network: httpcore.AsyncNetworkBackend | None = None, **options: Any
) -> httpx.AsyncHTTPTransport:
    """Return httpx's transport (with `options`) whose every new connection the guard checks.

    `network` opens the sockets once the guard agrees (httpcore's own backend by default; a
    test passes one that records the attempts). httpx takes no network backend argument, so
    the one its connection pool holds is wrapped in place; tests/service/test_netguard.py
    fails if a new httpx moves it.
    """
    transport = httpx.AsyncHTTPTransport(**options)
    pool: httpcore.AsyncConnectionPool = transport._pool
    pool._network_backend = GuardedBackend(guard, network or pool._network_backend)
    return transport
