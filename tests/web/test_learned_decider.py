"""A server started with HANDOFF_DECIDER=learned decides with the learned model."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import start_server, stop_server
from tests.web.chat import member_token, start_chat, ticket_of, wait_for


def test_learned_server_escalates_a_french_request_for_a_person(tmp_path: Path) -> None:
    server = start_server("sqlite", tmp_path, env={"HANDOFF_DECIDER": "learned"})
    try:
        chat = start_chat(server, contact={"name": "Jeanne", "email": "jeanne@example.com"})
        reply = chat.say("je voudrais parler à quelqu'un")
        assert reply["conversation"]["owner"] == "human"
        assert reply["conversation"]["escalation"]["reasons"][0] == "explicit_request"

        team = member_token(server)
        ticket = wait_for(lambda: ticket_of(server, team, chat.id))
        with server.client(team) as client:
            detail = client.get(f"/api/v1/tickets/{ticket['id']}").json()
        learned = [e for e in detail["evidence"] if e["detail"].startswith("learned model")]
        # The model agrees with the rule, and the inbox shows why: its closest examples.
        assert learned[0]["reason"] == "explicit_request"
        assert "closest training examples" in learned[0]["detail"]
    finally:
        stop_server(server)
