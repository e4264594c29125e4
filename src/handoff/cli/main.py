"""The `handoff` command: serve, worker, migrate and admin chores."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import TYPE_CHECKING

import structlog
import typer
from rich.console import Console

from handoff import __version__
from handoff.cli import api_bench, dispatch_bench, evaluate, sse_bench, train
from handoff.settings import Settings

if TYPE_CHECKING:
    from handoff.service.setup import Bootstrap

app = typer.Typer(help="handoff: Escalate to Human for AI support agents.", no_args_is_help=True)
console = Console()


def _configure_logging(level: str) -> None:
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(level=numeric, format="%(message)s")
    for chatty in ("alembic", "sentence_transformers", "transformers", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(numeric))
    # Models ship inside a package: never let a library try a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _migrate(settings: Settings) -> None:
    from handoff.service.setup import migrate_database

    with console.status("Applying database migrations…"):
        migrate_database(settings)
    console.print(f"[green]✓[/] Database ready ({_safe_url(settings.resolved_database_url)})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _print_welcome(settings: Settings, boot: Bootstrap) -> None:
    url = settings.resolved_public_url
    lines = [f"[bold]handoff {__version__}[/] is starting at [link={url}]{url}[/]", ""]
    if boot.demo is not None:
        demo = boot.demo
        lines += [
            f"Widget demo page   {url}/demo/{demo.agent_id}",
            f"Help page          {url}/help/{demo.agent_id}",
            f"Inbox              {url}/inbox",
            f"  log in as        {demo.email} / {demo.password}",
        ]
    else:
        lines.append(f"Inbox              {url}/inbox")
    lines.append(f"Settings           {url}/settings   (the same login, as an admin)")
    lines.append(f"API docs           {url}/docs")
    if boot.new_admin_token:
        lines += [
            "",
            f"Admin API token    [bold yellow]{boot.new_admin_token}[/]",
            "  shown once: keep it, or set HANDOFF_ADMIN_TOKEN",
        ]
    # Plain lines, not a box: URLs must stay whole for copying, however narrow the terminal.
    console.print()
    for line in lines:
        console.print(line, soft_wrap=True)
    console.print()


@app.command()
def serve(
    demo: bool = typer.Option(False, "--demo", help="Create a demo agent on first start."),
    worker: bool = typer.Option(True, help="Run the outbox worker in this process."),
) -> None:
    """Migrate the database and start the server (with an in-process outbox worker)."""
    import uvicorn

    from handoff.service.runtime import Handoff
    from handoff.service.setup import bootstrap
    from handoff.web.app import create_app

    settings = Settings()
    if not worker:
        settings.run_worker = False
    _configure_logging(settings.log_level)
    _migrate(settings)
    boot = asyncio.run(bootstrap(settings, with_demo=demo))
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
        # The client address is handoff's to decide (HANDOFF_TRUSTED_PROXY_HEADER): uvicorn
        # would otherwise believe X-Forwarded-For from any local process.
        proxy_headers=False,
    )


@app.command("worker")
def run_worker() -> None:
    """Run an outbox worker as its own process (beside `serve --no-worker`, or several)."""
    from handoff.service.jobs import build_worker
    from handoff.service.runtime import Handoff

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
            async with hf.listening():
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
    from handoff.service.setup import new_admin_token

    settings = Settings()
    _configure_logging(settings.log_level)
    _migrate(settings)

    token = asyncio.run(new_admin_token(settings, label))
    console.print(f"Admin API token: [bold yellow]{token}[/]")


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


app.command("eval")(evaluate.eval_command)
app.command("train")(train.train_command)
evaluate.bench_app.command("dispatch")(dispatch_bench.bench_dispatch_command)
evaluate.bench_app.command("sse")(sse_bench.bench_sse_command)
evaluate.bench_app.command("api")(api_bench.bench_api_command)
app.add_typer(evaluate.bench_app, name="bench")

if __name__ == "__main__":
    app()
