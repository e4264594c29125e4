"""Each agent's knowledge base in memory, rebuilt off the request path when its entries change.

Embedding a large knowledge base takes seconds to minutes. The rebuild runs in a worker
thread; until it is ready the previous version keeps answering, and only an agent's very first
build is waited for. A newer version stops an older build between steps (latest wins), so
rebuilds of one agent never pile up. A version is `repositories.knowledge_version`: a message
reads the entries themselves only when its agent's version is neither served nor being built.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from handoff.agent import KnowledgeBase, KnowledgeEntry
from handoff.agent.knowledge import Superseded
from handoff.decide import Encoder


@dataclass(frozen=True, slots=True)
class _Build:
    version: str
    stop: threading.Event  # set when a newer version is wanted
    task: asyncio.Task[None]


class KnowledgeBases:
    """The knowledge bases of every agent this process answers for."""

    def __init__(self, encoder: Callable[[], Encoder]) -> None:
        self._encoder = encoder  # called in the build's thread: loading the model is slow too
        self._serving: dict[str, tuple[str, KnowledgeBase]] = {}
        self._builds: dict[str, _Build] = {}  # the newest wanted build of each agent

    def needs_entries(self, agent_id: str, version: str) -> bool:
        """Say whether `get` needs this version's entries: it neither answers nor is being built."""
        serving = self._serving.get(agent_id)
        build = self._builds.get(agent_id)
        return not (
            (serving is not None and serving[0] == version)
            or (build is not None and build.version == version)
        )

    async def get(
        self, agent_id: str, version: str, entries: Sequence[KnowledgeEntry] | None
    ) -> KnowledgeBase | None:
        """Return the knowledge base to answer with, given the agent's stored version (and its
        entries, when `needs_entries` said so).

        When the version changed, it is built in the background and the previous one is
        returned meanwhile; an agent's first build is waited for. None: the build this call
        counted on failed, so ask again with the entries.
        """
        serving = self._serving.get(agent_id)
        if serving is not None:
            if serving[0] != version and entries is not None:
                self._refresh(agent_id, version, entries)
            return serving[1]
        if entries is not None:
            self._refresh(agent_id, version, entries)
        while (serving := self._serving.get(agent_id)) is None:
            build = self._builds.get(agent_id)
            if build is None:
                return None
            await asyncio.shield(build.task)  # a waiter that goes away leaves the build running
        return serving[1]

    async def changed(self, agent_id: str, version: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Start building the agent's new (question, answer) pairs now rather than at its
        next message."""
        if self.needs_entries(agent_id, version):
            self._refresh(agent_id, version, [KnowledgeEntry(q, a) for q, a in pairs])

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

    def _refresh(self, agent_id: str, version: str, entries: Sequence[KnowledgeEntry]) -> _Build:
        """Make sure `version` is being built, after whatever build runs."""
        current = self._builds.get(agent_id)
        if current is not None and current.version == version:
            return current
        if current is not None:
            current.stop.set()  # latest wins: the older build stops at its next step
        stop = threading.Event()
        after = current.task if current is not None else None
        task = asyncio.create_task(self._build(agent_id, version, list(entries), stop, after))
        build = _Build(version, stop, task)
        self._builds[agent_id] = build
        return build

    async def _build(
        self,
        agent_id: str,
        version: str,
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
                self._serving[agent_id] = (version, knowledge)
        except Superseded:
            return
        finally:
            newest = self._builds.get(agent_id)
            if newest is not None and newest.stop is stop:
                del self._builds[agent_id]
