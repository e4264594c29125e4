"""Helpdesk connectors, one module per platform behind the `Helpdesk` protocol.

The built-in inbox (`native`) lives in the service's own database and needs no connector.
"""

from handoff.helpdesks.base import Helpdesk, WebhookRequest
from handoff.helpdesks.freshdesk import FreshdeskHelpdesk
from handoff.helpdesks.help_scout import HelpScoutHelpdesk
from handoff.helpdesks.hubspot import HubSpotHelpdesk
from handoff.helpdesks.intercom import IntercomHelpdesk
from handoff.helpdesks.salesforce import SalesforceHelpdesk
from handoff.helpdesks.webhook import WebhookHelpdesk
from handoff.helpdesks.zendesk import ZendeskHelpdesk
from handoff.helpdesks.zoho_desk import ZohoDeskHelpdesk

HELPDESKS: dict[str, type[Helpdesk]] = {
    WebhookHelpdesk.platform: WebhookHelpdesk,
    FreshdeskHelpdesk.platform: FreshdeskHelpdesk,
    HelpScoutHelpdesk.platform: HelpScoutHelpdesk,
    HubSpotHelpdesk.platform: HubSpotHelpdesk,
    IntercomHelpdesk.platform: IntercomHelpdesk,
    SalesforceHelpdesk.platform: SalesforceHelpdesk,
    ZendeskHelpdesk.platform: ZendeskHelpdesk,
    ZohoDeskHelpdesk.platform: ZohoDeskHelpdesk,
}

__all__ = ["HELPDESKS", "Helpdesk", "WebhookRequest"]
