"""Engine and units of work. Repositories flush; only a unit of work commits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

# Execution option marking a read-only unit of work's connection (see `Database.read`).
READ_ONLY = "handoff_read_only"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine with the per-backend settings that keep writes safe."""
    if not is_sqlite(url):
        return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself (below) instead of the driver's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            # A reader never upgrades, so a deferred transaction is safe; under WAL it reads a
            # snapshot without waiting for the writer.
            conn.exec_driver_sql("BEGIN")
            return
        # Take the write lock up front: a deferred transaction that later upgrades can fail
        # with "database is locked" without waiting for busy_timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class ReadOnlyViolation(RuntimeError):
    """A read-only unit of work tried to change something: a bug, never a user error."""


class _ReadOnlySession(Session):
    def flush(self, objects: Any = None) -> None:
        if self.new or self.dirty or self.deleted:
            raise ReadOnlyViolation("a read-only unit of work tried to write; use unit_of_work")
        super().flush(objects)


class Database:
    """One engine and its session factories: one for units of work, one for reads.

    `on_commit` is called with a unit of work's session info once it has committed: what the
    work noted there for after the commit (the live streams to wake) happens only then.
    """

    def __init__(
        self, url: str, *, on_commit: Callable[[dict[Any, Any]], None] | None = None
    ) -> None:
        self.url = url
        self.on_commit = on_commit
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.readers = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}),
            expire_on_commit=False,
            sync_session_class=_ReadOnlySession,
        )

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def unit_of_work(self, *, quiet: bool = False) -> AsyncIterator[AsyncSession]:
        """Open a transaction that commits when the block succeeds and rolls back otherwise.

        A `quiet` one does not call `on_commit`: for writes nobody waits for (an outbox
        worker's lease), which would otherwise wake every waiter for nothing."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            if self.on_commit is not None and not quiet:
                self.on_commit(session.info)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Open a transaction that only reads: on SQLite it takes no write lock, so readers
        never queue behind a writer (nor a writer behind them). Its session refuses to flush
        a change."""
        async with self.readers() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
