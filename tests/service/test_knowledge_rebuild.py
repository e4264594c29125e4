"""Knowledge-base rebuilds of one agent do not pile up: the newest version wins."""

from __future__ import annotations

import asyncio
import time

from handoff.decide import Encoder
from handoff.service.knowledge import KnowledgeBases

BIG = [
    (f"How do I set up connector number {i} for the billing export?", f"Open connector {i}.")
    for i in range(400)
]
SMALL = [("What are your opening hours?", "Day and night.")]


async def settle(bases: KnowledgeBases, agent_id: str) -> float:
    """Wait until the agent's builds are done; return how long that took."""
    started = time.monotonic()
    await bases.settled(agent_id)
    return time.monotonic() - started


async def test_a_newer_version_stops_the_build_it_replaces(encoder: Encoder) -> None:
    bases = KnowledgeBases(lambda: encoder)
    started = time.monotonic()
    await bases.changed("a", "v1", BIG)
    await asyncio.sleep(0.2)  # the big build is under way
    await bases.changed("a", "v2", SMALL)
    await settle(bases, "a")
    replaced = time.monotonic() - started
    served = await bases.get("a", "v2", None)
    assert served is not None
    assert served.answer("when are you open?").text == "Day and night."

    await bases.changed("b", "v1", BIG)
    whole = await settle(bases, "b")
    # The replaced build stopped at its next step instead of embedding all 400 entries.
    assert replaced < whole / 2, (replaced, whole)
