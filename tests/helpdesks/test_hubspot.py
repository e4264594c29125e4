"""The HubSpot connector against a fake HubSpot over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

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
    PartlyRead,
    RateLimited,
    Rejected,
    Unavailable,
)
from handoff.helpdesks.hubspot import Credentials, HubSpotHelpdesk, v3_signature
from tests.fakes.hubspot import FakeHubSpot
from tests.helpdesks.delivery import WEBHOOK_URL, delivered

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ANN = Contact(name="Ann Lee", email="ann@example.com", phone="+15551234567")


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=0.5) as client:
        yield client


def connector(fake: FakeHubSpot, http: httpx.AsyncClient, **overrides: object) -> HubSpotHelpdesk:
    fields: dict[str, object] = {
        "access_token": fake.token,
        "client_secret": fake.client_secret,
        "base_url": fake.base_url,
        **overrides,
    }
    return HubSpotHelpdesk(Credentials.model_validate(fields), http=http, webhook_secret="unused")


def packet(key: str = "esc_1", contact: Contact = ANN, **overrides: object) -> TicketPacket:
    fields: dict[str, object] = {
        "idempotency_key": key,
        "subject": "Order #123 never arrived",
        "summary": "Customer waits for a parcel since May.",
        "reasons": (Reason.EXPLICIT_REQUEST, Reason.FRUSTRATION),
        "transcript": [
            Message(role=Role.USER, text="Where is my order <b>#123</b>?", created_at=T0),
            Message(role=Role.ASSISTANT, text="Let me check.", created_at=T0),
            Message(role=Role.USER, text="I want a person.", created_at=T0),
        ],
        "contact": contact,
        "channel": Channel.WIDGET,
        "conversation_url": "https://handoff.example.com/inbox/c_1",
        "priority": Priority.HIGH,
        "tags": ("vip", "shipping"),
        **overrides,
    }
    return TicketPacket(**fields)  # type: ignore[arg-type]


# --- connect ---------------------------------------------------------------------------------


async def test_connect_checks_token_and_creates_unique_property(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    hubspot = connector(fake, http)
    await hubspot.verify_credentials()
    prop = fake.ticket_properties["handoff_conversation_id"]
    assert prop["hasUniqueValue"] is True
    pipelines = await hubspot.pipelines()
    assert [(s.id, s.closed) for s in pipelines[0].stages] == [
        ("1", False),
        ("2", False),
        ("3", False),
        ("4", True),
    ]


async def test_options_lists_live_pipelines_and_the_chosen_pipelines_stages(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    fake.pipelines.append(
        {
            "id": "7001",
            "label": "VIP Pipeline",
            "displayOrder": 1,
            "stages": [
                {"id": "7003", "label": "Done", "displayOrder": 2,
                 "metadata": {"ticketState": "CLOSED"}},
                {"id": "7002", "label": "Open", "displayOrder": 1,
                 "metadata": {"ticketState": "OPEN"}},
            ],
        }
    )  # fmt: skip
    offered = await connector(fake, http).options()

    assert list(offered) == ["pipeline", "stage", "closed_stages"]
    assert Credentials.model_fields.keys() >= offered.keys()
    assert [(c.value, c.label) for c in offered["pipeline"]] == [
        ("0", "Support Pipeline"),
        ("7001", "VIP Pipeline"),
    ]
    default_stages = [("1", "New"), ("2", "Waiting on contact"), ("3", "Waiting on us")]
    default_stages.append(("4", "Closed"))
    assert [(c.value, c.label) for c in offered["stage"]] == default_stages
    assert [(c.value, c.label) for c in offered["closed_stages"]] == default_stages

    vip = await connector(fake, http, pipeline="7001", stage="7002").options()
    assert [(c.value, c.label) for c in vip["stage"]] == [("7002", "Open"), ("7003", "Done")]
    assert (await connector(fake, http, pipeline="404").options())["stage"] == []

    with pytest.raises(InvalidCredentials):
        await connector(fake, http, access_token="pat-na1-wrong").options()


async def test_connect_keeps_an_existing_unique_property(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    fake.add_unique_property()
    await connector(fake, http).verify_credentials()
    assert not [r for r in fake.requests if r.method == "POST"]


async def test_connect_with_a_bad_token_names_access_token(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    with pytest.raises(InvalidCredentials, match="access_token"):
        await connector(fake, http, access_token="pat-na1-wrong").verify_credentials()


async def test_connect_with_an_unknown_stage_lists_the_real_ones(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    with pytest.raises(Rejected, match=r"1 \(New\)"):
        await connector(fake, http, stage="99").verify_credentials()


async def test_connect_without_the_right_to_create_the_property_says_so(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    fake.allow_property_create = False
    with pytest.raises(Rejected, match="MISSING_SCOPES") as caught:
        await connector(fake, http).verify_credentials()
    assert caught.value.status == 403


async def test_connect_when_hubspot_is_down_is_unavailable(http: httpx.AsyncClient) -> None:
    with FakeHubSpot() as gone:
        url = gone.base_url
    hubspot = HubSpotHelpdesk(
        Credentials(access_token=SecretStr("x"), base_url=url), http=http, webhook_secret="-"
    )
    with pytest.raises(Unavailable):
        await hubspot.verify_credentials()


# --- create ----------------------------------------------------------------------------------


async def test_create_sends_every_property_and_the_contact_association(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    fake.add_unique_property()
    ref = await connector(fake, http).create_ticket(packet())
    ticket = fake.tickets[ref.id]["properties"]
    assert ticket["subject"] == "Order #123 never arrived"
    assert ticket["hs_pipeline"] == "0"
    assert ticket["hs_pipeline_stage"] == "1"
    assert ticket["hs_ticket_priority"] == "HIGH"
    assert ticket["handoff_conversation_id"] == "esc_1"
    assert ticket["content"].startswith("Tags: vip, shipping\nSummary: Customer waits")
    assert "Why escalated: explicit request, frustration" in ticket["content"]
    assert "Customer: Where is my order <b>#123</b>?" in ticket["content"]  # plain text
    [contact] = fake.contacts.values()
    assert contact["properties"] == {
        **contact["properties"],
        "email": "ann@example.com",
        "firstname": "Ann",
        "lastname": "Lee",
        "phone": "+15551234567",
    }
    assert fake.associated("tickets", ref.id, "contacts") == [(contact["id"], 16)]
    assert ref.url == f"https://app.hubspot.com/contacts/{fake.portal_id}/record/0-5/{ref.id}"


async def test_create_reuses_a_known_contact_and_maps_normal_to_medium(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    fake.add_unique_property()
    hubspot = connector(fake, http, portal_id="99")
    first = await hubspot.create_ticket(packet("esc_1"))
    second = await hubspot.create_ticket(packet("esc_2", priority=Priority.NORMAL, tags=()))
    assert len(fake.contacts) == 1
    assert fake.tickets[second.id]["properties"]["hs_ticket_priority"] == "MEDIUM"
    assert fake.tickets[second.id]["properties"]["content"].startswith("Summary:")
    assert second.url.endswith(f"/contacts/99/record/0-5/{second.id}")
    assert first.id != second.id


async def test_create_for_an_anonymous_user_has_no_contact(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    fake.add_unique_property()
    ref = await connector(fake, http).create_ticket(packet(contact=Contact(name="Visitor")))
    assert fake.contacts == {}
    assert fake.associated("tickets", ref.id, "contacts") == []


async def test_create_takes_the_existing_id_when_search_missed_the_contact(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    # HubSpot's search index lags behind creates; the create then answers 409 with the id.
    fake.add_unique_property()
    hubspot = connector(fake, http)
    await hubspot.create_ticket(packet("esc_1"))
    [contact_id] = fake.contacts
    fake.search_lags = True
    ref = await hubspot.create_ticket(packet("esc_2"))
    assert fake.associated("tickets", ref.id, "contacts") == [(contact_id, 16)]
    assert len(fake.contacts) == 1


@pytest.mark.parametrize("conflict_status", [409, 400])
async def test_retry_after_a_lost_response_returns_the_same_ticket(
    fake: FakeHubSpot, http: httpx.AsyncClient, conflict_status: int
) -> None:
    fake.add_unique_property()
    fake.unique_conflict_status = conflict_status
    hubspot = connector(fake, http)
    fake.lose_next_ticket_response(3.0)
    with pytest.raises(Unavailable):
        await hubspot.create_ticket(packet("esc_lost"))
    ref = await hubspot.create_ticket(packet("esc_lost"))
    assert len(fake.tickets) == 1
    assert ref.id == next(iter(fake.tickets))
    assert len(fake.ticket_create_requests()) == 2
    [lookup] = [r for r in fake.requests if r.path == "/crm/v3/objects/tickets/esc_lost"]
    assert (lookup.method, lookup.query) == ("GET", {"idProperty": "handoff_conversation_id"})


async def test_rate_limit_then_success(fake: FakeHubSpot, http: httpx.AsyncClient) -> None:
    fake.add_unique_property()
    hubspot = connector(fake, http)
    fake.rate_limit(1)
    with pytest.raises(RateLimited, match="SECONDLY") as caught:
        await hubspot.create_ticket(packet())
    assert caught.value.retry_after == 1.0
    ref = await hubspot.create_ticket(packet())
    assert ref.id in fake.tickets


async def test_daily_rate_limit_waits_longer(fake: FakeHubSpot, http: httpx.AsyncClient) -> None:
    fake.rate_limit(1, policy="DAILY")
    with pytest.raises(RateLimited) as caught:
        await connector(fake, http).create_ticket(packet())
    assert caught.value.retry_after == 3600.0


async def test_validation_error_is_a_readable_rejection(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    fake.add_unique_property()
    with pytest.raises(Rejected) as caught:
        await connector(fake, http, stage="99").create_ticket(packet())
    assert caught.value.status == 400
    assert "VALIDATION_ERROR" in caught.value.detail
    assert "INVALID_OPTION" in caught.value.detail
    assert "allowed options" not in caught.value.detail  # HubSpot's prose stays out of errors
    assert fake.tickets == {}


async def test_missing_unique_property_is_rejected_not_retried(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    with pytest.raises(Rejected, match="handoff_conversation_id"):
        await connector(fake, http).create_ticket(packet())


# --- follow-ups ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "paragraph"),
    [
        ("Any news? <script>x</script>", "<p>Any news? &lt;script&gt;x&lt;/script&gt;</p>"),
        # Raw newlines inside one <p> show as one line in HubSpot's note view.
        (
            "Order <b>4471</b>\nstill missing",
            "<p>Order &lt;b&gt;4471&lt;/b&gt;<br>still missing</p>",
        ),
    ],
)
async def test_follow_up_is_an_escaped_customer_note_on_the_ticket(
    fake: FakeHubSpot, http: httpx.AsyncClient, text: str, paragraph: str
) -> None:
    fake.add_unique_property()
    hubspot = connector(fake, http)
    ref = await hubspot.create_ticket(packet())
    await hubspot.add_message(ref, Message(role=Role.USER, text=text, created_at=T0), ANN)
    [note] = fake.notes.values()
    assert note["properties"]["hs_note_body"] == (
        "<p><strong>Ann Lee (customer) wrote:</strong></p>" + paragraph
    )
    assert note["properties"]["hs_timestamp"] == "2025-01-01T12:00:00Z"
    assert fake.associated("notes", note["id"], "tickets") == [(ref.id, 228)]


async def test_follow_up_on_a_deleted_ticket_is_rejected(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    follow_up = Message(role=Role.USER, text="Hello?", created_at=T0)
    with pytest.raises(Rejected, match="INVALID_OBJECT_ID"):
        await connector(fake, http).add_message(TicketRef("404", "-"), follow_up, ANN)


# --- webhooks --------------------------------------------------------------------------------


async def test_signed_stage_change_to_closed_is_solved(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    hubspot = connector(fake, http)
    closed = fake.stage_change("1001", "4", event_id=555)
    waiting = fake.stage_change("1001", "2")
    body, headers = fake.signed_webhook([waiting, closed], url=WEBHOOK_URL)
    hubspot.verify_webhook(delivered(body, headers))
    [event] = await hubspot.parse_webhook(delivered(body, headers))
    assert event.kind is TicketEventKind.SOLVED
    assert (event.ticket_id, event.event_id) == ("1001", "555")


async def test_closed_stages_are_the_admins_choice(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    hubspot = connector(fake, http, closed_stages=["3", "4"])
    body, headers = fake.signed_webhook([fake.stage_change("7", "3")], url=WEBHOOK_URL)
    assert [e.kind for e in await hubspot.parse_webhook(delivered(body, headers))] == [
        TicketEventKind.SOLVED
    ]


async def test_generic_object_subscription_is_understood(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    event = {**fake.stage_change("7", "4"), "subscriptionType": "object.propertyChange"}
    event["objectTypeId"] = "0-5"
    body, headers = fake.signed_webhook([event], url=WEBHOOK_URL)
    assert len(await connector(fake, http).parse_webhook(delivered(body, headers))) == 1


@pytest.mark.parametrize(
    ("case", "change", "url"),
    [
        ("forged", {"X-HubSpot-Signature-v3": "bm90IGEgc2lnbmF0dXJl"}, WEBHOOK_URL),
        ("stale", {}, WEBHOOK_URL),
        ("other uri", {}, "https://evil.example.com/hook"),
        ("no uri", {}, ""),
        ("no timestamp", {"X-HubSpot-Request-Timestamp": ""}, WEBHOOK_URL),
        ("unicode digits", {"X-HubSpot-Request-Timestamp": "\u00b2"}, WEBHOOK_URL),
    ],
)
async def test_bad_signatures_are_rejected(
    fake: FakeHubSpot, http: httpx.AsyncClient, case: str, change: dict[str, str], url: str
) -> None:
    stamp = int(time.time() * 1000) - (6 * 60 * 1000 if case == "stale" else 0)
    body, headers = fake.signed_webhook(
        [fake.stage_change("7", "4")], url=WEBHOOK_URL, timestamp_ms=stamp
    )
    with pytest.raises(BadSignature):
        connector(fake, http).verify_webhook(delivered(body, {**headers, **change}, url=url))


async def test_tampered_body_is_rejected(fake: FakeHubSpot, http: httpx.AsyncClient) -> None:
    body, headers = fake.signed_webhook([fake.stage_change("7", "4")], url=WEBHOOK_URL)
    with pytest.raises(BadSignature):
        forged = body.replace(b'"propertyValue": "4"', b'"propertyValue": "3"')
        assert forged != body
        connector(fake, http).verify_webhook(delivered(forged, headers))
    tampered = json.dumps([fake.stage_change("8", "4")]).encode()
    with pytest.raises(BadSignature):
        connector(fake, http).verify_webhook(delivered(tampered, headers))


async def test_clock_is_injectable(fake: FakeHubSpot, http: httpx.AsyncClient) -> None:
    body, headers = fake.signed_webhook([], url=WEBHOOK_URL, timestamp_ms=1_700_000_000_000)
    hubspot = connector(fake, http)
    hubspot.verify_webhook(delivered(body, headers), now=1_700_000_100.0)
    with pytest.raises(BadSignature, match="5-minute"):
        hubspot.verify_webhook(delivered(body, headers), now=1_700_000_400.0)


async def test_without_client_secret_nothing_verifies(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    body, headers = fake.signed_webhook([], url=WEBHOOK_URL)
    with pytest.raises(BadSignature, match="client_secret"):
        connector(fake, http, client_secret=None).verify_webhook(delivered(body, headers))


def test_signature_uses_the_decoded_uri() -> None:
    # HubSpot signs the URI with %3A, %2F, %3F, … decoded.
    body, stamp = b"[]", "1700000000000"
    signed = v3_signature(
        "s", method="POST", uri="https://h.test/w?a=b:c", body=body, timestamp=stamp
    )
    given = v3_signature(
        "s", method="POST", uri="https://h.test/w?a=b%3Ac", body=body, timestamp=stamp
    )
    assert signed == given


async def test_agent_reply_in_the_help_desk_is_fetched(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    hubspot = connector(fake, http)
    reply = fake.agent_reply("1001", "Your parcel ships today.")
    incoming = fake.agent_reply("1001", "Thanks!", direction="INCOMING")
    unrelated = fake.agent_reply(None, "A chat that is not a ticket.")
    body, headers = fake.signed_webhook([reply, incoming, unrelated], url=WEBHOOK_URL)
    hubspot.verify_webhook(delivered(body, headers))
    # The event names the message only: the connector fetches the text, and keeps replies
    # that agents sent out on a ticket's thread.
    [event] = await hubspot.parse_webhook(delivered(body, headers))
    assert event.kind is TicketEventKind.REPLY
    assert (event.ticket_id, event.text, event.author_name) == (
        "1001",
        "Your parcel ships today.",
        "Sam Agent",
    )
    assert event.event_id == str(reply["eventId"])


async def test_a_failed_lookup_does_not_lose_the_rest_of_the_batch(
    fake: FakeHubSpot, http: httpx.AsyncClient
) -> None:
    hubspot = connector(fake, http)
    solved = fake.stage_change("1001", "4")
    failing = fake.agent_reply("1002", "Lost in a 500.")
    malformed = {"subscriptionType": "conversation.newMessage", "messageId": "m"}  # no objectId
    reply = fake.agent_reply("1003", "Ships today.")
    body, headers = fake.signed_webhook([solved, failing, malformed, reply], url=WEBHOOK_URL)
    fake.fail_message_lookups(1, 500)  # the first message GET: the `failing` event's
    with pytest.raises(PartlyRead) as caught:
        await hubspot.parse_webhook(delivered(body, headers))
    read = [(e.kind, e.ticket_id, e.event_id) for e in caught.value.events]
    assert read == [
        (TicketEventKind.SOLVED, "1001", str(solved["eventId"])),
        (TicketEventKind.REPLY, "1003", str(reply["eventId"])),
    ]
    assert len(caught.value.failures) == 1
    assert str(failing["eventId"]) in caught.value.failures[0]
    # The unread event alone, as a body the connector reads again once HubSpot answers.
    assert json.loads(caught.value.unread) == [failing]
    [again] = await hubspot.parse_webhook(delivered(caught.value.unread, {}))
    assert (again.kind, again.ticket_id) == (TicketEventKind.REPLY, "1002")
    # Once HubSpot recovers, the redelivered batch reads whole; the malformed event stays out.
    assert len(await hubspot.parse_webhook(delivered(body, headers))) == 3


def test_webhook_setup_names_the_url_and_the_subscription() -> None:
    hubspot = HubSpotHelpdesk(
        Credentials(access_token=SecretStr("x")),
        http=httpx.AsyncClient(),
        webhook_secret="-",
    )
    steps = hubspot.webhook_setup(WEBHOOK_URL)
    assert any(WEBHOOK_URL in step for step in steps)
    assert any("hs_pipeline_stage" in step for step in steps)
    assert any("client secret" in step for step in steps)


async def test_non_array_body_is_a_value_error(fake: FakeHubSpot) -> None:
    hubspot = HubSpotHelpdesk(
        Credentials(access_token=SecretStr("x")), http=httpx.AsyncClient(), webhook_secret="-"
    )
    with pytest.raises(ValueError):
        await hubspot.parse_webhook(delivered(b'{"eventId": 1}', {}))
