"""What waits in the outbox per helpdesk: /metrics gauges, each integration's health, retry all.

Most tests run a server with no worker (`serve --no-worker`), so the jobs stay where the test
puts them: one queued by a real escalation, the others written to the database as a failing
helpdesk would leave them (due for minutes, backing off, parked after its retries). The last
one lets a worker fail against the fake HubSpot until the job parks, then retries it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from handoff.store.db import Database
from handoff.store.models import OutboxJob, utcnow
from tests.conftest import BACKENDS, Server, start_server, stop_server
from tests.helpdesks.harness import HubSpotHarness
from tests.web.chat import wait_for
from tests.web.test_helpdesk_e2e import ASK, CONTACT, REPLY, connect, deliver, escalate

UNAUTHORIZED = "HubSpot refused the credentials: HTTP 401 Unauthorized"
OVERLOADED = "HubSpot answered HTTP 503 Service Unavailable"


@pytest.fixture(params=BACKENDS)
def api_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    server = start_server(request.param, tmp_path, "--no-worker")
    yield server
    stop_server(server)


@dataclass
class Stalled:
    """A HubSpot integration with jobs in every state, and the agent it belongs to."""

    agent_id: str
    integration_id: str
    jobs: dict[str, int]  # what each job stands for → its id


def job(kind: str, payload: dict[str, Any], **columns: Any) -> OutboxJob:
    return OutboxJob(
        kind=kind, payload=payload, idempotency_key=f"test:{secrets.token_hex(8)}", **columns
    )


async def _insert(database_url: str, jobs: dict[str, OutboxJob]) -> dict[str, int]:
    db = Database(database_url)
    async with db.unit_of_work() as session:
        session.add_all(jobs.values())
        await session.flush()
        ids = {name: row.id for name, row in jobs.items()}
    await db.dispose()
    return ids


def stall(server: Server, now: datetime) -> Stalled:
    """Connect HubSpot, escalate once through it, and leave its jobs in every state."""
    harness = HubSpotHarness()
    with harness.fake():
        agent_id, integration = connect(server, harness)
    with server.client() as client:
        chat = client.post(
            f"/api/v1/agents/{agent_id}/conversations",
            json={"channel": "widget", "contact": CONTACT},
        ).json()
    with server.client(chat["token"]) as visitor:
        asked = visitor.post(f"/api/v1/conversations/{chat['id']}/messages", json={"text": ASK})
        assert asked.status_code == 200, asked.text
    ours = {"integration_id": integration["id"], "body": "[]"}
    ago = timedelta(minutes=5)
    jobs = {
        "due": job("read_webhook", ours, run_after=now - ago, created_at=now - 3 * ago),
        "backing_off": job(
            "read_webhook",
            ours,
            attempts=2,
            run_after=now + timedelta(minutes=10),
            last_error=OVERLOADED,
            updated_at=now - ago,
        ),
        "parked": job(
            "read_webhook",
            ours,
            status="failed",
            attempts=5,
            last_error=UNAUTHORIZED,
            updated_at=now,
        ),
        "done": job("read_webhook", ours, status="done", last_error=OVERLOADED, updated_at=now),
        "delivery": job(
            "whatsapp_send", {"conversation_id": chat["id"], "message_id": 0}, run_after=now - ago
        ),
    }
    return Stalled(agent_id, integration["id"], asyncio.run(_insert(server.database_url, jobs)))


def gauges(server: Server, integration: str) -> dict[tuple[str, str, str], float]:
    """Scrape /metrics; return the outbox gauges of one integration as (name, platform, kind)."""
    with server.admin() as admin:
        scraped = admin.get("/metrics")
    assert scraped.status_code == 200, scraped.text
    return {
        (sample.name, sample.labels["platform"], sample.labels["kind"]): sample.value
        for family in text_string_to_metric_families(scraped.text)
        if family.name.startswith("handoff_outbox_")
        for sample in family.samples
        if sample.labels.get("integration") == integration
    }


def test_metrics_show_each_integrations_queue(api_only: Server) -> None:
    with api_only.client() as anonymous:
        assert anonymous.get("/metrics").status_code == 401
    stalled = stall(api_only, utcnow())

    hubspot = gauges(api_only, stalled.integration_id)
    # Waiting: the due job and the one backing off (the parked one is counted apart, the
    # done one not at all); the oldest due has been due five minutes.
    assert hubspot[("handoff_outbox_queue_depth", "hubspot", "read_webhook")] == 2
    assert hubspot[("handoff_outbox_parked_jobs", "hubspot", "read_webhook")] == 1
    oldest = hubspot[("handoff_outbox_oldest_due_age_seconds", "hubspot", "read_webhook")]
    assert 300 <= oldest < 400
    # The escalation's ticket: found through the escalation its job names.
    assert hubspot[("handoff_outbox_queue_depth", "hubspot", "create_ticket")] == 1
    assert hubspot[("handoff_outbox_parked_jobs", "hubspot", "create_ticket")] == 0
    # A channel delivery calls no helpdesk.
    none = gauges(api_only, "none")
    assert none[("handoff_outbox_queue_depth", "none", "whatsapp_send")] == 1
    assert none[("handoff_outbox_oldest_due_age_seconds", "none", "whatsapp_send")] >= 300

    # Measured at each scrape: retrying them all makes the parked job wait again.
    with api_only.admin() as admin:
        path = f"/api/v1/agents/{stalled.agent_id}/integrations/{stalled.integration_id}/retry"
        assert admin.post(path).json()["retried"] == 2
    after = gauges(api_only, stalled.integration_id)
    assert after[("handoff_outbox_queue_depth", "hubspot", "read_webhook")] == 3
    assert after[("handoff_outbox_parked_jobs", "hubspot", "read_webhook")] == 0


def test_a_failing_integration_shows_its_error_and_retries_all_at_once(api_only: Server) -> None:
    now = utcnow()
    stalled = stall(api_only, now)
    integrations = f"/api/v1/agents/{stalled.agent_id}/integrations"
    retry = f"{integrations}/{stalled.integration_id}/retry"

    def jobs() -> dict[int, dict[str, Any]]:
        with api_only.admin() as admin:
            listed: list[dict[str, Any]] = admin.get("/api/v1/jobs?limit=1000").json()
        return {j["id"]: j for j in listed}

    with api_only.admin() as admin:
        listed = {i["platform"]: i for i in admin.get(integrations).json()}
        assert "health" not in listed["native"]
        health = listed["hubspot"]["health"]
        # The latest error of a job not done: the parked one's, not the done job's.
        assert health["failing"] is True
        assert health["last_error"] == UNAUTHORIZED
        assert health["waiting"] == 4  # the ticket, due, backing off, parked
        assert health["parked"] == 1
        assert 900 <= health["oldest_waiting_seconds"] < 1000

        retried = admin.post(retry)
        assert retried.status_code == 200, retried.text
        assert retried.json()["retried"] == 2
        assert retried.json()["health"]["parked"] == 0
        assert retried.json()["health"]["waiting"] == 4
        # Asked again: nothing more to retry, nothing changed.
        before = jobs()
        assert admin.post(retry).json()["retried"] == 0
        assert jobs() == before

    ids = stalled.jobs
    parked, backing_off, due = (before[ids[n]] for n in ("parked", "backing_off", "due"))
    assert (parked["status"], parked["attempts"]) == ("pending", 0)  # a fresh budget
    assert (backing_off["status"], backing_off["attempts"]) == ("pending", 2)
    for revived in (parked, backing_off):
        assert datetime.fromisoformat(revived["run_after"]) <= utcnow()
    assert datetime.fromisoformat(due["run_after"]) < now - timedelta(minutes=4)  # untouched
    assert before[ids["done"]]["status"] == "done"


def test_retry_all_names_an_unknown_integration(api_only: Server) -> None:
    stalled = stall(api_only, utcnow())
    base = f"/api/v1/agents/{stalled.agent_id}/integrations"
    with api_only.admin() as admin:
        native = next(i for i in admin.get(base).json() if i["platform"] == "native")
        elsewhere = f"/api/v1/agents/{api_only.demo_agent_id}/integrations"
        for path in (
            f"{base}/nope/retry",
            f"{base}/{native['id']}/retry",  # the built-in inbox has no helpdesk to retry
            f"{elsewhere}/{stalled.integration_id}/retry",  # another agent's
        ):
            answer = admin.post(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["code"] == "unknown_integration"
    with api_only.client() as anonymous:
        refused = anonymous.post(f"{base}/{stalled.integration_id}/retry")
        assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")


@pytest.fixture(params=BACKENDS)
def impatient(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server whose worker gives a job two quick attempts before parking it."""
    quick = {
        "HANDOFF_JOB_MAX_ATTEMPTS": "2",
        "HANDOFF_RETRY_BASE_SECONDS": "0.2",
        "HANDOFF_RETRY_MAX_SECONDS": "0.5",
    }
    server = start_server(request.param, tmp_path, env=quick)
    yield server
    stop_server(server)


