"""Time /healthz and another tenant's chat while an admin's helpdesk connect stalls.

    .venv/bin/python scripts/probe_stalled_connect.py [--stall 15]

Against a fresh `handoff serve --demo` on 127.0.0.1 (SQLite), an admin connects the generic
webhook integration to a loopback host that answers only after `--stall` seconds. Meanwhile,
ten times a second, /healthz is timed, and a second tenant starts a conversation and sends a
message. The same probes run first with no connect under way: the baseline of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

# Run as a script, this folder is on the path; the slow host is the tests' own fake.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from local_server import LocalServer
from tests.fakes.catch_all import CatchAll


def timed(call: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[float, dict]:
    started = time.perf_counter()
    response = call.request(method, path, **kwargs)  # type: ignore[arg-type]
    if response.is_error:
        raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
    return time.perf_counter() - started, response.json()


def probe(server: LocalServer, agent_id: str, seconds: float) -> dict[str, list[float]]:
    """For `seconds`, time /healthz, a chat start and its first answer, ten times a second."""
    found: dict[str, list[float]] = {"healthz": [], "chat start": [], "first answer": []}
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=server.url, timeout=120) as client:
        while time.monotonic() < deadline:
            took, _ = timed(client, "GET", "/healthz")
            found["healthz"].append(took)
            path = f"/api/v1/agents/{agent_id}/conversations"
            took, chat = timed(client, "POST", path, json={"channel": "widget"})
            found["chat start"].append(took)
            took, _ = timed(
                client,
                "POST",
                f"/api/v1/conversations/{chat['id']}/messages",
                json={"text": "What are your opening hours?"},
                headers={"Authorization": f"Bearer {chat['token']}"},
            )
            found["first answer"].append(took)
            time.sleep(0.1)
    return found


def report(phase: str, found: dict[str, list[float]]) -> None:
    for name, seconds in found.items():
        ms = sorted(s * 1000 for s in seconds)
        print(
            f"{phase:<16} {name:<13} n={len(ms):<3} p50={statistics.median(ms):8.1f} ms  "
            f"max={ms[-1]:8.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stall", type=float, default=15.0, help="seconds the host stalls")
    args = parser.parse_args()
    env = {
        "HANDOFF_ALLOW_PRIVATE_URLS": "true",  # the stalling host is on loopback
        # The probe opens a conversation ten times a second from one address.
        "HANDOFF_RATE_LIMIT_CONVERSATIONS_PER_IP": "",
        "HANDOFF_RATE_LIMIT_CONVERSATIONS_PER_AGENT": "",
        "HANDOFF_RATE_LIMIT_MESSAGES_PER_IP": "",
    }
    with (
        LocalServer(env=env) as server,
        CatchAll(delay=args.stall) as slow,
        server.admin() as admin,
    ):
        workspace = admin.post("/api/v1/workspaces", json={"name": "Stalled"}).json()
        stalled = admin.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["widget"]},
        ).json()
        other = server.demo_agent_id  # the other tenant
        report("no connect", probe(server, other, 5))

        def connect() -> None:
            admin.post(
                f"/api/v1/agents/{stalled['id']}/integrations",
                json={
                    "platform": "webhook",
                    "credentials": {"url": slow.base_url, "signing_secret": "s" * 24},
                },
                timeout=args.stall + 30,
            )

        stalling = threading.Thread(target=connect)
        stalling.start()
        time.sleep(0.5)
        report("connect stalled", probe(server, other, args.stall - 2))
        stalling.join()


if __name__ == "__main__":
    main()
