"""One process's ear on PostgreSQL: a connection that LISTENs on a channel and hands every
payload to a callback, and connects again, with backoff, when the server goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger(__name__)

# How the listener's connection shows in pg_stat_activity.
APPLICATION_NAME = "handoff event listener"
# Errors that mean the server is gone or not there yet: wait, then connect again.
CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def driver_dsn(url: str) -> str:
    """The asyncpg DSN of a SQLAlchemy `postgresql+asyncpg://` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """Keeps one connection listening on `channel` until stopped.

    `on_payload` gets each notification's payload; `on_state` is told True once the LISTEN
    is in place and False when the connection is lost (notifications sent meanwhile are lost
    too, so the caller catches up by other means).
    """

    def __init__(
        self,
        url: str,
        channel: str,
        *,
        on_payload: Callable[[str], None],
        on_state: Callable[[bool], None],
        check_seconds: float = 15.0,
        first_backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self.dsn = driver_dsn(url)
        self.channel = channel
        self.on_payload = on_payload
        self.on_state = on_state
        self.check_seconds = check_seconds
        self.first_backoff_seconds = first_backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.listening = False

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until `stop` is set, connecting again after every loss."""
        backoff = self.first_backoff_seconds
        while not stop.is_set():
            try:
                connection = await asyncpg.connect(
                    self.dsn, timeout=10, server_settings={"application_name": APPLICATION_NAME}
                )
            except CONNECTION_ERRORS as error:
                log.warning("cannot listen for events", error=str(error), retry_in=backoff)
                await _sleep_unless(stop, backoff)
                backoff = min(2 * backoff, self.max_backoff_seconds)
                continue
            try:
                await self._listen(connection, stop)
                backoff = self.first_backoff_seconds
            except CONNECTION_ERRORS as error:
                log.warning("lost the event listener's connection", error=str(error))
            finally:
                if self.listening:
                    self.listening = False
                    self.on_state(False)
                await _close(connection)

    async def _listen(self, connection: Any, stop: asyncio.Event) -> None:
        """Listen on `connection` until `stop` or until the connection is lost."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(
            self.channel, lambda _connection, _pid, _channel, payload: self.on_payload(payload)
        )
        self.listening = True
        self.on_state(True)
        log.info("listening for events", channel=self.channel)
        while not stop.is_set() and not lost.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, lost), self.check_seconds)
            if not stop.is_set() and not lost.is_set():
                # A connection silently dropped on the way (no reset) never says it is lost.
                await connection.fetchval("SELECT 1", timeout=5)
        if lost.is_set():
            raise ConnectionResetError("the server closed the connection")


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _close(connection: Any) -> None:
    """Close politely if the server still answers, else just drop the socket."""
    try:
        await asyncio.wait_for(connection.close(), 5)
    except Exception:
        connection.terminate()
