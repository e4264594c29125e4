"""Faults between the outbox and a helpdesk: nothing lost, nothing duplicated.

Each scenario runs real processes on a fresh PostgreSQL database: `handoff serve --no-worker`
takes the visitors' messages and two `handoff worker` processes create the tickets in a
faithful fake helpdesk while it, or the database, misbehaves: a Zendesk outage of 500s and 503s,
a storm of 429s, answers lost after the ticket was stored, a worker SIGKILLed again and again;
Salesforce refusing calls with 403 REQUEST_LIMIT_EXCEEDED; PostgreSQL restarted (a cluster of
the scenario's own) while the tickets go out. `ESCALATIONS` visitors each ask for a person and
then write `FOLLOW_UPS` more messages at once, before their ticket exists. The check is the
same everywhere: the fake holds exactly one ticket per escalation, the one the conversation
shows, and on it every follow-up exactly once, in the order the visitor wrote them.

Retries are made quick (`FAULT_SETTINGS`) so the suite runs in minutes; the job's attempts
are raised so a long outage is weathered rather than parked as failed.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from handoff.helpdesks.salesforce import CUSTOMER_PREFIX, LIMIT_RETRY_SECONDS
from tests.conftest import Server, free_port, require_postgres, start_server, stop_server
from tests.fakes.salesforce import FakeSalesforce
from tests.fakes.zendesk import FakeZendesk
from tests.web.chat import Chat, start_chat, wait_for

ESCALATIONS = 200
FOLLOW_UPS = 2
ASK = "I want to talk to a person, please."
DELIVERY_TIMEOUT = 300.0  # seconds for every ticket and follow-up to reach the fake; a
# ceiling for a machine busy with other work, not what a scenario takes

FAULT_SETTINGS = {
    "HANDOFF_RETRY_BASE_SECONDS": "0.05",
    "HANDOFF_RETRY_MAX_SECONDS": "2",
    "HANDOFF_JOB_MAX_ATTEMPTS": "100",
    "HANDOFF_HELPDESK_TIMEOUT_SECONDS": "1",
    # A killed worker's jobs come back to the others this soon; longer than any one call.
    "HANDOFF_JOB_LEASE_SECONDS": "4",
}


class Workers:
    """`handoff worker` processes on the API server's database and settings."""

    def __init__(self, server: Server, logs: Path) -> None:
        self._env = server.env
        self._logs = logs
        self._processes: list[subprocess.Popen[bytes]] = []
        self._files: list[IO[bytes]] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            self._processes.append(self._spawn(len(self._processes)))

    def kill_and_restart(self, index: int) -> None:
        """SIGKILL worker `index` wherever it is, then start a new one in its place."""
        self._processes[index].send_signal(signal.SIGKILL)
        self._processes[index].wait(timeout=10)
        self._processes[index] = self._spawn(index)

    def alive(self) -> bool:
        return all(process.poll() is None for process in self._processes)

    def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for file in self._files:
            file.close()

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        log = (self._logs / f"worker-{index}.log").open("ab")
        self._files.append(log)
        return subprocess.Popen(
            [sys.executable, "-m", "handoff.cli.main", "worker"],
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


class Cluster:
    """A PostgreSQL cluster of one scenario's own, made by scripts/postgres.sh in another data
    directory on another loopback port: stopping it disturbs no other test's database."""

    SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"

    def __init__(self) -> None:
        self._env = {
            **os.environ,
            "HANDOFF_TEST_PG_PORT": str(free_port()),
            # Under /tmp: when the tests run as root, the server's own user must reach it.
            "HANDOFF_TEST_PG_DIR": f"/tmp/handoff-faults-pg-{secrets.token_hex(4)}",
        }

    def start(self) -> str:
        """Start the cluster (made on first use); return its URL."""
        return self._run("start")

    def halt(self) -> None:
        """Stop the server as a restart does, cutting every session off; keep the data."""
        self._run("halt")

    def remove(self) -> None:
        self._run("stop")

    def _run(self, command: str) -> str:
        done = subprocess.run(
            ["bash", str(self.SCRIPT), command],
            env=self._env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_postgres()
    server = start_server(
        "postgres", tmp_path_factory.mktemp("faults"), "--no-worker", env=FAULT_SETTINGS
    )
    yield server
    stop_server(server)


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    with FakeZendesk() as fake:
        yield fake


@pytest.fixture
def workers(api: Server, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(api, tmp_path)
    running.start(2)
    yield running
    running.stop()


def connect(server: Server, platform: str, credentials: dict[str, str]) -> str:
    """A new agent whose escalations become tickets on `platform`; return its id."""
    with server.admin() as admin:
        workspace = admin.post("/api/v1/workspaces", json={"name": "Faults"}).json()
        agent = admin.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["widget"]},
        ).json()
        connected = admin.post(
            f"/api/v1/agents/{agent['id']}/integrations",
            json={"platform": platform, "credentials": credentials},
        )
        assert connected.status_code == 201, connected.text
        # The account's plan allows 2,500 requests a minute (Zendesk's High Volume API add-on):
        # the lowest plan's figure, which the outbox keeps to by default, would make the test
        # slow (Salesforce's is 15,000 a day).
        paced = admin.put(
            f"/api/v1/agents/{agent['id']}/integrations/{platform}/rate-limit",
            json={"calls": 2500, "per_seconds": 60},
        )
        assert paced.status_code == 200, paced.text
        action = admin.post(
            f"/api/v1/agents/{agent['id']}/actions",
            json={
                "name": "Escalate_To_Human",
                "platform": platform,
                "when_to_use": "When the user asks for a person.",
                "channels": ["widget"],
                "enabled": True,
                "ask_for_email": False,
            },
        )
        assert action.status_code == 201, action.text
    return str(agent["id"])


def connect_zendesk(server: Server, zd: FakeZendesk) -> str:
    credentials = {
        "subdomain": zd.subdomain,
        "email": zd.email,
        "api_token": zd.api_token,
        "base_url": zd.base_url,
    }
    return connect(server, "zendesk", credentials)


def connect_salesforce(server: Server, sf: FakeSalesforce) -> str:
    credentials = {
        "instance_url": "https://acme.my.salesforce.com",
        "client_id": sf.client_id,
        "client_secret": sf.client_secret,
        "base_url": sf.base_url,
    }
    return connect(server, "salesforce", credentials)


@dataclass(frozen=True)
class Desk:
    """A fake helpdesk as the check reads it: its tickets, and the follow-ups on one."""

    tickets: Callable[[], list[str]]
    follow_ups_on: Callable[[str], list[str]]


def zendesk_desk(zd: FakeZendesk) -> Desk:
    def tickets() -> list[str]:
        with zd._lock:
            return [str(ticket_id) for ticket_id in zd.tickets]

    def follow_ups_on(ticket_id: str) -> list[str]:
        # The comments after the first (the transcript), as Zendesk keeps them.
        with zd._lock:
            return [str(comment["body"]) for comment in zd.comments[int(ticket_id)][1:]]

    return Desk(tickets, follow_ups_on)


def salesforce_desk(sf: FakeSalesforce) -> Desk:
    def tickets() -> list[str]:
        with sf._lock:
            return list(sf.cases)

    def follow_ups_on(case_id: str) -> list[str]:
        # The integration user writes every comment; the customer's are marked so.
        return [
            str(comment["CommentBody"]).removeprefix(CUSTOMER_PREFIX)
            for comment in sf.comments_on(case_id)
        ]

    return Desk(tickets, follow_ups_on)


def follow_ups(n: int) -> list[str]:
    return [f"visitor {n}, follow-up {k + 1}" for k in range(FOLLOW_UPS)]


def escalate_everyone(server: Server, agent_id: str) -> list[Chat]:
    """Every visitor asks for a person, then writes their follow-ups; eight at a time."""

    def visitor(n: int) -> Chat:
        contact = {"name": f"Visitor {n}", "email": f"visitor{n}@example.com"}
        chat = start_chat(server, contact=contact, agent_id=agent_id)
        assert chat.say(ASK)["conversation"]["owner"] == "human"
        for text in follow_ups(n):
            chat.say(text)
        return chat

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(visitor, range(ESCALATIONS)))


