"""Setting a service up: the schema, the first admin token, the demo agent."""

from __future__ import annotations

from dataclasses import dataclass

from handoff.service.auth import ensure_admin_token, issue_token
from handoff.service.demo import DemoLogin, ensure_demo
from handoff.settings import Settings
from handoff.store.db import Database
from handoff.store.migrate import upgrade


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """What a first start created that the operator must be told about."""

    new_admin_token: str | None
    demo: DemoLogin | None


def migrate_database(settings: Settings) -> None:
    """Bring the configured database to the newest schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)


async def bootstrap(settings: Settings, *, with_demo: bool) -> Bootstrap:
    """Store the admin token (or create one), and the demo agent when asked."""
    db = Database(settings.resolved_database_url)
    try:
        async with db.unit_of_work() as session:
            configured = settings.admin_token.get_secret_value() if settings.admin_token else None
            token = await ensure_admin_token(session, configured)
        demo = None
        if with_demo:
            async with db.unit_of_work() as session:
                demo = await ensure_demo(session, settings.data_dir)
        return Bootstrap(new_admin_token=token, demo=demo)
    finally:
        await db.dispose()


async def new_admin_token(settings: Settings, label: str) -> str:
    """Issue another service admin token."""
    db = Database(settings.resolved_database_url)
    try:
        async with db.unit_of_work() as session:
            return await issue_token(session, None, label)
    finally:
        await db.dispose()
