"""`handoff bench api`: messages a second through the public API of one `handoff serve`.

One run, all on 127.0.0.1: a `handoff serve --demo` process on a throw-away database (SQLite in
a temporary directory, or an empty one given by URL), its rate limits raised above what the
run sends (every request comes from 127.0.0.1). For each concurrency, `concurrency` visitors at
once each start a conversation on the API channel (`POST /api/v1/agents/{id}/conversations`),
send it `messages_per_conversation` questions one after the other, each once the previous one
is answered (`POST /api/v1/conversations/{id}/messages`), and give their place to a new
visitor, for `seconds`. Beside it, in the same run and at the same concurrency, as many loops
asking `/healthz`: what the framework serves with no work behind a request. And the ceiling
the model sets: the messages a second this process encodes, on as many threads as it has
CPUs, with the encoders a message goes through (the knowledge base's MiniLM and, for the
learned decider, e5), on texts the run sent.

Every text is distinct (a demo FAQ question and a tag), so no encoder cache answers for the
model. Requests are counted when they end within the timed window; those still running when it
closes are let finish and not counted, so that the next phase starts on an idle server.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from handoff.benchmarks.figures import percentile, rounded
from handoff.benchmarks.server import BenchServer, demo_server, rate_limits
from handoff.decide import Encoder
from handoff.domain import Owner
from handoff.service.demo import demo_faq
from handoff.settings import Settings

Progress = Callable[[str, float, float], None]  # told the phase, seconds done, seconds in all
# Above anything one run sends from 127.0.0.1, yet still counted as in production.
RAISED_RATE_LIMIT = "100000/minute"
CHANNEL = "api"
WARMUP_MESSAGES = 3  # before any clock: the knowledge base's build, the models' first calls


@dataclass(frozen=True, slots=True)
class APIConfig:
    concurrency: tuple[int, ...] = (50, 500)
    seconds: float = 20.0  # each phase: /healthz, then messages, at each concurrency
    messages_per_conversation: int = 4
    encoder_texts: int = 200  # texts the encoders are timed on
    database_url: str | None = None  # None: SQLite in a temporary directory
    timeout_seconds: float = 300.0  # for the server to start; and for one request


@dataclass(slots=True)
class Tally:
    """The requests of one phase that ended within its window."""

    seconds: float
    latency_ms: list[float] = field(default_factory=list)  # answered 2xx
    failures: Counter[str] = field(default_factory=Counter)  # status code or error name

    @property
    def per_second(self) -> float:
        return len(self.latency_ms) / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        return percentile(self.latency_ms, q)

    def to_json(self) -> dict[str, Any]:
        return {
            "answered": len(self.latency_ms),
            "per_second": round(self.per_second, 1),
            "p50_ms": rounded(self.percentile(0.50)),
            "p99_ms": rounded(self.percentile(0.99)),
            "failures": dict(self.failures),
        }


@dataclass(frozen=True, slots=True)
class Level:
    """One concurrency's figures."""

    concurrency: int
    healthz: Tally
    messages: Tally
    starts: Tally  # the conversations the visitors started meanwhile
    escalated: int  # conversations a message handed to the team (a new visitor took over)

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "healthz": self.healthz.to_json(),
            "messages": self.messages.to_json(),
            "conversations": self.starts.to_json(),
            "escalated": self.escalated,
        }


@dataclass(frozen=True, slots=True)
class EncoderCeiling:
    texts: int
    threads: int
    encoders: tuple[str, ...]
    seconds: float
    latency_ms: list[float]  # per text, every encoder's pass

    @property
    def per_second(self) -> float:
        return self.texts / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "threads": self.threads,
            "encoders": list(self.encoders),
            "per_second": round(self.per_second, 1),
            "p50_ms": rounded(percentile(self.latency_ms, 0.50)),
            "p99_ms": rounded(percentile(self.latency_ms, 0.99)),
        }


@dataclass(frozen=True, slots=True)
class APIResult:
    config: APIConfig
    backend: str
    levels: list[Level]
    encoder: EncoderCeiling
    load_average: float  # the machine's, over the minute before the run ended

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.backend,
            "seconds": self.config.seconds,
            "messages_per_conversation": self.config.messages_per_conversation,
            "rate_limits": RAISED_RATE_LIMIT,
            "load_average": round(self.load_average, 2),
            "levels": [level.to_json() for level in self.levels],
            "encoder": self.encoder.to_json(),
        }


async def run_api_benchmark(config: APIConfig, *, progress: Progress | None = None) -> APIResult:
    """Start a server; at each concurrency time /healthz, then messages; then the encoders."""
    tell = progress or (lambda phase, done, total: None)
    texts = Texts()
    levels: list[Level] = []
    with tempfile.TemporaryDirectory(prefix="handoff-bench-api-") as data_dir:
        async with demo_server(
            Path(data_dir),
            database_url=config.database_url,
            timeout_seconds=config.timeout_seconds,
            environment=rate_limits(RAISED_RATE_LIMIT),
        ) as server:
            await _warm_up(server, config, texts)
            for concurrency in config.concurrency:
                levels.append(await _level(server, config, concurrency, texts, tell))
    sent = texts.sent[: config.encoder_texts]
    encoder = await asyncio.to_thread(time_encoders, sent, Settings().decider)
    return APIResult(
        config=config,
        backend="sqlite" if config.database_url is None else "postgresql",
        levels=levels,
        encoder=encoder,
        load_average=os.getloadavg()[0],
    )


class Texts:
    """Distinct questions: the demo FAQ's, each with a tag of its own; the sent ones kept."""

    def __init__(self) -> None:
        self.questions = [question for question, _ in demo_faq()]
        self.sent: list[str] = []

    def next(self) -> str:
        question = self.questions[len(self.sent) % len(self.questions)]
        text = f"{question} (ref {secrets.token_hex(4)})"
        self.sent.append(text)
        return text


