"""`handoff bench dispatch`: escalations to tickets against a fake helpdesk on 127.0.0.1.

The run lives in `handoff.benchmarks.dispatch`; this module reads options, shows progress on
stderr and renders a Rich table (stdout) or JSON.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import structlog
import typer
from rich.console import Console

from handoff.cli.evaluate import (
    DATABASE_URL_OPTION,
    _emit,
    _progress,
    _run,
    _table,
    _whole_ms,
)

if TYPE_CHECKING:
    from handoff.benchmarks.dispatch import DispatchResult
    from handoff.benchmarks.isolation import IsolationResult


DEFAULT_TICKETS = 200
# What the command says when either run cannot start (an OSError).
UNREACHABLE = "cannot reach the database or bind 127.0.0.1"


def bench_dispatch_command(
    tickets: int = typer.Option(
        DEFAULT_TICKETS, "--tickets", min=1, help="Users who ask for a person at once."
    ),
    latency_ms: float = typer.Option(
        200.0, "--latency-ms", min=0, help="How long the fake helpdesk takes to create a ticket."
    ),
    limit_per_min: int = typer.Option(
        700, "--limit-per-min", min=1, help="Calls a minute the fake accepts before its 429s."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Outbox worker loops to run."),
    database_url: str | None = DATABASE_URL_OPTION,
    timeout: float = typer.Option(
        300.0, "--timeout", min=1, help="Seconds to wait for the tickets before counting losses."
    ),
    pace: bool = typer.Option(
        True,
        "--pace/--no-pace",
        help="Tell the integration the fake's limit, as an admin sets their plan's figure; "
        "--no-pace finds the limit by its 429s.",
    ),
    baseline_tickets: int | None = typer.Option(
        None, "--baseline-tickets", min=1, help="Tickets the plain loop creates; default: as many."
    ),
    rate_per_min: float | None = typer.Option(
        None,
        "--rate-per-min",
        min=0.1,
        help="Users ask one after the other at this steady rate instead of all at once; the "
        "table adds what the service takes beyond the helpdesk's own latency.",
    ),
    isolation: bool = typer.Option(
        False,
        "--isolation",
        help="Instead: the delay of inbox and helpdesk tickets while another agent's helpdesk "
        "hangs, beside the delay with none hanging (--tickets users each, default 5).",
    ),
    hanging_tickets: int = typer.Option(
        20, "--hanging-tickets", min=1, help="With --isolation: users of the hanging helpdesk."
    ),
    helpdesk_timeout: float = typer.Option(
        20.0,
        "--helpdesk-timeout",
        min=1,
        help="With --isolation: the service's helpdesk timeout, which every hanging call runs to.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
) -> None:
    """Dispatch tickets to a slow, rate-limited fake helpdesk beside a plain sequential loop."""
    from handoff.benchmarks.dispatch import DispatchConfig, run_dispatch_benchmark
    from handoff.benchmarks.isolation import IsolationConfig, run_isolation_benchmark

    _silence_job_logs()
    if isolation:
        isolated = IsolationConfig(
            tickets=5 if tickets == DEFAULT_TICKETS else tickets,
            hanging_tickets=hanging_tickets,
            latency_ms=latency_ms,
            helpdesk_timeout_seconds=helpdesk_timeout,
            database_url=database_url,
        )
        _emit(_run(run_isolation_benchmark(isolated), UNREACHABLE), as_json, render_isolation)
        return
    config = DispatchConfig(
        tickets=tickets,
        latency_ms=latency_ms,
        limit_per_min=limit_per_min,
        workers=workers,
        database_url=database_url,
        timeout_seconds=timeout,
        pace=pace,
        baseline_tickets=baseline_tickets,
        rate_per_min=rate_per_min,
    )
    with _progress() as bar:
        task = bar.add_task("Tickets", total=tickets)
        result = _run(
            run_dispatch_benchmark(config, progress=lambda done: bar.update(task, completed=done)),
            UNREACHABLE,
        )
    _emit(result, as_json, render_dispatch)


def render_isolation(result: IsolationResult, console: Console) -> None:
    """Print the isolation table: each run's ticket delays."""
    figures = result.to_json()
    table = _table(
        f"Ticket delay while another helpdesk hangs, {result.backend}; one worker, "
        f"{figures['concurrency']} slots, {figures['per_integration']} per integration; "
        f"{result.config.hanging_tickets} tickets to a helpdesk that answers none within "
        f"{result.config.helpdesk_timeout_seconds:g} s",
        ("run", "inbox median ms", "inbox max ms", "helpdesk median ms", "helpdesk max ms"),
    )
    for name, run in (("no helpdesk hanging", "calm"), ("one helpdesk hanging", "hanging")):
        row = figures[run]
        table.add_row(
            name,
            _whole_ms(row["inbox_median_ms"]),
            _whole_ms(row["inbox_max_ms"]),
            _whole_ms(row["helpdesk_median_ms"]),
            _whole_ms(row["helpdesk_max_ms"]),
        )
    hanging = figures["hanging"]
    table.caption = (
        f"{hanging['inbox_tickets']} inbox and {hanging['helpdesk_tickets']} fine-helpdesk "
        f"tickets of {result.config.tickets} each; hanging calls in hand at the end: "
        f"{hanging['hanging_calls_in_hand']}"
    )
    console.print(table)


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
    rate = result.config.rate_per_min
    pace = "at once" if rate is None else f"at {rate:g} a minute"
    table = _table(
        f"Ticket dispatch, {result.escalations} escalations {pace}, {result.config.workers} "
        f"worker(s), {result.backend}; fake helpdesk: {result.config.latency_ms:g} ms a ticket, "
        f"{result.config.limit_per_min}/min",
        ("run", "tickets", "tickets/min", "share of limit", "p50 ms", "p99 ms"),
    )
    table.add_row(
        "handoff outbox",
        str(result.dispatch.tickets),
        f"{result.dispatch.per_minute:,.0f}",
        f"{100 * result.share_of_limit:.0f}%",
        _whole_ms(figures["p50_ms"]),
        _whole_ms(figures["p99_ms"]),
    )
    table.add_row(
        "  first to last ticket",
        str(result.steady.tickets + 1 if result.steady.tickets else 0),
        f"{result.steady.per_minute:,.0f}",
        f"{100 * result.steady_share_of_limit:.0f}%",
        "—",
        "—",
    )
    table.add_row(
        "sequential httpx loop",
        str(result.baseline.tickets),
        f"{result.baseline.per_minute:,.0f}",
        f"{100 * result.baseline.per_minute / result.config.limit_per_min:.0f}%",
        "—",
        "—",
    )
    paced = "paced under the limit" if result.config.pace else "unpaced"
    beyond = {q: _whole_ms(figures[f"beyond_helpdesk_{q}_ms"]) for q in ("p50", "p99")}
    table.caption = (
        f"{paced}; lost {result.lost}, duplicated {result.duplicated}, 429s {result.refused}; "
        f"outbox / loop = {figures['ratio_to_baseline']}x; message sent to ticket, beyond the "
        f"fake's {result.config.latency_ms:g} ms: p50 {beyond['p50']} ms, p99 {beyond['p99']} ms"
    )
    console.print(table)
