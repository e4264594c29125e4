"""The contract every helpdesk connector keeps, run against each platform's fake.

The per-platform test files cover each vendor's quirks; these cases say what the service relies
on from any connector, so a new platform is held to them by being registered. Where platforms
differ in what they can do, the case runs over the platforms a table here names, and the others
are checked to behave as that table says.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from handoff.domain import (
    Channel,
    Contact,
    Message,
    Reason,
    Role,
    TicketEvent,
    TicketEventKind,
    TicketPacket,
    TicketRef,
)
from handoff.helpdesks import HELPDESKS, Helpdesk
from handoff.helpdesks.errors import BadSignature, InvalidCredentials
from tests.helpdesks.delivery import WEBHOOK_URL, delivered
from tests.helpdesks.harness import HARNESSES, Harness, Signed

PLATFORMS = sorted(HELPDESKS)
AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ANN = Contact(name="Ann Lee", email="ann.lee@example.com")
FOLLOW_UP = "any news about parcel 4471?"
REPLY = "Hi Ann, I found parcel 4471; it ships today."

# The form field each platform checks on every call: spoiling it must read as bad credentials.
CHECKED_SECRET = {
    "freshdesk": "api_key",
    "help_scout": "app_secret",
    "hubspot": "access_token",
    "intercom": "access_token",
    "salesforce": "client_secret",
    "webhook": "signing_secret",
    "zendesk": "api_token",
    "zoho_desk": "refresh_token",
}

# Platforms whose webhook signature covers a time, so a delivery replayed later is refused.
# The others (a shared token, or a signature of the body alone) cannot tell a replay: their
# redeliveries are dropped by event id when applied.
SIGNS_A_TIME = ["hubspot", "intercom", "webhook", "zendesk", "zoho_desk"]
SIGNS_NO_TIME = sorted(set(PLATFORMS) - set(SIGNS_A_TIME))
A_DAY_LATER = 24 * 3600


@dataclasses.dataclass
class Connected:
    """A connector set up as the service sets it up, and the harness playing its platform."""

    harness: Harness
    connector: Helpdesk


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def build(platform: str, form: dict[str, Any], http: httpx.AsyncClient, secret: str) -> Helpdesk:
    cls = HELPDESKS[platform]
    return cls(cls.credentials_model.model_validate(form), http=http, webhook_secret=secret)


async def connect(harness: Harness, http: httpx.AsyncClient) -> Helpdesk:
    """Connect as the admin does: the form, the setup steps, then what the platform gave."""
    # The service generates a webhook secret per integration; some setup steps show it.
    secret = secrets.token_urlsafe(24)
    connector = build(harness.platform, harness.credentials(), http, secret)
    shown = {"webhook_url": WEBHOOK_URL, "webhook_setup": connector.webhook_setup(WEBHOOK_URL)}
    again = harness.after_connect(shown)
    if again is not None:
        connector = build(harness.platform, again, http, secret)
    # The service checks the credentials before it saves them; some platforms are set up
    # then (HubSpot gets the property that makes ticket creation idempotent).
    await connector.verify_credentials()
    return connector


def platform_fixture(platforms: list[str]) -> Any:
    """A fixture yielding each of `platforms` connected to its running fake."""

    @pytest.fixture(params=platforms)
    async def connected(
        request: pytest.FixtureRequest, http: httpx.AsyncClient
    ) -> AsyncIterator[Connected]:
        harness = HARNESSES[request.param]()
        with harness.fake():
            yield Connected(harness, await connect(harness, http))

    return connected


connected = platform_fixture(PLATFORMS)
stamped = platform_fixture(SIGNS_A_TIME)
unstamped = platform_fixture(SIGNS_NO_TIME)


def packet() -> TicketPacket:
    return TicketPacket(
        idempotency_key=f"handoff-{secrets.token_hex(16)}",
        subject="Parcel 4471 never arrived",
        summary="The parcel is missing; the customer asked for a person.",
        reasons=(Reason.EXPLICIT_REQUEST,),
        transcript=(
            Message(Role.USER, "I want a human please, my parcel 4471 never arrived", AT),
            Message(Role.ASSISTANT, "I'm connecting you with our team.", AT),
        ),
        contact=ANN,
        channel=Channel.WIDGET,
        conversation_url="https://handoff.example/c/42",
    )


async def receive(connector: Helpdesk, signed: Signed) -> list[TicketEvent]:
    """Verify, then read, a webhook as the service does."""
    request = delivered(*signed)
    connector.verify_webhook(request)
    return await connector.parse_webhook(request)


async def open_ticket(connected: Connected) -> TicketRef:
    return await connected.connector.create_ticket(packet())


def test_registry_and_harnesses_name_the_same_platforms() -> None:
    assert set(HARNESSES) == set(HELPDESKS) == set(CHECKED_SECRET)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_connector_describes_itself(platform: str) -> None:
    cls = HELPDESKS[platform]
    assert cls.platform == platform
    assert cls.title.strip() and cls.description.strip()
    assert cls.max_body_chars > 0
    assert issubclass(cls.credentials_model, BaseModel)


async def test_good_credentials_verify_again_once_connected(connected: Connected) -> None:
    await connected.connector.verify_credentials()


async def test_a_wrong_secret_is_invalid_credentials(
    connected: Connected, http: httpx.AsyncClient
) -> None:
    harness = connected.harness
    field = CHECKED_SECRET[harness.platform]
    form = harness.credentials()
    spoiled = build(harness.platform, {**form, field: f"wrong-{form[field]}"}, http, "unused")
    with pytest.raises(InvalidCredentials):
        await spoiled.verify_credentials()


async def test_create_ticket_lands_once_however_often_it_is_retried(
    connected: Connected,
) -> None:
    escalation = packet()
    first = await connected.connector.create_ticket(escalation)
    again = await connected.connector.create_ticket(escalation)
    assert isinstance(first, TicketRef) and first.id and first.url
    assert again.id == first.id
    assert connected.harness.ticket_ids() == [first.id]


async def test_add_message_reaches_the_ticket_as_the_customer(connected: Connected) -> None:
    ticket = await open_ticket(connected)
    await connected.connector.add_message(ticket, Message(Role.USER, FOLLOW_UP, AT), ANN)
    [added] = connected.harness.customer_messages(ticket.id)
    assert FOLLOW_UP in added


async def test_a_signed_agent_reply_is_read(connected: Connected) -> None:
    ticket = await open_ticket(connected)
    [event] = await receive(connected.connector, connected.harness.agent_reply(ticket.id, REPLY))
    assert (event.kind, event.ticket_id) == (TicketEventKind.REPLY, ticket.id)
    assert REPLY in event.text


async def test_a_signed_solve_is_read(connected: Connected) -> None:
    ticket = await open_ticket(connected)
    [event] = await receive(connected.connector, connected.harness.solved(ticket.id))
    assert (event.kind, event.ticket_id) == (TicketEventKind.SOLVED, ticket.id)


async def test_a_forged_webhook_is_refused(connected: Connected) -> None:
    ticket = await open_ticket(connected)
    with pytest.raises(BadSignature):
        await receive(connected.connector, connected.harness.forged_reply(ticket.id, REPLY))


async def test_an_unsigned_webhook_is_refused(connected: Connected) -> None:
    ticket = await open_ticket(connected)
    body, _ = connected.harness.agent_reply(ticket.id, REPLY)
    with pytest.raises(BadSignature):
        await receive(connected.connector, (body, {"Content-Type": "application/json"}))


async def test_a_signed_webhook_replayed_a_day_later_is_refused(stamped: Connected) -> None:
    ticket = await open_ticket(stamped)
    request = delivered(*stamped.harness.agent_reply(ticket.id, REPLY))
    with pytest.raises(BadSignature):
        stamped.connector.verify_webhook(request, now=time.time() + A_DAY_LATER)


async def test_without_a_signed_time_a_late_delivery_still_verifies(unstamped: Connected) -> None:
    ticket = await open_ticket(unstamped)
    request = delivered(*unstamped.harness.agent_reply(ticket.id, REPLY))
    unstamped.connector.verify_webhook(request, now=time.time() + A_DAY_LATER)
