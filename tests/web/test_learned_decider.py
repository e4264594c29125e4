"""The default server decides with the learned model; HANDOFF_DECIDER=rules keeps the rules."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import start_server, stop_server
from tests.web.chat import member_token, start_chat, ticket_of, wait_for

# Indirect and Italian: no request pattern matches it, only the model can catch it.
ITALIAN_REQUEST = "Vorrei parlare con un operatore, per favore."


def test_the_default_server_escalates_an_italian_request_for_a_person(tmp_path: Path) -> None:
    server = start_server("sqlite", tmp_path)
    try:
        chat = start_chat(server, contact={"name": "Giulia", "email": "giulia@example.com"})
        reply = chat.say(ITALIAN_REQUEST)
        assert reply["conversation"]["owner"] == "human"
        assert reply["conversation"]["escalation"]["reasons"][0] == "explicit_request"

        team = member_token(server)
        ticket = wait_for(lambda: ticket_of(server, team, chat.id))
        with server.client(team) as client:
            detail = client.get(f"/api/v1/tickets/{ticket['id']}").json()
        learned = [e for e in detail["evidence"] if e["detail"].startswith("learned model")]
        # The inbox shows why: the message and the model's closest training examples.
        assert learned[0]["reason"] == "explicit_request"
        assert "Vorrei parlare" in learned[0]["detail"]
        assert "closest training examples" in learned[0]["detail"]
    finally:
        stop_server(server)


def test_a_rules_server_keeps_the_english_rules(tmp_path: Path) -> None:
    server = start_server("sqlite", tmp_path, env={"HANDOFF_DECIDER": "rules"})
    try:
        chat = start_chat(server, contact={"name": "Giulia", "email": "giulia@example.com"})
        assert chat.say(ITALIAN_REQUEST)["conversation"]["owner"] == "bot"
        assert chat.say("I want to talk to a human")["conversation"]["owner"] == "human"
    finally:
        stop_server(server)
