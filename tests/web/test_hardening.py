"""The public surface, tried as an attacker would: bounded bodies, safe headers, offline docs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.fakes.zendesk import FakeZendesk
from tests.raw_http import MIB, declared_only, streamed
from tests.web.chat import bare_agent, start_chat

SIGNING_SECRET = "zd-sign-hardening-0123456789"


def _port(server: Server) -> int:
    return int(urlsplit(server.url).port or 80)


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    with FakeZendesk() as fake:
        yield fake


def zendesk_webhook(server: Server, fake: FakeZendesk) -> str:
    """Connect a Zendesk integration and return its webhook path."""
    agent_id = bare_agent(server)
    with server.admin() as admin:
        connected = admin.post(
            f"/api/v1/agents/{agent_id}/integrations",
            json={
                "platform": "zendesk",
                "credentials": {
                    "subdomain": fake.subdomain,
                    "email": fake.email,
                    "api_token": fake.api_token,
                    "base_url": fake.base_url,
                    "webhook_signing_secret": SIGNING_SECRET,
                },
            },
        )
        assert connected.status_code == 201, connected.text
    return f"/api/v1/webhooks/{connected.json()['id']}"


# --- bodies ----------------------------------------------------------------------------------


def test_a_declared_oversized_body_is_refused_before_it_is_sent(any_server: Server) -> None:
    path = f"/api/v1/agents/{any_server.demo_agent_id}/conversations"
    assert declared_only(_port(any_server), path, 200 * MIB) == 413
    assert declared_only(_port(any_server), "/api/v1/auth/login", 2 * MIB) == 413


def test_an_unknown_webhook_answers_404_without_reading_the_body(any_server: Server) -> None:
    # The body is announced but never sent: an answer at all means it was not waited for.
    assert declared_only(_port(any_server), "/api/v1/webhooks/no-such-integration", 900_000) == 404
    assert (
        declared_only(_port(any_server), "/api/v1/channels/whatsapp/no-such-number", 900_000) == 404
    )


def test_a_streamed_body_is_cut_off_at_the_limit(any_server: Server, zendesk: FakeZendesk) -> None:
    hook = zendesk_webhook(any_server, zendesk)
    status, sent = streamed(_port(any_server), hook, total=64 * MIB)
    assert status == 413
    assert sent < 8 * MIB  # refused near the 1 MiB limit, not after reading 64 MiB
    path = f"/api/v1/agents/{any_server.demo_agent_id}/conversations"
    status, sent = streamed(_port(any_server), path, total=64 * MIB)
    assert status == 413 and sent < 8 * MIB


def test_a_refused_body_answers_the_json_error_shape(any_server: Server) -> None:
    oversized = b"x" * (2 * MIB)  # over the 1 MiB limit of every route but knowledge uploads

    def in_chunks() -> Iterator[bytes]:
        for start in range(0, len(oversized), 64 * 1024):
            yield oversized[start : start + 64 * 1024]

    path = f"/api/v1/agents/{any_server.demo_agent_id}/conversations"
    with any_server.client() as anonymous:
        # Declared in Content-Length, then streamed without a length (chunked).
        for body in (oversized, in_chunks()):
            refused = anonymous.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )
            assert refused.status_code == 413
            assert refused.headers["content-type"] == "application/json"
            assert refused.json()["code"] == "body_too_large"
            assert "larger" in refused.json()["detail"]


def test_a_knowledge_upload_has_a_larger_limit_than_other_bodies(any_server: Server) -> None:
    # About 2 MiB: over the 1 MiB default, within the 8 MiB a knowledge upload may send.
    entries = [{"question": f"Question {i}?", "answer": "a" * 2000} for i in range(1000)]
    assert MIB < len(json.dumps(entries)) < 8 * MIB
    with any_server.client() as anonymous:
        knowledge = anonymous.put(
            f"/api/v1/agents/{any_server.demo_agent_id}/knowledge", json=entries
        )
        assert knowledge.status_code in (401, 422), knowledge.text  # read, then refused
        workspace = anonymous.post("/api/v1/workspaces", json=entries)
        assert workspace.status_code == 413


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
        threading.Thread(
            target=lambda: results.append(streamed(_port(server), hook, total=100 * MIB))
        )
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grown_mib = (_rss_kib(server.process.pid) - before) / 1024
    assert [status for status, _ in results] == [413] * 5
    assert grown_mib < 64, f"the server grew by {grown_mib:.0f} MiB"


# --- input that used to answer 500 ----------------------------------------------------------


def test_text_utf8_cannot_carry_is_a_422(any_server: Server) -> None:
    lone_surrogate = '"\\ud800"'  # valid JSON, but no UTF-8 text
    with any_server.client() as client:
        conversation = client.post(
            f"/api/v1/agents/{any_server.demo_agent_id}/conversations",
            content=f'{{"channel": "widget", "contact": {{"name": {lone_surrogate}}}}}',
            headers={"Content-Type": "application/json"},
        )
        login = client.post(
            "/api/v1/auth/login",
            content=f'{{"email": "a@example.com", "password": {lone_surrogate}}}',
            headers={"Content-Type": "application/json"},
        )
    for response in (conversation, login):
        assert response.status_code == 422, response.text
    assert conversation.json()["detail"][0]["loc"] == ["body", "contact", "name"]
    assert login.json()["detail"][0]["loc"] == ["body", "password"]


def test_the_nul_character_is_a_422_on_both_databases(any_server: Server) -> None:
    # PostgreSQL's text cannot hold U+0000: it used to fail the write with a 500 there.
    with any_server.admin() as admin:
        knowledge = admin.put(
            f"/api/v1/agents/{any_server.demo_agent_id}/knowledge",
            json=[{"question": "Opening hours?", "answer": "9 to 5\u0000"}],
        )
    assert knowledge.status_code == 422, knowledge.text
    assert knowledge.json()["detail"][0]["loc"] == ["body", 0, "answer"]
    chat = start_chat(any_server)
    with chat.client() as client:
        sent = client.post(f"/api/v1/conversations/{chat.id}/messages", json={"text": "hi\u0000"})
    assert sent.status_code == 422 and sent.json()["detail"][0]["loc"] == ["body", "text"]


def test_deeply_nested_json_with_a_valid_signature_is_a_422(
    any_server: Server, zendesk: FakeZendesk
) -> None:
    hook = zendesk_webhook(any_server, zendesk)
    body = b"[" * 50_000 + b"]" * 50_000
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(SIGNING_SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()
    headers = {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }
    with any_server.client() as client:
        response = client.post(hook, content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "body"]


def test_ids_beyond_64_bits_and_empty_client_ids_are_422(any_server: Server) -> None:
    with any_server.admin() as admin:
        job = admin.post("/api/v1/jobs/29320137344346940944416768/retry")
    assert job.status_code == 422 and job.json()["detail"][0]["loc"] == ["path", "job_id"]
    chat = start_chat(any_server)
    with chat.client() as client:
        for _ in range(2):  # the second used to break the unique (conversation, client_id)
            sent = client.post(
                f"/api/v1/conversations/{chat.id}/messages", json={"text": "hi", "client_id": ""}
            )
            assert sent.status_code == 422, sent.text
            assert sent.json()["detail"][0]["loc"] == ["body", "client_id"]


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
