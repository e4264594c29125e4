"""Schemathesis against `/openapi.json` of a real server on each database: no answer is a 5xx.

Every operation is tried with generated valid and invalid input, on real ids (a workspace, an
agent, a conversation with its visitor token, a ticket, a member) so that most cases get past
the 404. Left out are the operations that call a third party with what they are given
(connecting a helpdesk or WhatsApp, option lists, OAuth): no test sends traffic off this
machine. Event streams are left out because they never end.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, Server, start_server, stop_server
from tests.web.chat import member_token, start_chat, wait_for

# Cases per operation and phase; the whole run stays within a minute or two per database.
MAX_EXAMPLES = 20
SEED = 20261206
OUTBOUND_OR_ENDLESS = (
    r"/events$|/integrations$|/integrations/authorize$|/options$|/oauth/callback$"
    r"|/channels/whatsapp$"
)


def _known_ids(server: Server) -> dict[str, Any]:
    chat = start_chat(server, contact={"name": "Fuzz", "email": "fuzz@example.com"})
    chat.escalate()
    with server.admin() as admin:
        agent = admin.get(f"/api/v1/agents/{server.demo_agent_id}").json()
        ticket = wait_for(lambda: admin.get("/api/v1/tickets").json()["tickets"])[0]
        actions = admin.get(f"/api/v1/agents/{server.demo_agent_id}/actions").json()
    with server.client(member_token(server)) as member:
        me = member.get("/api/v1/me").json()
    return {
        "chat": chat,
        "parameters": {
            "path.agent_id": server.demo_agent_id,
            "path.workspace_id": agent["workspace_id"],
            "path.conversation_id": chat.id,
            "path.ticket_id": ticket["id"],
            "path.member_id": me["id"],
            "path.action_id": actions[0]["id"],
        },
    }


def _config(server: Server, ids: dict[str, Any]) -> str:
    """schemathesis.toml: the ids, and the visitor's token for the conversation's own calls."""
    lines = ["[parameters]"]
    lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in ids["parameters"].items()]
    lines += [
        "",
        "[[operations]]",
        'include-path-regex = "^/api/v1/conversations/"',
        f'headers = {{ Authorization = "Bearer {ids["chat"].token}" }}',
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(params=BACKENDS)
def fuzzed_server(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    # Its own server: the generated data would disturb tests sharing the session's one.
    server = start_server(request.param, tmp_path)
    yield server
    stop_server(server)


def test_no_generated_request_gets_a_server_error(fuzzed_server: Server, tmp_path: Path) -> None:
    server = fuzzed_server
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(server, _known_ids(server)))
    command = [
        str(Path(sys.executable).with_name("st")),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {server.admin_token}",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # One worker: Python 3.11 keeps the AST builder's recursion count per interpreter, so
        # two threads describing Hypothesis lambdas at once crash the run ("AST constructor
        # recursion depth mismatch") without the server having done anything wrong.
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--exclude-path-regex",
        OUTBOUND_OR_ENDLESS,
    ]
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path
    )
    output = run.stdout + run.stderr
    generated = re.search(r"(\d+) generated", output)
    failures = output.find("FAILURES")
    assert run.returncode == 0, output[failures : failures + 8000] if failures >= 0 else output
    assert generated and int(generated.group(1)) > 500, output[-3000:]
    print(f"schemathesis on {server.backend}: {generated.group(0)}")
