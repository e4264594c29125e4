"""Scale-out on PostgreSQL: two API processes and two workers on one database. A stream on
one API process hears at once (LISTEN/NOTIFY) of what another process wrote."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from handoff.store.listen import APPLICATION_NAME
from tests.conftest import Server, require_postgres, start_beside, start_server, stop_server
from tests.web.chat import EventReader, member_token, start_chat, ticket_of, wait_for

# Both polls far beyond the second the test allows: only a NOTIFY can wake a stream in time.
SLOW_POLLS = {"HANDOFF_EVENT_POLL_SECONDS": "60", "HANDOFF_EVENT_SAFETY_POLL_SECONDS": "60"}
ON_TIME = 1.0  # seconds from the posting process's answer to the event on the other's stream


@dataclass
class Cluster:
    a: Server
    b: Server
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    require_postgres()
    a = start_server("postgres", tmp_path, "--no-worker", env=SLOW_POLLS)
    started = Cluster(a=a, b=a)
    try:
        started.b = start_beside(a, tmp_path / "server-b.log", "--no-worker")
        for n in range(2):
            log = (tmp_path / f"worker-{n}.log").open("wb")
            started.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "handoff.cli.main", "worker"],
                    env=a.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        wait_for(lambda: listeners(a) == 4, timeout=60)  # 2 API processes + 2 workers
        yield started
    finally:
        for worker in started.workers:
            worker.terminate()
            worker.wait(timeout=20)
        if started.b is not a:
            stop_server(started.b)
        stop_server(a)


class Recorder:
    """Reads one SSE stream on a thread, noting when each event arrived."""

    def __init__(self, stack: ExitStack, server: Server, token: str, path: str) -> None:
        client = stack.enter_context(server.client(token))
        response = stack.enter_context(client.stream("GET", path, params={"after": 0}))
        self.arrived: list[tuple[float, dict[str, Any]]] = []
        self._reader = EventReader(response)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        def note(events: list[dict[str, Any]]) -> bool:
            self.arrived.append((time.monotonic(), events[-1]))
            return False

        # Reading ends when the test closes the stream, with whatever error that raises here;
        # a stream that failed otherwise shows as the event that never arrives.
        with suppress(Exception):
            self._reader.until(note)

    def arrival(self, matches: Callable[[dict[str, Any]], bool], timeout: float) -> float:
        """When the first event that `matches` arrived; fail after `timeout` seconds."""
        found = wait_for(
            lambda: [at for at, event in list(self.arrived) if matches(event)], timeout
        )
        return float(found[0])


def is_message(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event["event"] == "message" and event["data"].get("text") == text


def test_a_stream_on_one_process_hears_at_once_what_another_wrote(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    chat = start_chat(a, contact={"email": "scale@example.com"})
    member = member_token(a)
    with ExitStack() as stack:
        visitor = Recorder(stack, b, chat.token, f"/api/v1/conversations/{chat.id}/events")
        team = Recorder(stack, b, member, "/api/v1/inbox/events")

        chat.say("How do I reset my password?")  # through A
        answered = time.monotonic()
        arrived = visitor.arrival(is_message("How do I reset my password?"), timeout=ON_TIME + 5)
        assert arrived - answered <= ON_TIME

        # The escalation's ticket: created by one of the workers, seen on B's inbox stream.
        handed = chat.say("I'd like to talk to a human agent")
        assert handed["conversation"]["escalation"]["status"] == "pending"
        team.arrival(
            lambda event: (
                event["event"] == "ticket" and event["data"]["conversation_id"] == chat.id
            ),
            timeout=15,
        )
        assert wait_for(lambda: ticket_of(b, member, chat.id)) is not None
        assert all(worker.poll() is None for worker in cluster.workers)


def test_the_listeners_come_back_after_losing_their_connection(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    chat = start_chat(a)
    assert terminate_listeners(a) == 4
    wait_for(lambda: listeners(a) == 4, timeout=30)
    with ExitStack() as stack:
        visitor = Recorder(stack, b, chat.token, f"/api/v1/conversations/{chat.id}/events")
        chat.say("Are you still there?")
        answered = time.monotonic()
        arrived = visitor.arrival(is_message("Are you still there?"), timeout=ON_TIME + 5)
        assert arrived - answered <= ON_TIME


def listeners(server: Server) -> int:
    return int(
        _query(
            server,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = $1",
        )
    )


def terminate_listeners(server: Server) -> int:
    """Cut every listener's connection to the database, as a PostgreSQL restart would."""
    return int(
        _query(
            server,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = $1",
        )
    )


def _query(server: Server, sql: str) -> Any:
    import asyncpg  # type: ignore[import-untyped]

    async def run() -> Any:
        connection = await asyncpg.connect(
            server.database_url.replace("postgresql+asyncpg://", "postgresql://")
        )
        try:
            return await connection.fetchval(sql, APPLICATION_NAME)
        finally:
            await connection.close()

    return asyncio.run(run())
