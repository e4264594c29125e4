"""The `handoff` command: serve, worker, migrate and admin chores."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass

import structlog
import typer
from rich.console import Console
from rich.panel import Panel

from handoff import __version__
from handoff.settings import Settings

app = typer.Typer(help="handoff: Escalate to Human for AI support agents.", no_args_is_help=True)
console = Console()


def _configure_logging(level: str) -> None:
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(level=numeric, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(numeric))
    # Models ship inside a package: never let a library try a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _migrate(settings: Settings) -> None:
    from handoff.store.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with console.status("Applying database migrations…"):
        upgrade(settings.resolved_database_url)
    console.print(f"[green]✓[/] Database ready ({_safe_url(settings.resolved_database_url)})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@dataclass
class _Bootstrap:
    new_admin_token: str | None
    demo: object | None


async def _bootstrap(settings: Settings, with_demo: bool) -> _Bootstrap:
    from handoff.service.auth import ensure_admin_token
    from handoff.service.demo import ensure_demo
    from handoff.store.db import Database

    db = Database(settings.resolved_database_url)
    try:
        async with db.unit_of_work() as session:
            configured = settings.admin_token.get_secret_value() if settings.admin_token else None
            token = await ensure_admin_token(session, configured)
        demo = None
        if with_demo:
            async with db.unit_of_work() as session:
                demo = await ensure_demo(session, settings.data_dir)
        return _Bootstrap(new_admin_token=token, demo=demo)
    finally:
        await db.dispose()


def _print_welcome(settings: Settings, boot: _Bootstrap) -> None:
    from handoff.service.demo import DemoLogin

    url = settings.resolved_public_url
    lines = [f"[bold]handoff {__version__}[/] is starting at [link={url}]{url}[/]", ""]
    if isinstance(boot.demo, DemoLogin):
        demo = boot.demo
        lines += [
            f"Widget demo page   {url}/demo/{demo.agent_id}",
            f"Help page          {url}/help/{demo.agent_id}",
            f"Inbox              {url}/inbox",
            f"  log in as        {demo.email} / {demo.password}",
        ]
    else:
        lines.append(f"Inbox              {url}/inbox")
    lines.append(f"API docs           {url}/docs")
    if boot.new_admin_token:
        lines += [
            "",
            f"Admin API token    [bold yellow]{boot.new_admin_token}[/]",
            "  shown once: keep it, or set HANDOFF_ADMIN_TOKEN",
        ]
    console.print(Panel("\n".join(lines), title="handoff", expand=False), width=120)


@app.command()
def serve(
    demo: bool = typer.Option(False, "--demo", help="Create a demo agent on first start."),
    worker: bool = typer.Option(True, help="Run the outbox worker in this process."),
) -> None:
    """Migrate the database and start the server (with an in-process outbox worker)."""
    import uvicorn

    from handoff.service.runtime import Handoff
    from handoff.web.app import create_app

    settings = Settings()
    if not worker:
        settings.run_worker = False
    _configure_logging(settings.log_level)
    _migrate(settings)
    boot = asyncio.run(_bootstrap(settings, demo))
    _print_welcome(settings, boot)
    with console.status("Loading the language model…"):
        hf = Handoff(settings)
        _ = hf.decider
    uvicorn.run(
        create_app(hf),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
    )


@app.command("worker")
def run_worker() -> None:
    """Run an outbox worker as its own process (beside `serve --no-worker`, or several)."""
    from handoff.service.runtime import Handoff
    from handoff.web.app import build_worker

    settings = Settings()
    _configure_logging(settings.log_level)
    _migrate(settings)

    async def main() -> None:
        hf = Handoff(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        console.print("[green]✓[/] Outbox worker running; Ctrl+C stops it.")
        try:
            await build_worker(hf).run(stop)
        finally:
            await hf.close()

    asyncio.run(main())


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = Settings()
    _configure_logging(settings.log_level)
    _migrate(settings)


@app.command("admin-token")
def admin_token(label: str = typer.Option("cli", help="What the token is for.")) -> None:
    """Issue a new service admin API token and print it once."""
    from handoff.service.auth import issue_token
    from handoff.store.db import Database

    settings = Settings()
    _configure_logging(settings.log_level)
    _migrate(settings)

    async def main() -> str:
        db = Database(settings.resolved_database_url)
        try:
            async with db.unit_of_work() as session:
                return await issue_token(session, None, label)
        finally:
            await db.dispose()

    console.print(f"Admin API token: [bold yellow]{asyncio.run(main())}[/]")


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


if __name__ == "__main__":
    app()
