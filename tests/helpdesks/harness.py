"""Each helpdesk platform's fake, connect form and webhooks, as tests drive them.

A `Harness` plays one platform: it starts its fake, fills in the connect form, reads the setup
steps as the admin would (some platforms make the admin copy a secret from them), finds what
reached the fake and signs webhooks the way the platform does. The end-to-end tests run the
service against it; the connector contract runs each connector against it.
"""

from __future__ import annotations

import re
import secrets
from contextlib import AbstractContextManager
from typing import Any, ClassVar
from urllib.parse import urlsplit

from tests.fakes.freshdesk import FakeFreshdesk
from tests.fakes.help_scout import FakeHelpScout
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.intercom import FakeIntercom
from tests.fakes.salesforce import FakeSalesforce
from tests.fakes.webhook_receiver import FakeReceiver, Ticket
from tests.fakes.zendesk import FakeZendesk
from tests.fakes.zoho_desk import FakeZohoDesk, new_key

Signed = tuple[bytes, dict[str, str]]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class Harness:
    """One platform's fake, its connect form and its webhooks, as the test needs them."""

    platform: ClassVar[str]
    agent_name: ClassVar[str]  # the name the platform's agent replies under

    def __init__(self) -> None:
        self.webhook_url = ""

    def fake(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def credentials(self) -> dict[str, Any]:
        """The connect form as the admin fills it in first."""
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Values the integration's JSON must never contain."""
        raise NotImplementedError

    def after_connect(self, integration: dict[str, Any]) -> dict[str, Any] | None:
        """Read the setup steps; return the credentials to reconnect with, if any."""
        self.webhook_url = integration["webhook_url"]
        return None

    def shows_webhook_url(self, steps: str) -> bool:
        """Whether the setup steps tell the admin where to send webhooks."""
        return self.webhook_url in steps

    def ticket_ids(self) -> list[str]:
        raise NotImplementedError

    def ticket_text(self, ticket_id: str) -> str:
        """The ticket's body as the platform stores it."""
        raise NotImplementedError

    def requester_email(self, ticket_id: str) -> str | None:
        raise NotImplementedError

    def customer_messages(self, ticket_id: str) -> list[str]:
        """What was added to the ticket after its creation, as the customer."""
        raise NotImplementedError

    def agent_reply(self, ticket_id: str, text: str) -> Signed:
        raise NotImplementedError

    def forged_reply(self, ticket_id: str, text: str) -> Signed:
        raise NotImplementedError

    def solved(self, ticket_id: str) -> Signed:
        raise NotImplementedError

    def ignored(self, ticket_id: str) -> list[Signed]:
        """Genuine webhooks that must not reach the visitor: notes, the customer's echoes."""
        raise NotImplementedError


class ZendeskHarness(Harness):
    platform = "zendesk"
    agent_name = "Dana"

    def __init__(self) -> None:
        super().__init__()
        self.zd = FakeZendesk()
        # Zendesk generates the signing secret when the admin creates the webhook, which
        # needs our webhook URL: connect first, then reconnect with the secret.
        self.signing_secret = f"zd-sign-{secrets.token_urlsafe(16)}"

    def fake(self) -> AbstractContextManager[Any]:
        return self.zd

    def credentials(self) -> dict[str, Any]:
        return {
            "subdomain": self.zd.subdomain,
            "email": self.zd.email,
            "api_token": self.zd.api_token,
            "base_url": self.zd.base_url,
        }

    def secrets(self) -> list[str]:
        return [self.zd.api_token, self.signing_secret]

    def after_connect(self, integration: dict[str, Any]) -> dict[str, Any] | None:
        super().after_connect(integration)
        return {**self.credentials(), "webhook_signing_secret": self.signing_secret}

    def ticket_ids(self) -> list[str]:
        return [str(t) for t in self.zd.tickets]

    def ticket_text(self, ticket_id: str) -> str:
        return str(self.zd.comments[int(ticket_id)][0]["html_body"])

    def requester_email(self, ticket_id: str) -> str | None:
        ticket = self.zd.tickets[int(ticket_id)]
        return _text(self.zd.users[ticket["requester_id"]]["email"])

    def customer_messages(self, ticket_id: str) -> list[str]:
        ticket = self.zd.tickets[int(ticket_id)]
        return [
            c["body"]
            for c in self.zd.comments[int(ticket_id)][1:]
            if c["author_id"] == ticket["requester_id"] and c["public"]
        ]

    def agent_reply(self, ticket_id: str, text: str) -> Signed:
        event = self.zd.agent_reply(ticket_id, text, author_name=self.agent_name)
        return self.zd.signed(event, self.signing_secret)

    def forged_reply(self, ticket_id: str, text: str) -> Signed:
        return self.zd.signed(self.zd.agent_reply(ticket_id, text), "x" * 24)

    def solved(self, ticket_id: str) -> Signed:
        return self.zd.signed(self.zd.status_changed(ticket_id, "solved"), self.signing_secret)

    def ignored(self, ticket_id: str) -> list[Signed]:
        return [
            self.zd.signed(self.zd.internal_note(ticket_id, "internal only"), self.signing_secret),
            self.zd.signed(self.zd.requester_comment(ticket_id, "echo"), self.signing_secret),
        ]


class FreshdeskHarness(Harness):
    platform = "freshdesk"
    agent_name = "Dana Agent"

    def __init__(self) -> None:
        super().__init__()
        self.fd = FakeFreshdesk(agent_name=self.agent_name)
        self.token: str | None = None

    def fake(self) -> AbstractContextManager[Any]:
        return self.fd

    def credentials(self) -> dict[str, Any]:
        return {"domain": "acme", "api_key": self.fd.api_key, "base_url": self.fd.base_url}

    def secrets(self) -> list[str]:
        return [self.fd.api_key]

    def after_connect(self, integration: dict[str, Any]) -> dict[str, Any] | None:
        super().after_connect(integration)
        # Freshdesk signs nothing: the admin copies our generated secret from the setup
        # steps into the automation rule's custom header.
        steps = "\n".join(integration["webhook_setup"])
        found = re.search(r"X-Handoff-Token:\s*(\S+)", steps)
        assert found, f"the setup steps do not show the webhook secret: {steps}"
        self.token = found.group(1)
        return None

    def ticket_ids(self) -> list[str]:
        return [str(t) for t in self.fd.tickets]

    def ticket_text(self, ticket_id: str) -> str:
        return str(self.fd.tickets[int(ticket_id)].data["description"])

    def requester_email(self, ticket_id: str) -> str | None:
        requester = self.fd.tickets[int(ticket_id)].data["requester_id"]
        return _text(self.fd.contacts[requester].get("email"))

    def customer_messages(self, ticket_id: str) -> list[str]:
        ticket = self.fd.tickets[int(ticket_id)]
        requester = ticket.data["requester_id"]
        return [
            n.body for n in ticket.notes if n.incoming and not n.private and n.user_id == requester
        ]

    def agent_reply(self, ticket_id: str, text: str) -> Signed:
        return self.fd.webhook(ticket_id, self.token, kind="agent_reply", text=text)

    def forged_reply(self, ticket_id: str, text: str) -> Signed:
        return self.fd.webhook(ticket_id, "x" * 32, kind="agent_reply", text=text)

    def solved(self, ticket_id: str) -> Signed:
        return self.fd.webhook(ticket_id, self.token, kind="resolved")

    def ignored(self, ticket_id: str) -> list[Signed]:
        return [
            self.fd.webhook(ticket_id, self.token, kind="private_note"),
            self.fd.webhook(ticket_id, self.token, kind="customer_echo", text="echo"),
        ]


class IntercomHarness(Harness):
    platform = "intercom"
    agent_name = "Sam Support"

    def __init__(self) -> None:
        super().__init__()
        self.ic = FakeIntercom()

    def fake(self) -> AbstractContextManager[Any]:
        return self.ic

    def credentials(self) -> dict[str, Any]:
        return {
            "access_token": self.ic.token,
            "ticket_type_id": "88",  # the fake's one live Customer ticket type
            "client_secret": self.ic.client_secret,
            "base_url": self.ic.base_url,
        }

    def secrets(self) -> list[str]:
        return [self.ic.token, self.ic.client_secret]

    def ticket_ids(self) -> list[str]:
        return list(self.ic.state.tickets)

    def ticket_text(self, ticket_id: str) -> str:
        attributes = self.ic.state.tickets[ticket_id]["ticket_attributes"]
        return str(attributes["_default_description_"])

    def requester_email(self, ticket_id: str) -> str | None:
        contacts = self.ic.state.tickets[ticket_id]["contacts"]["contacts"]
        assert len(contacts) == 1, contacts
        return _text(self.ic.state.contacts[contacts[0]["id"]]["email"])

    def customer_messages(self, ticket_id: str) -> list[str]:
        contact_id = self.ic.state.tickets[ticket_id]["contacts"]["contacts"][0]["id"]
        return [
            p["body"]
            for p in self.ic.state.tickets[ticket_id]["_parts"]
            if p["part_type"] == "comment"
            and p["author"]["type"] == "user"
            and p["author"]["id"] == contact_id
        ]

    def agent_reply(self, ticket_id: str, text: str) -> Signed:
        return self.ic.admin_reply(ticket_id, f"<p>{text}</p>", admin_name=self.agent_name)

    def forged_reply(self, ticket_id: str, text: str) -> Signed:
        return self.ic.forged(ticket_id, f"<p>{text}</p>")

    def solved(self, ticket_id: str) -> Signed:
        return self.ic.resolve(ticket_id)

    def ignored(self, ticket_id: str) -> list[Signed]:
        return [
            self.ic.admin_note(ticket_id, "<p>internal only</p>"),
            self.ic.user_reply_echo(ticket_id),
        ]


class HubSpotHarness(Harness):
    platform = "hubspot"
    agent_name = "Sam Agent"  # the fake's Help Desk sender

    def __init__(self) -> None:
        super().__init__()
        self.hs = FakeHubSpot()

    def fake(self) -> AbstractContextManager[Any]:
        return self.hs

    def credentials(self) -> dict[str, Any]:
        return {
            "access_token": self.hs.token,
            "client_secret": self.hs.client_secret,
            "base_url": self.hs.base_url,
        }

    def secrets(self) -> list[str]:
        return [self.hs.token, self.hs.client_secret]

    def ticket_ids(self) -> list[str]:
        return list(self.hs.tickets)

    def ticket_text(self, ticket_id: str) -> str:
        return str(self.hs.tickets[ticket_id]["properties"]["content"])

    def requester_email(self, ticket_id: str) -> str | None:
        contacts = self.hs.associated("tickets", ticket_id, "contacts")
        assert len(contacts) == 1, contacts
        return _text(self.hs.contacts[contacts[0][0]]["properties"].get("email"))

    def customer_messages(self, ticket_id: str) -> list[str]:
        # The CRM has no customer comment: a follow-up is a note on the ticket saying so.
        notes = [
            a[1]
            for a in self.hs.associations
            if a[0] == "notes" and a[2] == "tickets" and a[3] == ticket_id
        ]
        return [self.hs.notes[n]["properties"]["hs_note_body"] for n in notes]

    def agent_reply(self, ticket_id: str, text: str) -> Signed:
        return self.hs.signed_webhook([self.hs.agent_reply(ticket_id, text)], url=self.webhook_url)

    def forged_reply(self, ticket_id: str, text: str) -> Signed:
        event = self.hs.agent_reply(ticket_id, text)
        return self.hs.signed_webhook([event], url=self.webhook_url, secret="x" * 24)

    def solved(self, ticket_id: str) -> Signed:
        return self.hs.signed_webhook([self.hs.stage_change(ticket_id, "4")], url=self.webhook_url)

    def ignored(self, ticket_id: str) -> list[Signed]:
        customer = self.hs.agent_reply(ticket_id, "echo", direction="INCOMING")
        reopened = self.hs.stage_change(ticket_id, "2")  # an open stage
        return [self.hs.signed_webhook([customer, reopened], url=self.webhook_url)]


class SalesforceHarness(Harness):
    platform = "salesforce"
    agent_name = "Dana Agent"

    def __init__(self) -> None:
        super().__init__()
        self.sf = FakeSalesforce()
        # A Flow callout cannot sign: the admin chooses a token, types it into handoff's form
        # and into the External Credential that sends it as X-Handoff-Token.
        self.token = f"sf-token-{secrets.token_hex(16)}"

    def fake(self) -> AbstractContextManager[Any]:
        return self.sf

    def credentials(self) -> dict[str, Any]:
        return {
            "instance_url": "https://acme.my.salesforce.com",
            "client_id": self.sf.client_id,
            "client_secret": self.sf.client_secret,
            "webhook_token": self.token,
            "base_url": self.sf.base_url,
        }

    def secrets(self) -> list[str]:
        return [self.sf.client_secret, self.token]

    def shows_webhook_url(self, steps: str) -> bool:
        # A Flow callout names a Named Credential (scheme and host) plus a URL path.
        url = urlsplit(self.webhook_url)
        named = re.search(r"Named Credentials → New: label 'handoff', URL (\S+),", steps)
        path = re.search(r"URL path (\S+),", steps)
        if named is None or path is None:
            return False
        return (named[1], path[1]) == (f"{url.scheme}://{url.netloc}", url.path)

    def ticket_ids(self) -> list[str]:
        return list(self.sf.cases)

    def ticket_text(self, ticket_id: str) -> str:
        return str(self.sf.cases[ticket_id]["Description"])

    def requester_email(self, ticket_id: str) -> str | None:
        return _text(self.sf.cases[ticket_id].get("SuppliedEmail"))

    def customer_messages(self, ticket_id: str) -> list[str]:
        # The API writes comments as the integration user only: the customer's are prefixed.
        return [
            str(c["CommentBody"])
            for c in self.sf.comments_on(ticket_id)
            if c["IsPublished"] and str(c["CommentBody"]).startswith("Customer: ")
        ]

    def agent_reply(self, ticket_id: str, text: str) -> Signed:
        comment = self.sf.agent_comment(ticket_id, text, author=self.agent_name)
        return self.sf.flow_request(comment, self.token)

    def forged_reply(self, ticket_id: str, text: str) -> Signed:
        return self.sf.flow_request(self.sf.agent_comment(ticket_id, text), "x" * 32)

    def solved(self, ticket_id: str) -> Signed:
        return self.sf.flow_request(self.sf.close_case(ticket_id), self.token)

    def ignored(self, ticket_id: str) -> list[Signed]:
        (ours,) = self.customer_messages(ticket_id)  # the Flow also fires for our follow-up
        return [
            self.sf.flow_request(
                self.sf.agent_comment(ticket_id, "internal only", published=False), self.token
            ),
            self.sf.flow_request(self.sf.customer_comment(ticket_id, ours), self.token),
            self.sf.flow_request(
                self.sf.customer_comment(ticket_id, "echo", user_type="PowerCustomerSuccess"),
                self.token,
            ),
        ]


class ZohoDeskHarness(Harness):
    platform = "zoho_desk"
    agent_name = "Dana Zoho"

    def __init__(self) -> None:
        super().__init__()
        self.zd = FakeZohoDesk()
        # The connector caches signing keys per URL for the process: a kid of this fake's own
        # keeps a port reused by a later fake from matching a stale key.
        self.zd.kid = f"zdesk-{secrets.token_hex(4)}"

    def fake(self) -> AbstractContextManager[Any]:
        return self.zd

    def credentials(self) -> dict[str, Any]:
        return {
            "client_id": self.zd.client_id,
            "client_secret": self.zd.client_secret,
            "refresh_token": self.zd.refresh_token,
            "org_id": self.zd.org_id,
            "department_id": self.zd.department_id,
            "base_url": self.zd.base_url,
            "accounts_url": self.zd.base_url,
        }

    def secrets(self) -> list[str]:
        return [self.zd.client_secret, self.zd.refresh_token]

    def after_connect(self, integration: dict[str, Any]) -> dict[str, Any] | None:
        super().after_connect(integration)
        # Zoho signs with its own keys (nothing to paste); the admin may come back with the
        # webhook's id so that only this webhook is accepted.
        return {**self.credentials(), "webhook_id": self.zd.webhook_id}

    def ticket_ids(self) -> list[str]:
        return list(self.zd.tickets)

    def ticket_text(self, ticket_id: str) -> str:
        return str(self.zd.tickets[ticket_id]["description"])

    def requester_email(self, ticket_id: str) -> str | None:
        contact = self.zd.contacts[self.zd.tickets[ticket_id]["contactId"]]
        return _text(contact.get("email"))

    def customer_messages(self, ticket_id: str) -> list[str]:
        # The API cannot write an inbound thread as the contact: a public comment names them.
        return [str(c["content"]) for c in self.zd.comments[ticket_id] if c["isPublic"]]

    def agent_reply(self, ticket_id: str, text: str) -> Signed:
        return self.zd.signed([self.zd.agent_reply(ticket_id, f"<p>{text}</p>", self.agent_name)])

    def forged_reply(self, ticket_id: str, text: str) -> Signed:
        return self.zd.signed([self.zd.agent_reply(ticket_id, f"<p>{text}</p>")], key=new_key())

    def solved(self, ticket_id: str) -> Signed:
        return self.zd.signed([self.zd.closed(ticket_id)])

    def ignored(self, ticket_id: str) -> list[Signed]:
        return [
            self.zd.signed([self.zd.private_thread(ticket_id, "<p>internal only</p>")]),
            self.zd.signed([self.zd.customer_thread(ticket_id, "<p>echo</p>")]),
        ]


class HelpScoutHarness(Harness):
    platform = "help_scout"
    agent_name = "Dana Scully"  # the fake's one user

    def __init__(self) -> None:
        super().__init__()
        self.hs = FakeHelpScout()
        self.secret: str | None = None

    def fake(self) -> AbstractContextManager[Any]:
        return self.hs

    def credentials(self) -> dict[str, Any]:
        return {
            "app_id": self.hs.app_id,
            "app_secret": self.hs.app_secret,
            "mailbox_id": self.hs.mailbox["id"],
            "base_url": self.hs.base_url,
        }

    def secrets(self) -> list[str]:
        return [self.hs.app_secret]

    def after_connect(self, integration: dict[str, Any]) -> dict[str, Any] | None:
        super().after_connect(integration)
        # Left empty in the form, the webhook's secret key is the one the setup steps show.
        steps = "\n".join(integration["webhook_setup"])
        found = re.search(r"Secret Key:\s*(\S+)", steps)
        assert found, f"the setup steps do not show the webhook secret: {steps}"
        self.secret = found.group(1)
        assert len(self.secret) <= 40, "Help Scout takes a secret key of 40 characters at most"
        return None

    def _signed(self, event: tuple[str, dict[str, Any]]) -> Signed:
        assert self.secret is not None
        return self.hs.signed(event, self.secret)

    def ticket_ids(self) -> list[str]:
        return [str(c) for c in self.hs.conversations]

    def ticket_text(self, ticket_id: str) -> str:
        return str(self.hs.threads[int(ticket_id)][0]["body"])

    def requester_email(self, ticket_id: str) -> str | None:
        customer = self.hs.conversations[int(ticket_id)]["customerId"]
        return _text(self.hs.customers[customer]["email"])

    def customer_messages(self, ticket_id: str) -> list[str]:
        customer = self.hs.conversations[int(ticket_id)]["customerId"]
        return [
            str(t["body"])
            for t in self.hs.threads[int(ticket_id)][1:]
            if t["type"] == "customer" and t["createdBy"]["id"] == customer
        ]

    def agent_reply(self, ticket_id: str, text: str) -> Signed:
        return self._signed(self.hs.agent_reply(ticket_id, f"<p>{text}</p>"))

    def forged_reply(self, ticket_id: str, text: str) -> Signed:
        return self.hs.forged(self.hs.agent_reply(ticket_id, f"<p>{text}</p>"))

    def solved(self, ticket_id: str) -> Signed:
        return self._signed(self.hs.status_changed(ticket_id, "closed"))

    def ignored(self, ticket_id: str) -> list[Signed]:
        return [
            self._signed(self.hs.note(ticket_id, "<p>internal only</p>")),
            self._signed(self.hs.customer_reply(ticket_id, "echo")),
        ]


class WebhookHarness(Harness):
    platform = "webhook"
    agent_name = "Sam"

    def __init__(self) -> None:
        super().__init__()
        # The admin chooses the signing secret and types it into both tools.
        self.secret = f"wh-secret-{secrets.token_hex(16)}"
        self.receiver = FakeReceiver(self.secret)

    def fake(self) -> AbstractContextManager[Any]:
        return self.receiver

    def credentials(self) -> dict[str, Any]:
        return {"url": self.receiver.url, "signing_secret": self.secret}

    def secrets(self) -> list[str]:
        return [self.secret]

    def ticket_ids(self) -> list[str]:
        return [t.id for t in self.receiver.tickets.values()]

    def _ticket(self, ticket_id: str) -> Ticket:
        return next(t for t in self.receiver.tickets.values() if t.id == ticket_id)

    def ticket_text(self, ticket_id: str) -> str:
        return str(self._ticket(ticket_id).packet["body"])

    def requester_email(self, ticket_id: str) -> str | None:
        return _text(self._ticket(ticket_id).packet["contact"]["email"])

    def customer_messages(self, ticket_id: str) -> list[str]:
        return [str(m["text"]) for m in self._ticket(ticket_id).messages]

    def _event(self, ticket_id: str, kind: str, text: str = "") -> dict[str, Any]:
        return {
            "event_id": f"{kind}-{secrets.token_hex(4)}",
            "ticket_id": ticket_id,
            "type": kind,
            "text": text,
            "author": {"name": self.agent_name},
        }

    def agent_reply(self, ticket_id: str, text: str) -> Signed:
        return self.receiver.signed(self._event(ticket_id, "reply", text))

    def forged_reply(self, ticket_id: str, text: str) -> Signed:
        return self.receiver.signed(self._event(ticket_id, "reply", text), secret="x" * 32)

    def solved(self, ticket_id: str) -> Signed:
        return self.receiver.signed(self._event(ticket_id, "solved"))

    def ignored(self, ticket_id: str) -> list[Signed]:
        return [self.receiver.signed(self._event(ticket_id, "note", "internal only"))]


HARNESSES: dict[str, type[Harness]] = {
    h.platform: h
    for h in (
        ZendeskHarness,
        FreshdeskHarness,
        IntercomHarness,
        HubSpotHarness,
        SalesforceHarness,
        ZohoDeskHarness,
        HelpScoutHarness,
        WebhookHarness,
    )
}
