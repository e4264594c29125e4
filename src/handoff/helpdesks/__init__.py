"""Helpdesk connectors, one module per platform behind the `Helpdesk` protocol.

The built-in inbox (`native`) lives in the service's own database and needs no connector.
"""

from handoff.helpdesks.base import Helpdesk
from handoff.helpdesks.webhook import WebhookHelpdesk

HELPDESKS: dict[str, type[Helpdesk]] = {
    WebhookHelpdesk.platform: WebhookHelpdesk,
}

__all__ = ["HELPDESKS", "Helpdesk"]
