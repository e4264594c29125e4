"""Business hours and the timer fields through the admin API, and the handoff outside hours:
the ticket is still made, the user learns when (in the business's zone) and how a person will
answer, and is asked for an email. Both backends."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Server
from tests.web.chat import ticket_of, wait_for
from tests.web.rules import new_agent, open_chat, update_action

ZONE = "Asia/Tokyo"
EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def closed_today() -> dict[str, Any]:
    """Open around the clock, except that today (in Tokyo) is a holiday."""
    now = datetime.now(ZoneInfo(ZONE))
    if now + timedelta(minutes=2) > (now + timedelta(days=1)).replace(hour=0, minute=0):
        pytest.skip("too close to midnight in Tokyo")
    return {"timezone": ZONE, "weekly": EVERY_DAY, "holidays": [now.date().isoformat()]}


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        (
            {"business_hours": {"timezone": "Mars/Olympus", "weekly": EVERY_DAY}},
            "business_hours",
            "timezone: 'Mars/Olympus' is not an IANA time zone",
        ),
        ({"business_hours": {"weekly": EVERY_DAY}}, "business_hours", "timezone: is required"),
        (
            {"business_hours": {"timezone": "UTC", "weekly": {"mon": [["17:00", "09:00"]]}}},
            "business_hours",
            "weekly.mon[0]: ends at 09:00 before it starts at 17:00",
        ),
        (
            {"business_hours": {"timezone": "UTC", "weekly": {"mon": [["9", "17:00"]]}}},
            "business_hours",
            "weekly.mon[0]: '9' is not a time",
        ),
        (
            {"business_hours": {"timezone": "UTC", "weekly": {"noday": [["09:00", "17:00"]]}}},
            "business_hours",
            "weekly.noday: unknown weekday",
        ),
        (
            {"business_hours": {"timezone": "UTC", "weekly": EVERY_DAY, "holidays": ["12/25"]}},
            "business_hours",
            "holidays[0]",
        ),
        (
            {"business_hours": {"timezone": "UTC", "weekly": {}}},
            "business_hours",
            "no opening hours",
        ),
        ({"wait_timeout_seconds": -1}, "wait_timeout_seconds", "at least 0"),
        ({"wait_timeout_seconds": 1.5}, "wait_timeout_seconds", "whole number"),
        ({"wait_timeout_seconds": "300"}, "wait_timeout_seconds", "whole number"),
        ({"wait_timeout_seconds": 10**9}, "wait_timeout_seconds", "at most"),
        ({"inactivity_timeout_seconds": -60}, "inactivity_timeout_seconds", "at least 0"),
    ],
)
def test_bad_settings_get_a_precise_422_and_change_nothing(
    any_server: Server, fields: dict[str, Any], field: str, words: str
) -> None:
    agent_id, action = new_agent(any_server)
    with any_server.admin() as admin:
        created = admin.post(
            f"/api/v1/agents/{agent_id}/actions",
            json={
                "name": "Bad_One",
                "platform": "native",
                "when_to_use": "x",
                "channels": ["widget"],
            }
            | fields,
        )
        assert created.status_code == 422, created.text
        detail = created.json()["detail"][0]
        assert detail["loc"][-1] == field or field in detail["loc"]
        assert words in detail["msg"]
        keep = {k: action[k] for k in ("name", "platform", "when_to_use", "channels")}
        updated = admin.put(f"/api/v1/actions/{action['id']}", json=keep | fields)
        assert updated.status_code == 422
        after = admin.get(f"/api/v1/agents/{agent_id}/actions").json()
    assert [a["id"] for a in after] == [action["id"]]
    assert after[0]["business_hours"] is None
    assert after[0]["wait_timeout_seconds"] == 300


def test_fields_are_stored_in_canonical_form_with_their_defaults(any_server: Server) -> None:
    _, action = new_agent(any_server)
    assert action["wait_timeout_seconds"] == 300
    assert action["inactivity_timeout_seconds"] is None
    assert action["business_hours"] is None
    assert action["alternative_message"] is None
    changed = update_action(
        any_server,
        action,
        business_hours={
            "timezone": "Europe/Paris",
            "weekly": {"Monday": [["13:30", "18:00"], ["09:00", "12:30"]]},
        },
        wait_timeout_seconds=0,
        inactivity_timeout_seconds=3600,
        alternative_message="  Call us.  ",
    )
    assert changed["business_hours"] == {
        "timezone": "Europe/Paris",
        "weekly": {"mon": [["09:00", "12:30"], ["13:30", "18:00"]]},
        "holidays": [],
    }
    assert changed["wait_timeout_seconds"] == 0
    assert changed["inactivity_timeout_seconds"] == 3600
    assert changed["alternative_message"] == "Call us."
    off = update_action(any_server, changed, business_hours=None, wait_timeout_seconds=None)
    assert off["business_hours"] is None and off["wait_timeout_seconds"] is None


def test_outside_hours_an_anonymous_user_is_told_when_and_asked_for_an_email(
    any_server: Server,
) -> None:
    # ask_for_email is off, but nobody answers before tomorrow: the email is asked anyway.
    agent_id, _ = new_agent(any_server, business_hours=closed_today(), ask_for_email=False)
    chat = open_chat(any_server, agent_id, "widget")
    asked = chat.say("I want to talk to a human")
    text = asked["messages"][-1]["text"]
    assert asked["conversation"]["owner"] == "bot"
    assert "away right now" in text
    assert f"tomorrow at 00:00 ({ZONE} time)" in text
    assert "email" in text

    handed = chat.say("kai@example.com")
    assert handed["conversation"]["owner"] == "human"
    notice = handed["messages"][-1]["text"]
    assert f"A person will answer tomorrow at 00:00 ({ZONE} time)" in notice
    assert "here in this chat, or by email at kai@example.com" in notice
    # The ticket is made all the same.
    assert wait_for(lambda: ticket_of(any_server, any_server.admin_token, chat.id))


def test_outside_hours_a_user_who_skips_the_email_is_answered_in_the_chat(
    any_server: Server,
) -> None:
    agent_id, _ = new_agent(any_server, business_hours=closed_today(), channels=["api"])
    chat = open_chat(any_server, agent_id, "api")
    chat.say("I want to talk to a human")
    handed = chat.say("skip")
    assert handed["conversation"]["owner"] == "human"
    notice = handed["messages"][-1]["text"]
    assert "here in this chat. If you can't stay, leave your email address" in notice
    assert wait_for(lambda: ticket_of(any_server, any_server.admin_token, chat.id))


def test_a_known_contact_outside_hours_is_handed_over_at_once(any_server: Server) -> None:
    agent_id, _ = new_agent(any_server, business_hours=closed_today(), channels=["help_page"])
    chat = open_chat(any_server, agent_id, "help_page", {"email": "known@example.com"})
    handed = chat.say("I want to talk to a human")
    assert handed["conversation"]["owner"] == "human"
    assert [m["role"] for m in handed["messages"]] == ["user", "assistant"]
    assert "by email at known@example.com" in handed["messages"][-1]["text"]


def test_inside_hours_the_admins_handoff_message_is_used(any_server: Server) -> None:
    agent_id, _ = new_agent(
        any_server,
        business_hours={"timezone": ZONE, "weekly": EVERY_DAY},
        handoff_message="A person joins you now.",
    )
    chat = open_chat(any_server, agent_id, "widget", {"email": "open@example.com"})
    assert chat.say("I want to talk to a human")["messages"][-1]["text"] == (
        "A person joins you now."
    )
