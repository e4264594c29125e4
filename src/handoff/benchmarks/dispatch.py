"""`handoff bench dispatch`: how fast escalations become tickets on a slow, rate-limited helpdesk.

One run, all on 127.0.0.1: a fake generic-webhook helpdesk answers each ticket after a latency
and refuses calls past its per-minute limit; a throw-away service database gets an agent
connected to it and `tickets` users who all ask for a person at once (or, with `rate_per_min`,
one after the other at that steady rate), through the same `take_message` the API calls;
`workers` outbox workers dispatch the tickets. Beside it, a baseline measured in the same run:
one plain loop creating as many tickets, one after the other, against a second fake with the
same latency and limit. The agent's integration is told the fake's limit, as an admin sets
their plan's figure, so the outbox paces itself under it (`pace=False` leaves the generic
webhook unpaced, to find the limit by its 429s).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from handoff.benchmarks.fake_helpdesk import FakeHelpdesk, FakeTicket
from handoff.benchmarks.figures import percentile, rounded
from handoff.decide import Encoder
from handoff.domain import ESCALATE_TO_HUMAN, NATIVE, Contact, Owner
from handoff.helpdesks.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookHelpdesk, sign
from handoff.service import admin, conversations, integrations
from handoff.service.demo import SERVICE_ADMIN, demo_faq
from handoff.service.jobs import build_worker
from handoff.service.runtime import Handoff
from handoff.service.setup import migrate_database
from handoff.settings import Settings

ASK_FOR_PERSON = "I want to talk to a person, please."
WARM_UP_QUESTION = "How do I reset my password?"
Progress = Callable[[int], None]  # told how many tickets exist so far


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    tickets: int = 200
    latency_ms: float = 200.0
    limit_per_min: int = 700
    workers: int = 1
    database_url: str | None = None  # None: SQLite in a temporary directory
    timeout_seconds: float = 300.0
    pace: bool = True  # tell the integration the fake's limit
    baseline_tickets: int | None = None  # tickets the plain loop creates; None: as many
    rate_per_min: float | None = None  # users asking evenly spread at this rate; None: at once


@dataclass(frozen=True, slots=True)
class Throughput:
    tickets: int
    seconds: float

    @property
    def per_minute(self) -> float:
        return 60 * self.tickets / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class DispatchResult:
    config: DispatchConfig
    backend: str
    escalations: int  # users whose message handed the conversation to the team
    dispatch: Throughput  # from the users starting to ask to the last ticket
    # From the first ticket to the last: the outbox's own pace, without the time the users'
    # messages took to escalate (which, all at once, can keep the worker from the database).
    steady: Throughput
    wait_ms: list[float]  # per ticket: escalating message to the ticket existing on the fake
    # Per ticket: the user sending the message to the ticket existing, less the fake's latency:
    # what the service adds to the helpdesk's own time.
    beyond_helpdesk_ms: list[float]
    lost: int  # escalations with no ticket when the run ended
    duplicated: int  # tickets beyond one per escalated conversation
    refused: int  # 429 answers the fake gave the workers
    baseline: Throughput

    @property
    def share_of_limit(self) -> float:
        return self.dispatch.per_minute / self.config.limit_per_min

    @property
    def steady_share_of_limit(self) -> float:
        return self.steady.per_minute / self.config.limit_per_min

    @property
    def ratio_to_baseline(self) -> float | None:
        if self.baseline.per_minute == 0:
            return None
        return self.dispatch.per_minute / self.baseline.per_minute

    def percentile_ms(self, q: float) -> float | None:
        return percentile(self.wait_ms, q)

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio_to_baseline
        return {
            "tickets": self.config.tickets,
            "latency_ms": self.config.latency_ms,
            "limit_per_min": self.config.limit_per_min,
            "workers": self.config.workers,
            "paced": self.config.pace,
            "rate_per_min": self.config.rate_per_min,
            "database": self.backend,
            "escalations": self.escalations,
            "created": self.dispatch.tickets,
            "seconds": round(self.dispatch.seconds, 3),
            "tickets_per_min": round(self.dispatch.per_minute, 1),
            "share_of_limit": round(self.share_of_limit, 3),
            "first_to_last_seconds": round(self.steady.seconds, 3),
            "first_to_last_tickets_per_min": round(self.steady.per_minute, 1),
            "first_to_last_share_of_limit": round(self.steady_share_of_limit, 3),
            "p50_ms": rounded(self.percentile_ms(0.50)),
            "p99_ms": rounded(self.percentile_ms(0.99)),
            "mean_ms": rounded(statistics.fmean(self.wait_ms) if self.wait_ms else None),
            "beyond_helpdesk_p50_ms": rounded(percentile(self.beyond_helpdesk_ms, 0.50)),
            "beyond_helpdesk_p99_ms": rounded(percentile(self.beyond_helpdesk_ms, 0.99)),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "refused_429": self.refused,
            "baseline_tickets": self.baseline.tickets,
            "baseline_tickets_per_min": round(self.baseline.per_minute, 1),
            "ratio_to_baseline": None if ratio is None else round(ratio, 2),
        }


async def run_dispatch_benchmark(
    config: DispatchConfig, *, progress: Progress | None = None, encoder: Encoder | None = None
) -> DispatchResult:
    """Run the service against one fake and the plain loop against another; compare them.

    `encoder` lets a caller that already holds the sentence encoder share it.
    """
    secret = secrets.token_urlsafe(24)
    latency = config.latency_ms / 1000
    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as data_dir:
        with FakeHelpdesk(
            secret, latency_seconds=latency, limit_per_minute=config.limit_per_min
        ) as fake:
            settings = bench_settings(config, Path(data_dir))
            asked, started = await _service_run(settings, config, fake, secret, progress, encoder)
        with FakeHelpdesk(
            secret, latency_seconds=latency, limit_per_minute=config.limit_per_min
        ) as other:
            baseline = await plain_loop(
                other.url, secret, config.baseline_tickets or config.tickets
            )
    return _result(config, settings, fake, asked, started, baseline)


def bench_settings(config: DispatchConfig, data_dir: Path) -> Settings:
    url = config.database_url or f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
    return Settings(
        database_url=url,
        data_dir=data_dir,
        secret_key=secrets.token_urlsafe(24),
        allow_private_urls=True,  # the fake listens on 127.0.0.1
        # Every user asks at once: the per-agent limit must not be what is measured.
        rate_limit_escalations_per_agent=f"{max(config.tickets, 1) * 2}/minute",
    )


async def _service_run(
    settings: Settings,
    config: DispatchConfig,
    fake: FakeHelpdesk,
    secret: str,
    progress: Progress | None,
    encoder: Encoder | None,
) -> tuple[dict[str, float], float]:
    """Escalate every user and dispatch until each ticket exists; return when each escalated
    conversation's user sent the message, by its URL, and when the users started asking (Unix
    time)."""
    await asyncio.to_thread(migrate_database, settings)
    async with AsyncExitStack() as stack:
        hf = Handoff(settings, encoder=encoder)
        stack.push_async_callback(hf.close)
        limit = (config.limit_per_min, 60.0) if config.pace else None
        agent_id = await connect_agent(hf, "Dispatch benchmark", (fake.url, secret), limit)
        chats = await open_conversations(hf, agent_id, config.tickets)
        await warm_up(hf, agent_id)
        stop = asyncio.Event()
        workers = [
            asyncio.create_task(build_worker(r).run(stop))
            for r in await _worker_runtimes(hf, settings, config.workers, stack)
        ]
        started = time.time()
        spacing = 0.0 if config.rate_per_min is None else 60 / config.rate_per_min
        sent: dict[str, float] = {}
        # A message the service refused (409, 429) did not escalate: it shows as fewer
        # escalations than users, not as a failed run.
        outcomes = await asyncio.gather(
            *(_ask_at(hf, chat, started + n * spacing, sent) for n, chat in enumerate(chats)),
            return_exceptions=True,
        )
        asked = {
            hf.conversation_url(chat): sent[chat]
            for chat, outcome in zip(chats, outcomes, strict=True)
            if outcome is True
        }
        await _wait_for_tickets(fake, len(asked), config.timeout_seconds, progress)
        stop.set()
        await asyncio.gather(*workers)
    return asked, started


async def _ask_at(hf: Handoff, conversation_id: str, at: float, sent: dict[str, float]) -> bool:
    """Ask for a person at Unix time `at`; note when the message was sent."""
    await asyncio.sleep(max(0.0, at - time.time()))
    sent[conversation_id] = time.time()
    return await ask_for_person(hf, conversation_id)


async def _worker_runtimes(
    hf: Handoff, settings: Settings, count: int, stack: AsyncExitStack
) -> list[Handoff]:
    """The first worker shares the users' runtime, as the one `handoff serve` embeds; the
    others have their own, as separate `handoff worker` processes would."""
    runtimes = [hf]
    for _ in range(count - 1):
        own = Handoff(settings)
        stack.push_async_callback(own.close)
        runtimes.append(own)
    return runtimes


async def connect_agent(
    hf: Handoff,
    name: str,
    helpdesk: tuple[str, str] | None,
    rate_limit: tuple[int, float] | None = None,
) -> str:
    """Create an agent whose escalations go to a fake through the generic webhook (its URL and
    signing secret, paced under `rate_limit`), or to the built-in inbox when `helpdesk` is
    None."""
    platform = NATIVE if helpdesk is None else WebhookHelpdesk.platform
    async with hf.transaction() as session:
        workspace = await admin.create_workspace(session, SERVICE_ADMIN, name)
        agent = await admin.create_agent(
            session,
            SERVICE_ADMIN,
            workspace_id=workspace.id,
            name=name,
            channels=["api"],
            greeting=None,
        )
        await admin.replace_knowledge(session, agent, demo_faq())
        if helpdesk is not None:
            url, secret = helpdesk
            form = integrations.credentials_for(
                WebhookHelpdesk, {"url": url, "signing_secret": secret}
            )
            checked = integrations.Checked(platform, form, tokens=None)
            await integrations.save_integration(hf, session, agent, checked)
            if rate_limit is not None:
                await integrations.set_rate_limit(session, agent, platform, rate_limit)
        await admin.save_action(
            session,
            agent,
            {
                "kind": ESCALATE_TO_HUMAN,
                "name": "Escalate_To_Human",
                "platform": platform,
                "when_to_use": "The user asks for a person.",
                "channels": ["api"],
                "enabled": True,
                "ask_for_email": False,
            },
        )
        return agent.id


async def open_conversations(hf: Handoff, agent_id: str, count: int) -> list[str]:
    async with hf.transaction() as session:
        opened = [
            await conversations.start_conversation(
                hf,
                session,
                agent_id=agent_id,
                channel="api",
                contact=Contact(name=f"User {n}", email=f"user{n}@example.com"),
            )
            for n in range(count)
        ]
    return [conversation.id for conversation, _, _ in opened]


async def warm_up(hf: Handoff, agent_id: str) -> None:
    """Load the models, the decider's prototypes and the agent's knowledge base before the
    clock starts: a question on a conversation of its own. The first message otherwise holds
    every user behind those seconds of encoding."""
    [conversation_id] = await open_conversations(hf, agent_id, 1)
    await conversations.take_message(hf, conversation_id, WARM_UP_QUESTION)


async def ask_for_person(hf: Handoff, conversation_id: str) -> bool:
    """Send the message that asks for a person; return whether it escalated."""
    reply = await conversations.take_message(hf, conversation_id, ASK_FOR_PERSON)
    return bool(reply.conversation.get("owner") == Owner.HUMAN)


async def _wait_for_tickets(
    fake: FakeHelpdesk, expected: int, timeout_seconds: float, progress: Progress | None
) -> None:
    """Return once the fake holds `expected` tickets, or when the time is up."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        count = len(fake.tickets)
        if progress is not None:
            progress(count)
        if count >= expected:
            return
        await asyncio.sleep(0.05)


