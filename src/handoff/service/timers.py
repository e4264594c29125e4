"""Conversation timers, swept periodically by every outbox worker.

- **Wait notice**: the human team owns the conversation and nobody has answered within the
  action's `wait_timeout_seconds`: the user is told their place is kept, and offered the AI or
  to leave an email. Once per stretch (`Escalation.wait_notified_at`).
- **Inactivity**: nobody (user or human agent) wrote for the action's
  `inactivity_timeout_seconds`: the conversation goes back to the AI and the ticket is told.

With business hours, a timer runs only from the next opening: a user who wrote at night has
not been kept waiting by a team that is not at work yet.

Several workers may sweep at once. Each due conversation is settled in its own unit of work
that locks the conversation row (as an inbound message does), checks the state again, and
changes the escalation with a conditional UPDATE; the notice and that change commit together,
so a notice goes out once and a stretch ends once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.domain import BusinessHours, HandbackReason, Role
from handoff.service.lifecycle import transitions as lifecycle
from handoff.service.runtime import Handoff
from handoff.service.stretch import end_stretch
from handoff.store import repositories as repo
from handoff.store.models import Escalation, utcnow

log = structlog.get_logger(__name__)

# Messages that count as activity: the user's and the human team's, not our own notices.
ACTIVE_ROLES = (Role.USER.value, Role.HUMAN_AGENT.value)


class Due(StrEnum):
    """What a conversation's timers call for now."""

    WAIT_NOTICE = "wait_notice"
    INACTIVITY = "inactivity"


@dataclass(frozen=True, slots=True)
class Clock:
    """The facts one stretch's timers are computed from."""

    created_at: datetime  # the handoff
    first_reply_at: datetime | None
    wait_notified_at: datetime | None
    last_activity: datetime
    wait_timeout_seconds: int | None
    inactivity_timeout_seconds: int | None
    business_hours: dict[str, Any] | None

    def due(self, now: datetime) -> Due | None:
        """Return the timer that has run out at `now`; inactivity wins over the notice."""
        hours = BusinessHours.parse(self.business_hours) if self.business_hours else None

        def started(moment: datetime) -> datetime:
            return hours.clock_start(moment) if hours is not None else moment

        quiet = self.inactivity_timeout_seconds
        if quiet and now >= started(self.last_activity) + timedelta(seconds=quiet):
            return Due.INACTIVITY
        wait = self.wait_timeout_seconds
        if (
            wait
            and self.first_reply_at is None
            and self.wait_notified_at is None
            and now >= started(self.created_at) + timedelta(seconds=wait)
        ):
            return Due.WAIT_NOTICE
        return None


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep did."""

    notified: int = 0
    handed_back: int = 0


async def sweep(hf: Handoff, *, now: datetime | None = None) -> SweepResult:
    """Send due wait notices and hand back inactive conversations; return the counts."""
    now = now or utcnow()
    async with hf.reading() as session:
        clocks = await _clocks(session)
    notified = handed_back = 0
    for escalation_id, clock in clocks:
        # One conversation that cannot be settled must not hold up the others.
        try:
            if clock.due(now) is None:
                continue
            async with hf.transaction() as session:
                done = await _settle(session, escalation_id, now)
        except Exception:
            log.exception("conversation timer failed", escalation=escalation_id)
            continue
        if done is Due.WAIT_NOTICE:
            notified += 1
        elif done is Due.INACTIVITY:
            handed_back += 1
        if done is not None:
            log.info("conversation timer", escalation=escalation_id, timer=done.value)
    return SweepResult(notified=notified, handed_back=handed_back)


async def _clocks(
    session: AsyncSession, escalation_id: str | None = None
) -> list[tuple[str, Clock]]:
    """Return the clocks of the open human stretches whose action has a timer."""
    rows = await repo.timed_stretches(session, ACTIVE_ROLES, escalation_id)
    return [
        (
            row[0],
            Clock(
                created_at=row[1],
                first_reply_at=row[2],
                wait_notified_at=row[3],
                last_activity=row[4],
                wait_timeout_seconds=row[5],
                inactivity_timeout_seconds=row[6],
                business_hours=row[7],
            ),
        )
        for row in rows
    ]


async def _settle(session: AsyncSession, escalation_id: str, now: datetime) -> Due | None:
    """Act on one stretch whose timer ran out, if it still has; return what was done."""
    escalation = await session.get(Escalation, escalation_id)
    if escalation is None:
        return None
    # The same lock an inbound message takes: a user writing right now waits for us, or wins.
    conversation = await repo.conversation_for_update(session, escalation.conversation_id)
    if conversation is None:
        return None
    fresh = await _clocks(session, escalation_id)
    what = fresh[0][1].due(now) if fresh else None
    if what is Due.INACTIVITY and await lifecycle.claim_handback(
        session, escalation, HandbackReason.INACTIVITY
    ):
        await end_stretch(session, conversation, escalation, HandbackReason.INACTIVITY)
        return what
    if what is Due.WAIT_NOTICE and await lifecycle.notify_waiting(
        session, conversation, escalation, now
    ):
        return what
    return None


__all__ = ["Clock", "Due", "SweepResult", "sweep"]
