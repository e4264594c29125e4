"""Pacing and isolation per helpdesk integration: keep under each platform's API limit, and
never let one integration take every slot of a worker.

Budget. Each integration has one row in `integration_budgets`, shared by every worker process:
`next_at`, the theoretical time of its next call (the generic cell rate algorithm, a token
bucket kept as one timestamp), and `paused_until`, when the platform itself said calls may
resume. A worker leasing a job of the integration locks that row in the same short transaction
as the lease, admits the call when `next_at - tolerance <= now` and moves `next_at` one
interval on. On PostgreSQL the lock is `SELECT ... FOR UPDATE SKIP LOCKED`, so that a claim
never waits while holding other locks (a worker that finds another spending the budget asks
again 20 ms later); SQLite's single writer serialises the claims. When
the budget is spent the job is not leased at all: the worker remembers when the budget frees,
leaves that integration out of its next claims (`next_due_job`'s skip list) and takes other
integrations' jobs meanwhile; its idle wait ends when the earliest budget frees. So a spent
budget holds no transaction, no lease and no slot, and a job waits at most until the moment
its call may go, however many processes share the budget.

The calls are spaced `per_seconds / (calls * PACE_SHARE)` apart: 97 % of the limit, so that
the `TOLERANCE_SHARE` of burst (a worker that claims late catches up by that much) and the
network's jitter still fit in any window of the platform, fixed or sliding: at most
`(window + tolerance) / interval + 1` calls fall in one window, below the limit. A steady run
therefore keeps 97 % of the limit, less the first call's latency; leasing jobs first and
putting them back with a later `run_after` when the budget is spent would instead add a poll's
delay to every wait, and a lease and a release to every refusal. A worker leases the jobs for
all its free slots in one transaction, so claims that wait for the database's write lock
still keep up with the pace.

Adapting. One job may make several calls (a search, then the ticket); after the job, the
calls beyond the one admitted are charged to the budget. Every answer is read by the shared
client's hook (`helpdesks.limits`): a `Retry-After`, or a remaining budget of zero with its
reset, pauses the integration for every worker until then, as does a `RateLimited` refusal
(for its `retry_after`, or the job's own backoff when the platform gave none).

Isolation. Besides its budget, an integration may hold at most `max_running` of a worker's
slots; past that, its jobs are skipped in the claim like a spent budget's. A helpdesk whose
every call runs to the timeout then fills its share and no more: the other integrations, the
built-in inbox and the channel deliveries (jobs with no integration) keep the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.helpdesks.errors import RateLimited
from handoff.helpdesks.limits import CallLog, RateLimit, limit_for
from handoff.store import repositories as repo
from handoff.store.models import Integration, IntegrationBudget, utcnow

PACE_SHARE = 0.97  # of the platform's limit, spent in steady state
TOLERANCE_SHARE = 0.01  # of the limit's window, the burst a late claim may catch up by
BUSY_RETRY = timedelta(milliseconds=20)  # after finding another worker spending the budget


@dataclass(frozen=True, slots=True)
class Pace:
    """How far apart an integration's calls go, and how early one may go."""

    interval: timedelta
    tolerance: timedelta

    @classmethod
    def of(cls, limit: RateLimit) -> Pace:
        return cls(
            interval=timedelta(seconds=limit.per_seconds / (limit.calls * PACE_SHARE)),
            tolerance=timedelta(seconds=limit.per_seconds * TOLERANCE_SHARE),
        )


def free_at(budget: IntegrationBudget, pace: Pace, now: datetime) -> datetime:
    """When the budget admits its next call: `now` when it does at once."""
    paused = budget.paused_until or now
    return max(now, budget.next_at - pace.tolerance, paused)


def spend(budget: IntegrationBudget, pace: Pace, now: datetime, calls: int = 1) -> None:
    """Charge `calls` calls made at `now`."""
    budget.next_at = max(budget.next_at, now) + calls * pace.interval


