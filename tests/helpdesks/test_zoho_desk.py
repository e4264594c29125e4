"""The Zoho Desk connector end to end against a faithful fake Zoho Desk over real HTTP."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from handoff.domain import (
    Channel,
    Contact,
    Message,
    Priority,
    Reason,
    Role,
    TicketEventKind,
    TicketPacket,
)
from handoff.helpdesks import zoho_desk
from handoff.helpdesks.errors import (
    BadSignature,
    InvalidCredentials,
    RateLimited,
    Rejected,
    Unavailable,
)
from handoff.helpdesks.oauth import MemoryTokens
from handoff.helpdesks.zoho_desk import Credentials, ZohoDeskHelpdesk
from tests.fakes.zoho_desk import FakeZohoDesk, new_key
from tests.helpdesks.delivery import delivered

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeZohoDesk]:
    zoho_desk._jwks.clear()
    with FakeZohoDesk() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


def credentials(fake: FakeZohoDesk, **changes: object) -> Credentials:
    fields: dict[str, object] = {
        "data_center": "eu",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "refresh_token": fake.refresh_token,
        "org_id": fake.org_id,
        "department_id": fake.department_id,
        "webhook_id": fake.webhook_id,
        "base_url": fake.base_url,
        "accounts_url": fake.base_url,
        **changes,
    }
    return Credentials.model_validate(fields)


@pytest.fixture
def zoho(fake: FakeZohoDesk, http: httpx.AsyncClient) -> ZohoDeskHelpdesk:
    return ZohoDeskHelpdesk(credentials(fake), http=http, webhook_secret="unused")


def packet(key: str = "esc-0001", **changes: object) -> TicketPacket:
    base = TicketPacket(
        idempotency_key=key,
        subject="Order #123 never arrived",
        summary="Customer's order is missing; asked for a human.",
        reasons=(Reason.EXPLICIT_REQUEST,),
        transcript=[
            Message(Role.USER, "My order #123 never arrived.", T0),
            Message(Role.ASSISTANT, "Let me check.", T0 + timedelta(seconds=5)),
            Message(Role.USER, "<script>alert('x')</script> a person please", T0),
        ],
        contact=Contact(name="Ann Lee", email="ann@example.com", phone="+15551234567"),
        channel=Channel.WIDGET,
        conversation_url="https://handoff.example/c/42",
        priority=Priority.HIGH,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- connect -------------------------------------------------------------------------------


async def test_verify_credentials_and_departments(zoho: ZohoDeskHelpdesk) -> None:
    await zoho.verify_credentials()
    assert [d["name"] for d in await zoho.departments()] == ["Support", "Billing"]


async def test_options_lists_the_live_enabled_departments(
    fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk, http: httpx.AsyncClient
) -> None:
    fake.departments += [
        {"id": "4000000007003", "name": "Returns", "isEnabled": True},
        {"id": "4000000007004", "name": "Closed dept", "isEnabled": False},
    ]
    offered = await zoho.options()

    assert list(offered) == ["department_id"]
    assert "department_id" in Credentials.model_fields
    assert [(c.value, c.label) for c in offered["department_id"]] == [
        (fake.department_id, "Support"),
        ("4000000007002", "Billing"),
        ("4000000007003", "Returns"),
    ]

    wrong = ZohoDeskHelpdesk(credentials(fake, refresh_token="nope"), http=http, webhook_secret="")
    with pytest.raises(InvalidCredentials):
        await wrong.options()


async def test_bad_refresh_token_is_invalid_credentials(
    fake: FakeZohoDesk, http: httpx.AsyncClient
) -> None:
    wrong = ZohoDeskHelpdesk(credentials(fake, refresh_token="nope"), http=http, webhook_secret="")
    with pytest.raises(InvalidCredentials, match="invalid_code"):
        await wrong.verify_credentials()


async def test_unknown_department_is_refused(fake: FakeZohoDesk, http: httpx.AsyncClient) -> None:
    other = ZohoDeskHelpdesk(credentials(fake, department_id="1"), http=http, webhook_secret="")
    with pytest.raises(InvalidCredentials, match="department"):
        await other.verify_credentials()


def test_data_center_sets_the_hosts() -> None:
    creds = Credentials(
        data_center="ca",
        client_id="c",
        client_secret="sekrit-1",
        refresh_token="sekrit-2",
        org_id="1",
        department_id="2",
    )
    connector = ZohoDeskHelpdesk(creds, http=httpx.AsyncClient(), webhook_secret="")
    assert (connector._desk, connector._accounts) == (
        "https://desk.zohocloud.ca",
        "https://accounts.zohocloud.ca",
    )
    assert "sekrit" not in repr(creds)


# --- create --------------------------------------------------------------------------------


async def test_create_ticket_sends_the_full_packet(
    fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk
) -> None:
    ref = await zoho.create_ticket(packet())

    ticket = fake.tickets[ref.id]
    assert ref.url == ticket["webUrl"]
    assert ticket["cf"] == {"cf_handoff_conversation_id": "esc-0001"}
    assert (ticket["priority"], ticket["channel"], ticket["departmentId"]) == (
        "High",
        "Chat",
        fake.department_id,
    )
    assert (ticket["email"], ticket["phone"]) == ("ann@example.com", "+15551234567")
    contact = fake.contacts[ticket["contactId"]]
    assert (contact["firstName"], contact["lastName"]) == ("Ann", "Lee")
    assert "&lt;script&gt;" in ticket["description"] and "<script>" not in ticket["description"]
    [create] = fake.requests_to("POST", "/api/v1/tickets")
    assert create["headers"]["orgid"] == fake.org_id
    assert create["headers"]["authorization"].startswith("Zoho-oauthtoken ")


async def test_existing_contact_is_reused(fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk) -> None:
    first = await zoho.create_ticket(packet("esc-a"))
    second = await zoho.create_ticket(packet("esc-b"))
    assert fake.tickets[first.id]["contactId"] == fake.tickets[second.id]["contactId"]
    assert len(fake.contacts) == 1


async def test_retry_after_a_lost_response_creates_one_ticket(
    fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk
) -> None:
    fake.drop_next_create(stall_seconds=5)
    with pytest.raises(Unavailable, match="did not answer in time"):
        await zoho.create_ticket(packet())
    assert len(fake.tickets) == 1  # it did reach Zoho

    ref = await zoho.create_ticket(packet())

    assert list(fake.tickets) == [ref.id]
    assert len(fake.requests_to("POST", "/api/v1/tickets")) == 1


async def test_expired_token_is_refreshed_once(fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk) -> None:
    await zoho.verify_credentials()
    assert fake.token_grants == 1
    await zoho.create_ticket(packet("esc-a"))
    assert fake.token_grants == 1  # cached

    fake.expire_tokens()
    await zoho.create_ticket(packet("esc-b"))

    assert fake.token_grants == 2
    assert len(fake.tickets) == 2


async def test_connectors_sharing_a_token_store_share_the_token(
    fake: FakeZohoDesk, http: httpx.AsyncClient
) -> None:
    # Each outbox job builds its own connector; the integration's store keeps one token.
    tokens = MemoryTokens()
    for _ in range(3):
        connector = ZohoDeskHelpdesk(credentials(fake), http=http, webhook_secret="", tokens=tokens)
        await connector.departments()
    assert fake.token_grants == 1


async def test_rate_limit_then_success(fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk) -> None:
    fake.rate_limit(1, retry_after=30)
    with pytest.raises(RateLimited) as caught:
        await zoho.create_ticket(packet())
    assert caught.value.retry_after == 30.0 and caught.value.retryable

    ref = await zoho.create_ticket(packet())
    assert ref.id in fake.tickets


async def test_validation_error_is_rejected_readably(
    fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk
) -> None:
    with pytest.raises(Rejected) as caught:
        await zoho.create_ticket(packet(contact=Contact(name="Bob", email="bob-at-example")))
    assert caught.value.status == 422
    assert (
        caught.value.detail
        == "Zoho Desk: HTTP 422 Unprocessable Entity (INVALID_DATA, email, invalid)"
    )
    assert "bob-at-example" not in caught.value.detail  # Zoho's prose stays out of errors
    assert fake.tickets == {}


# --- follow-ups ----------------------------------------------------------------------------


async def test_follow_up_is_a_public_comment_naming_the_customer(
    fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk
) -> None:
    ref = await zoho.create_ticket(packet())
    await zoho.add_message(ref, Message(Role.USER, "Any news? <b>hi</b>", T0), packet().contact)

    [comment] = fake.comments[ref.id]
    assert comment["isPublic"] is True and comment["contentType"] == "plainText"
    assert comment["content"] == "Ann Lee (customer) wrote:\nAny news? <b>hi</b>"


# --- webhooks ------------------------------------------------------------------------------


async def test_signed_agent_reply_becomes_a_reply(
    fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk
) -> None:
    tid = (await zoho.create_ticket(packet())).id
    delivery = fake.agent_reply(tid, "<div>We shipped a replacement.</div>", name="Dana")
    body, headers = fake.signed([delivery])

    zoho.verify_webhook(delivered(body, headers))  # keys not fetched yet: claims only
    [event] = await zoho.parse_webhook(delivered(body, headers))

    assert event.kind is TicketEventKind.REPLY
    assert (event.ticket_id, event.event_id) == (tid, f"thread:{delivery['payload']['id']}")
    assert (event.text, event.author_name) == ("We shipped a replacement.", "Dana")
    zoho.verify_webhook(delivered(body, headers))  # keys cached now: full check


async def test_private_thread_and_customer_echo_are_ignored(
    fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk
) -> None:
    tid = (await zoho.create_ticket(packet())).id
    deliveries = [fake.private_thread(tid, "VIP, refund"), fake.customer_thread(tid, "hi")]
    body, headers = fake.signed(deliveries)
    zoho.verify_webhook(delivered(body, headers))
    assert await zoho.parse_webhook(delivered(body, headers)) == []


async def test_forged_body_cannot_inject_text(fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk) -> None:
    tid = (await zoho.create_ticket(packet())).id
    delivery = fake.customer_thread(tid, "hi")
    delivery["payload"].update(direction="out", author={"type": "AGENT"}, content="pay me")
    body, headers = fake.signed([delivery])
    assert await zoho.parse_webhook(delivered(body, headers)) == []  # Zoho's own copy says "in"


async def test_closed_becomes_solved_once(fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk) -> None:
    tid = (await zoho.create_ticket(packet())).id
    body, headers = fake.signed([fake.closed(tid)])

    [event] = await zoho.parse_webhook(delivered(body, headers))

    assert (event.kind, event.ticket_id) == (TicketEventKind.SOLVED, tid)
    assert event.event_id.startswith(f"closed:{tid}:")
    assert await zoho.parse_webhook(delivered(body, headers)) == [event]  # a redelivery: same id
    reopened = fake.signed([fake.closed(tid, status="Open")])
    assert await zoho.parse_webhook(delivered(*reopened)) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"key": new_key()}, "signature does not match"),
        ({"iss": "orgId:999"}, "another organization"),
        ({"aud": "webhookId:1"}, "another webhook"),
        ({"exp_in": -3600}, "expired"),
    ],
)
async def test_forged_or_expired_tokens_are_rejected(
    fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk, kwargs: dict[str, object], match: str
) -> None:
    tid = (await zoho.create_ticket(packet())).id
    body, headers = fake.signed([fake.agent_reply(tid, "hi")], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(BadSignature, match=match):
        zoho.verify_webhook(delivered(body, headers))  # keys not cached: claims only
        await zoho.parse_webhook(delivered(body, headers))


def test_verify_rejects_missing_and_malformed_tokens(zoho: ZohoDeskHelpdesk) -> None:
    for headers in ({}, {"x-zdesk-jwt": "not.a-jwt"}, {"x-zdesk-jwt": "a.b.c"}):
        with pytest.raises(BadSignature):
            zoho.verify_webhook(delivered(b"[]", headers))


async def test_expiry_in_milliseconds_is_understood(
    fake: FakeZohoDesk, zoho: ZohoDeskHelpdesk
) -> None:
    now = time.time()
    body, headers = fake.signed([], exp=int((now + 60) * 1000), iat=int(now * 1000))
    zoho.verify_webhook(delivered(body, headers), now=now)
    with pytest.raises(BadSignature, match="expired"):
        zoho.verify_webhook(delivered(body, headers), now=now + 3600)


def test_webhook_setup_names_the_url_events_and_field(zoho: ZohoDeskHelpdesk) -> None:
    steps = " ".join(zoho.webhook_setup("https://handoff.example/api/v1/webhooks/abc"))
    for needle in (
        "Developer Space → Webhooks",
        "https://handoff.example/api/v1/webhooks/abc",
        "Ticket Thread Add",
        "Ticket Update",
        "cf_handoff_conversation_id",
        "X-ZDesk-JWT",
    ):
        assert needle in steps


async def test_connect_first_then_pick_the_department(
    fake: FakeZohoDesk, http: httpx.AsyncClient
) -> None:
    unset = ZohoDeskHelpdesk(
        credentials(fake, department_id=None), http=http, webhook_secret="unused"
    )
    await unset.verify_credentials()  # no department yet: the admin picks it next
    assert (await unset.options())["department_id"]
    with pytest.raises(Rejected, match="choose a department"):
        await unset.create_ticket(packet())
