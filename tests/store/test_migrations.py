"""The migrations build exactly the schema the models describe, on both databases, and the
message search covers what was written before it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text as sql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from handoff.store import repositories as repo
from handoff.store.db import Database
from handoff.store.migrate import alembic_config, upgrade
from handoff.store.models import (
    Base,
    Conversation,
    Escalation,
    Message,
    Ticket,
    Workspace,
    described_by_models,
    new_id,
    utcnow,
)
from tests.conftest import BACKENDS, fresh_database_url


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"include_name": described_by_models})
    return list(compare_metadata(context, Base.metadata))


async def _schema_diff(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_diff)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_match_the_models(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, tmp_path)
    upgrade(url)
    upgrade(url)  # a second run is a no-op
    assert asyncio.run(_schema_diff(url)) == []


async def _write_ticket(url: str, text: str) -> None:
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            workspace = Workspace(name="Old")
            await repo.add(session, workspace)
            # The agent as revision 0007 knew it: the model has columns added since.
            agent_id = new_id()
            await session.execute(
                sql(
                    "INSERT INTO agents (id, workspace_id, name, channels, created_at) "
                    "VALUES (:id, :workspace_id, 'Bot', '[]', :now)"
                ),
                {"id": agent_id, "workspace_id": workspace.id, "now": utcnow()},
            )
            chat = Conversation(agent_id=agent_id, channel="widget", token_hash="old", stretch=1)
            await repo.add(session, chat)
            escalation = Escalation(
                conversation_id=chat.id,
                stretch=1,
                platform="native",
                status="open",
                subject="Old",
                summary="",
            )
            await repo.add(session, escalation)
            ticket = Ticket(
                escalation_id=escalation.id, workspace_id=workspace.id, conversation_id=chat.id
            )
            message = Message(conversation_id=chat.id, role="user", text=text)
            await repo.add(session, ticket, message)
    finally:
        await db.dispose()


async def _found(url: str, text: str) -> int:
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            query = repo.TicketQuery(workspace_id=None, status=None, text=text)
            return len(await repo.ticket_page(session, query, None, 10))
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_covers_messages_from_before_its_migration(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, tmp_path)
    command.upgrade(alembic_config(url), "0007")
    asyncio.run(_write_ticket(url, "An antediluvian invoice"))
    upgrade(url)
    assert asyncio.run(_found(url, "antediluvian")) == 1
    command.downgrade(alembic_config(url), "0007")
    upgrade(url)
    assert asyncio.run(_found(url, "antediluvian")) == 1