def wait_until_delivered(desk: Desk) -> None:
    """Return once every ticket and follow-up reached the fake (or the time is up); then give
    late duplicates a moment to show."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while time.monotonic() < deadline:
        counts = [len(desk.follow_ups_on(ticket)) for ticket in desk.tickets()]
        if len(counts) >= ESCALATIONS and all(c >= FOLLOW_UPS for c in counts):
            break
        time.sleep(0.2)
    time.sleep(2.0)


def assert_exactly_once(desk: Desk, chats: list[Chat]) -> None:
    """One ticket per escalation, the conversation's; each follow-up once, in order."""
    assert len(chats) == ESCALATIONS
    shown: dict[str, int] = {}  # ticket id → visitor
    for n, chat in enumerate(chats):
        escalation = chat.get()["escalation"]
        assert escalation["status"] == "open", (n, escalation)
        shown[str(escalation["ticket"]["id"])] = n
    assert len(shown) == ESCALATIONS, "two conversations show the same ticket"
    tickets = desk.tickets()
    assert sorted(tickets) == sorted(shown), (
        f"{len(tickets)} tickets in the helpdesk for {ESCALATIONS} escalations"
    )
    wrong = {
        ticket: desk.follow_ups_on(ticket)
        for ticket, n in shown.items()
        if desk.follow_ups_on(ticket) != follow_ups(n)
    }
    assert not wrong, f"{len(wrong)} tickets with lost, repeated or reordered follow-ups: {wrong}"


