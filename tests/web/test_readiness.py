"""`/readyz`: 200 once the database answers with this release's schema, 503 with the reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from alembic import command

from handoff.service.runtime import Handoff
from handoff.settings import Settings
from handoff.store.migrate import alembic_config, upgrade
from tests.conftest import BACKENDS, Server, free_port, fresh_database_url


def test_a_running_server_is_ready(any_server: Server) -> None:
    response = httpx.get(f"{any_server.url}/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


def _problem(url: str, tmp_path: Path) -> str | None:
    async def ask() -> str | None:
        hf = Handoff(Settings(database_url=url, data_dir=tmp_path, secret_key="k" * 32))
        try:
            return await hf.readiness_problem()
        finally:
            await hf.close()

    return asyncio.run(ask())


@pytest.mark.parametrize("backend", BACKENDS)
def test_pending_migrations_make_it_not_ready(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, tmp_path)
    problem = _problem(url, tmp_path)
    assert problem is not None and "migrations pending" in problem
    assert "no revision" in problem
    command.upgrade(alembic_config(url), "0004")
    problem = _problem(url, tmp_path)
    assert problem is not None and "at 0004" in problem and "handoff migrate" in problem
    upgrade(url)
    assert _problem(url, tmp_path) is None


def test_a_database_that_does_not_answer_makes_it_not_ready(tmp_path: Path) -> None:
    closed = f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{free_port()}/none"
    problem = _problem(closed, tmp_path)
    assert problem is not None and problem.startswith("the database does not answer")
