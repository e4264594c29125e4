"""Prometheus counters for what an operator watches: traffic, escalations, the outbox."""

from prometheus_client import Counter

MESSAGES_RECEIVED = Counter("handoff_messages_received", "User messages received on any channel.")
ESCALATIONS_CREATED = Counter(
    "handoff_escalations_created", "Conversations handed to humans.", ["platform"]
)
HANDBACKS = Counter("handoff_handbacks", "Conversations handed back to the AI.", ["reason"])
JOBS_FINISHED = Counter("handoff_outbox_jobs", "Outbox jobs settled.", ["kind", "outcome"])
