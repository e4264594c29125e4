"""The outbox as the service admin sees it: jobs, their state, and retrying parked ones."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.service.auth import Principal
from handoff.service.errors import Invalid, NotFound
from handoff.service.metrics import NO_INTEGRATION, OUTBOX_QUEUE, QueueFigure
from handoff.service.runtime import Handoff
from handoff.store import repositories as repo
from handoff.store.models import OutboxJob, utcnow

JOB_STATUSES = ("pending", "running", "done", "failed")


def job_json(job: OutboxJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_after": job.run_after.isoformat(),
        "last_error": job.last_error,
        "payload": job.payload,
        "created_at": job.created_at.isoformat(),
    }


def _require_service_admin(principal: Principal) -> None:
    # Jobs span every workspace: a workspace admin does not see them exist.
    if principal.workspace_id is not None or not principal.is_admin:
        raise NotFound("the outbox is visible to the service admin only")


async def list_jobs(
    session: AsyncSession, principal: Principal, status: str | None, limit: int
) -> list[dict[str, Any]]:
    """Return outbox jobs, newest first, optionally of one status."""
    _require_service_admin(principal)
    if status is not None and status not in JOB_STATUSES:
        raise Invalid("status", f"must be one of {', '.join(JOB_STATUSES)}")
    return [job_json(job) for job in await repo.jobs(session, status, limit)]


async def retry_job(session: AsyncSession, principal: Principal, job_id: int) -> dict[str, Any]:
    """Queue a failed job again with a fresh retry budget."""
    _require_service_admin(principal)
    job = await session.get(OutboxJob, job_id)
    if job is None:
        raise NotFound("job not found")
    if job.status != "failed":
        raise Invalid("status", f"only failed jobs can be retried; this one is {job.status}")
    job.status, job.attempts, job.run_after, job.updated_at = "pending", 0, utcnow(), utcnow()
    await session.flush()
    return job_json(job)


async def measure_queue(hf: Handoff) -> None:
    """Read what waits in the outbox, per integration and job kind, for /metrics to show."""
    now = utcnow()
    async with hf.reading() as session:
        rows = await repo.queue_figures(session, now)
    OUTBOX_QUEUE.figures = [
        QueueFigure(
            integration=row.integration_id or NO_INTEGRATION,
            platform=row.platform or NO_INTEGRATION,
            kind=row.kind,
            depth=row.waiting,
            parked=row.parked,
            oldest_due_seconds=(now - row.oldest_due).total_seconds() if row.oldest_due else 0.0,
        )
        for row in rows
    ]
