"""The outbox: claim jobs with a lease, run them, retry with backoff, never lose or repeat."""

from handoff.dispatch.worker import (
    JobHandler,
    LeasedJob,
    LeaseLost,
    Outcome,
    RetryPolicy,
    Worker,
)

__all__ = ["JobHandler", "LeaseLost", "LeasedJob", "Outcome", "RetryPolicy", "Worker"]
