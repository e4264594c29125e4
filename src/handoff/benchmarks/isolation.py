"""`handoff bench dispatch --isolation`: how long a ticket waits while another helpdesk hangs.

Two runs, all on 127.0.0.1, each with one outbox worker at the default concurrency and its own
three agents (in a throw-away SQLite database each, or both in the empty database given): one
on the built-in inbox, one on a fine fake helpdesk (answers after `latency_ms`), one on a fake
that hangs (every call runs to the service's helpdesk timeout). In the calm run, the inbox's
and the fine helpdesk's users ask for a person; in the hanging run, `hanging_tickets` users of
the hanging helpdesk ask first, and once its calls are in hand the same users ask. Each
ticket's delay runs from its escalation being stored (the message's answer) to the ticket
existing."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from handoff.benchmarks.dispatch import (
    DispatchConfig,
    ask_for_person,
    bench_settings,
    connect_agent,
    open_conversations,
)
from handoff.benchmarks.fake_helpdesk import FakeHelpdesk
from handoff.decide import Encoder
from handoff.service import inbox
from handoff.service.demo import SERVICE_ADMIN
from handoff.service.jobs import build_worker
from handoff.service.runtime import Handoff
from handoff.service.setup import migrate_database
from handoff.settings import Settings

HANG_SECONDS = 3600.0  # longer than any helpdesk timeout: the fake never answers in time
GENEROUS = 10_000  # a limit the fakes never reach: only the hanging matters here
STOP_GRACE_SECONDS = 5.0  # for the worker to end its unit of work in hand when told to stop


@dataclass(frozen=True, slots=True)
class IsolationConfig:
    tickets: int = 5  # inbox users, and as many fine-helpdesk users, in each run
    hanging_tickets: int = 20  # users of the hanging helpdesk, in the hanging run
    latency_ms: float = 200.0  # the fine helpdesk's
    helpdesk_timeout_seconds: float = 20.0  # the service's (HANDOFF_HELPDESK_TIMEOUT_SECONDS)
    database_url: str | None = None  # None: SQLite in a temporary directory
    timeout_seconds: float = 120.0  # for the tickets to exist, per run


@dataclass(frozen=True, slots=True)
class RunDelays:
    inbox_ms: list[float]
    helpdesk_ms: list[float]
    hung_calls: int  # calls the hanging helpdesk had received by the end of the run
    hung_answered: int  # of them answered (none, as long as it hangs)
    slots: int  # the worker's concurrency
    share: int  # of them one integration may hold


@dataclass(frozen=True, slots=True)
class IsolationResult:
    config: IsolationConfig
    backend: str
    calm: RunDelays
    hanging: RunDelays

    def to_json(self) -> dict[str, Any]:
        def figures(run: RunDelays) -> dict[str, Any]:
            return {
                "inbox_tickets": len(run.inbox_ms),
                "inbox_median_ms": _median(run.inbox_ms),
                "inbox_max_ms": _max(run.inbox_ms),
                "helpdesk_tickets": len(run.helpdesk_ms),
                "helpdesk_median_ms": _median(run.helpdesk_ms),
                "helpdesk_max_ms": _max(run.helpdesk_ms),
                "hanging_calls_in_hand": run.hung_calls - run.hung_answered,
            }

        return {
            "tickets": self.config.tickets,
            "hanging_tickets": self.config.hanging_tickets,
            "latency_ms": self.config.latency_ms,
            "helpdesk_timeout_seconds": self.config.helpdesk_timeout_seconds,
            "database": self.backend,
            "concurrency": self.hanging.slots,
            "per_integration": self.hanging.share,
            "calm": figures(self.calm),
            "hanging": figures(self.hanging),
        }


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _max(values: Sequence[float]) -> float | None:
    return round(max(values), 1) if values else None


async def run_isolation_benchmark(
    config: IsolationConfig, *, encoder: Encoder | None = None
) -> IsolationResult:
    """The calm run, then the hanging run; each on its own database."""
    calm = await _run(config, hanging=False, encoder=encoder)
    hanging = await _run(config, hanging=True, encoder=encoder)
    backend = (config.database_url or "sqlite").split(":", 1)[0].split("+", 1)[0]
    return IsolationResult(config, backend, calm, hanging)


async def _run(config: IsolationConfig, *, hanging: bool, encoder: Encoder | None) -> RunDelays:
    secret = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as data_dir, ExitStack() as fakes:
        fine = fakes.enter_context(
            FakeHelpdesk(
                secret, latency_seconds=config.latency_ms / 1000, limit_per_minute=GENEROUS
            )
        )
        hung = fakes.enter_context(
            FakeHelpdesk(secret, latency_seconds=HANG_SECONDS, limit_per_minute=GENEROUS)
        )
        settings = _run_settings(config, Path(data_dir))
        await asyncio.to_thread(migrate_database, settings)
        async with AsyncExitStack() as stack:
            hf = Handoff(settings, encoder=encoder)
            stack.push_async_callback(hf.close)
            inbox_agent = await connect_agent(hf, "Inbox", None)
            fine_agent = await connect_agent(hf, "Fine helpdesk", (fine.url, secret))
            hung_agent = await connect_agent(hf, "Hanging helpdesk", (hung.url, secret))
            inbox_chats = await open_conversations(hf, inbox_agent, config.tickets)
            fine_chats = await open_conversations(hf, fine_agent, config.tickets)
            hung_chats = await open_conversations(hf, hung_agent, config.hanging_tickets)
            await asyncio.to_thread(lambda: hf.decider)  # the models load before the clock
            worker = build_worker(hf)
            stop = asyncio.Event()
            running = asyncio.create_task(worker.run(stop))
            try:
                if hanging:
                    await asyncio.gather(*(ask_for_person(hf, chat) for chat in hung_chats))
                    in_hand = min(config.hanging_tickets, worker.pacer.max_running)
                    await _until(_holds(lambda: hung.received >= in_hand), config.timeout_seconds)
                queued = await _escalate(hf, [*inbox_chats, *fine_chats])
                fine_done = _holds(lambda: len(fine.tickets) >= config.tickets)
                await _until(fine_done, config.timeout_seconds)
                inbox_created = await _inbox_tickets(hf, inbox_chats, config.timeout_seconds)
            finally:
                await _stop(running, stop)
            return RunDelays(
                inbox_ms=[
                    1000 * (at - queued[conversation]) for conversation, at in inbox_created.items()
                ],
                helpdesk_ms=[
                    1000 * (ticket.created_at - queued[ticket.conversation_url])
                    for ticket in fine.tickets.values()
                ],
                hung_calls=hung.received,
                hung_answered=len(hung.tickets),
                slots=worker.concurrency,
                share=worker.pacer.max_running,
            )


async def _stop(running: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Stop the worker, letting it end the unit of work in hand: a task cancelled inside one
    can leave its connection, and SQLite's write lock, held until it is collected, and the
    next run on the same database waiting for it. Jobs still in hand after the grace (calls
    to the hanging helpdesk) are cancelled."""
    stop.set()
    await asyncio.wait({running}, timeout=STOP_GRACE_SECONDS)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