def pause(budget: IntegrationBudget, until: datetime) -> None:
    """No call before `until`, as the platform said."""
    if budget.paused_until is None or budget.paused_until < until:
        budget.paused_until = until


class Pacer:
    """One worker's share of the integrations' budgets and of its own slots."""

    def __init__(self, max_running: int) -> None:
        self.max_running = max(1, max_running)
        self._running: Counter[str] = Counter()
        # Budgets this worker found spent, and when they free; another worker's spending only
        # moves that later, so the next claim that asks the database is never too early.
        self._free_at: dict[str, datetime] = {}

    def held_back(self, now: datetime, leasing: Sequence[str | None] = ()) -> set[str]:
        """The integrations whose jobs this worker must not lease now, with the jobs it is
        `leasing` (in the claim's transaction) counted as running."""
        running = self._running + Counter(key for key in leasing if key is not None)
        full = {key for key, count in running.items() if count >= self.max_running}
        spent = {key for key, at in self._free_at.items() if at > now}
        return full | spent

    def seconds_until_free(self, now: datetime) -> float | None:
        """How long until the first spent budget frees; None when none is spent."""
        later = [at for at in self._free_at.values() if at > now]
        return (min(later) - now).total_seconds() if later else None

    def started(self, integration_id: str | None) -> None:
        if integration_id is not None:
            self._running[integration_id] += 1

    def finished(self, integration_id: str | None) -> None:
        if integration_id is not None:
            self._running[integration_id] -= 1
            if self._running[integration_id] <= 0:
                del self._running[integration_id]

    async def admit(self, session: AsyncSession, integration_id: str) -> bool:
        """Spend one call of the integration's budget, or say that it is spent (and until
        when, for the next claims). An integration that is gone admits: its job fails alone."""
        found = await repo.budget_for_update(session, integration_id, skip_locked=True)
        if found is None:
            return True
        budget, integration = found
        now = utcnow()
        if budget is None:  # another worker is spending it this moment: ask again shortly
            self._free_at[integration_id] = now + BUSY_RETRY
            return False
        pace = pace_of(integration)
        if pace is None:
            return True
        at = free_at(budget, pace, now)
        if at > now:
            self._free_at[integration_id] = at
            return False
        spend(budget, pace, now)
        # The next call's time is known already: until then, claims need not ask the database.
        self._free_at[integration_id] = free_at(budget, pace, now)
        return True

    async def settle(
        self,
        session: AsyncSession,
        integration_id: str,
        calls: CallLog,
        *,
        now: datetime,
        refused_for: float | None = None,
    ) -> None:
        """After a job: charge its calls beyond the admitted one, and pause the integration
        until the platform's word (its headers, or a refusal's `refused_for` seconds)."""
        until = [
            datetime.fromtimestamp(calls.wait_until, UTC) if calls.wait_until else None,
            now + timedelta(seconds=refused_for) if refused_for is not None else None,
        ]
        wait = max((at for at in until if at is not None), default=None)
        if calls.calls <= 1 and wait is None:
            return
        found = await repo.budget_for_update(session, integration_id)
        if found is None:
            return
        budget, integration = found
        assert budget is not None  # waited for, not skipped
        pace = pace_of(integration)
        if pace is not None and calls.calls > 1:
            spend(budget, pace, now, calls.calls - 1)
        if wait is not None and wait > now:
            pause(budget, wait)
            self._free_at[integration_id] = max(wait, self._free_at.get(integration_id, wait))


def pace_of(integration: Integration) -> Pace | None:
    """The integration's pace; None when neither the admin nor the platform sets a limit."""
    limit = limit_for(integration.platform, integration.rate_limit)
    return None if limit is None else Pace.of(limit)


def refusal_wait(error: BaseException, backoff: float) -> float | None:
    """How long a refusal pauses the integration: what the platform said, else the backoff."""
    if not isinstance(error, RateLimited):
        return None
    return error.retry_after if error.retry_after is not None else backoff
