"""The outbox worker on a real database: retries, backoff, leases, no double execution."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.dispatch import LeasedJob, Outcome, RetryPolicy, Worker
from handoff.helpdesks.errors import RateLimited, Rejected, Unavailable
from handoff.store.db import Database
from handoff.store.migrate import upgrade
from handoff.store.models import OutboxJob, utcnow
from tests.conftest import BACKENDS, fresh_database_url


class Recorder:
    """A job handler that records every call and fails as scripted."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.failures = list(failures or [])
        self.performed: Counter[int] = Counter()
        self.applied: Counter[int] = Counter()
        self.failed: dict[int, str] = {}

    async def perform(self, job: LeasedJob) -> Any:
        self.performed[job.id] += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"ticket": f"T-{job.id}"}

    async def apply(self, session: AsyncSession, job: LeasedJob, result: Any) -> None:
        assert result == {"ticket": f"T-{job.id}"}
        self.applied[job.id] += 1

    async def on_failed(self, session: AsyncSession, job: LeasedJob, error: str) -> None:
        self.failed[job.id] = error


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = await asyncio.to_thread(fresh_database_url, request.param, tmp_path)
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    yield database
    await database.dispose()


async def enqueue(db: Database, count: int = 1, max_attempts: int | None = 5) -> list[int]:
    async with db.unit_of_work() as session:
        jobs = [
            OutboxJob(
                kind="work",
                payload={},
                idempotency_key=f"work:{secrets.token_hex(8)}",
                max_attempts=max_attempts,
            )
            for _ in range(count)
        ]
        session.add_all(jobs)
        await session.flush()
        return [job.id for job in jobs]


async def job(db: Database, job_id: int) -> OutboxJob:
    async with db.unit_of_work() as session:
        row = await session.scalar(select(OutboxJob).where(OutboxJob.id == job_id))
        assert row is not None
        return row


async def make_due(db: Database, job_id: int) -> None:
    async with db.unit_of_work() as session:
        await session.execute(
            update(OutboxJob).where(OutboxJob.id == job_id).values(run_after=utcnow())
        )


def worker(db: Database, handler: Recorder, **options: Any) -> Worker:
    return Worker(db, {"work": handler}, **options)


async def test_job_runs_once_and_is_done(db: Database) -> None:
    (job_id,) = await enqueue(db)
    handler = Recorder()
    assert await worker(db, handler).run_once() is True
    assert await worker(db, handler).run_once() is False
    done = await job(db, job_id)
    assert done.status == "done"
    assert done.lease_token is None
    assert handler.performed[job_id] == handler.applied[job_id] == 1


async def test_transient_failure_is_retried_later_with_backoff(db: Database) -> None:
    (job_id,) = await enqueue(db)
    handler = Recorder([Unavailable("503 from the platform")])
    policy = RetryPolicy(base_seconds=30, max_seconds=600)
    before = utcnow()
    await worker(db, handler, retry=policy).run_once()

    waiting = await job(db, job_id)
    assert waiting.status == "pending"
    assert waiting.attempts == 1
    assert "503" in (waiting.last_error or "")
    delay = (waiting.run_after - before).total_seconds()
    assert 15 <= delay <= 31  # jittered within [base/2, base] for the first retry
    assert await worker(db, handler).run_once() is False  # not due yet

    await make_due(db, job_id)
    assert await worker(db, handler).run_once() is True
    assert (await job(db, job_id)).status == "done"
    assert handler.performed[job_id] == 2
    assert handler.applied[job_id] == 1


async def test_retry_after_from_the_platform_wins(db: Database) -> None:
    (job_id,) = await enqueue(db)
    handler = Recorder([RateLimited("429", retry_after=120)])
    before = utcnow()
    await worker(db, handler, retry=RetryPolicy(base_seconds=1)).run_once()
    waiting = await job(db, job_id)
    assert (waiting.run_after - before).total_seconds() >= 119


async def test_a_refused_call_does_not_use_an_attempt(db: Database) -> None:
    """429s (or Salesforce's 403 REQUEST_LIMIT_EXCEEDED) are the platform declining to try:
    more of them than the job has attempts leave it pending with its budget whole."""
    (job_id,) = await enqueue(db, max_attempts=2)
    refusals = [RateLimited("429", retry_after=0.0) for _ in range(3)]
    handler = Recorder([*refusals, Unavailable("503")])
    for _ in range(4):
        await make_due(db, job_id)
        await worker(db, handler).run_once()
        assert (await job(db, job_id)).status == "pending"
    assert (await job(db, job_id)).attempts == 1  # the 503 alone counted

    await make_due(db, job_id)
    await worker(db, handler).run_once()
    assert (await job(db, job_id)).status == "done"
    assert handler.performed[job_id] == 5


