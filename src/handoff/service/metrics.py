"""Prometheus counters for what an operator watches: traffic, escalations, handbacks.

The outbox counts its own jobs (`dispatch.worker.JOBS`)."""

from prometheus_client import Counter

MESSAGES_RECEIVED = Counter("handoff_messages_received", "User messages received on any channel.")
ESCALATIONS_CREATED = Counter(
    "handoff_escalations_created", "Conversations handed to humans.", ["platform"]
)
HANDBACKS = Counter("handoff_handbacks", "Conversations handed back to the AI.", ["reason"])
REQUESTS_LIMITED = Counter(
    "handoff_requests_rate_limited", "Requests refused by a rate limit (429).", ["limit"]
)
