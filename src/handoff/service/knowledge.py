"""Each agent's knowledge base in memory, rebuilt off the request path when its entries change.

Embedding a large knowledge base takes seconds to minutes. The rebuild runs in a worker
thread; until it is ready the previous version keeps answering, and only an agent's very first
build is waited for. A newer version stops an older build between steps (latest wins), so
rebuilds of one agent never pile up.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from handoff.agent import KnowledgeBase, KnowledgeEntry
from handoff.agent.knowledge import Superseded
from handoff.decide import Encoder


def fingerprint_of(entries: Sequence[KnowledgeEntry]) -> str:
    """Return a digest that changes whenever any question or answer does."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry.question}\x1f{entry.answer}\x1e".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class _Build:
    fingerprint: str
    stop: threading.Event  # set when a newer version is wanted
    task: asyncio.Task[None]


class KnowledgeBases:
    """The knowledge bases of every agent this process answers for."""

    def __init__(self, encoder: Callable[[], Encoder]) -> None:
        self._encoder = encoder  # called in the build's thread: loading the model is slow too
        self._serving: dict[str, tuple[str, KnowledgeBase]] = {}
        self._builds: dict[str, _Build] = {}  # the newest wanted build of each agent

    async def get(self, agent_id: str, entries: Sequence[KnowledgeEntry]) -> KnowledgeBase:
        """Return the knowledge base to answer with, given the agent's stored entries.

        When they changed, the new version is built in the background and the previous one
        is returned meanwhile; an agent's first build is waited for.
        """
        fingerprint = await asyncio.to_thread(fingerprint_of, entries)
        serving = self._serving.get(agent_id)
        if serving is not None:
            if serving[0] != fingerprint:
                self._refresh(agent_id, fingerprint, entries)
            return serving[1]
        self._refresh(agent_id, fingerprint, entries)
        while (serving := self._serving.get(agent_id)) is None:
            build = self._builds.get(agent_id) or self._refresh(agent_id, fingerprint, entries)
            await asyncio.shield(build.task)  # a waiter that goes away leaves the build running
        return serving[1]

    async def changed(self, agent_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Start building the agent's new (question, answer) pairs now rather than at its
        next message."""
        entries = [KnowledgeEntry(question=q, answer=a) for q, a in pairs]
        fingerprint = await asyncio.to_thread(fingerprint_of, entries)
        serving = self._serving.get(agent_id)
        if serving is None or serving[0] != fingerprint:
            self._refresh(agent_id, fingerprint, entries)
            return
        # Changed back to the version that answers: a build of another one is not wanted.
        unwanted = self._builds.pop(agent_id, None)
        if unwanted is not None:
            unwanted.stop.set()

    async def settled(self, agent_id: str) -> None:
        """Return once no build of the agent's knowledge base runs or waits."""
        while (build := self._builds.get(agent_id)) is not None:
            with suppress(Exception):
                await asyncio.shield(build.task)

    async def close(self) -> None:
        """Stop the builds at their next step and wait for them."""
        builds = list(self._builds.values())
        for build in builds:
            build.stop.set()
        for build in builds:
            with suppress(Exception):
                await build.task

    def _refresh(
        self, agent_id: str, fingerprint: str, entries: Sequence[KnowledgeEntry]
    ) -> _Build:
        """Make sure the version `fingerprint` is being built, after whatever build runs."""
        current = self._builds.get(agent_id)
        if current is not None and current.fingerprint == fingerprint:
            return current
        if current is not None:
            current.stop.set()  # latest wins: the older build stops at its next step
        stop = threading.Event()
        after = current.task if current is not None else None
        task = asyncio.create_task(self._build(agent_id, fingerprint, list(entries), stop, after))
        build = _Build(fingerprint, stop, task)
        self._builds[agent_id] = build
        return build

    async def _build(
        self,
        agent_id: str,
        fingerprint: str,
        entries: list[KnowledgeEntry],
        stop: threading.Event,
        after: asyncio.Task[None] | None,
    ) -> None:
        try:
            if after is not None:
                await asyncio.wait([after])  # one build per agent at a time
            if stop.is_set():
                return
            serving = self._serving.get(agent_id)
            previous = serving[1] if serving is not None else None
            knowledge = await asyncio.to_thread(
                lambda: KnowledgeBase(entries, self._encoder(), previous=previous, stop=stop.is_set)
            )
            if not stop.is_set():  # stopped after its last step: still not wanted
                self._serving[agent_id] = (fingerprint, knowledge)
        except Superseded:
            return
        finally:
            newest = self._builds.get(agent_id)
            if newest is not None and newest.stop is stop:
                del self._builds[agent_id]