async def test_permanent_error_parks_the_job_at_once(db: Database) -> None:
    (job_id,) = await enqueue(db, max_attempts=5)
    handler = Recorder([Rejected(422, "requester email is invalid")])
    await worker(db, handler).run_once()
    parked = await job(db, job_id)
    assert parked.status == "failed"
    assert parked.attempts == 1
    assert "requester email is invalid" in handler.failed[job_id]


async def test_exhausted_retries_park_the_job_visibly(db: Database) -> None:
    (job_id,) = await enqueue(db, max_attempts=3)
    handler = Recorder([Unavailable("down")] * 3)
    for _ in range(3):
        await make_due(db, job_id)
        await worker(db, handler).run_once()
    parked = await job(db, job_id)
    assert parked.status == "failed"
    assert parked.attempts == 3
    assert "down" in (parked.last_error or "")
    assert job_id in handler.failed
    assert handler.applied[job_id] == 0


async def test_a_job_without_its_own_budget_takes_the_workers(db: Database) -> None:
    (job_id,) = await enqueue(db, max_attempts=None)
    handler = Recorder([Unavailable("down")] * 2)
    for _ in range(2):
        await make_due(db, job_id)
        await worker(db, handler, max_attempts=2).run_once()
    parked = await job(db, job_id)
    assert parked.status == "failed"
    assert parked.attempts == 2


async def test_expired_lease_is_taken_over_and_the_late_result_discarded(db: Database) -> None:
    (job_id,) = await enqueue(db)
    handler = Recorder()
    crashed = worker(db, handler, lease_seconds=0.3)
    leased = await crashed.claim()  # this worker "crashes" holding the lease
    assert leased is not None

    rescuer = worker(db, handler, lease_seconds=30)
    assert await rescuer.run_once() is False  # the lease still holds
    await asyncio.sleep(0.5)
    assert await rescuer.run_once() is True  # the lease expired: taken over
    assert (await job(db, job_id)).attempts == 2

    # The first worker wakes up and tries to settle: its lease is gone, nothing is applied.
    assert await crashed.execute(leased) == Outcome.LEASE_LOST
    assert handler.applied[job_id] == 1
    assert (await job(db, job_id)).status == "done"


async def test_concurrent_workers_never_run_a_job_twice(db: Database) -> None:
    job_ids = await enqueue(db, count=30)
    handler = Recorder()
    workers = [worker(db, handler) for _ in range(4)]

    async def drain(w: Worker) -> None:
        while await w.run_once():
            pass

    await asyncio.gather(*(drain(w) for w in workers))
    assert sorted(handler.performed) == sorted(job_ids)
    assert set(handler.performed.values()) == {1}
    assert set(handler.applied.values()) == {1}
    async with db.unit_of_work() as session:
        statuses = set(await session.scalars(select(OutboxJob.status)))
    assert statuses == {"done"}


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_seconds=2, max_seconds=60)
    error = Unavailable("x")
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (6, 60), (20, 60)]:
        delays = [policy.delay(attempt, error) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempt, delays)
        assert len(set(delays)) > 1  # jittered, so workers do not retry in lockstep
    assert policy.delay(1, RateLimited("slow down", retry_after=90)) == 90
    assert timedelta(seconds=policy.delay(30, error)) <= timedelta(seconds=60)