def answered(zd: FakeZendesk, status: int) -> list[Any]:
    with zd._lock:
        return [r for r in zd.requests if r.status == status]


def test_an_outage_of_500s_and_503s_then_recovery(
    api: Server, zendesk: FakeZendesk, workers: Workers
) -> None:
    agent_id = connect_zendesk(api, zendesk)
    zendesk.fail_next(10**6, 500)
    chats = escalate_everyone(api, agent_id)
    time.sleep(1.0)
    zendesk.fail_next(10**6, 503)
    time.sleep(1.5)
    zendesk.fail_next(0)
    wait_until_delivered(zendesk_desk(zendesk))
    assert answered(zendesk, 500) and answered(zendesk, 503)  # the outage was met
    assert_exactly_once(zendesk_desk(zendesk), chats)


def test_a_storm_of_429s_with_retry_after(
    api: Server, zendesk: FakeZendesk, workers: Workers
) -> None:
    agent_id = connect_zendesk(api, zendesk)
    zendesk.rate_limit(300, retry_after=1)
    chats = escalate_everyone(api, agent_id)
    wait_until_delivered(zendesk_desk(zendesk))
    assert len(answered(zendesk, 429)) == 300
    assert_exactly_once(zendesk_desk(zendesk), chats)
    # Refused calls kept their attempts: every ticket took one, however often it was refused.
    escalations = {chat.get()["escalation"]["id"] for chat in chats}
    with api.admin() as admin:
        jobs = admin.get("/api/v1/jobs", params={"status": "done", "limit": 1000}).json()
    attempts = [
        job["attempts"]
        for job in jobs
        if job["kind"] == "create_ticket" and job["payload"]["escalation_id"] in escalations
    ]
    assert attempts == [1] * ESCALATIONS


def test_answers_lost_after_the_ticket_was_created(
    api: Server, zendesk: FakeZendesk, workers: Workers
) -> None:
    agent_id = connect_zendesk(api, zendesk)
    # Longer than HANDOFF_HELPDESK_TIMEOUT_SECONDS: the worker gives up on the answer.
    zendesk.drop_next_creates(60, stall_seconds=3.0)
    chats = escalate_everyone(api, agent_id)
    wait_until_delivered(zendesk_desk(zendesk))
    with zendesk._lock:
        lookups = Counter(
            r.query["external_id"]
            for r in zendesk.requests
            if r.method == "GET" and "external_id" in r.query
        )
    # Each lost answer was retried, and the retry looked the ticket up before creating one.
    assert sum(1 for count in lookups.values() if count > 1) >= 60
    assert_exactly_once(zendesk_desk(zendesk), chats)