def test_a_reply_hubspot_would_not_give_is_parked_then_retried(impatient: Server) -> None:
    harness = HubSpotHarness()
    with harness.fake():
        hs = harness.hs
        agent_id, integration = connect(impatient, harness)
        conversation, token, ticket = escalate(impatient, agent_id, "c@example.com")
        integrations = f"/api/v1/agents/{agent_id}/integrations"

        def health() -> dict[str, Any]:
            with impatient.admin() as admin:
                listed = admin.get(integrations).json()
            found: dict[str, Any] = next(i for i in listed if i["id"] == integration["id"])
            return found["health"]

        def replies() -> list[str]:
            with impatient.client(token) as visitor:
                messages = visitor.get(conversation).json()["messages"]
            return [m["text"] for m in messages if m["text"] == REPLY]

        # HubSpot keeps failing the message lookup: queued at once, then parked after the
        # worker's two attempts, with HubSpot's answer as the integration's error.
        hs.fail_message_lookups(1000, 500)
        batch = hs.signed_webhook([hs.agent_reply(ticket, REPLY)], url=harness.webhook_url)
        assert deliver(impatient, harness, batch).json() == {"applied": 0, "queued": 1}
        parked = wait_for(lambda: (h := health())["parked"] == 1 and h)
        assert parked["failing"] is True
        assert "HTTP 500" in parked["last_error"]
        assert parked["waiting"] == 1
        assert (
            gauges(impatient, integration["id"])[
                ("handoff_outbox_parked_jobs", "hubspot", "read_webhook")
            ]
            == 1
        )

        # HubSpot recovers; retry all: the reply reaches the visitor once, the error clears.
        hs.fail_message_lookups(0)
        with impatient.admin() as admin:
            assert admin.post(f"{integrations}/{integration['id']}/retry").json()["retried"] == 1
        assert wait_for(replies) == [REPLY]
        cleared = wait_for(lambda: (h := health())["waiting"] == 0 and h)
        assert (cleared["failing"], cleared["last_error"]) == (False, None)
