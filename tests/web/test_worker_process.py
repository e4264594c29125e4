"""`handoff worker` as its own process, beside a `serve --no-worker` API process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, Server, start_server, stop_server
from tests.web.chat import EventReader, member_token, start_chat, ticket_of, wait_for


@pytest.fixture(params=BACKENDS)
def api_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    server = start_server(request.param, tmp_path, "--no-worker")
    yield server
    stop_server(server)


def test_separate_worker_creates_the_ticket_and_the_api_streams_it(api_only: Server) -> None:
    token = member_token(api_only)
    chat = start_chat(api_only, contact={"email": "solo@example.com"})
    handed = chat.say("I'd like to talk to a human agent")
    assert handed["conversation"]["escalation"]["status"] == "pending"
    time.sleep(1.0)
    assert ticket_of(api_only, token, chat.id) is None  # nobody runs the outbox yet

    with (
        api_only.client(token) as client,
        client.stream("GET", "/api/v1/inbox/events", params={"after": 0}) as stream,
    ):
        worker = subprocess.Popen(
            [sys.executable, "-m", "handoff.cli.main", "worker"],
            env=api_only.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            events = EventReader(stream).until(
                lambda evs: any(
                    e["event"] == "ticket" and e["data"]["conversation_id"] == chat.id for e in evs
                )
            )
        finally:
            worker.terminate()
            assert worker.wait(timeout=20) == 0  # stops cleanly on SIGTERM
    ticket = next(e["data"] for e in events if e["event"] == "ticket")
    assert wait_for(lambda: ticket_of(api_only, token, chat.id))["id"] == ticket["id"]
    assert chat.get()["escalation"]["status"] == "open"