class Overlapping:
    """A slow job handler that records which jobs run at the same moment."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.all_applied = asyncio.Event()
        self.running: set[int] = set()
        self.peak = 0
        self.started: list[int] = []
        self.overlapped: set[int] = set()  # jobs that ran while another was running
        self.applied: Counter[int] = Counter()

    async def perform(self, job: LeasedJob) -> Any:
        self.started.append(job.id)
        if self.running:
            self.overlapped |= self.running | {job.id}
        self.running.add(job.id)
        self.peak = max(self.peak, len(self.running))
        await asyncio.sleep(0.05)
        self.running.discard(job.id)
        return None

    async def apply(self, session: AsyncSession, job: LeasedJob, result: Any) -> None:
        self.applied[job.id] += 1
        if sum(self.applied.values()) >= self.expected:
            self.all_applied.set()

    async def on_failed(self, session: AsyncSession, job: LeasedJob, error: str) -> None:
        raise AssertionError(error)


async def enqueue_for(db: Database, keys: list[str]) -> list[int]:
    """One job per entry of `keys`, each carrying its key, in that order."""
    async with db.unit_of_work() as session:
        jobs = [
            OutboxJob(kind="work", payload={"key": key}, idempotency_key=f"work:{n}")
            for n, key in enumerate(keys)
        ]
        session.add_all(jobs)
        await session.flush()
        return [job.id for job in jobs]


async def run_until_applied(w: Worker, handler: Overlapping) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(w.run(stop))
    async with asyncio.timeout(30):
        await handler.all_applied.wait()
    stop.set()
    await running


async def test_one_worker_runs_up_to_its_concurrency_at_once(db: Database) -> None:
    job_ids = await enqueue_for(db, [f"own-{n}" for n in range(9)])
    handler = Overlapping(len(job_ids))
    w = Worker(db, {"work": handler}, concurrency=3, poll_seconds=0.01, ordered_by=lambda j: None)

    await run_until_applied(w, handler)

    assert handler.peak == 3
    assert set(handler.applied) == set(job_ids) and set(handler.applied.values()) == {1}


async def test_jobs_of_one_key_run_one_after_another_in_order(db: Database) -> None:
    job_ids = await enqueue_for(db, ["ticket", "other", "ticket", "ticket", "other"])
    ticket_jobs = [job_ids[0], job_ids[2], job_ids[3]]
    handler = Overlapping(len(job_ids))
    w = Worker(
        db,
        {"work": handler},
        concurrency=8,
        poll_seconds=0.01,
        ordered_by=lambda j: str(j.payload["key"]),
    )

    await run_until_applied(w, handler)

    assert [i for i in handler.started if i in ticket_jobs] == ticket_jobs
    assert handler.peak == 2  # one job of each key at a time
    assert set(handler.applied.values()) == {1}


async def test_a_retrying_job_holds_back_the_later_jobs_of_its_ticket(db: Database) -> None:
    async with db.unit_of_work() as session:
        jobs = [
            OutboxJob(kind="work", payload={"escalation_id": key}, idempotency_key=f"work:{n}")
            for n, key in enumerate(["e1", "e1", "e2"])
        ]
        session.add_all(jobs)
        await session.flush()
        first, second, other = (j.id for j in jobs)
    handler = Recorder(failures=[Unavailable("down for a moment")])
    assert await worker(db, handler).run_once() is True  # the first fails, to retry later

    # Another worker, or the same one on its next claim, finds the second due but behind it.
    assert await worker(db, handler).run_once() is True
    assert await worker(db, handler).run_once() is False
    assert set(handler.performed) == {first, other}
    assert (await job(db, second)).status == "pending"

    await make_due(db, first)
    assert await worker(db, handler).run_once() is True
    assert await worker(db, handler).run_once() is True
    assert list(handler.applied) == [other, first, second]


class Bell:
    """A bus of one's own: `wait` returns when rung, or after `seconds`."""

    def __init__(self) -> None:
        self.waiting: set[asyncio.Event] = set()

    async def wait(self, seconds: float) -> None:
        rung = asyncio.Event()
        self.waiting.add(rung)
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(rung.wait(), seconds)
        finally:
            self.waiting.discard(rung)

    def ring(self) -> None:
        for rung in self.waiting:
            rung.set()


class CommitWhileLooking(Worker):
    """A worker whose first claim finds nothing, and a job is committed (the bell rung) just
    after that claim looked and before the worker waits."""

    def __init__(self, db: Database, handler: Overlapping, bell: Bell) -> None:
        super().__init__(db, {"work": handler}, poll_seconds=60, wait_for_work=bell.wait)
        self.bell = bell
        self.committed: list[int] = []

    async def claim_some(self, limit: int) -> list[LeasedJob]:
        jobs = await super().claim_some(limit)
        if not self.committed:
            self.committed += await enqueue_for(self.db, ["late"])
            self.bell.ring()
        return jobs


async def test_a_job_committed_while_the_worker_looks_wakes_it_before_the_poll(
    db: Database,
) -> None:
    handler = Overlapping(expected=1)
    w = CommitWhileLooking(db, handler, Bell())
    stop = asyncio.Event()
    running = asyncio.create_task(w.run(stop))

    async with asyncio.timeout(10):  # far below the 60 s poll
        await handler.all_applied.wait()
    stop.set()
    await running

    assert list(handler.applied) == w.committed


async def test_an_idle_worker_is_not_woken_by_its_own_looking(db: Database) -> None:
    bell = Bell()
    looked = 0

    class Counting(Worker):
        async def claim_some(self, limit: int) -> list[LeasedJob]:
            nonlocal looked
            looked += 1
            return await super().claim_some(limit)

    w = Counting(db, {"work": Recorder()}, poll_seconds=0.2, wait_for_work=bell.wait)
    # Every commit rings the bell, as the service's bus does: the worker's own commits too.
    db.on_commit = lambda info: bell.ring()
    stop = asyncio.Event()
    running = asyncio.create_task(w.run(stop))

    await asyncio.sleep(1.0)
    stop.set()
    await running

    assert looked <= 7  # once a poll interval, not in a loop woken by itself
