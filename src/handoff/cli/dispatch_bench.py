"""`handoff bench dispatch`: escalations to tickets against a fake helpdesk on 127.0.0.1.

The run lives in `handoff.benchmarks.dispatch`; this module reads options, shows progress on
stderr and renders a Rich table (stdout) or JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import TYPE_CHECKING

import structlog
import typer
from rich.console import Console

from handoff.cli.evaluate import _fail, _progress, _quiet, _table

if TYPE_CHECKING:
    from handoff.benchmarks.dispatch import DispatchResult


def bench_dispatch_command(
    tickets: int = typer.Option(
        200, "--tickets", min=1, help="Users who ask for a person at once."
    ),
    latency_ms: float = typer.Option(
        200.0, "--latency-ms", min=0, help="How long the fake helpdesk takes to create a ticket."
    ),
    limit_per_min: int = typer.Option(
        700, "--limit-per-min", min=1, help="Calls a minute the fake accepts before its 429s."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Outbox worker loops to run."),
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="An empty, throw-away database (postgresql+asyncpg://...); default: SQLite in a "
        "temporary directory.",
    ),
    timeout: float = typer.Option(
        300.0, "--timeout", min=1, help="Seconds to wait for the tickets before counting losses."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
) -> None:
    """Dispatch tickets to a slow, rate-limited fake helpdesk beside a plain sequential loop."""
    from handoff.benchmarks.dispatch import DispatchConfig, run_dispatch_benchmark

    _quiet()
    _silence_job_logs()
    config = DispatchConfig(
        tickets=tickets,
        latency_ms=latency_ms,
        limit_per_min=limit_per_min,
        workers=workers,
        database_url=database_url,
        timeout_seconds=timeout,
    )
    with _progress() as bar:
        task = bar.add_task("Tickets", total=tickets)
        try:
            result = asyncio.run(
                run_dispatch_benchmark(
                    config, progress=lambda created: bar.update(task, completed=created)
                )
            )
        except OSError as error:
            raise _fail(f"cannot reach the database or bind 127.0.0.1: {error}") from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
    else:
        render_dispatch(result, Console(emoji=False))


def _silence_job_logs() -> None:
    # One log line per job would bury the progress bar; warnings (retries, 429s) still show,
    # on stderr, so that stdout holds only the figures.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def render_dispatch(result: DispatchResult, console: Console) -> None:
    """Print the benchmark table."""
    figures = result.to_json()
    table = _table(
        f"Ticket dispatch, {result.escalations} escalations at once, {result.config.workers} "
        f"worker(s), {result.backend}; fake helpdesk: {result.config.latency_ms:g} ms a ticket, "
        f"{result.config.limit_per_min}/min"
    )
    for col in ("run", "tickets", "tickets/min", "share of limit", "p50 ms", "p99 ms"):
        table.add_column(col, justify="left" if col == "run" else "right")
    table.add_row(
        "handoff outbox",
        str(result.dispatch.tickets),
        f"{result.dispatch.per_minute:,.0f}",
        f"{100 * result.share_of_limit:.0f}%",
        _cell(figures["p50_ms"]),
        _cell(figures["p99_ms"]),
    )
    table.add_row(
        "sequential httpx loop",
        str(result.baseline.tickets),
        f"{result.baseline.per_minute:,.0f}",
        f"{100 * result.baseline.per_minute / result.config.limit_per_min:.0f}%",
        "—",
        "—",
    )
    table.caption = (
        f"lost {result.lost}, duplicated {result.duplicated}, 429s {result.refused}; "
        f"outbox / loop = {figures['ratio_to_baseline']}x"
    )
    console.print(table)


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"
