"""Pacing per integration: under the limit in any window, shared by workers, adapting to what
the platform answers; and one integration's hanging calls never take every slot."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.dispatch import LeasedJob, RetryPolicy, Worker
from handoff.dispatch.pacing import PACE_SHARE, Pace, free_at, spend
from handoff.helpdesks import HELPDESKS
from handoff.helpdesks.errors import RateLimited
from handoff.helpdesks.limits import DOCUMENTED_LIMITS, RateLimit, observe_response, wait_until
from handoff.store.db import Database
from handoff.store.migrate import upgrade
from handoff.store.models import Agent, Integration, IntegrationBudget, OutboxJob, Workspace
from tests.conftest import BACKENDS, fresh_database_url

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, NOW + 7),  # Zendesk, Freshdesk
        ({"retry-after": format_datetime(datetime.fromtimestamp(NOW + 30, UTC), True)}, NOW + 30),
        ({"x-ratelimit-retry-after": "12"}, NOW + 12),  # Help Scout
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(NOW + 9)}, NOW + 9),  # Intercom
        ({"ratelimit-remaining": "0", "ratelimit-reset": "41"}, NOW + 41),  # Zendesk tickets
        (
            {
                "x-hubspot-ratelimit-remaining": "0",
                "x-hubspot-ratelimit-interval-milliseconds": "10000",
            },
            NOW + 10,
        ),
        ({"x-rate-limit-remaining": "0"}, NOW + 1),  # no reset given: ask again shortly
        ({"x-ratelimit-remaining": "5", "x-ratelimit-reset": str(NOW + 9)}, None),
        ({"content-type": "application/json"}, None),
    ],
)
def test_the_platforms_answer_says_when_the_next_call_may_go(
    headers: dict[str, str], expected: float | None
) -> None:
    got = wait_until(httpx.Headers(headers), NOW)
    assert got == (None if expected is None else pytest.approx(expected, abs=1))


def test_every_connector_platform_but_the_generic_webhook_has_a_documented_limit() -> None:
    assert set(HELPDESKS) - set(DOCUMENTED_LIMITS) == {"webhook"}
    # The conservative defaults the docs give for the lowest plan with the API.
    assert DOCUMENTED_LIMITS["zendesk"] == RateLimit(200, 60.0)
    assert DOCUMENTED_LIMITS["hubspot"] == RateLimit(100, 10.0)


@pytest.mark.parametrize("limit", [RateLimit(700, 60), RateLimit(100, 10), RateLimit(5, 1)])
def test_a_backlog_keeps_under_the_limit_in_any_window_and_near_it_over_time(
    limit: RateLimit,
) -> None:
    """Claims that come late (up to 30 ms, as a loaded worker's do) never put more than the
    limit in any window, sliding or fixed, and keep above 95 % of it."""
    pace = Pace.of(limit)
    budget = IntegrationBudget(integration_id="x", next_at=datetime.fromtimestamp(0, UTC))
    rng = random.Random(7)
    clock = 1000.0
    calls: list[float] = []
    end = clock + 20 * limit.per_seconds
    while clock < end:
        now = datetime.fromtimestamp(clock, UTC)
        at = free_at(budget, pace, now)
        if at > now:
            clock = at.timestamp() + rng.uniform(0, 0.03)
            continue
        spend(budget, pace, now)
        calls.append(clock)
    in_window = max(
        sum(1 for t in calls[i:] if t < start + limit.per_seconds) for i, start in enumerate(calls)
    )
    assert in_window <= limit.calls
    per_window = len(calls) * limit.per_seconds / (calls[-1] - calls[0])
    assert per_window >= 0.95 * limit.calls
    assert per_window <= PACE_SHARE * limit.calls * 1.02


# --- on a real database ------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = await asyncio.to_thread(fresh_database_url, request.param, tmp_path)
    await asyncio.to_thread(upgrade, url)
    return url


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    yield database
    await database.dispose()


async def integration(db: Database, rate_limit: RateLimit | None, platform: str = "webhook") -> str:
    async with db.unit_of_work() as session:
        workspace = Workspace(name="Pacing")
        session.add(workspace)
        await session.flush()
        agent = Agent(workspace_id=workspace.id, name=f"Agent {platform}")
        session.add(agent)
        await session.flush()
        row = Integration(
            agent_id=agent.id,
            platform=platform,
            rate_limit=None if rate_limit is None else rate_limit.to_json(),
        )
        session.add(row)
        await session.flush()
        return row.id


async def enqueue(db: Database, integration_id: str | None, count: int, tag: str) -> list[int]:
    async with db.unit_of_work() as session:
        jobs = [
            OutboxJob(
                kind="work",
                payload={"tag": tag},
                integration_id=integration_id,
                idempotency_key=f"{tag}:{n}:{secrets.token_hex(4)}",
                max_attempts=5,
            )
            for n in range(count)
        ]
        session.add_all(jobs)
        await session.flush()
        return [job.id for job in jobs]


class Timeline:
    """A job handler that notes when each job's call went out and ended, per tag."""

    def __init__(self, expected: int, *, hang: str | None = None) -> None:
        self.expected = expected
        self.hang = hang  # the tag whose calls never end until `release` is set
        self.release = asyncio.Event()
        self.started: dict[int, float] = {}
        self.ended: dict[int, float] = {}
        self.tags: dict[int, str] = {}
        self.done = asyncio.Event()
        self.refuse_first: str | None = None  # the tag whose first call gets a 429
        self.answer_headers: dict[str, str] = {}

    async def perform(self, job: LeasedJob) -> Any:
        tag = str(job.payload["tag"])
        self.tags[job.id] = tag
        self.started.setdefault(job.id, time.monotonic())
        if tag == self.refuse_first:
            self.refuse_first = None
            raise RateLimited("429", retry_after=1.5)
        if self.answer_headers:
            await self._call_the_platform()
        if tag == self.hang:
            await self.release.wait()
        return None

    async def _call_the_platform(self) -> None:
        """One call through a client hooked like the runtime's, to a platform on a transport."""
        headers = self.answer_headers

        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers=headers)

        async with httpx.AsyncClient(
            transport=httpx.MockTransport(answer), event_hooks={"response": [observe_response]}
        ) as client:
            await client.get("http://platform.example/api")

    async def apply(self, session: AsyncSession, job: LeasedJob, result: Any) -> None:
        self.ended[job.id] = time.monotonic()
        if len(self.ended) >= self.expected:
            self.done.set()

    async def on_failed(self, session: AsyncSession, job: LeasedJob, error: str) -> None:
        raise AssertionError(error)

    def starts(self, tag: str) -> list[float]:
        return sorted(at for job, at in self.started.items() if self.tags[job] == tag)


