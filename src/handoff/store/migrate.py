"""Apply Alembic migrations programmatically (`handoff migrate`, and `serve` at start)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from handoff.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema."""
    command.upgrade(alembic_config(url), "head")


@cache
def head_revision() -> str | None:
    """The newest revision this release's migrations know."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def schema_problem(db: Database) -> str | None:
    """Say why the database cannot serve this release yet, or None when it can."""
    try:
        async with db.engine.connect() as connection:
            current = await connection.run_sync(_revision_of)
    except (SQLAlchemyError, OSError) as error:
        return f"the database does not answer ({type(error).__name__})"
    if current != head_revision():
        return f"migrations pending: the database is at {current or 'no revision'}, " + (
            f"this release needs {head_revision()}; run `handoff migrate`"
        )
    return None
