"""URLs in connect forms cannot point the server at its own network, nor read its answers back.

One server here runs without HANDOFF_ALLOW_PRIVATE_URLS (the others allow it for their loopback
fakes). Refused destinations other than 127.0.0.1 are never contacted: the form is refused
before any call, and the unit tests of the guard (tests/service/test_netguard.py) show the
connection-time refusal opens no socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.conftest import Server, start_server, stop_server
from tests.fakes.server import LoopbackServer, Received

SECRET = "SECRET-INTERNAL"
# Codes that look like identifiers may be repeated in errors; text with spaces never is.
LEAK = f"{SECRET} database password hunter2"
SIGNING_SECRET = "guard-shared-secret-0123456789"


class InternalService(LoopbackServer):
    """Something on the private network: records every request, answers `answer()`."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answer: Callable[[], Response] = lambda: PlainTextResponse("ok")

        async def anything(request: Request) -> Response:
            self.requests.append(Received.of(request, await request.body()))
            return self.answer()

        methods = ["GET", "POST", "PUT", "PATCH"]
        route = Route("/{path:path}", anything, methods=methods)
        super().__init__(Starlette(routes=[route]), name="Internal")

    @property
    def origin(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def internal() -> Iterator[InternalService]:
    with InternalService() as fake:
        yield fake


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("guarded")
    server = start_server("sqlite", tmp, env={"HANDOFF_ALLOW_PRIVATE_URLS": "false"})
    yield server
    stop_server(server)


def webhook(host: str) -> dict[str, Any]:
    return {"url": f"http://{host}/hooks", "signing_secret": SIGNING_SECRET}


def zendesk(host: str) -> dict[str, Any]:
    return {
        "subdomain": "acme",
        "email": "agent@example.com",
        "api_token": "token",
        "base_url": f"http://{host}",
    }


def salesforce(host: str) -> dict[str, Any]:
    return {"instance_url": f"https://{host}", "client_id": "key", "client_secret": "secret"}


FORMS: dict[str, tuple[Callable[[str], dict[str, Any]], str]] = {
    "webhook": (webhook, "url"),
    "zendesk": (zendesk, "base_url"),
    "salesforce": (salesforce, "instance_url"),
}
ELSEWHERE = ["[::1]", "169.254.169.254", "10.0.0.1", "metadata.google.internal"]


def whatsapp(host: str) -> dict[str, Any]:
    return {
        "phone_number_id": "1234567890",
        "access_token": "EAAG-token",
        "app_secret": "app-secret",
        "verify_token": "verify",
        "template_name": "follow_up",
        "base_url": f"http://{host}/v21.0",
    }


def refused_field(response: Any) -> str:
    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert "not public" in problem["msg"]
    return str(problem["loc"][-1])


@pytest.mark.parametrize("platform", sorted(FORMS))
def test_helpdesk_urls_to_private_addresses_are_refused_with_the_field(
    guarded: Server, internal: InternalService, platform: str
) -> None:
    form, field = FORMS[platform]
    path = f"/api/v1/agents/{guarded.demo_agent_id}/integrations"
    with guarded.admin() as admin:
        for host in [internal.origin, *ELSEWHERE]:
            body = {"platform": platform, "credentials": form(host)}
            assert refused_field(admin.post(path, json=body)) == f"credentials.{field}", host
        listed = admin.get(path).json()
    assert internal.requests == []  # refused before any call
    assert platform not in {i["platform"] for i in listed}


def test_oauth_approval_is_refused_for_a_private_token_endpoint(guarded: Server) -> None:
    form = {**zendesk("169.254.169.254"), "auth": "oauth", "client_id": "c", "client_secret": "s"}
    del form["email"], form["api_token"]
    with guarded.admin() as admin:
        started = admin.post(
            f"/api/v1/agents/{guarded.demo_agent_id}/integrations/authorize",
            json={"platform": "zendesk", "credentials": form},
        )
    assert refused_field(started) == "credentials.base_url"


def test_whatsapp_base_url_to_a_private_address_is_refused(
    guarded: Server, internal: InternalService
) -> None:
    path = f"/api/v1/agents/{guarded.demo_agent_id}/channels/whatsapp"
    with guarded.admin() as admin:
        for host in [internal.origin, *ELSEWHERE]:
            assert refused_field(admin.put(path, json=whatsapp(host))) == "base_url", host
    assert internal.requests == []


def test_a_url_with_a_bad_port_is_refused_with_the_field(guarded: Server) -> None:
    path = f"/api/v1/agents/{guarded.demo_agent_id}/integrations"
    body = {"platform": "webhook", "credentials": webhook("hooks.example:99999")}
    with guarded.admin() as admin:
        answer = admin.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][-1] == "credentials.url"


def test_a_name_for_loopback_is_refused(guarded: Server, internal: InternalService) -> None:
    path = f"/api/v1/agents/{guarded.demo_agent_id}/integrations"
    body = {"platform": "webhook", "credentials": webhook(f"localhost:{internal.port}")}
    with guarded.admin() as admin:
        assert refused_field(admin.post(path, json=body)) == "credentials.url"
    assert internal.requests == []


ANSWERS: dict[str, Callable[[], Response]] = {
    "500 text": lambda: PlainTextResponse(f"stack trace with {SECRET}", status_code=500),
    "400 json": lambda: JSONResponse({"error": LEAK, "message": LEAK, "description": LEAK}, 400),
    "401 json": lambda: JSONResponse({"error": {"message": LEAK, "code": 190}}, 401),
    "403 list": lambda: JSONResponse([{"message": LEAK, "errorCode": "NOPE"}], 403),
}


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_errors_never_carry_the_remote_body(
    any_server: Server, internal: InternalService, answer: str
) -> None:
    """With private addresses allowed, a connect still says only the status and short codes."""
    internal.answer = ANSWERS[answer]
    agent = any_server.demo_agent_id
    with any_server.admin() as admin:
        answers = [
            admin.post(
                f"/api/v1/agents/{agent}/integrations",
                json={"platform": platform, "credentials": FORMS[platform][0](internal.origin)},
            )
            for platform in ("webhook", "zendesk")
        ]
        answers.append(
            admin.post(
                f"/api/v1/agents/{agent}/integrations",
                json={
                    "platform": "salesforce",
                    "credentials": {
                        **salesforce(internal.origin),
                        "base_url": f"http://{internal.origin}",
                    },
                },
            )
        )
        answers.append(
            admin.put(f"/api/v1/agents/{agent}/channels/whatsapp", json=whatsapp(internal.origin))
        )
    assert len(internal.requests) >= len(answers)  # every connect did call the service
    for response in answers:
        assert response.status_code in (422, 502), response.text
        assert SECRET not in response.text
        assert answer.split()[0] in response.text  # the status code is still said