def make_worker(db: Database, handler: Timeline, **options: Any) -> Worker:
    options.setdefault("concurrency", 8)
    return Worker(
        db,
        {"work": handler},
        poll_seconds=0.05,
        retry=RetryPolicy(base_seconds=0.1, max_seconds=0.2),
        **options,
    )


async def run_until_done(workers: list[Worker], handler: Timeline, seconds: float = 60) -> None:
    stop = asyncio.Event()
    running = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        async with asyncio.timeout(seconds):
            await handler.done.wait()
    finally:
        handler.release.set()
        stop.set()
        await asyncio.gather(*running)


async def test_two_workers_share_one_integrations_budget(db: Database, url: str) -> None:
    """Two workers with their own connection pools, as two processes, keep under the limit
    together; every job runs once."""
    limit = RateLimit(10, 1.0)
    paced = await integration(db, limit)
    job_ids = await enqueue(db, paced, 30, "paced")
    handler = Timeline(len(job_ids))
    other = Database(url)
    try:
        await run_until_done([make_worker(db, handler), make_worker(other, handler)], handler)
    finally:
        await other.dispose()

    assert sorted(handler.ended) == sorted(job_ids)
    starts = handler.starts("paced")
    # One pace for both: the last call went no earlier than the pace allows (slowness only
    # spreads them), where two workers pacing apart would take half the time.
    pace = Pace.of(limit)
    least = (len(starts) - 1) * pace.interval - pace.tolerance
    assert starts[-1] - starts[0] >= least.total_seconds() - 0.3
    async with db.unit_of_work() as session:
        assert set(await session.scalars(select(OutboxJob.status))) == {"done"}


async def test_a_refusal_pauses_the_integration_and_not_the_others(db: Database) -> None:
    refused = await integration(db, RateLimit(1000, 1.0))
    first = await enqueue(db, refused, 1, "refused")
    rest = await enqueue(db, refused, 3, "refused")
    free = await enqueue(db, None, 3, "free")
    handler = Timeline(len(first + rest + free))
    handler.refuse_first = "refused"
    # One at a time, so that the refusal comes back before the next job is leased.
    await run_until_done([make_worker(db, handler, concurrency=1)], handler)

    refused_at = handler.started[first[0]]
    # The platform said 1.5 s: no call of that integration went before it, the others did.
    assert min(handler.started[j] for j in rest) >= refused_at + 1.4
    assert max(handler.ended[j] for j in free) < min(handler.started[j] for j in rest)


async def test_a_spent_budget_in_the_headers_pauses_the_integration(db: Database) -> None:
    spent = await integration(db, RateLimit(1000, 1.0))
    job_ids = await enqueue(db, spent, 3, "spent")
    handler = Timeline(len(job_ids))
    handler.answer_headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1.5"}
    await run_until_done([make_worker(db, handler, concurrency=1)], handler)

    starts = handler.starts("spent")
    assert all(later - earlier >= 1.4 for earlier, later in pairwise(starts))


async def test_a_hanging_integration_holds_its_share_of_the_slots_and_no_more(
    db: Database,
) -> None:
    hanging = await integration(db, None, platform="zendesk")
    fine = await integration(db, None, platform="hubspot")
    stuck = await enqueue(db, hanging, 10, "hanging")  # leased first: they are older
    other = await enqueue(db, fine, 5, "fine") + await enqueue(db, None, 5, "inbox")
    handler = Timeline(len(other), hang="hanging")
    w = make_worker(db, handler, concurrency=4, per_integration=2)
    stop = asyncio.Event()
    running = asyncio.create_task(w.run(stop))
    try:
        async with asyncio.timeout(60):
            await handler.done.wait()
        # Seen the moment the last other job ended, with the hanging calls still hanging.
        hanging_started = [job for job in stuck if job in handler.started]
        hanging_ended = [job for job in stuck if job in handler.ended]
    finally:
        handler.release.set()
        stop.set()
        await running

    assert set(other) <= set(handler.ended)
    assert len(hanging_started) == 2  # its share of the four slots, no more
    assert hanging_ended == []


def test_a_pace_has_its_interval_and_tolerance() -> None:
    pace = Pace.of(RateLimit(700, 60))
    assert pace.interval == timedelta(seconds=60 / (700 * PACE_SHARE))
    assert pace.tolerance == timedelta(seconds=0.6)
