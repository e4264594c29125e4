"""Prometheus metrics for what an operator watches: traffic, escalations, handbacks, the outbox.

The outbox counts its own job runs (`dispatch.worker.JOBS`); what waits in it is read from the
database at scrape time (`OUTBOX_QUEUE`, filled by `outbox.measure_queue`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MESSAGES_RECEIVED = Counter("handoff_messages_received", "User messages received on any channel.")
ESCALATIONS_CREATED = Counter(
    "handoff_escalations_created", "Conversations handed to humans.", ["platform"]
)
HANDBACKS = Counter("handoff_handbacks", "Conversations handed back to the AI.", ["reason"])
REQUESTS_LIMITED = Counter(
    "handoff_requests_rate_limited", "Requests refused by a rate limit (429).", ["limit"]
)

NO_INTEGRATION = "none"  # the label of jobs that call no helpdesk: built-in inbox, channels
QUEUE_LABELS = ["integration", "platform", "kind"]


@dataclass(frozen=True, slots=True)
class QueueFigure:
    """The outbox's jobs of one integration and kind, as measured at a scrape."""

    integration: str
    platform: str
    kind: str
    depth: int  # pending or running
    parked: int  # failed: wait for an admin's retry
    oldest_due_seconds: float  # how long the oldest job due now has waited; 0 when none is due


class OutboxQueue(Collector):
    """Gauges of the outbox's backlog, from the figures the last scrape measured.

    The figures are replaced whole, so two scrapes at once never mix their rows.
    """

    def __init__(self) -> None:
        self.figures: Sequence[QueueFigure] = ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "handoff_outbox_queue_depth",
            "Outbox jobs waiting to run or running, by the integration they call ('none': the "
            "built-in inbox and channel deliveries), its platform and the job kind.",
            labels=QUEUE_LABELS,
        )
        parked = GaugeMetricFamily(
            "handoff_outbox_parked_jobs",
            "Outbox jobs that used up their retries and wait for an admin's retry.",
            labels=QUEUE_LABELS,
        )
        oldest = GaugeMetricFamily(
            "handoff_outbox_oldest_due_age_seconds",
            "How long the oldest job due now has been due (0: none is due).",
            labels=QUEUE_LABELS,
        )
        for figure in self.figures:
            labels = [figure.integration, figure.platform, figure.kind]
            depth.add_metric(labels, figure.depth)
            parked.add_metric(labels, figure.parked)
            oldest.add_metric(labels, figure.oldest_due_seconds)
        yield from (depth, parked, oldest)


OUTBOX_QUEUE = OutboxQueue()
REGISTRY.register(OUTBOX_QUEUE)
