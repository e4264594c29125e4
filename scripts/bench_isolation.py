"""Measure /healthz while an agent's 2,000-entry knowledge base is embedded again.

    PYTHONPATH=src python scripts/bench_isolation.py [--entries 2000] [--baseline-seconds 10]

Starts `handoff serve --demo` on a fresh SQLite database (as the tests do), then probes
/healthz ten times a second in two phases of the same run: a baseline in which one chat
message is answered, and a rebuild in which the admin replaces the knowledge base with
`--entries` entries and a chat message is answered while they are embedded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import Server, start_server, stop_server

QUESTION = "What are your opening hours?"


def faq(entries: int, hours: str) -> list[dict[str, str]]:
    rest = [
        {
            "question": f"How do I set up connector number {i} for the billing export?",
            "answer": f"Open Settings, then Connectors, pick connector {i} from the list, paste "
            "the key your provider gave you, choose which workspaces may use it and save.",
        }
        for i in range(entries - 1)
    ]
    return [{"question": QUESTION, "answer": hours}, *rest]


def ask(server: Server, agent_id: str, text: str) -> tuple[str, float]:
    """Ask in a new conversation; return the answer and how long it took."""
    with server.client() as client:
        chat = client.post(f"/api/v1/agents/{agent_id}/conversations", json={"channel": "widget"})
        body = chat.json()
        started = time.monotonic()
        reply = client.post(
            f"/api/v1/conversations/{body['id']}/messages",
            json={"text": text},
            headers={"Authorization": f"Bearer {body['token']}"},
            timeout=600,
        )
    reply.raise_for_status()
    return reply.json()["messages"][-1]["text"], time.monotonic() - started


def probe(server: Server, stop: threading.Event) -> list[float]:
    """Time /healthz ten times a second until `stop` is set."""
    latencies: list[float] = []
    with httpx.Client(base_url=server.url, timeout=600) as client:
        while not stop.is_set():
            started = time.monotonic()
            client.get("/healthz").raise_for_status()
            latencies.append(time.monotonic() - started)
            time.sleep(0.1)
    return latencies


def report(phase: str, latencies: list[float]) -> None:
    ms = sorted(x * 1000 for x in latencies)
    print(
        f"{phase:<9} healthz n={len(ms):<4} p50={statistics.median(ms):7.1f} ms  "
        f"p99={ms[int(0.99 * (len(ms) - 1))]:7.1f} ms  max={ms[-1]:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(
            "sqlite", Path(tmp), env={"HANDOFF_KNOWLEDGE_MAX_ENTRIES": str(args.entries)}
        )
        try:
            run(server, args.entries, args.baseline_seconds)
        finally:
            stop_server(server)


def run(server: Server, entries: int, baseline_seconds: float) -> None:
    agent = server.demo_agent_id
    with server.admin() as admin:
        admin.put(f"/api/v1/agents/{agent}/knowledge", json=faq(1, "9 to 5.")).raise_for_status()
    ask(server, agent, QUESTION)  # the first build, before measuring

    stop = threading.Event()
    baseline: list[float] = []
    prober = threading.Thread(target=lambda: baseline.extend(probe(server, stop)))
    prober.start()
    _, chat_seconds = ask(server, agent, QUESTION)
    time.sleep(max(0.0, baseline_seconds - chat_seconds))
    stop.set()
    prober.join()
    report("baseline", baseline)
    print(f"          chat message answered in {chat_seconds:.2f} s")

    stop = threading.Event()
    during: list[float] = []
    prober = threading.Thread(target=lambda: during.extend(probe(server, stop)))
    prober.start()
    started = time.monotonic()
    with server.admin() as admin:
        put = admin.put(f"/api/v1/agents/{agent}/knowledge", json=faq(entries, "Day and night."))
    put.raise_for_status()
    put_seconds = time.monotonic() - started
    answer, chat_seconds = ask(server, agent, QUESTION)
    while ask(server, agent, QUESTION)[0] != "Day and night.":
        time.sleep(1)
    rebuilt = time.monotonic() - started
    stop.set()
    prober.join()
    report("rebuild", during)
    print(
        f"          PUT of {entries} entries {put_seconds:.2f} s; chat message during the "
        f"rebuild answered in {chat_seconds:.2f} s with {answer!r}; new answers after "
        f"{rebuilt:.1f} s"
    )


if __name__ == "__main__":
    main()
