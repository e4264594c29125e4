"""The WhatsApp adapter: handshake, signatures, parsing, sending, Graph's errors, and delivering
through the channel port."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from handoff.channels import Delivered, Outgoing, errors, whatsapp
from handoff.channels.whatsapp import Credentials, WhatsAppChannel, WhatsAppCloud
from tests.fakes.graph_api import (
    FakeGraph,
    inbound_media,
    inbound_text,
    signed,
    status_update,
)

SECRET = "app-secret-0123456789"
WA = "5511987654321"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def form(graph: FakeGraph | None = None, **changes: Any) -> Credentials:
    fields: dict[str, Any] = {
        "phone_number_id": graph.phone_number_id if graph else "106540352242922",
        "access_token": graph.access_token if graph else "EAAG-token",
        "app_secret": SECRET,
        "verify_token": "my-verify-token",
        "template_name": "support_follow_up",
        "base_url": graph.base_url if graph else whatsapp.DEFAULT_BASE_URL,
    }
    fields.update(changes)
    return Credentials(**fields)


# --- the form ------------------------------------------------------------------------------


def test_form_defaults_and_refusals() -> None:
    ok = form()
    assert ok.template_language == "en_US"
    assert ok.base_url == "https://graph.facebook.com/v21.0"
    assert "EAAG-token" not in repr(ok)  # secrets stay hidden
    for field, value in [
        ("phone_number_id", "+1 555 0100"),
        ("template_name", "Support Follow-up"),
        ("template_language", "english"),
        ("base_url", "graph.facebook.com"),
        ("access_token", ""),
    ]:
        with pytest.raises(ValidationError) as caught:
            form(None, **{field: value})
        assert caught.value.errors()[0]["loc"] == (field,)


# --- webhooks ------------------------------------------------------------------------------


def test_handshake_echoes_the_challenge_only_for_our_token() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert whatsapp.verify_handshake(params, verify_token="tok") == "1158201444"
    for wrong in (
        {**params, "hub.verify_token": "other"},
        {**params, "hub.mode": "unsubscribe"},
        {k: v for k, v in params.items() if k != "hub.verify_token"},
        {k: v for k, v in params.items() if k != "hub.challenge"},
    ):
        with pytest.raises(whatsapp.HandshakeRefused):
            whatsapp.verify_handshake(wrong, verify_token="tok")


def test_signature_is_checked_against_the_raw_body() -> None:
    body, headers = signed(inbound_text("1", WA, "hi"), SECRET)
    whatsapp.verify_signature(app_secret=SECRET, body=body, headers=headers)
    lowered = {k.lower(): v for k, v in headers.items()}
    whatsapp.verify_signature(app_secret=SECRET, body=body, headers=lowered)
    with pytest.raises(whatsapp.MissingSignature):
        whatsapp.verify_signature(app_secret=SECRET, body=body, headers={})
    with pytest.raises(whatsapp.BadSignature) as forged:
        whatsapp.verify_signature(app_secret="another-secret", body=body, headers=headers)
    assert not isinstance(forged.value, whatsapp.MissingSignature)
    with pytest.raises(whatsapp.BadSignature):  # re-encoded JSON is another body
        reencoded = json.dumps(json.loads(body), indent=1).encode()
        whatsapp.verify_signature(app_secret=SECRET, body=reencoded, headers=headers)
    with pytest.raises(whatsapp.BadSignature):
        whatsapp.verify_signature(
            app_secret=SECRET, body=body, headers={"X-Hub-Signature-256": "x"}
        )


def test_text_message_is_parsed_with_the_profile_name() -> None:
    payload = inbound_text("106540352242922", WA, "Where is my order?", name="Ana", wamid="wamid.A")
    [message] = whatsapp.parse_webhook(json.dumps(payload).encode())
    assert message.phone_number_id == "106540352242922"
    assert (message.wa_id, message.message_id, message.type) == (WA, "wamid.A", "text")
    assert message.text == "Where is my order?"
    assert message.profile_name == "Ana"
    assert message.sent_at is not None
    assert message.contact.phone == f"+{WA}"
    assert message.contact.external_id == WA
    assert message.contact.name == "Ana"


def test_statuses_and_reactions_carry_no_message() -> None:
    assert whatsapp.parse_webhook(json.dumps(status_update("1", WA)).encode()) == []
    reaction = inbound_text("1", WA, "x")
    reaction["entry"][0]["changes"][0]["value"]["messages"][0] = {
        "from": WA,
        "id": "wamid.R",
        "timestamp": "1700000000",
        "type": "reaction",
        "reaction": {"message_id": "wamid.B", "emoji": "👍"},
    }
    assert whatsapp.parse_webhook(json.dumps(reaction).encode()) == []


def test_media_has_no_text_and_buttons_read_as_text() -> None:
    [image] = whatsapp.parse_webhook(json.dumps(inbound_media("1", WA, "image")).encode())
    assert (image.type, image.text) == ("image", None)
    button = inbound_text("1", WA, "x")
    button["entry"][0]["changes"][0]["value"]["messages"][0] = {
        "from": WA,
        "id": "wamid.B",
        "timestamp": "1700000000",
        "type": "button",
        "button": {"text": "Talk to support", "payload": "support"},
    }
    [pressed] = whatsapp.parse_webhook(json.dumps(button).encode())
    assert pressed.text == "Talk to support"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": {"id": 1}}',
    ],
)
def test_other_payloads_are_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        whatsapp.parse_webhook(body)


def test_long_text_is_split_at_word_boundaries() -> None:
    text = " ".join(["word"] * 2000)  # 9999 characters
    parts = whatsapp.text_parts(text)
    assert len(parts) == 3
    assert all(len(p) <= whatsapp.MAX_TEXT_CHARS for p in parts)
    assert " ".join(parts) == text
    assert whatsapp.text_parts("short") == ["short"]
    assert whatsapp.text_parts("x" * 5000) == ["x" * 4096, "x" * 904]


# --- sending against the fake Graph API ----------------------------------------------------


async def test_verify_reads_the_number(graph: FakeGraph, http: httpx.AsyncClient) -> None:
    number = await WhatsAppCloud(form(graph), http=http).verify()
    assert number.id == graph.phone_number_id
    assert number.display_phone_number == graph.display_phone_number


async def test_verify_refuses_a_bad_token_and_an_unknown_number(
    graph: FakeGraph, http: httpx.AsyncClient
) -> None:
    with pytest.raises(whatsapp.InvalidToken) as bad:
        await WhatsAppCloud(form(graph, access_token="EAAG-wrong"), http=http).verify()
    assert "code 190" in str(bad.value)
    with pytest.raises(whatsapp.Rejected) as unknown:
        await WhatsAppCloud(form(graph, phone_number_id="99999999"), http=http).verify()
    assert unknown.value.code == 100


async def test_text_and_template_go_out_in_the_cloud_api_shape(
    graph: FakeGraph, http: httpx.AsyncClient
) -> None:
    cloud = WhatsAppCloud(form(graph, template_language="pt_BR"), http=http)
    text_id = await cloud.send_text(WA, "Hello <b>Ana</b>")
    template_id = await cloud.send_template(WA)
    assert text_id.startswith("wamid.") and template_id.startswith("wamid.")
    first, second = (r for r in graph.requests if r.method == "POST")
    assert first.headers["authorization"] == f"Bearer {graph.access_token}"
    assert first.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA,
        "type": "text",
        "text": {"body": "Hello <b>Ana</b>", "preview_url": False},
    }
    assert second.body["template"] == {
        "name": "support_follow_up",
        "language": {"code": "pt_BR"},
    }
    assert [(m.type, m.body, m.template) for m in graph.sent_to(WA)] == [
        ("text", "Hello <b>Ana</b>", None),
        ("template", None, "support_follow_up"),
    ]


async def test_fake_errors_map_to_adapter_errors(graph: FakeGraph, http: httpx.AsyncClient) -> None:
    cloud = WhatsAppCloud(form(graph), http=http)
    graph.rate_limit_next()
    with pytest.raises(whatsapp.RateLimited):
        await cloud.send_text(WA, "hi")
    graph.close_window(WA)
    with pytest.raises(whatsapp.WindowClosed):
        await cloud.send_text(WA, "hi")
    assert await cloud.send_template(WA)  # templates still go
    graph.expire_token()
    with pytest.raises(whatsapp.InvalidToken):
        await cloud.send_template(WA)


def graph_error(
    status: int, code: int | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    error: dict[str, Any] = {"message": "boom", "type": "OAuthException", "fbtrace_id": "AbC"}
    if code is not None:
        error["code"] = code
    return httpx.Response(status, json={"error": error}, headers=headers)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (graph_error(429, 130429), whatsapp.RateLimited),
        (graph_error(400, 131056), whatsapp.RateLimited),
        (graph_error(400, 80007), whatsapp.RateLimited),
        (graph_error(400, 4), whatsapp.RateLimited),
        (graph_error(400, 131047), whatsapp.WindowClosed),
        (graph_error(401, 190), whatsapp.InvalidToken),
        (graph_error(403, 10), whatsapp.InvalidToken),
        (graph_error(400, 100), whatsapp.Rejected),
        (graph_error(400, 132001), whatsapp.Rejected),
        (graph_error(500, 131000), whatsapp.Unavailable),
        (graph_error(503, None), whatsapp.Unavailable),
        (httpx.Response(502, text="<html>bad gateway</html>"), whatsapp.Unavailable),
    ],
)
async def test_graph_errors_map_to_retry_or_not(
    response: httpx.Response, expected: type[whatsapp.WhatsAppError]
) -> None:
    transport = httpx.MockTransport(lambda request: response)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(expected) as caught:
            await WhatsAppCloud(form(), http=client).send_text(WA, "hi")
    assert type(caught.value) is expected
    assert caught.value.retryable == (expected in (whatsapp.RateLimited, whatsapp.Unavailable))


async def test_retry_after_and_readable_reasons() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return graph_error(429, 130429, {"Retry-After": "12"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(whatsapp.RateLimited) as caught:
            await WhatsAppCloud(form(), http=client).send_text(WA, "hi")
    assert caught.value.retry_after == 12
    assert "HTTP 429 Too Many Requests [code 130429]" in str(caught.value)
    assert "boom" not in str(caught.value)  # Graph's message text stays out of errors


async def test_network_failures_are_temporary() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as client:
        with pytest.raises(whatsapp.Unavailable):
            await WhatsAppCloud(form(), http=client).send_template(WA)


# --- delivering through the channel port ---------------------------------------------------


def just_now() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=5)


async def test_a_reply_in_the_window_goes_as_text_in_parts(
    graph: FakeGraph, http: httpx.AsyncClient
) -> None:
    channel = WhatsAppChannel(form(graph), http=http)
    long_reply = " ".join(["word"] * 1500)  # 7,499 characters: two messages
    delivered = await channel.deliver(Outgoing(text=long_reply, to=WA, last_heard=just_now()))
    assert delivered == Delivered()
    sent = graph.sent_to(WA)
    assert [m.type for m in sent] == ["text", "text"]
    assert " ".join(m.body or "" for m in sent) == long_reply


@pytest.mark.parametrize("last_heard", [None, datetime.now(UTC) - timedelta(hours=25)])
async def test_after_the_window_the_template_goes_and_the_team_is_told(
    graph: FakeGraph, http: httpx.AsyncClient, last_heard: datetime | None
) -> None:
    channel = WhatsAppChannel(form(graph), http=http)
    delivered = await channel.deliver(Outgoing(text="Hi", to=WA, last_heard=last_heard))
    assert [(m.type, m.template) for m in graph.sent_to(WA)] == [("template", "support_follow_up")]
    assert delivered.note is not None and "support_follow_up" in delivered.note


async def test_graphs_closed_window_wins_over_our_clock(
    graph: FakeGraph, http: httpx.AsyncClient
) -> None:
    graph.close_window(WA)
    channel = WhatsAppChannel(form(graph), http=http)
    delivered = await channel.deliver(Outgoing(text="Hi", to=WA, last_heard=just_now()))
    assert [m.type for m in graph.sent_to(WA)] == ["template"]
    assert delivered.note is not None


async def test_delivery_errors_are_every_channels_errors(
    graph: FakeGraph, http: httpx.AsyncClient
) -> None:
    channel = WhatsAppChannel(form(graph), http=http)
    outgoing = Outgoing(text="Hi", to=WA, last_heard=just_now())
    graph.rate_limit_next()
    with pytest.raises(errors.RateLimited):
        await channel.deliver(outgoing)
    with pytest.raises(errors.Rejected) as nobody:
        await channel.deliver(Outgoing(text="Hi", to=None, last_heard=just_now()))
    assert nobody.value.status == 422
    graph.expire_token()
    with pytest.raises(errors.InvalidCredentials, match="reconnect WhatsApp"):
        await channel.deliver(outgoing)


def test_the_channel_takes_only_whatsapp_credentials(http: httpx.AsyncClient) -> None:
    class Other(BaseModel):
        token: str

    with pytest.raises(TypeError):
        WhatsAppChannel(Other(token="x"), http=http)
