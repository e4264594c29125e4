"""The address guard on the shared outbound client: refused before any socket is opened.

Every refusal is checked against a network backend that records connection attempts and opens
a real socket only to 127.0.0.1, so nothing here sends a packet anywhere else, even when the
guard is broken.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpcore
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from handoff.service.netguard import (
    AddressGuard,
    AddressPolicy,
    AddressRefused,
    guarded_transport,
    is_public,
)
from handoff.service.runtime import Handoff
from handoff.settings import Settings
from tests.fakes.server import LoopbackServer


class RecordingNetwork(httpcore.AsyncNetworkBackend):
    """Record every connection attempt; connect for real to 127.0.0.1 only."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.attempts.append((host, port))
        if host != "127.0.0.1":
            raise httpcore.ConnectError(f"the test network connects nowhere but 127.0.0.1 ({host})")
        return await self._real.connect_tcp(host, port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


class FakeService(LoopbackServer):
    """A loopback service: `/` answers who it was asked for, `/hop` redirects to metadata."""

    def __init__(self) -> None:
        async def echo_host(request: Request) -> Response:
            return PlainTextResponse(request.headers["host"])

        async def hop(request: Request) -> Response:
            return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

        super().__init__(
            Starlette(routes=[Route("/", echo_host), Route("/hop", hop)]), name="Service"
        )


@pytest.fixture
def service() -> Iterator[FakeService]:
    with FakeService() as fake:
        yield fake


@pytest.fixture
def network() -> RecordingNetwork:
    return RecordingNetwork()


def resolver(table: dict[str, list[str]], calls: list[str] | None = None) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return table[host]

    return resolve


def client(
    network: RecordingNetwork, policy: AddressPolicy | None = None, **guard: Any
) -> httpx.AsyncClient:
    checked = AddressGuard(policy or AddressPolicy(), **guard)
    return httpx.AsyncClient(transport=guarded_transport(checked, network=network), timeout=5)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "169.254.169.254",
        "fd00:ec2::254",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "fe80::1",
        "fc00::1",
        "fec0::1",
        "224.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
    ],
)
def test_addresses_that_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://127.0.0.1:9/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "https://metadata.google.internal/computeMetadata/v1/",
        "http://localhost:9/",
        "http://LocalHost.:9/",
        "http://api.localhost/",
        "http://0.0.0.0/",
    ],
)
async def test_private_destinations_are_refused_before_any_connection(
    network: RecordingNetwork, url: str
) -> None:
    async with client(network) as http:
        with pytest.raises(AddressRefused, match="HANDOFF_ALLOW_PRIVATE_URLS"):
            await http.get(url)
    assert network.attempts == []


async def test_a_public_address_is_connected_to(network: RecordingNetwork) -> None:
    async with client(network) as http:
        with pytest.raises(httpx.ConnectError) as failed:
            await http.get("http://93.184.216.34/")
    assert not isinstance(failed.value, AddressRefused)
    assert network.attempts == [("93.184.216.34", 80)]


async def test_a_name_with_any_private_address_is_refused(network: RecordingNetwork) -> None:
    table = {"helpdesk.example": ["93.184.216.34", "10.0.0.1"]}
    async with client(network, resolve=resolver(table)) as http:
        with pytest.raises(AddressRefused) as refused:
            await http.get("https://helpdesk.example/api")
    assert network.attempts == []
    assert "10.0.0.1" not in str(refused.value)  # the private network stays unmapped


async def test_each_connection_resolves_once_and_connects_to_the_checked_address(
    network: RecordingNetwork, service: FakeService
) -> None:
    """A name checked as allowed is connected to at the address checked, not looked up again."""
    calls: list[str] = []
    table = {"rebind.example": ["127.0.0.1"]}
    allowed = AddressPolicy.build(allowed=["127.0.0.0/8"])
    async with client(network, allowed, resolve=resolver(table, calls)) as http:
        answer = await http.get(f"http://rebind.example:{service.port}/")
    assert answer.text == f"rebind.example:{service.port}"  # the Host header is the name
    assert calls == ["rebind.example"]
    assert network.attempts == [("127.0.0.1", service.port)]


async def test_a_name_that_resolves_to_loopback_is_refused_unless_allowed(
    network: RecordingNetwork, service: FakeService
) -> None:
    table = {"loop.example": ["127.0.0.1"]}
    async with client(network, resolve=resolver(table)) as http:
        with pytest.raises(AddressRefused):
            await http.get(f"http://loop.example:{service.port}/")
    assert network.attempts == []
    policy = AddressPolicy(allow_private=True)
    async with client(network, policy) as http:  # the system resolver, for real
        answer = await http.get(f"http://localhost:{service.port}/")
    assert answer.status_code == 200
    assert ("127.0.0.1", service.port) in network.attempts


async def test_an_allowed_host_does_not_open_the_rest(
    network: RecordingNetwork, service: FakeService
) -> None:
    policy = AddressPolicy.build(allowed=["127.0.0.1"])
    async with client(network, policy) as http:
        assert (await http.get(f"http://127.0.0.1:{service.port}/")).status_code == 200
        with pytest.raises(AddressRefused):
            await http.get("http://10.0.0.1/")
    assert network.attempts == [("127.0.0.1", service.port)]


async def test_a_redirect_to_a_private_address_is_refused_before_it_is_followed(
    network: RecordingNetwork, service: FakeService
) -> None:
    policy = AddressPolicy.build(allowed=["127.0.0.1"])
    async with client(network, policy) as http:
        with pytest.raises(AddressRefused):
            await http.get(f"http://127.0.0.1:{service.port}/hop", follow_redirects=True)
    assert network.attempts == [("127.0.0.1", service.port)]


@pytest.fixture
async def hf(tmp_path: Any) -> AsyncIterator[Handoff]:
    handoff = Handoff(Settings(data_dir=tmp_path, secret_key="test-secret"))
    try:
        yield handoff
    finally:
        await handoff.close()


async def test_the_service_client_is_guarded_and_follows_no_redirect(
    hf: Handoff, service: FakeService
) -> None:
    with pytest.raises(AddressRefused):
        await hf.http.get(f"http://127.0.0.1:{service.port}/")
    assert hf.http.follow_redirects is False


async def test_the_settings_allow_private_addresses(tmp_path: Any, service: FakeService) -> None:
    for settings in (
        Settings(data_dir=tmp_path, secret_key="k", allow_private_urls=True),
        Settings(data_dir=tmp_path, secret_key="k", allowed_private_hosts=["127.0.0.1"]),
    ):
        hf = Handoff(settings)
        try:
            assert (await hf.http.get(f"http://127.0.0.1:{service.port}/")).status_code == 200
        finally:
            await hf.close()


async def test_a_saved_url_is_checked_by_what_its_name_resolves_to() -> None:
    calls: list[str] = []

    async def unknown(host: str, port: int) -> list[str]:
        calls.append(host)
        if host == "intranet.example":
            return ["10.1.2.3"]
        raise OSError("no such name")

    guard = AddressGuard(resolve=unknown)
    with pytest.raises(AddressRefused):
        await guard.check_url("https://intranet.example/api")
    await guard.check_url("https://gone.example/api")  # left for the connection to report
    allowed = AddressGuard(AddressPolicy(allow_private=True), resolve=unknown)
    await allowed.check_url("https://intranet.example/api")
    assert calls == ["intranet.example", "gone.example"]  # no lookup when all is allowed
