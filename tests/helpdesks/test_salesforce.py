"""The Salesforce connector end to end against a faithful fake Salesforce org over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
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
from handoff.helpdesks.salesforce import Credentials, SalesforceHelpdesk
from tests.fakes.salesforce import EXTERNAL_ID_FIELD, FakeSalesforce
from tests.helpdesks.delivery import delivered

TOKEN = "sf-webhook-token-0123456789abcdef"
T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
INSTANCE = "https://acme.my.salesforce.com"


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


def credentials(fake: FakeSalesforce, **changes: object) -> Credentials:
    fields: dict[str, object] = {
        "instance_url": INSTANCE,
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "webhook_token": TOKEN,
        "base_url": fake.base_url,
        **changes,
    }
    return Credentials.model_validate(fields)


@pytest.fixture
def salesforce(fake: FakeSalesforce, http: httpx.AsyncClient) -> SalesforceHelpdesk:
    return SalesforceHelpdesk(credentials(fake), http=http, webhook_secret="generated-unused")


def packet(key: str = "handoff-0001", **changes: object) -> TicketPacket:
    transcript = [
        Message(Role.USER, "My order #123 never arrived.", T0),
        Message(Role.ASSISTANT, "Sorry to hear that! Let me check.", T0 + timedelta(seconds=5)),
        Message(Role.USER, "<b>I want a person</b> — now", T0 + timedelta(minutes=1)),
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
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- connect -------------------------------------------------------------------------------


async def test_verify_credentials_mints_a_token_and_describes_case(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    await salesforce.verify_credentials()

    [token] = fake.requests_to("POST", "/services/oauth2/token")
    assert token.body == {
        "grant_type": "client_credentials",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
    }
    [describe] = fake.requests_to("GET", "/sobjects/Case/describe")
    assert describe.path == "/services/data/v61.0/sobjects/Case/describe"
    assert describe.headers["authorization"].startswith("Bearer 00D")


async def test_verify_credentials_refuses_a_wrong_secret(
    fake: FakeSalesforce, http: httpx.AsyncClient
) -> None:
    wrong = SalesforceHelpdesk(
        credentials(fake, client_secret="nope"), http=http, webhook_secret="x"
    )
    with pytest.raises(InvalidCredentials, match=r"HTTP 400 Bad Request \(invalid_client\)"):
        await wrong.verify_credentials()
    assert fake.requests_to("GET", "/services/data") == []


async def test_options_lists_the_live_origin_and_priority_picklists(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk, http: httpx.AsyncClient
) -> None:
    fake.labels["Medium"] = "Normal"
    offered = await salesforce.options()

    priority_fields = ["priority_low", "priority_normal", "priority_high", "priority_urgent"]
    assert list(offered) == ["origin", *priority_fields]
    assert [(c.value, c.label) for c in offered["origin"]] == [
        ("Phone", "Phone"),
        ("Email", "Email"),
        ("Web", "Web"),
        ("Chat", "Live chat"),  # the label shown, the API value kept; inactive Fax left out
    ]
    for field in priority_fields:
        assert [(c.value, c.label) for c in offered[field]] == [
            ("High", "High"),
            ("Medium", "Normal"),
            ("Low", "Low"),
        ]
    assert Credentials.model_fields.keys() >= offered.keys()

    wrong = SalesforceHelpdesk(
        credentials(fake, client_secret="nope"), http=http, webhook_secret="x"
    )
    with pytest.raises(InvalidCredentials):
        await wrong.options()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"external_id_field": "Missing__c"}, "Case has no field Missing__c"),
        ({"priority_urgent": "Critical"}, "'Critical' is not a value of the Case Priority"),
    ],
)
async def test_verify_credentials_checks_the_case_setup(
    fake: FakeSalesforce, http: httpx.AsyncClient, changes: dict[str, str], message: str
) -> None:
    connector = SalesforceHelpdesk(credentials(fake, **changes), http=http, webhook_secret="x")
    with pytest.raises(InvalidCredentials, match=message):
        await connector.verify_credentials()


async def test_unreachable_salesforce_is_unavailable(http: httpx.AsyncClient) -> None:
    creds = Credentials(
        instance_url=INSTANCE, client_id="k", client_secret="s", base_url="http://127.0.0.1:9"
    )
    with pytest.raises(Unavailable):
        await SalesforceHelpdesk(creds, http=http, webhook_secret="x").verify_credentials()


@pytest.mark.parametrize(
    "url", ["http://acme.my.salesforce.com", "https://acme.my.salesforce.com/lightning", "acme"]
)
def test_instance_url_must_be_an_https_my_domain(url: str) -> None:
    with pytest.raises(ValueError):
        Credentials(instance_url=url, client_id="k", client_secret="s")


def test_credentials_form_has_titles_and_hides_secrets() -> None:
    schema = Credentials.model_json_schema()
    assert all("title" in f and "description" in f for f in schema["properties"].values())
    creds = Credentials(
        instance_url="https://ACME.my.salesforce.com/",
        client_id="k",
        client_secret="sec-XYZZY",
        webhook_token="tok-" + "Z" * 30,
    )
    assert creds.instance_url == INSTANCE
    assert "XYZZY" not in repr(creds) and "ZZZZ" not in repr(creds)


# --- create --------------------------------------------------------------------------------


async def test_create_ticket_upserts_the_full_packet(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    ref = await salesforce.create_ticket(packet())

    assert ref.url == f"{INSTANCE}/lightning/r/Case/{ref.id}/view"
    assert len(ref.id) == 18
    case = fake.cases[ref.id]
    assert case[EXTERNAL_ID_FIELD] == "handoff-0001"
    assert (case["Origin"], case["Priority"], case["Status"]) == ("Chat", "High", "New")
    assert (case["SuppliedName"], case["SuppliedEmail"], case["SuppliedPhone"]) == (
        "Ann Lee",
        "ann@example.com",
        "+15551234567",
    )
    assert case["Subject"] == "Order #123 never arrived"
    description = case["Description"]
    assert description.startswith("Summary: Customer's order is missing")
    assert "Why escalated: explicit request, frustration" in description
    assert "Customer: <b>I want a person</b> — now" in description  # plain text, not HTML

    [upsert] = fake.requests_to("PATCH", "/sobjects/Case/")
    assert upsert.path == f"/services/data/v61.0/sobjects/Case/{EXTERNAL_ID_FIELD}/handoff-0001"
    assert upsert.status == 201
    assert EXTERNAL_ID_FIELD not in upsert.body  # the key travels in the URL only
    [lookup] = fake.requests_to("GET", f"/{EXTERNAL_ID_FIELD}/")
    assert (lookup.query, lookup.status) == ({"fields": "Id"}, 404)


async def test_priorities_map_and_bad_emails_are_left_out(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    contact = Contact(email="ann-at-example", phone="+1" * 30)
    ref = await salesforce.create_ticket(
        packet(priority=Priority.NORMAL, contact=contact, subject="S" * 300)
    )
    case = fake.cases[ref.id]
    assert case["Priority"] == "Medium"
    assert "SuppliedEmail" not in case  # INVALID_EMAIL_ADDRESS would lose the whole case
    assert case["SuppliedName"] == "ann-at-example"
    assert len(case["SuppliedPhone"]) == 40 and len(case["Subject"]) == 255


async def test_retry_after_a_lost_response_creates_one_case(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    fake.drop_next_upsert(stall_seconds=5)
    with pytest.raises(Unavailable, match="did not answer in time"):
        await salesforce.create_ticket(packet())
    [stored] = fake.cases_with_key("handoff-0001")  # it did reach Salesforce

    ref = await salesforce.create_ticket(packet())

    assert ref.id == stored["Id"]
    assert fake.cases_with_key("handoff-0001") == [stored]
    assert len(fake.requests_to("PATCH", "/sobjects/Case/")) == 1  # found, not re-upserted


async def test_concurrent_creates_upsert_into_one_case(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    """However the two interleave, the key yields one case."""
    first, second = await asyncio.gather(
        salesforce.create_ticket(packet()), salesforce.create_ticket(packet())
    )
    assert first == second
    assert len(fake.cases_with_key("handoff-0001")) == 1


@pytest.mark.parametrize(("version", "status"), [("v61.0", 200), ("v45.0", 204)])
async def test_upsert_that_matches_a_case_returns_its_id(
    fake: FakeSalesforce, http: httpx.AsyncClient, version: str, status: int
) -> None:
    connector = SalesforceHelpdesk(
        credentials(fake, api_version=version), http=http, webhook_secret="x"
    )
    created = await connector.create_ticket(packet())
    fake.miss_next_lookup()  # the case appears between our lookup and our upsert

    again = await connector.create_ticket(packet())

    assert again == created
    assert len(fake.cases) == 1
    assert [r.status for r in fake.requests_to("PATCH", "/sobjects/Case/")] == [201, status]


async def test_expired_token_is_refreshed_once(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    await salesforce.verify_credentials()
    fake.expire_tokens()

    ref = await salesforce.create_ticket(packet())

    assert ref.id in fake.cases
    assert len(fake.requests_to("POST", "/services/oauth2/token")) == 2
    statuses = [r.status for r in fake.requests_to("GET", f"/{EXTERNAL_ID_FIELD}/")]
    assert statuses == [401, 404]


async def test_concurrent_calls_share_one_refresh(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    await salesforce.verify_credentials()
    fake.expire_tokens()

    await asyncio.gather(*(salesforce.verify_credentials() for _ in range(5)))

    assert len(fake.requests_to("POST", "/services/oauth2/token")) == 2


async def test_revoked_app_after_expiry_is_invalid_credentials(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    await salesforce.verify_credentials()
    fake.expire_tokens()
    fake.client_secret = "rotated"
    with pytest.raises(InvalidCredentials):
        await salesforce.create_ticket(packet())


async def test_request_limit_is_rate_limited_then_succeeds(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    fake.limit_requests(1)
    with pytest.raises(RateLimited, match="REQUEST_LIMIT_EXCEEDED") as caught:
        await salesforce.create_ticket(packet())
    assert caught.value.retry_after == 60.0
    assert caught.value.retryable

    ref = await salesforce.create_ticket(packet())
    assert ref.id in fake.cases


async def test_a_follow_up_refused_for_the_request_limit_is_rate_limited(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    """The 403 of a spent allocation is a pause, not a refusal of the comment itself."""
    ref = await salesforce.create_ticket(packet())
    fake.limit_requests_for(60)
    with pytest.raises(RateLimited) as caught:
        await salesforce.add_message(ref, Message(Role.USER, "Any news?", T0), Contact())
    assert (caught.value.retryable, caught.value.retry_after) == (True, 60.0)
    assert fake.comments_on(ref.id) == []


async def test_a_403_for_access_is_rejected_not_rate_limited(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    fake.deny_access(1)
    with pytest.raises(Rejected, match="INSUFFICIENT_ACCESS_OR_READONLY") as caught:
        await salesforce.create_ticket(packet())
    assert caught.value.status == 403
    assert not caught.value.retryable


async def test_validation_error_is_rejected_with_a_readable_message(
    fake: FakeSalesforce, http: httpx.AsyncClient
) -> None:
    creds = credentials(fake, priority_high="Critical")
    connector = SalesforceHelpdesk(creds, http=http, webhook_secret="x")
    with pytest.raises(Rejected) as caught:
        await connector.create_ticket(packet())
    assert caught.value.status == 400
    # The status and Salesforce's codes (error code, fields), never its prose.
    assert caught.value.detail == (
        "Salesforce: HTTP 400 Bad Request (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST, Priority)"
    )
    assert fake.cases == {}


async def test_missing_external_id_field_is_rejected(
    fake: FakeSalesforce, http: httpx.AsyncClient
) -> None:
    creds = credentials(fake, external_id_field="Other__c")
    with pytest.raises(Rejected, match="external ID field Other__c does not exist") as caught:
        await SalesforceHelpdesk(creds, http=http, webhook_secret="x").create_ticket(packet())
    assert caught.value.status == 404
    assert fake.requests_to("PATCH", "/sobjects/Case/") == []


# --- follow-ups ----------------------------------------------------------------------------


async def test_follow_up_is_a_published_comment_marked_as_the_customer(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    ref = await salesforce.create_ticket(packet())

    await salesforce.add_message(ref, Message(Role.USER, "Any news?", T0), packet().contact)

    [comment] = fake.comments_on(ref.id)
    assert comment["CommentBody"] == "Customer: Any news?"
    assert comment["IsPublished"] is True


async def test_long_follow_up_is_split_within_4000_bytes(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    ref = await salesforce.create_ticket(packet())
    text = "é" * 5000  # 10,000 bytes

    await salesforce.add_message(ref, Message(Role.USER, text, T0), packet().contact)

    bodies = [c["CommentBody"] for c in fake.comments_on(ref.id)]
    assert len(bodies) == 3
    assert all(b.startswith("Customer: ") and len(b.encode()) <= 4000 for b in bodies)
    assert "".join(b.removeprefix("Customer: ") for b in bodies) == text


async def test_follow_up_on_a_missing_case_is_rejected(salesforce: SalesforceHelpdesk) -> None:
    message = Message(Role.USER, "hello?", T0)
    with pytest.raises(Rejected, match="INVALID_CROSS_REFERENCE_KEY") as caught:
        await salesforce.add_message(TicketRef("500000000000000AAA", "u"), message, Contact())
    assert caught.value.status == 400


# --- webhooks (the admin's Flow callouts) --------------------------------------------------


async def case_id(salesforce: SalesforceHelpdesk) -> str:
    return (await salesforce.create_ticket(packet())).id


async def test_published_agent_comment_becomes_a_reply(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    cid = await case_id(salesforce)
    payload = fake.agent_comment(cid, "We've shipped a replacement.", author="Dana Agent")
    body, headers = fake.flow_request(payload, TOKEN)

    salesforce.verify_webhook(delivered(body, headers))
    [event] = await salesforce.parse_webhook(delivered(body, headers))

    assert event.kind is TicketEventKind.REPLY
    assert (event.ticket_id, event.event_id) == (cid, payload["event_id"])
    assert (event.text, event.author_name) == ("We've shipped a replacement.", "Dana Agent")


async def test_internal_echo_and_portal_comments_are_ignored(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    cid = await case_id(salesforce)
    await salesforce.add_message(
        TicketRef(cid, "u"), Message(Role.USER, "hi", T0), packet().contact
    )
    for payload in (
        fake.agent_comment(cid, "VIP, refund quietly", published=False),
        fake.customer_comment(cid, "Customer: hi"),  # our own follow-up, sent back
        fake.customer_comment(cid, "Still waiting", user_type="PowerCustomerSuccess"),
    ):
        body, headers = fake.flow_request(payload, TOKEN)
        salesforce.verify_webhook(delivered(body, headers))
        assert await salesforce.parse_webhook(delivered(body, headers)) == []


async def test_closed_case_becomes_solved(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    cid = await case_id(salesforce)
    payload = fake.close_case(cid)
    body, headers = fake.flow_request(payload, TOKEN)

    salesforce.verify_webhook(delivered(body, headers))
    [event] = await salesforce.parse_webhook(delivered(body, headers))

    assert (event.kind, event.ticket_id, event.event_id) == (
        TicketEventKind.SOLVED,
        cid,
        payload["event_id"],
    )
    working = fake.flow_request(fake.close_case(cid, "Working"), TOKEN)
    assert await salesforce.parse_webhook(delivered(*working)) == []


async def test_wrong_or_missing_token_is_rejected(
    fake: FakeSalesforce, salesforce: SalesforceHelpdesk
) -> None:
    cid = await case_id(salesforce)
    body, headers = fake.flow_request(fake.agent_comment(cid, "hi"), "not-the-token")
    with pytest.raises(BadSignature):
        salesforce.verify_webhook(delivered(body, headers))
    with pytest.raises(BadSignature):
        salesforce.verify_webhook(delivered(body, {"content-type": "application/json"}))
    salesforce.verify_webhook(delivered(body, {"X-Handoff-Token": TOKEN}))


def test_without_a_webhook_token_the_generated_secret_is_required(fake: FakeSalesforce) -> None:
    creds = credentials(fake, webhook_token=None)
    connector = SalesforceHelpdesk(creds, http=httpx.AsyncClient(), webhook_secret="generated")
    body, headers = fake.flow_request({"type": "x"}, TOKEN)
    with pytest.raises(BadSignature):
        connector.verify_webhook(delivered(body, headers))
    connector.verify_webhook(delivered(body, {"x-handoff-token": "generated"}))


@pytest.mark.parametrize(
    ("body", "match"),
    [(b"not json", "not JSON"), (b"[]", "not a JSON object"), (b'{"type": "comment"}', "event_id")],
)
async def test_malformed_flow_bodies_are_rejected(
    salesforce: SalesforceHelpdesk, body: bytes, match: str
) -> None:
    with pytest.raises(Rejected, match=match):
        await salesforce.parse_webhook(delivered(body, {}))


def test_webhook_setup_names_the_url_header_and_body(salesforce: SalesforceHelpdesk) -> None:
    steps = " ".join(salesforce.webhook_setup("https://handoff.example/api/v1/webhooks/abc"))
    for needle in (
        "Named Credentials",
        "External Credential",
        "X-Handoff-Token",
        "https://handoff.example",
        "/api/v1/webhooks/abc",
        "Record-Triggered Flow",
        "Case Comment",
        "IsClosed",
        "POST",
        "event_id",
        "Run Asynchronously",
    ):
        assert needle.lower() in steps.lower()
    assert TOKEN not in steps  # the admin API never shows secrets


# --- JWT bearer ----------------------------------------------------------------------------


def jwt_credentials(fake: FakeSalesforce, **changes: object) -> Credentials:
    fields: dict[str, object] = {
        "auth": "jwt_bearer",
        "client_secret": None,
        "username": fake.username,
        "private_key": fake.jwt_key_pem,
        **changes,
    }
    return credentials(fake, **fields)


async def test_jwt_bearer_signs_an_assertion_the_org_accepts(
    fake: FakeSalesforce, http: httpx.AsyncClient
) -> None:
    connector = SalesforceHelpdesk(jwt_credentials(fake), http=http, webhook_secret="x")
    await connector.verify_credentials()
    [token] = fake.requests_to("POST", "/services/oauth2/token")
    assert token.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        token.body["assertion"], fake.jwt_key.public_key(), ["RS256"], audience=fake.audience
    )
    assert claims["iss"] == fake.client_id and claims["sub"] == fake.username
    assert claims["exp"] - time.time() <= 180
    assert "client_secret" not in token.body


async def test_jwt_bearer_for_a_user_without_approval_is_refused_readably(
    fake: FakeSalesforce, http: httpx.AsyncClient
) -> None:
    form = jwt_credentials(fake, username="someone.else@acme.test")
    connector = SalesforceHelpdesk(form, http=http, webhook_secret="x")
    with pytest.raises(InvalidCredentials, match=r"JWT bearer.*\(invalid_grant\)") as caught:
        await connector.verify_credentials()
    assert "approved" not in str(caught.value)  # the token endpoint's prose stays out


async def test_jwt_bearer_signed_with_another_key_is_refused(
    fake: FakeSalesforce, http: httpx.AsyncClient
) -> None:
    other = FakeSalesforce()  # its own key pair, never started
    connector = SalesforceHelpdesk(
        jwt_credentials(fake, private_key=other.jwt_key_pem), http=http, webhook_secret="x"
    )
    with pytest.raises(InvalidCredentials, match=r"\(invalid_grant\)"):
        await connector.verify_credentials()


async def test_jwt_bearer_mints_again_when_the_session_ends(
    fake: FakeSalesforce, http: httpx.AsyncClient
) -> None:
    connector = SalesforceHelpdesk(jwt_credentials(fake), http=http, webhook_secret="x")
    await connector.verify_credentials()
    fake.expire_tokens()
    await connector.verify_credentials()
    assert len(fake.requests_to("POST", "/services/oauth2/token")) == 2


def test_the_jwt_form_needs_a_username_and_a_readable_key(fake: FakeSalesforce) -> None:
    with pytest.raises(ValueError, match="username and private_key required"):
        credentials(fake, auth="jwt_bearer", client_secret=None)
    with pytest.raises(ValueError, match="unencrypted PEM RSA private key"):
        jwt_credentials(fake, private_key="-----BEGIN NOTHING-----")
    with pytest.raises(ValueError, match="client_secret required"):
        credentials(fake, client_secret=None)
