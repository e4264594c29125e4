"""`handoff bench sse`: what open live streams cost one `handoff serve` process.

One run, all on 127.0.0.1: a `handoff serve --demo` process on a throw-away database (SQLite
in a temporary directory, or an empty one given by URL). A probe visitor sends messages one
after the other, each timed from the request to its answer and to the message arriving on the
probe's own stream: with no other stream open, then with `streams` visitors' streams open at
once, each on a conversation of its own, in `rounds` alternating rounds so that a change in the
machine's load weighs on both alike. The server's resident memory before and after opening the
streams the first time gives the memory per open stream.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from handoff.benchmarks.figures import nearest_rank
from handoff.benchmarks.server import BenchServer, demo_server, rate_limits

Progress = Callable[[str, int, int], None]  # told the phase's label, how far it is, of how many
PROBE_TEXT = "How do I reset my password?"
# A stream is open once its response headers arrived; SSE sends them before any event.
HEADERS_END = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class SSEConfig:
    streams: int = 1000
    messages: int = 30  # with the streams open, and as many without; split over the rounds
    rounds: int = 3
    database_url: str | None = None  # None: SQLite in a temporary directory
    timeout_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class Latency:
    """One probe message after another: request to answer, and request to its event."""

    answer_ms: list[float]
    event_ms: list[float]

    @classmethod
    def joined(cls, parts: list[Latency]) -> Latency:
        return cls(
            [ms for part in parts for ms in part.answer_ms],
            [ms for part in parts for ms in part.event_ms],
        )

    def percentile(self, which: str, q: float) -> float:
        return nearest_rank(self.answer_ms if which == "answer" else self.event_ms, q)

    def to_json(self) -> dict[str, float]:
        return {
            f"{which}_{name}_ms": round(self.percentile(which, q), 1)
            for which in ("answer", "event")
            for name, q in (("p50", 0.5), ("p95", 0.95))
        } | {"answer_mean_ms": round(statistics.fmean(self.answer_ms), 1)}


@dataclass(frozen=True, slots=True)
class SSEResult:
    config: SSEConfig
    backend: str
    open_streams: int  # streams whose headers arrived and that stayed open to the end
    rss_before: int  # the server's resident memory, bytes, before opening them
    rss_after: int  # and with them open
    alone: Latency  # no stream open but the probe's
    crowded: Latency  # `open_streams` open beside it
    load_average: float  # the machine's, over the minute before the run ended

    @property
    def bytes_per_stream(self) -> float:
        return (self.rss_after - self.rss_before) / max(self.open_streams, 1)

    @property
    def ratio(self) -> float:
        """Median answer time with the streams open over the median without."""
        return self.crowded.percentile("answer", 0.5) / self.alone.percentile("answer", 0.5)

    def to_json(self) -> dict[str, Any]:
        return {
            "streams": self.config.streams,
            "open_streams": self.open_streams,
            "messages": self.config.messages,
            "rounds": self.config.rounds,
            "database": self.backend,
            "load_average": round(self.load_average, 2),
            "rss_before_mib": round(self.rss_before / 2**20, 1),
            "rss_after_mib": round(self.rss_after / 2**20, 1),
            "kib_per_stream": round(self.bytes_per_stream / 1024, 1),
            "alone": self.alone.to_json(),
            "crowded": self.crowded.to_json(),
            "answer_p50_ratio": round(self.ratio, 2),
        }


async def run_sse_benchmark(config: SSEConfig, *, progress: Progress | None = None) -> SSEResult:
    """Start a server, time the probe alone, open the streams, time it again."""
    tell = progress or (lambda phase, done, total: None)
    with tempfile.TemporaryDirectory(prefix="handoff-bench-sse-") as data_dir:
        async with (
            demo_server(
                Path(data_dir),
                database_url=config.database_url,
                timeout_seconds=config.timeout_seconds,
                # Every stream's conversation comes from 127.0.0.1: no limit is what is measured.
                environment=rate_limits(""),
            ) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        ):
            probe = await _conversation(client, server.agent_id)
            others = await _conversations(client, server, config.streams, tell)
            await _messages(server, probe, 5, tell)  # warm-up: caches, pools
            per_round = max(1, config.messages // config.rounds)
            alone: list[Latency] = []
            crowded: list[Latency] = []
            memory: list[tuple[int, int]] = []
            for _ in range(config.rounds):
                alone.append(await _messages(server, probe, per_round, tell))
                before = server.rss()
                async with _open_streams(server, others, config, tell) as streams:
                    await asyncio.sleep(2)  # let every stream settle into its wait
                    memory.append((before, server.rss()))
                    crowded.append(await _messages(server, probe, per_round, tell))
                    still_open = sum(not task.done() for task in streams)
    # Memory freed by closing streams stays with the process for the next ones: only the first
    # opening shows what they take.
    rss_before, rss_after = memory[0]
    return SSEResult(
        config=config,
        backend="sqlite" if config.database_url is None else "postgresql",
        open_streams=still_open,
        rss_before=rss_before,
        rss_after=rss_after,
        alone=Latency.joined(alone),
        crowded=Latency.joined(crowded),
        load_average=os.getloadavg()[0],
    )


@dataclass(frozen=True, slots=True)
class _Conversation:
    id: str
    token: str

    @property
    def stream_request(self) -> bytes:
        return (
            f"GET /api/v1/conversations/{self.id}/events HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()


async def _conversation(client: httpx.AsyncClient, agent_id: str) -> _Conversation:
    response = await client.post(
        f"/api/v1/agents/{agent_id}/conversations", json={"channel": "widget"}
    )
    response.raise_for_status()
    body = response.json()
    return _Conversation(body["id"], body["token"])


async def _messages(
    server: BenchServer, probe: _Conversation, count: int, tell: Progress
) -> Latency:
    """Send `count` messages one after the other; time each answer and each event."""
    answers: list[float] = []
    events: list[float] = []
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    client = httpx.AsyncClient(base_url=server.url, timeout=30)
    try:
        writer.write(probe.stream_request)
        await writer.drain()
        await reader.readuntil(HEADERS_END)
        for n in range(count):
            text = f"{PROBE_TEXT} #{secrets.token_hex(4)}"
            started = time.perf_counter()
            arrived = asyncio.create_task(_until_text(reader, json.dumps(text)))
            response = await client.post(
                f"/api/v1/conversations/{probe.id}/messages",
                json={"text": text},
                headers={"Authorization": f"Bearer {probe.token}"},
            )
            response.raise_for_status()
            answers.append(1000 * (time.perf_counter() - started))
            await asyncio.wait_for(arrived, 30)
            events.append(1000 * (arrived.result() - started))
            tell("Messages", n + 1, count)
    finally:
        writer.close()
        await client.aclose()
    return Latency(answers, events)


async def _until_text(reader: asyncio.StreamReader, quoted: str) -> float:
    """Read the stream until a data line carries `quoted`; return when (perf_counter)."""
    needle = quoted.encode()
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the probe's stream closed")
        if needle in line:
            return time.perf_counter()


async def _conversations(
    client: httpx.AsyncClient, server: BenchServer, count: int, tell: Progress
) -> list[_Conversation]:
    """Open `count` conversations, a few dozen at a time."""
    opening = asyncio.Semaphore(50)
    opened = 0

    async def one() -> _Conversation:
        nonlocal opened
        async with opening:
            conversation = await _conversation(client, server.agent_id)
        opened += 1
        tell("Conversations", opened, count)
        return conversation

    return list(await asyncio.gather(*(one() for _ in range(count))))


@asynccontextmanager
async def _open_streams(
    server: BenchServer, conversations: list[_Conversation], config: SSEConfig, tell: Progress
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Open a visitor's stream on each conversation for the block."""
    ready = [asyncio.Event() for _ in conversations]
    tasks = [
        asyncio.create_task(_hold(server.port, conversation, event))
        for conversation, event in zip(conversations, ready, strict=True)
    ]
    try:
        deadline = time.monotonic() + config.timeout_seconds
        while (done := sum(event.is_set() for event in ready)) < len(ready):
            tell("Streams", done, len(ready))
            if time.monotonic() > deadline or all(task.done() for task in tasks):
                break
            await asyncio.sleep(0.2)
        tell("Streams", sum(event.is_set() for event in ready), len(ready))
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _hold(port: int, conversation: _Conversation, ready: asyncio.Event) -> None:
    """Open one stream and keep reading it (pings, its events) until cancelled."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(conversation.stream_request)
        await writer.drain()
        await reader.readuntil(HEADERS_END)
        ready.set()
        while await reader.read(65536):
            pass
    finally:
        writer.close()
