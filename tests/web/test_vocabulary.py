"""The pages' words for reasons, channels and platforms come from the API, not the pages."""

from __future__ import annotations

from pathlib import Path

from handoff.channels import SENDERS
from handoff.domain import Channel, Reason
from tests.conftest import Server

STATIC = Path(__file__).resolve().parents[2] / "src" / "handoff" / "web" / "static"


def test_every_reason_and_channel_has_its_words(any_server: Server) -> None:
    with any_server.client() as anyone:
        words = anyone.get("/api/v1/vocabulary").json()
    assert set(words["reasons"]) == {r.value for r in Reason}
    assert set(words["reason_titles"]) == {r.value for r in Reason}
    assert words["reason_titles"]["explicit_request"] == "Asked for a person"
    assert set(words["channels"]) == {c.value for c in Channel}
    texts = [
        *words["reasons"].values(),
        *words["reason_titles"].values(),
        *words["channels"].values(),
    ]
    assert all(text.strip() for text in texts)
    # The reason an LLM's tool call records is the enum's own code (the pages once said "llm").
    assert "llm_tool_call" in words["reasons"]


def test_the_conversation_form_offers_only_the_live_channels(any_server: Server) -> None:
    with any_server.client() as anyone:
        schemas = anyone.get("/openapi.json").json()["components"]["schemas"]
    offered = schemas["ConversationIn"]["properties"]["channel"]["enum"]
    # WhatsApp, which sends through its own API, opens from its verified webhook only.
    assert offered == ["widget", "help_page", "api"]


def test_every_platform_says_what_it_is(any_server: Server) -> None:
    with any_server.admin() as admin:
        platforms = admin.get("/api/v1/platforms").json()
    assert platforms
    assert all(p["description"].strip() for p in platforms), platforms


def test_every_channel_with_an_outside_api_offers_its_connect_tab(any_server: Server) -> None:
    with any_server.admin() as admin:
        offered = admin.get("/api/v1/channels").json()
    assert [c["channel"] for c in offered] == [c.value for c in SENDERS]
    for channel in offered:
        words = [channel[key] for key in ("title", "tab", "lead", "connect", "checked", "finish")]
        assert all(word.strip() for word in words), channel
        secrets = {k for k, v in channel["form"]["properties"].items() if v.get("writeOnly")}
        assert secrets and set(channel["form"]["required"]) > secrets
    with any_server.client() as anyone:
        assert anyone.get("/api/v1/channels").status_code == 401


def test_the_pages_keep_no_copy_of_the_words() -> None:
    pages = "".join(p.read_text(encoding="utf-8") for p in STATIC.glob("*.js"))
    for copied in ("The visitor asked for a person", "Tickets in Zendesk Support", '"Chat widget"'):
        assert copied not in pages
