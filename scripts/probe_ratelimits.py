"""Flood a local `handoff serve --demo` the way a script would, and count what gets through.

    python scripts/probe_ratelimits.py

It starts a server on 127.0.0.1 with the default rate limits and a fresh SQLite database,
then, as fast as it can (50 requests in flight):

1. opens 1,000 conversations from one client address;
2. sends 1,000 messages into one conversation;
3. opens 200 conversations from 200 addresses and asks for a person in each, then counts
   the inbox tickets once the outbox is idle.

The server trusts X-Forwarded-For from loopback (as behind a local proxy), so that the probe
can play many clients from one machine. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

# Run as a script, this folder is on the path.
from local_server import LocalServer

IN_FLIGHT = 50


async def flood(
    count: int, call: Callable[[int], Awaitable[httpx.Response]]
) -> tuple[list[httpx.Response], float]:
    """Make `count` calls with IN_FLIGHT at a time; return the answers and the seconds taken."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(n: int) -> httpx.Response:
        async with gate:
            return await call(n)

    began = time.perf_counter()
    answers = await asyncio.gather(*(one(n) for n in range(count)))
    return list(answers), time.perf_counter() - began


def report(title: str, answers: list[httpx.Response], seconds: float) -> None:
    statuses = Counter(a.status_code for a in answers)
    waits = sorted({a.headers["Retry-After"] for a in answers if a.status_code == 429}, key=int)
    print(f"{title}: {len(answers)} in {seconds:.1f} s ({len(answers) / seconds:.0f}/s)")
    print(f"  answers: {dict(sorted(statuses.items()))}")
    refused = next((a for a in answers if a.status_code == 429), None)
    if refused is not None:
        print(f"  Retry-After seen: {waits[0]}..{waits[-1]} s")
        print(f"  detail: {refused.json()['detail']}")


def address(n: int) -> str:
    return f"2001:db8::{n // 65536:x}:{n % 65536:x}"


async def probe(url: str, admin_token: str, agent_id: str) -> None:
    limits = httpx.Limits(max_connections=IN_FLIGHT)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        one_address = {"X-Forwarded-For": "198.51.100.1"}
        open_body: dict[str, Any] = {"channel": "widget"}

        async def open_from_one(_: int) -> httpx.Response:
            path = f"/api/v1/agents/{agent_id}/conversations"
            return await client.post(path, json=open_body, headers=one_address)

        report("1. conversations from one address", *await flood(1000, open_from_one))

        chat = (
            await client.post(
                f"/api/v1/agents/{agent_id}/conversations",
                json=open_body,
                headers={"X-Forwarded-For": "198.51.100.2"},
            )
        ).json()

        async def message(n: int) -> httpx.Response:
            return await client.post(
                f"/api/v1/conversations/{chat['id']}/messages",
                json={"text": f"What are your opening hours? ({n})"},
                headers={"Authorization": f"Bearer {chat['token']}", **one_address},
            )

        report("2. messages into one conversation", *await flood(1000, message))

        async def open_from_many(n: int) -> httpx.Response:
            return await client.post(
                f"/api/v1/agents/{agent_id}/conversations",
                json={"channel": "widget", "contact": {"email": f"user{n}@example.com"}},
                headers={"X-Forwarded-For": address(n)},
            )

        opened, _ = await flood(200, open_from_many)
        chats = [a.json() for a in opened if a.status_code == 201]
        print(f"3. conversations opened from 200 addresses: {len(chats)}")

        async def ask_for_person(n: int) -> httpx.Response:
            return await client.post(
                f"/api/v1/conversations/{chats[n]['id']}/messages",
                json={"text": "I want to talk to a human, please"},
                headers={
                    "Authorization": f"Bearer {chats[n]['token']}",
                    "X-Forwarded-For": address(n),
                },
            )

        asks, seconds = await flood(len(chats), ask_for_person)
        report("   escalation requests, one per conversation", asks, seconds)
        escalated = sum(
            1 for a in asks if a.status_code == 200 and a.json()["conversation"]["owner"] == "human"
        )
        print(f"   conversations handed to a person: {escalated}")
        await asyncio.sleep(5)  # the outbox worker creates the inbox tickets
        tickets = await client.get(
            "/api/v1/tickets?status=all", headers={"Authorization": f"Bearer {admin_token}"}
        )
        mine = {c["id"] for c in chats}
        listed = tickets.json()["tickets"]
        ours = [t for t in listed if t["conversation_id"] in mine]
        print(f"   inbox tickets for these conversations: {len(ours)} (listed: {len(listed)})")


def main() -> None:
    # Trusting X-Forwarded-For from loopback lets the probe play many clients from one machine.
    with LocalServer(env={"HANDOFF_TRUSTED_PROXY_HEADER": "X-Forwarded-For"}) as server:
        asyncio.run(probe(server.url, server.admin_token, server.demo_agent_id))


if __name__ == "__main__":
    main()