async def plain_loop(url: str, secret: str, count: int) -> Throughput:
    """Create `count` tickets one after the other with httpx, waiting out any 429."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(count):
            await _create_until_accepted(client, url, secret, f"baseline-{n}")
    return Throughput(count, time.monotonic() - started)


async def _create_until_accepted(
    client: httpx.AsyncClient, url: str, secret: str, key: str
) -> None:
    now = datetime.now(UTC).isoformat()
    body = json.dumps(
        {
            "type": "ticket.create",
            "subject": "A person, please",
            "conversation_url": key,
            "transcript": [{"role": "user", "text": ASK_FOR_PERSON, "created_at": now}],
        }
    ).encode()
    while True:
        stamp = int(time.time())
        response = await client.post(
            url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                TIMESTAMP_HEADER: str(stamp),
                SIGNATURE_HEADER: sign(secret, body, stamp),
            },
        )
        if response.status_code != 429:
            response.raise_for_status()
            return
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))


def _result(
    config: DispatchConfig,
    settings: Settings,
    fake: FakeHelpdesk,
    asked: dict[str, float],
    started: float,
    baseline: Throughput,
) -> DispatchResult:
    tickets = list(fake.tickets.values())
    ticketed = {ticket.conversation_url for ticket in tickets}
    latency = config.latency_ms / 1000
    return DispatchResult(
        config=config,
        backend=settings.resolved_database_url.split(":", 1)[0].split("+", 1)[0],
        escalations=len(asked),
        dispatch=Throughput(len(tickets), _last_created(tickets) - started),
        steady=_first_to_last(tickets),
        wait_ms=[1000 * (t.created_at - t.escalated_at) for t in tickets],
        beyond_helpdesk_ms=[
            1000 * (t.created_at - asked[t.conversation_url] - latency)
            for t in tickets
            if t.conversation_url in asked
        ],
        lost=len(set(asked) - ticketed),
        duplicated=len(tickets) - len(ticketed),
        refused=fake.refused,
        baseline=baseline,
    )


def _first_to_last(tickets: Sequence[FakeTicket]) -> Throughput:
    """The tickets after the first, over the time from the first to the last."""
    if len(tickets) < 2:
        return Throughput(0, 0.0)
    times = [ticket.created_at for ticket in tickets]
    return Throughput(len(tickets) - 1, max(times) - min(times))


def _last_created(tickets: Sequence[FakeTicket]) -> float:
    return max((ticket.created_at for ticket in tickets), default=time.time())
