"""The Help Scout connector end to end against a faithful fake Help Scout over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
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
    TicketRef,
)
from handoff.helpdesks.errors import (
    BadSignature,
    InvalidCredentials,
    RateLimited,
    Rejected,
    Unavailable,
)
from handoff.helpdesks.help_scout import Credentials, HelpScoutHelpdesk, sign_help_scout
from tests.fakes.help_scout import FakeHelpScout
from tests.helpdesks.delivery import delivered

SECRET = "hs-webhook-secret-key-0123456789"
T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
KEY = "handoff-0123456789abcdef0123456789abcdef"


@pytest.fixture
def fake() -> Iterator[FakeHelpScout]:
    with FakeHelpScout() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


def credentials(fake: FakeHelpScout, **changes: object) -> Credentials:
    fields: dict[str, object] = {
        "app_id": fake.app_id,
        "app_secret": fake.app_secret,
        "mailbox_id": fake.mailbox["id"],
        "webhook_secret": SECRET,
        "base_url": fake.base_url,
        **changes,
    }
    return Credentials.model_validate(fields)


def connector(fake: FakeHelpScout, http: httpx.AsyncClient, **changes: object) -> HelpScoutHelpdesk:
    return HelpScoutHelpdesk(credentials(fake, **changes), http=http, webhook_secret="generated")


@pytest.fixture
def hs(fake: FakeHelpScout, http: httpx.AsyncClient) -> HelpScoutHelpdesk:
    return connector(fake, http)


def packet(key: str = KEY, **changes: object) -> TicketPacket:
    transcript = [
        Message(Role.USER, "My order #123 never arrived.", T0),
        Message(Role.ASSISTANT, "Sorry to hear that! Let me check.", T0 + timedelta(seconds=5)),
        Message(
            Role.USER, "<script>alert('x')</script> I want a person", T0 + timedelta(minutes=1)
        ),
    ]
    base = TicketPacket(
        idempotency_key=key,
        subject="Order #123 never arrived",
        summary="Customer's order is missing; asked for a human.",
        reasons=(Reason.EXPLICIT_REQUEST, Reason.FRUSTRATION),
        transcript=transcript,
        contact=Contact(name="Ann Lee", email="ann@example.com", phone="+15551234567"),
        channel=Channel.WIDGET,
        conversation_url="https://handoff.example/c/42",
        priority=Priority.HIGH,
        tags=("handoff", "VIP"),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- connect -------------------------------------------------------------------------------


async def test_verify_credentials_gets_a_token_and_lists_inboxes(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    await hs.verify_credentials()
    [token] = fake.requests_to("POST", "/v2/oauth2/token")
    assert token.body["grant_type"] == "client_credentials"
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    [boxes] = fake.requests_to("GET", "/v2/mailboxes")
    assert boxes.headers["authorization"].startswith("Bearer ")


async def test_options_lists_the_live_inboxes_the_admin_picks_from(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk, http: httpx.AsyncClient
) -> None:
    other = fake.add_mailbox("Billing", "billing@acme.test")
    offered = await hs.options()

    assert list(offered) == ["mailbox_id"]
    assert "mailbox_id" in Credentials.model_fields
    assert [(c.value, c.label) for c in offered["mailbox_id"]] == [
        (str(fake.mailbox["id"]), "Support"),
        (str(other["id"]), "Billing"),
    ]

    with pytest.raises(InvalidCredentials):
        await connector(fake, http, app_secret="nope").options()


async def test_verify_credentials_refuses_a_wrong_secret(
    fake: FakeHelpScout, http: httpx.AsyncClient
) -> None:
    with pytest.raises(
        InvalidCredentials,
        match=r"App ID or App Secret \(HTTP 401 Unauthorized \(invalid_client\)\)",
    ):
        await connector(fake, http, app_secret="nope").verify_credentials()
    assert fake.requests_to("GET", "/v2/mailboxes") == []


async def test_verify_credentials_refuses_an_unknown_inbox(
    fake: FakeHelpScout, http: httpx.AsyncClient
) -> None:
    with pytest.raises(InvalidCredentials, match="mailbox_id"):
        await connector(fake, http, mailbox_id=1).verify_credentials()


async def test_unreachable_help_scout_is_unavailable(http: httpx.AsyncClient) -> None:
    creds = Credentials(app_id="a", app_secret="s", mailbox_id=1, base_url="http://127.0.0.1:9")
    with pytest.raises(Unavailable):
        await HelpScoutHelpdesk(creds, http=http, webhook_secret="x").verify_credentials()


def test_credentials_form_has_titles_and_hides_secrets() -> None:
    schema = Credentials.model_json_schema()
    assert all("title" in f and "description" in f for f in schema["properties"].values())
    shown = repr(Credentials(app_id="a", app_secret="s3cr3t-XYZZY", mailbox_id=1))
    assert "XYZZY" not in shown
    with pytest.raises(ValueError):  # Help Scout takes 40 characters at most
        Credentials(app_id="a", app_secret="s", mailbox_id=1, webhook_secret="x" * 41)


# --- create --------------------------------------------------------------------------------


async def test_create_ticket_sends_the_full_packet(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    ref = await hs.create_ticket(packet())

    [create] = fake.requests_to("POST", "/v2/conversations")
    assert create.status == 201
    conversation = fake.conversations[int(ref.id)]  # the id came from Resource-ID
    assert ref.url == f"https://secure.helpscout.net/conversation/{ref.id}"
    assert (conversation["type"], conversation["status"]) == ("email", "active")
    assert conversation["mailboxId"] == fake.mailbox["id"]
    assert set(conversation["tags"]) == {
        "handoff",
        "vip",
        "handoff-explicit_request",
        "handoff-frustration",
        KEY,
    }
    customer = fake.customers[conversation["customerId"]]
    assert (customer["firstName"], customer["lastName"], customer["email"]) == (
        "Ann",
        "Lee",
        "ann@example.com",
    )
    assert customer["phones"] == ["+15551234567"]
    [first] = fake.threads[int(ref.id)]
    assert first["type"] == "customer" and first["createdBy"]["type"] == "customer"
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in first["body"]
    assert "<script>" not in first["body"]
    assert "Customer&#x27;s order is missing" in first["body"]
    [search] = fake.requests_to("GET", "/v2/conversations")
    assert search.query["tag"] == KEY and search.query["status"] == "all"


async def test_anonymous_contact_gets_a_customer_first(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    ref = await hs.create_ticket(packet(contact=Contact(phone="+15550001111")))
    customer = fake.customers[fake.conversations[int(ref.id)]["customerId"]]
    assert (customer["firstName"], customer["email"], customer["phones"]) == (
        "+15550001111",
        None,
        ["+15550001111"],
    )
    assert len(fake.requests_to("POST", "/v2/customers")) == 1


async def test_retry_after_a_lost_response_creates_one_conversation(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    fake.drop_next_create(stall_seconds=5)
    with pytest.raises(Unavailable, match="did not answer in time"):
        await hs.create_ticket(packet())
    assert len(fake.conversations_tagged(KEY)) == 1  # it did reach Help Scout

    ref = await hs.create_ticket(packet())

    assert [c["id"] for c in fake.conversations_tagged(KEY)] == [int(ref.id)]
    assert len(fake.requests_to("POST", "/v2/conversations")) == 1  # found, not re-posted
    number = fake.conversations[int(ref.id)]["number"]
    assert ref.url == f"https://secure.helpscout.net/conversation/{ref.id}/{number}"


async def test_a_closed_conversation_is_still_found(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    ref = await hs.create_ticket(packet())
    fake.status_changed(ref.id, "closed")
    assert (await hs.create_ticket(packet())).id == ref.id


async def test_validation_error_is_rejected_with_a_readable_message(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    with pytest.raises(Rejected) as caught:
        await hs.create_ticket(packet(contact=Contact(name="Bob", email="bob-at-example")))
    assert caught.value.status == 400
    assert caught.value.detail.startswith("Help Scout: HTTP 400 Bad Request (customer.email, ")
    assert "well-formed" not in caught.value.detail  # Help Scout's prose stays out of errors
    assert fake.conversations == {}


async def test_rate_limit_then_success(fake: FakeHelpScout, hs: HelpScoutHelpdesk) -> None:
    await hs.verify_credentials()
    fake.rate_limit(1, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        await hs.create_ticket(packet())
    assert caught.value.retry_after == 7.0
    assert caught.value.retryable

    ref = await hs.create_ticket(packet())
    assert int(ref.id) in fake.conversations


# --- tokens --------------------------------------------------------------------------------


async def test_token_is_cached_then_refreshed_once_on_401(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    await hs.verify_credentials()
    await hs.mailboxes()
    assert len(fake.requests_to("POST", "/v2/oauth2/token")) == 1

    fake.expire_tokens()
    await hs.mailboxes()

    assert len(fake.requests_to("POST", "/v2/oauth2/token")) == 2
    assert [r.status for r in fake.requests_to("GET", "/v2/mailboxes")][-2:] == [401, 200]


async def test_concurrent_calls_share_one_token_refresh(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    await hs.verify_credentials()
    fake.expire_tokens()
    await asyncio.gather(*(hs.mailboxes() for _ in range(5)))
    assert len(fake.requests_to("POST", "/v2/oauth2/token")) == 2


async def test_token_near_expiry_is_refreshed_before_use(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    fake.token_ttl = 60  # shorter than the refresh margin: every call needs a new token
    await hs.mailboxes()
    await hs.mailboxes()
    assert len(fake.requests_to("POST", "/v2/oauth2/token")) == 2
    assert all(r.status == 200 for r in fake.requests_to("GET", "/v2/mailboxes"))


async def test_a_revoked_app_is_invalid_credentials(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    await hs.verify_credentials()
    fake.expire_tokens()
    fake.app_secret = "rotated"
    with pytest.raises(InvalidCredentials):
        await hs.mailboxes()


# --- follow-ups ----------------------------------------------------------------------------


async def test_follow_up_is_a_customer_thread(fake: FakeHelpScout, hs: HelpScoutHelpdesk) -> None:
    ref = await hs.create_ticket(packet())
    fake.status_changed(ref.id, "closed")

    await hs.add_message(ref, Message(Role.USER, "Any news?\n<b>hi</b>", T0), packet().contact)

    thread = fake.threads[int(ref.id)][-1]
    assert thread["type"] == "customer"
    assert thread["createdBy"]["id"] == fake.conversations[int(ref.id)]["customerId"]
    assert thread["body"] == "Any news?<br>&lt;b&gt;hi&lt;/b&gt;"
    assert fake.conversations[int(ref.id)]["status"] == "active"  # reopened


async def test_follow_up_without_email_uses_the_primary_customer(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    anonymous = Contact()
    ref = await hs.create_ticket(packet(contact=anonymous))
    await hs.add_message(ref, Message(Role.USER, "still there?", T0), anonymous)
    customer_id = fake.conversations[int(ref.id)]["customerId"]
    assert fake.threads[int(ref.id)][-1]["createdBy"]["id"] == customer_id


async def test_follow_up_to_a_missing_conversation_is_rejected(hs: HelpScoutHelpdesk) -> None:
    message = Message(Role.USER, "hello?", T0)
    with pytest.raises(Rejected, match="HTTP 404 Not Found") as caught:
        await hs.add_message(TicketRef("999999", "u"), message, Contact(email="a@b.co"))
    assert caught.value.status == 404


# --- webhooks ------------------------------------------------------------------------------


async def test_signed_agent_reply_becomes_a_reply_event(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    cid = (await hs.create_ticket(packet())).id
    event = fake.agent_reply(cid, "<p>We&#39;ve shipped a <b>replacement</b>.</p><p>Dana</p>")
    body, headers = fake.signed(event, SECRET)

    hs.verify_webhook(delivered(body, headers))
    [reply] = await hs.parse_webhook(delivered(body, headers))

    thread = fake.threads[int(cid)][-1]
    assert reply.kind is TicketEventKind.REPLY
    assert (reply.ticket_id, reply.event_id) == (cid, f"{cid}:reply:{thread['id']}")
    assert (reply.text, reply.author_name) == ("We've shipped a replacement.\nDana", "Dana Scully")
    assert await hs.parse_webhook(delivered(body, headers)) == [reply]  # a redelivery: the same id


async def test_agent_reply_without_embedded_threads_fetches_them(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    cid = (await hs.create_ticket(packet())).id
    name, payload = fake.agent_reply(cid, "Hello from support")
    del payload["_embedded"]
    body, headers = fake.signed((name, payload), SECRET)
    [reply] = await hs.parse_webhook(delivered(body, headers))
    assert reply.text == "Hello from support"
    assert fake.requests_to("GET", f"/v2/conversations/{cid}/threads")


async def test_note_and_customer_echo_are_ignored(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    cid = (await hs.create_ticket(packet())).id
    for event in (fake.note(cid, "VIP, refund"), fake.customer_reply(cid, "any news?")):
        body, headers = fake.signed(event, SECRET)
        hs.verify_webhook(delivered(body, headers))
        assert await hs.parse_webhook(delivered(body, headers)) == []


async def test_closed_becomes_a_solved_event(fake: FakeHelpScout, hs: HelpScoutHelpdesk) -> None:
    cid = (await hs.create_ticket(packet())).id
    event = fake.status_changed(cid, "closed")
    body, headers = fake.signed(event, SECRET)

    hs.verify_webhook(delivered(body, headers))
    [solved] = await hs.parse_webhook(delivered(body, headers))

    assert (solved.kind, solved.ticket_id) == (TicketEventKind.SOLVED, cid)
    assert solved.event_id == f"{cid}:closed:{event[1]['closedAt']}"
    pending = fake.signed(fake.status_changed(cid, "pending"), SECRET)
    assert await hs.parse_webhook(delivered(*pending)) == []


async def test_reply_and_close_gives_both_events_with_the_status_id(
    fake: FakeHelpScout, hs: HelpScoutHelpdesk
) -> None:
    cid = (await hs.create_ticket(packet())).id
    event = fake.agent_reply(cid, "Done, closing.", status="closed")
    reply, solved = await hs.parse_webhook(delivered(*fake.signed(event, SECRET)))
    assert (reply.kind, solved.kind) == (TicketEventKind.REPLY, TicketEventKind.SOLVED)
    # convo.status for the same close carries the same closedAt, so dedupe drops one.
    status = await hs.parse_webhook(delivered(*fake.signed(("convo.status", event[1]), SECRET)))
    assert [e.event_id for e in status] == [solved.event_id]


async def test_forged_signature_is_rejected(fake: FakeHelpScout, hs: HelpScoutHelpdesk) -> None:
    cid = (await hs.create_ticket(packet())).id
    body, headers = fake.forged(fake.agent_reply(cid, "hi"))
    with pytest.raises(BadSignature):
        hs.verify_webhook(delivered(body, headers))

    good_body, good_headers = fake.signed(fake.agent_reply(cid, "hi"), SECRET)
    with pytest.raises(BadSignature):  # body changed after signing
        hs.verify_webhook(delivered(good_body.replace(b"hi", b"ho"), good_headers))
    with pytest.raises(BadSignature):
        hs.verify_webhook(delivered(good_body, {"x-helpscout-event": "convo.status"}))


def test_signature_matches_help_scouts_documented_recipe() -> None:
    # Computed with `openssl dgst -sha1 -hmac my-secret-key -binary | base64`, which is the
    # PHP recipe on developer.helpscout.com/webhooks: base64_encode(hash_hmac("sha1", ...)).
    assert sign_help_scout("my-secret-key", b'{"id":1}') == "1WundbGwJpFFNFF7X/fMUksjXdM="


def test_generated_secret_is_used_and_shown_when_none_was_typed(fake: FakeHelpScout) -> None:
    hs = HelpScoutHelpdesk(
        credentials(fake, webhook_secret=None),
        http=httpx.AsyncClient(),
        webhook_secret="generated-secret",
    )
    body = json.dumps({"id": 1}).encode()
    hs.verify_webhook(
        delivered(body, {"X-HelpScout-Signature": sign_help_scout("generated-secret", body)})
    )
    steps = " ".join(hs.webhook_setup("https://handoff.example/api/v1/webhooks/abc"))
    assert "generated-secret" in steps


def test_webhook_setup_names_the_url_and_events(hs: HelpScoutHelpdesk) -> None:
    steps = " ".join(hs.webhook_setup("https://handoff.example/api/v1/webhooks/abc"))
    for needle in (
        "Manage → Apps → Webhooks",
        "https://handoff.example/api/v1/webhooks/abc",
        "Secret Key",
        "Agent Reply",
        "Status Updated",
    ):
        assert needle in steps
    assert SECRET not in steps  # a typed secret is never echoed back


async def test_connect_first_then_pick_the_inbox(
    fake: FakeHelpScout, http: httpx.AsyncClient
) -> None:
    unset = connector(fake, http, mailbox_id=None)
    await unset.verify_credentials()  # no inbox yet: the admin picks it next
    assert (await unset.options())["mailbox_id"]
    with pytest.raises(Rejected, match="choose an inbox"):
        await unset.create_ticket(packet())
