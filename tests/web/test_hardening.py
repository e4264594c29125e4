"""The public surface, tried as an attacker would: bounded bodies, safe headers, offline docs."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.fakes.zendesk import FakeZendesk

MIB = 1 << 20


# --- raw HTTP, so a test controls exactly how much of a body goes out --------------------------


def _connect(server: Server) -> socket.socket:
    parts = urlsplit(server.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def _request_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *[f"{k}: {v}" for k, v in headers.items()]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split(b" ", 2)[1])


def declared_only(server: Server, path: str, length: int) -> int:
    """Declare a body of `length` bytes, send none of it, and return the status."""
    with _connect(server) as sock:
        sock.sendall(
            _request_head(path, {"Content-Type": "application/json", "Content-Length": str(length)})
        )
        return _status(sock)


def streamed(server: Server, path: str, total: int, chunk: int = 64 * 1024) -> tuple[int, int]:
    """Send up to `total` bytes chunked, stopping when the server answers; return
    (status, bytes sent before the answer came)."""
    sent = 0
    with _connect(server) as sock:
        sock.sendall(
            _request_head(
                path, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
            )
        )
        piece = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
        sock.settimeout(0)
        while sent < total:
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break  # the server answered before the body was over
            except BlockingIOError:
                pass
            try:
                sock.sendall(piece)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            sent += chunk
        sock.settimeout(10)
        return _status(sock), sent


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    with FakeZendesk() as fake:
        yield fake


def zendesk_webhook(server: Server, fake: FakeZendesk) -> str:
    """Connect a Zendesk integration and return its webhook path."""
    with server.admin() as admin:
        workspace = admin.post("/api/v1/workspaces", json={"name": "Bodies"}).json()
        agent = admin.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["widget"]},
        ).json()
        connected = admin.post(
            f"/api/v1/agents/{agent['id']}/integrations",
            json={
                "platform": "zendesk",
                "credentials": {
                    "subdomain": fake.subdomain,
                    "email": fake.email,
                    "api_token": fake.api_token,
                    "base_url": fake.base_url,
                },
            },
        )
        assert connected.status_code == 201, connected.text
    return f"/api/v1/webhooks/{connected.json()['id']}"


# --- bodies ----------------------------------------------------------------------------------


def test_a_declared_oversized_body_is_refused_before_it_is_sent(any_server: Server) -> None:
    path = f"/api/v1/agents/{any_server.demo_agent_id}/conversations"
    assert declared_only(any_server, path, 200 * MIB) == 413
    assert declared_only(any_server, "/api/v1/auth/login", 2 * MIB) == 413


def test_an_unknown_webhook_answers_404_without_reading_the_body(any_server: Server) -> None:
    # The body is announced but never sent: an answer at all means it was not waited for.
    assert declared_only(any_server, "/api/v1/webhooks/no-such-integration", 900_000) == 404
    assert declared_only(any_server, "/api/v1/channels/whatsapp/no-such-number", 900_000) == 404


def test_a_streamed_body_is_cut_off_at_the_limit(any_server: Server, zendesk: FakeZendesk) -> None:
    hook = zendesk_webhook(any_server, zendesk)
    status, sent = streamed(any_server, hook, total=64 * MIB)
    assert status == 413
    assert sent < 8 * MIB  # refused near the 1 MiB limit, not after reading 64 MiB
    path = f"/api/v1/agents/{any_server.demo_agent_id}/conversations"
    status, sent = streamed(any_server, path, total=64 * MIB)
    assert status == 413 and sent < 8 * MIB


def test_the_413_says_what_the_limit_is(any_server: Server) -> None:
    with any_server.client() as client:
        response = client.post(
            f"/api/v1/agents/{any_server.demo_agent_id}/conversations",
            content=b'{"channel": "widget", "contact": {"name": "' + b"a" * (2 * MIB) + b'"}}',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert "1 MiB" in response.json()["detail"]


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def test_parallel_huge_webhooks_do_not_grow_the_process(
    server: Server, zendesk: FakeZendesk
) -> None:
    hook = zendesk_webhook(server, zendesk)
    before = _rss_kib(server.process.pid)
    results: list[tuple[int, int]] = []
    threads = [
        threading.Thread(target=lambda: results.append(streamed(server, hook, total=100 * MIB)))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grown_mib = (_rss_kib(server.process.pid) - before) / 1024
    assert [status for status, _ in results] == [413] * 5
    assert grown_mib < 64, f"the server grew by {grown_mib:.0f} MiB"


# --- headers ---------------------------------------------------------------------------------


def _policy(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {d.split()[0]: d.partition(" ")[2] for d in (p.strip() for p in policy.split(";")) if d}


def test_pages_carry_a_strict_policy(server: Server) -> None:
    with server.client() as client:
        for path in ("/", "/inbox", "/settings", "/docs", f"/demo/{server.demo_agent_id}"):
            page = client.get(path)
            assert page.status_code == 200, path
            policy = _policy(page)
            assert "unsafe-inline" not in policy["script-src"], path
            assert "unsafe-eval" not in policy["script-src"], path
            assert policy["frame-ancestors"] == "'self'", path
            assert page.headers["x-content-type-options"] == "nosniff"
            assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
            assert "strict-transport-security" not in page.headers  # plain http here
        help_page = client.get(f"/help/{server.demo_agent_id}")
        assert _policy(help_page)["frame-ancestors"] == "*"  # embedding is its purpose
        api = client.get(f"/api/v1/agents/{server.demo_agent_id}/public")
        assert api.headers["x-content-type-options"] == "nosniff"


def test_https_deployments_send_hsts_and_only_their_origins_may_embed(
    tmp_path: Path,
) -> None:
    env = {
        "HANDOFF_PUBLIC_URL": "https://support.example.com",
        "HANDOFF_CORS_ORIGINS": '["https://www.example.com"]',
    }
    server = start_server("sqlite", tmp_path, env=env)
    try:
        with server.client() as client:
            page = client.get("/inbox")
            assert page.headers["strict-transport-security"].startswith("max-age=")
            help_page = client.get(f"/help/{server.demo_agent_id}")
            assert _policy(help_page)["frame-ancestors"] == "https://www.example.com"
    finally:
        stop_server(server)


# --- the API docs work offline ---------------------------------------------------------------


def test_docs_load_swagger_from_this_service_with_integrity(server: Server) -> None:
    with server.client() as client:
        page = client.get("/docs").text
        assert "cdn" not in page.lower()
        assert not re.search(r"(src|href)=\"https?://", page)
        for asset, integrity in re.findall(
            r'(?:src|href)="(/static/swagger/[^"]+)" integrity="([^"]+)"', page
        ):
            served = client.get(asset)
            assert served.status_code == 200, asset
            digest = base64.b64encode(hashlib.sha384(served.content).digest()).decode()
            assert integrity == f"sha384-{digest}"
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/redoc").status_code == 404  # it would load its script from a CDN
