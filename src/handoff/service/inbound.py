"""The service's side of each channel that takes in its own webhooks, registered in one line.

Such a channel's service module queues an outbox job per message its webhook brings, and says
here how those jobs run (`job_handlers`) and what they must not overtake (`ordering_key`: one
user's messages are taken in in the order they were written). The worker reads them from
`INBOUND`, so `jobs.py` knows no channel by name.
"""

from __future__ import annotations

from typing import Protocol

from handoff.dispatch import JobHandler, LeasedJob
from handoff.service import whatsapp
from handoff.service.runtime import Handoff


class InboundChannel(Protocol):
    """A channel's service module, as the worker sees it."""

    def job_handlers(self, hf: Handoff) -> dict[str, JobHandler]:
        """Return the handler of each kind of inbound job the channel queues."""
        ...

    def ordering_key(self, job: LeasedJob) -> str | None:
        """Return what the job must not overtake; None for a job not the channel's."""
        ...


INBOUND: tuple[InboundChannel, ...] = (whatsapp,)


def job_handlers(hf: Handoff) -> dict[str, JobHandler]:
    """Return the inbound job handlers of every registered channel, by kind."""
    return {
        kind: handler for channel in INBOUND for kind, handler in channel.job_handlers(hf).items()
    }


def ordering_key(job: LeasedJob) -> str | None:
    """Return the key the job's channel orders it by; None when no channel claims it."""
    return next((key for channel in INBOUND if (key := channel.ordering_key(job))), None)
