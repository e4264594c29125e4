"""A call that gets no answer is reported by the host it was for, in words a person reads."""

from __future__ import annotations

import socket

import httpx
import pytest

from handoff.helpdesks import common
from handoff.helpdesks.errors import Unavailable


class UnresolvedName(httpx.AsyncBaseTransport):
    """What httpx raises when the resolver has no address for the name."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as error:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from error


async def test_a_name_that_does_not_resolve_is_named_with_its_host() -> None:
    async with httpx.AsyncClient(transport=UnresolvedName()) as http:
        request = http.build_request("GET", "https://acme.zendesk.com/api/v2/users/me")
        with pytest.raises(Unavailable) as raised:
            await common.send(http, request, platform="Zendesk")
    assert str(raised.value) == "could not reach acme.zendesk.com: the name does not resolve"


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ("[Errno -3] Temporary failure in name resolution", "the name does not resolve"),
        ("[Errno 111] Connection refused", "the connection was refused"),
        ("", "the connection failed"),
    ],
)
def test_the_reason_reads_as_words(said: str, reason: str) -> None:
    assert common.network_reason(httpx.ConnectError(said)) == reason
