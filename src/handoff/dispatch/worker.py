"""The outbox worker: lease due jobs, run them, retry with backoff and jitter, park failures.

One worker runs up to `concurrency` jobs at once, so that a slow helpdesk's latency does not
set the pace. Jobs with the same ordering key (the follow-ups of one ticket) still run one
after another, in the order they were leased. A job that calls a helpdesk is leased only
while that integration's API budget and its share of the slots allow (`pacing.py`).

A job runs in two steps. `perform` talks to the outside world with no transaction open;
`apply` records the outcome in the same transaction that marks the job done, and only while
this worker still holds the lease. A crash between the two leaves the job to be leased again
once its lease expires; connectors make the repeated call idempotent.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol

import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.dispatch.pacing import Pacer, refusal_wait
from handoff.helpdesks.errors import HelpdeskError, RateLimited
from handoff.helpdesks.limits import CallLog, observing
from handoff.store import repositories as repo
from handoff.store.db import Database
from handoff.store.models import OutboxJob, utcnow

log = structlog.get_logger(__name__)
JOBS = Counter("handoff_outbox_jobs", "Outbox job runs, by kind and outcome.", ["kind", "outcome"])


@dataclass(frozen=True, slots=True)
class LeasedJob:
    """A job this worker holds: what to do, and the token that proves the lease."""

    id: int
    kind: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    max_attempts: int
    lease_token: str
    integration_id: str | None = None  # the helpdesk integration it calls, if any


class JobHandler(Protocol):
    """How one kind of job is done."""

    async def perform(self, job: LeasedJob) -> Any:
        """Do the outside work (HTTP); no transaction is open."""
        ...

    async def apply(self, session: AsyncSession, job: LeasedJob, result: Any) -> None:
        """Record the result; runs in the transaction that completes the job."""
        ...

    async def on_failed(self, session: AsyncSession, job: LeasedJob, error: str) -> None:
        """Record that the job was parked as failed after its last attempt."""
        ...


class Outcome(StrEnum):
    """How one run of a job ended."""

    DONE = "done"
    RETRY = "retry"  # back in the queue, due after a backoff
    FAILED = "failed"  # parked after its last attempt, or on a permanent error
    LEASE_LOST = "lease_lost"  # another worker took the job over; this result is discarded


class LeaseLost(Exception):
    """Another worker took the job after our lease expired; our result is discarded."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_seconds: float = 600.0

    def delay(self, attempts: int, error: BaseException) -> float:
        """Exponential backoff with jitter; a platform's Retry-After wins when longer."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        delay = random.uniform(ceiling / 2, ceiling)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay


async def _cancelled(future: asyncio.Future[None]) -> None:
    future.cancel()
    with suppress(asyncio.CancelledError):
        await future


def is_retryable(error: BaseException) -> bool:
    # Unknown errors may be transient (a bug fixed by a deploy, a flaky network): retry them
    # within the budget. Connector errors say for themselves.
    if isinstance(error, HelpdeskError):
        return error.retryable
    return True


class Worker:
    """Runs outbox jobs until stopped."""

    def __init__(
        self,
        db: Database,
        handlers: Mapping[str, JobHandler],
        *,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        retry: RetryPolicy | None = None,
        wait_for_work: Callable[[float], Awaitable[None]] | None = None,
        on_change: Callable[[], None] | None = None,
        tick: Callable[[], Awaitable[object]] | None = None,
        tick_seconds: float = 15.0,
        max_attempts: int = 8,
        concurrency: int = 1,
        ordered_by: Callable[[LeasedJob], str | None] | None = None,
        per_integration: int | None = None,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.retry = retry or RetryPolicy()
        # Attempts before a job is parked, unless the job brings its own budget.
        self.max_attempts = max_attempts
        self.name = f"worker-{secrets.token_hex(3)}"
        self._wait_for_work = wait_for_work or asyncio.sleep
        self._on_change = on_change or (lambda: None)
        # Periodic work beside the jobs (the conversation timers), every `tick_seconds`.
        self._tick = tick
        self.tick_seconds = tick_seconds
        self.concurrency = max(1, concurrency)
        # Jobs of one key run in lease order; None (the default for every job) runs freely.
        self._ordered_by = ordered_by or (lambda job: None)
        self._running: set[asyncio.Task[None]] = set()
        self._last_of_key: dict[str, asyncio.Task[None]] = {}
        # Slots one integration's jobs may hold at once (None: all of them), and its budget.
        self.pacer = Pacer(self.concurrency if per_integration is None else per_integration)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; sleep when there is nothing due.

        On `stop` the jobs in hand are finished (their leases would otherwise have to expire
        before anyone ran them again); cancelled from outside, they are cancelled too.
        """
        log.info("worker started", worker=self.name, concurrency=self.concurrency)
        ticker = asyncio.create_task(self._ticking(stop)) if self._tick is not None else None
        try:
            while not stop.is_set():
                if len(self._running) >= self.concurrency:
                    await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
                    continue
                for job in await self._next_jobs():
                    self._start(job)
        finally:
            await self._settle_running(finish=stop.is_set())
            if ticker is not None:
                if not stop.is_set():  # cancelled from outside: do not wait for a tick
                    ticker.cancel()
                with suppress(asyncio.CancelledError):
                    await ticker
        log.info("worker stopped", worker=self.name)

    def _start(self, job: LeasedJob) -> None:
        """Run `job` beside the others, after the job of the same key leased before it."""
        key = self._ordered_by(job)
        before = self._last_of_key.get(key) if key is not None else None
        task = asyncio.create_task(self._run_leased(job, before))
        self._running.add(task)
        self.pacer.started(job.integration_id)
        if key is not None:
            self._last_of_key[key] = task
        task.add_done_callback(lambda done: self._forget(done, key, job.integration_id))

    def _forget(self, task: asyncio.Task[None], key: str | None, integration: str | None) -> None:
        self._running.discard(task)
        self.pacer.finished(integration)
        if key is not None and self._last_of_key.get(key) is task:
            del self._last_of_key[key]

    async def _run_leased(self, job: LeasedJob, before: asyncio.Task[None] | None) -> None:
        if before is not None:
            await asyncio.wait([before])  # its outcome is its own; only the order matters here
        outcome = await self.execute(job)
        JOBS.labels(kind=job.kind, outcome=outcome.value).inc()
        self._on_change()

    async def _next_jobs(self) -> list[LeasedJob]:
        """Lease due jobs for the free slots; with none, wait for new work, a poll interval, a
        spent budget to free or a running job to end, and return none.

        The worker listens for new work before it looks, so that a job committed while it looks
        wakes it at once instead of at the next poll; the claim's own commit is quiet, or it
        would end that wait itself.
        """
        waiting = asyncio.ensure_future(self._wait_for_work(self.poll_seconds))
        try:
            jobs = await self.claim_some(self.concurrency - len(self._running))
        except Exception:
            log.exception("worker loop error", worker=self.name)
            jobs = []
        if not jobs:
            until_free = self.pacer.seconds_until_free(utcnow())
            await asyncio.wait(
                {waiting, *self._running}, timeout=until_free, return_when=asyncio.FIRST_COMPLETED
            )
        await _cancelled(waiting)
        return jobs

    async def _settle_running(self, *, finish: bool) -> None:
        if not finish:
            for task in self._running:
                task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _ticking(self, stop: asyncio.Event) -> None:
        """Run the periodic work until `stop`; a failing tick is logged and tried next time."""
        assert self._tick is not None
        while not stop.is_set():
            try:
                await self._tick()
            except Exception:
                log.exception("periodic work failed", worker=self.name)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_seconds)

    async def claim(self) -> LeasedJob | None:
        """Lease the next due job whose integration has budget and a free slot, if any."""
        jobs = await self.claim_some(1)
        return jobs[0] if jobs else None

    async def claim_some(self, limit: int) -> list[LeasedJob]:
        """Lease up to `limit` due jobs whose integrations have budget and a free slot.

        One transaction for all of them: a claim waits for the database's write lock like any
        write, so a paced integration whose claims come late catches up in one go. Its commit
        wakes no one: a lease is news to nobody, and it would wake this worker's own wait.
        """
        now = utcnow()
        leased: list[LeasedJob] = []
        async with self.db.unit_of_work(quiet=True) as session:
            held_back = self.pacer.held_back(now)
            while len(leased) < limit and (
                due := await repo.next_due_job(session, now=now, skip_integrations=held_back)
            ):
                job_id, integration_id = due
                if integration_id is not None and not await self.pacer.admit(
                    session, integration_id
                ):
                    held_back.add(integration_id)
                    continue
                token = secrets.token_hex(16)
                row = await repo.claim_job(
                    session, job_id, now=now, lease_token=token, lease_until=now + self.lease
                )
                if row is None:
                    break  # another worker was first; the next claim looks again
                leased.append(self._leased(row, token))
                held_back |= self.pacer.held_back(now, leasing=[j.integration_id for j in leased])
        return leased

    def _leased(self, row: OutboxJob, token: str) -> LeasedJob:
        return LeasedJob(
            id=row.id,
            kind=row.kind,
            payload=dict(row.payload),
            idempotency_key=row.idempotency_key,
            attempts=row.attempts,
            max_attempts=row.max_attempts or self.max_attempts,
            lease_token=token,
            integration_id=row.integration_id,
        )

    async def run_once(self) -> bool:
        """Claim and run one job; return False when none was due."""
        job = await self.claim()
        if job is None:
            return False
        await self._run_leased(job, before=None)
        return True

    async def execute(self, job: LeasedJob) -> Outcome:
        """Run a leased job to one of its outcomes; every failure is recorded on the job."""
        handler = self.handlers.get(job.kind)
        with observing() as calls:
            try:
                if handler is None:
                    raise LookupError(f"no handler for job kind {job.kind!r}")
                result = await handler.perform(job)
                await self._complete(job, handler, result, calls)
            except LeaseLost:
                log.warning("job lease lost; result discarded", job=job.id, kind=job.kind)
                return Outcome.LEASE_LOST
            except Exception as error:
                return await self._fail(job, handler, error, calls)
        log.info("job done", job=job.id, kind=job.kind, attempt=job.attempts)
        return Outcome.DONE

    async def _complete(
        self, job: LeasedJob, handler: JobHandler, result: Any, calls: CallLog
    ) -> None:
        async with self.db.unit_of_work() as session:
            if not await repo.finish_job(session, job.id, job.lease_token, status="done"):
                raise LeaseLost()
            await handler.apply(session, job, result)
            await self._settle_budget(session, job, calls)

    async def _settle_budget(
        self,
        session: AsyncSession,
        job: LeasedJob,
        calls: CallLog,
        refused_for: float | None = None,
    ) -> None:
        if job.integration_id is not None:
            await self.pacer.settle(
                session, job.integration_id, calls, now=utcnow(), refused_for=refused_for
            )

    async def _fail(
        self, job: LeasedJob, handler: JobHandler | None, error: Exception, calls: CallLog
    ) -> Outcome:
        message = f"{type(error).__name__}: {error}"
        # A platform that refused the call (its rate limit) did not try the job: the attempt
        # is given back, and the refusal's pause (`refusal_wait`) keeps the retry from
        # hammering it. Only calls the platform took, and failed, wear the budget down.
        refused = isinstance(error, RateLimited)
        final = not is_retryable(error) or (not refused and job.attempts >= job.max_attempts)
        delay = self.retry.delay(job.attempts, error)
        async with self.db.unit_of_work() as session:
            if final:
                settled = await repo.finish_job(
                    session, job.id, job.lease_token, status="failed", error=message
                )
                if settled and handler is not None:
                    await handler.on_failed(session, job, message)
            else:
                settled = await repo.finish_job(
                    session,
                    job.id,
                    job.lease_token,
                    status="pending",
                    run_after=utcnow() + timedelta(seconds=delay),
                    error=message,
                    refund_attempt=refused,
                )
            # After the job's row, as a claim locks them: the job's, then the budget's.
            await self._settle_budget(session, job, calls, refusal_wait(error, delay))
        log.warning(
            "job failed" if final else "job will retry",
            job=job.id,
            kind=job.kind,
            attempt=job.attempts,
            error=message,
            lease_held=settled,
        )
        if not settled:
            return Outcome.LEASE_LOST
        return Outcome.FAILED if final else Outcome.RETRY
