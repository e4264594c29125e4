"""The running service's shared parts: database, decider, knowledge bases, event bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from handoff import __version__
from handoff.agent.llm import LLMAgent, LLMSettings
from handoff.decide import Decider, Encoder, LocalDecider, get_encoder
from handoff.helpdesks.limits import observe_response
from handoff.service.events import EventBus, EventPoll, announced_keys
from handoff.service.knowledge import KnowledgeBases
from handoff.service.netguard import AddressGuard, AddressPolicy, guarded_transport
from handoff.service.ratelimit import RateLimits
from handoff.service.security import Vault
from handoff.settings import Settings
from handoff.store.db import Database
from handoff.store.listen import Listener
from handoff.store.migrate import schema_problem
from handoff.store.repositories import EVENTS_CHANNEL


class Handoff:
    """Everything a request or a job needs besides its own transaction."""

    def __init__(
        self, settings: Settings, *, encoder: Encoder | None = None, llm: LLMAgent | None = None
    ) -> None:
        self.settings = settings
        self.bus = EventBus()
        self.db = Database(settings.resolved_database_url, on_commit=self.bus.committed)
        # On PostgreSQL every process hears of the others' events through LISTEN/NOTIFY.
        self.listener = (
            None
            if self.db.is_sqlite
            else Listener(
                self.db.url,
                EVENTS_CHANNEL,
                on_payload=lambda payload: self.bus.notify(announced_keys(payload)),
                on_state=lambda _listening: self.bus.notify_all(),
            )
        )
        self.limits = RateLimits.from_settings(settings)
        self.vault = Vault(settings.resolved_secret_key)
        self._encoder = encoder
        self._decider: Decider | None = None
        self.knowledge = KnowledgeBases(lambda: self.encoder)
        self._llm = llm
        self._http: httpx.AsyncClient | None = None
        self.guard = AddressGuard(AddressPolicy.from_settings(settings))

    @property
    def http(self) -> httpx.AsyncClient:
        """The client every helpdesk, OAuth token endpoint and WhatsApp call shares.

        One pool, one timeout, and the address guard on every connection: the URLs it calls
        come from admins' forms. It follows no redirects (httpx's default), so a platform
        cannot bounce a call, credentials and all, to another host.
        """
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=guarded_transport(self.guard),
                timeout=httpx.Timeout(self.settings.helpdesk_timeout_seconds),
                headers={"User-Agent": f"handoff/{__version__}"},
                follow_redirects=False,
                # The outbox paces each integration by what the platform's answers say.
                event_hooks={"response": [observe_response]},
            )
        return self._http

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = get_encoder()
        return self._encoder

    @property
    def decider(self) -> Decider:
        if self._decider is None:
            self._decider = local_decider(self.settings, self.encoder)
        return self._decider

    @property
    def llm(self) -> LLMAgent | None:
        """Return the LLM agent when an endpoint is configured; None means knowledge base only."""
        if self._llm is None:
            self._llm = llm_agent(self.settings)
        return self._llm

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Run one unit of work; once it commits, the bus wakes the streams its events concern."""
        async with self.db.unit_of_work() as session:
            yield session

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Hear of the events other processes commit while the block runs (PostgreSQL)."""
        if self.listener is None:
            yield
            return
        async with _running(self.listener.run):
            yield

    @asynccontextmanager
    async def polling(self) -> AsyncIterator[None]:
        """While the block runs, look for other processes' events once for all of this
        process's streams, whenever the listener does not hear of them (SQLite, or PostgreSQL
        while it connects again)."""
        poll = EventPoll(
            self.bus,
            self.reading,
            seconds=self.settings.event_poll_seconds,
            heard=lambda: self.listener is not None and self.listener.listening,
        )
        async with _running(poll.run):
            yield

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """Run a read-only unit of work: it never takes SQLite's write lock."""
        async with self.db.read() as session:
            yield session

    async def readiness_problem(self) -> str | None:
        """Say why this process cannot serve yet (no database, migrations pending), or None."""
        return await schema_problem(self.db)

    def conversation_url(self, conversation_id: str) -> str:
        return f"{self.settings.resolved_public_url}/inbox#conversation={conversation_id}"

    def ticket_url(self, ticket_id: str) -> str:
        return f"{self.settings.resolved_public_url}/inbox#ticket={ticket_id}"

    async def close(self) -> None:
        await self.knowledge.close()
        if self._http is not None:
            await self._http.aclose()
        if self._llm is not None:
            await self._llm.aclose()
        await self.db.dispose()


def local_decider(settings: Settings, encoder: Encoder) -> Decider:
    """The decider `HANDOFF_DECIDER` names; `encoder` is the rules' (MiniLM) one."""
    if settings.decider == "rules":
        return LocalDecider(encoder)
    from handoff.decide.encoder import get_e5_encoder
    from handoff.decide.learned import LearnedDecider, shipped_model

    return LearnedDecider(get_e5_encoder(), shipped_model())


def llm_agent(settings: Settings) -> LLMAgent | None:
    """Build the LLM agent the settings describe, or None when no endpoint is configured."""
    if not (settings.llm_base_url and settings.llm_model):
        return None
    # The model endpoint is left outside the address guard: it comes from the operator's
    # environment, never from a form, and a model on the same host or network (Ollama, vLLM
    # on localhost) is an ordinary setup.
    return LLMAgent(
        LLMSettings(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            # Local endpoints (Ollama, vLLM) take no key, but the SDK wants one.
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused",
            timeout_seconds=settings.llm_timeout_seconds,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
        )
    )


@asynccontextmanager
async def _running(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
) -> AsyncIterator[None]:
    """Run `run(stop)` in the background while the block runs, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        yield
    finally:
        stop.set()
        # A connection attempt under way may take its own time-out; shutdown does not wait.
        with suppress(TimeoutError):
            await asyncio.wait_for(task, 5)
