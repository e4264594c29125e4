"""Helpdesk connectors, one module per platform behind the `Helpdesk` protocol.

The built-in inbox (`native`) lives in the service's own database and needs no connector.
"""

from handoff.helpdesks.base import Helpdesk

HELPDESKS: dict[str, type[Helpdesk]] = {}

__all__ = ["HELPDESKS", "Helpdesk"]