def test_salesforce_refusing_calls_with_403_request_limit_exceeded(
    api: Server, workers: Workers
) -> None:
    """Salesforce has no 429: a spent API allocation answers 403 REQUEST_LIMIT_EXCEEDED, with
    no Retry-After. The outbox pauses the integration (LIMIT_RETRY_SECONDS) and tries again:
    nothing is parked as failed, lost or sent twice."""
    with FakeSalesforce() as sf:
        agent_id = connect_salesforce(api, sf)
        # Spent for less than the pause the connector asks for: one pause weathers it.
        sf.limit_requests_for(LIMIT_RETRY_SECONDS / 2)
        started = time.monotonic()
        chats = escalate_everyone(api, agent_id)
        wait_until_delivered(salesforce_desk(sf))
        took = time.monotonic() - started
        with sf._lock:
            refused = [r for r in sf.requests if r.status == 403]
        assert refused
        assert took >= LIMIT_RETRY_SECONDS  # the refusal paused the calls
        assert_exactly_once(salesforce_desk(sf), chats)


def test_a_worker_killed_mid_call_again_and_again(
    api: Server, zendesk: FakeZendesk, workers: Workers
) -> None:
    agent_id = connect_zendesk(api, zendesk)
    # Every call takes a while, so a kill lands in the middle of some.
    zendesk.delays.update({"/api/v2/tickets": 0.1, "/api/v2/users/create_or_update": 0.05})
    kills = 0
    done = threading.Event()

    def kill_now_and_then() -> None:
        nonlocal kills
        while not done.wait(1.5):
            workers.kill_and_restart(0)
            kills += 1

    # From the first escalation on: on a busy machine the tickets go out as fast as the
    # visitors write, and kills only after them would meet little work.
    killer = threading.Thread(target=kill_now_and_then, name="killer")
    killer.start()
    try:
        chats = escalate_everyone(api, agent_id)
        wait_until_delivered(zendesk_desk(zendesk))
    finally:
        done.set()
        killer.join()
    assert kills >= 3
    assert_exactly_once(zendesk_desk(zendesk), chats)


@pytest.fixture
def own_postgres() -> Iterator[tuple[Cluster, str]]:
    require_postgres()  # the suite runs where PostgreSQL does; this cluster is the test's own
    cluster = Cluster()
    try:
        yield cluster, cluster.start()
    finally:
        cluster.remove()


def test_postgresql_restarted_while_tickets_go_out(
    own_postgres: tuple[Cluster, str], zendesk: FakeZendesk, tmp_path: Path
) -> None:
    cluster, url = own_postgres
    server = start_server("postgres", tmp_path, "--no-worker", env=FAULT_SETTINGS, postgres=url)
    workers = Workers(server, tmp_path)
    workers.start(2)
    try:
        agent_id = connect_zendesk(server, zendesk)
        # Zendesk is down while the visitors write, so the tickets all go out after.
        zendesk.fail_next(10**6, 503)
        chats = escalate_everyone(server, agent_id)
        zendesk.fail_next(0)
        wait_for(lambda: len(zendesk.tickets) >= ESCALATIONS // 5, timeout=60)
        cluster.halt()
        with zendesk._lock:
            out_before_restart = len(zendesk.tickets)
        time.sleep(3.0)  # calls in flight end and find no database to record their outcome
        cluster.start()
        wait_until_delivered(zendesk_desk(zendesk))
        assert out_before_restart < ESCALATIONS, "the restart came after the work"
        # The same processes weathered it: they connected again rather than exit.
        assert server.process.poll() is None and workers.alive()
        assert_exactly_once(zendesk_desk(zendesk), chats)
    finally:
        workers.stop()
        stop_server(server)