def _client(server: BenchServer, concurrency: int, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        timeout=timeout,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


async def _warm_up(server: BenchServer, config: APIConfig, texts: Texts) -> None:
    async with _client(server, 1, config.timeout_seconds) as client:
        conversation_id, token = await _start(client, server.agent_id)
        for _ in range(WARMUP_MESSAGES):
            response = await _post_message(client, conversation_id, token, texts.next())
            response.raise_for_status()


async def _level(
    server: BenchServer, config: APIConfig, concurrency: int, texts: Texts, tell: Progress
) -> Level:
    async with _client(server, concurrency, config.timeout_seconds) as client:
        healthz = Window(config.seconds)
        await _phase(
            concurrency,
            [healthz],
            lambda: _healthz_visitor(client, healthz),
            lambda done: tell(f"/healthz ×{concurrency}", done, config.seconds),
        )
        messages, starts = Window(config.seconds), Window(config.seconds)
        escalated: list[str] = []

        async def visitor() -> None:
            await _message_visitor(
                client, server.agent_id, config, texts, (messages, starts), escalated
            )

        await _phase(
            concurrency,
            [messages, starts],
            visitor,
            lambda done: tell(f"Messages ×{concurrency}", done, config.seconds),
        )
    return Level(concurrency, healthz.tally(), messages.tally(), starts.tally(), len(escalated))


class Window:
    """The timed window of one phase and the requests that ended in it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.opened_at = time.perf_counter()
        self._ended: list[tuple[float, float]] = []  # (ended at, latency ms), answered ones
        self._failed: list[tuple[float, str]] = []

    @property
    def open(self) -> bool:
        return time.perf_counter() < self.opened_at + self.seconds

    async def timed(self, request: Awaitable[httpx.Response]) -> httpx.Response | None:
        """Await `request`, noting its latency, or its failure; the response when 2xx."""
        started = time.perf_counter()
        try:
            response = await request
        except httpx.HTTPError as error:
            self._failed.append((time.perf_counter(), type(error).__name__))
            return None
        ended = time.perf_counter()
        if response.is_success:
            self._ended.append((ended, 1000 * (ended - started)))
            return response
        self._failed.append((ended, str(response.status_code)))
        return None

    def tally(self) -> Tally:
        closes = self.opened_at + self.seconds
        return Tally(
            self.seconds,
            [ms for ended, ms in self._ended if self.opened_at <= ended <= closes],
            Counter(why for ended, why in self._failed if self.opened_at <= ended <= closes),
        )


async def _phase(
    concurrency: int,
    windows: Sequence[Window],
    visitor: Callable[[], Coroutine[Any, Any, None]],
    progress: Callable[[float], None],
) -> None:
    """Open the windows and run `concurrency` visitors until they all stopped."""
    opened_at = time.perf_counter()
    for window in windows:
        window.opened_at = opened_at
    running = [asyncio.create_task(visitor()) for _ in range(concurrency)]
    done = asyncio.gather(*running)
    while not done.done():
        progress(min(windows[0].seconds, time.perf_counter() - opened_at))
        await asyncio.wait([done], timeout=0.5)
    await done


async def _healthz_visitor(client: httpx.AsyncClient, window: Window) -> None:
    while window.open:
        await window.timed(client.get("/healthz"))


async def _message_visitor(
    client: httpx.AsyncClient,
    agent_id: str,
    config: APIConfig,
    texts: Texts,
    windows: tuple[Window, Window],
    escalated: list[str],
) -> None:
    """One visitor after another: start a conversation, ask its questions, make way."""
    messages, starts = windows
    while messages.open:
        started = await starts.timed(_start_request(client, agent_id))
        if started is None:
            continue
        body = started.json()
        for _ in range(config.messages_per_conversation):
            if not messages.open:
                return
            reply = await messages.timed(
                _post_message(client, body["id"], body["token"], texts.next())
            )
            if reply is not None and reply.json()["conversation"]["owner"] == Owner.HUMAN:
                escalated.append(body["id"])  # the team has it now: the AI answers no more
                break


def _start_request(client: httpx.AsyncClient, agent_id: str) -> Awaitable[httpx.Response]:
    return client.post(f"/api/v1/agents/{agent_id}/conversations", json={"channel": CHANNEL})


async def _start(client: httpx.AsyncClient, agent_id: str) -> tuple[str, str]:
    response = await _start_request(client, agent_id)
    response.raise_for_status()
    body = response.json()
    return body["id"], body["token"]


def _post_message(
    client: httpx.AsyncClient, conversation_id: str, token: str, text: str
) -> Awaitable[httpx.Response]:
    return client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": text},
        headers={"Authorization": f"Bearer {token}"},
    )


def time_encoders(texts: Sequence[str], decider: str) -> EncoderCeiling:
    """Encode each text with every encoder a message goes through, on as many threads as this
    process has CPUs, as the server's request threads do; fresh encoders, distinct texts."""
    from handoff.decide.encoder import E5Encoder

    encoders: list[tuple[str, Encoder]] = [("MiniLM", Encoder())]
    if decider == "learned":
        encoders.append(("e5", E5Encoder()))
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1

    def one(text: str) -> float:
        started = time.perf_counter()
        for _, encoder in encoders:
            encoder.encode([text])
        return 1000 * (time.perf_counter() - started)

    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        latency = list(pool.map(one, texts))
        seconds = time.perf_counter() - started
    return EncoderCeiling(
        len(texts), threads, tuple(name for name, _ in encoders), seconds, latency
    )
