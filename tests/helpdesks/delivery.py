"""Webhooks as the service hands them to a connector, built from what a fake sent."""

from __future__ import annotations

from collections.abc import Mapping

from handoff.helpdesks import WebhookRequest

# The public URL the service gives a platform for its webhooks; vendors that sign the URL
# they called (HubSpot) sign this one.
WEBHOOK_URL = "https://handoff.example.com/api/v1/webhooks/int_1"


def delivered(body: bytes, headers: Mapping[str, str], *, url: str = WEBHOOK_URL) -> WebhookRequest:
    """Return the webhook a platform POSTs to `url` with this body and these headers."""
    return WebhookRequest(method="POST", url=url, headers=headers, body=body)