def _run_settings(config: IsolationConfig, data_dir: Path) -> Settings:
    base = bench_settings(
        DispatchConfig(tickets=config.tickets * 2, database_url=config.database_url), data_dir
    )
    return base.model_copy(update={"helpdesk_timeout_seconds": config.helpdesk_timeout_seconds})


async def _escalate(hf: Handoff, chats: Sequence[str]) -> dict[str, float]:
    """Ask for a person in every chat at once; return when each escalation was stored, by
    conversation id and by conversation URL (what the fake's tickets carry)."""

    async def ask(chat: str) -> tuple[str, float]:
        await ask_for_person(hf, chat)
        return chat, time.time()

    stored = dict(await asyncio.gather(*(ask(chat) for chat in chats)))
    return {**stored, **{hf.conversation_url(chat): at for chat, at in stored.items()}}


async def _inbox_tickets(hf: Handoff, chats: Sequence[str], seconds: float) -> dict[str, float]:
    """Wait for the chats' inbox tickets; return when each was created, by conversation."""
    created: dict[str, float] = {}

    async def enough() -> bool:
        async with hf.reading() as session:
            listing = inbox.TicketListing(status="all", limit=200)
            page = await inbox.list_tickets(hf, session, SERVICE_ADMIN, listing)
        tickets = page["tickets"]
        created.update(
            (t["conversation_id"], datetime.fromisoformat(t["created_at"]).timestamp())
            for t in tickets
            if t["conversation_id"] in chats
        )
        return len(created) >= len(chats)

    await _until(enough, seconds)
    return created


async def _until(done: Callable[[], Awaitable[bool]], seconds: float) -> None:
    """Poll `done` until it holds, or `seconds` pass (the run then counts what it has)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await done():
            return
        await asyncio.sleep(0.02)


def _holds(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def holds() -> bool:
        return check()

    return holds
