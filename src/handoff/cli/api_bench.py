"""`handoff bench api`: messages a second through the public API of one `handoff serve`.

The run lives in `handoff.benchmarks.api`; this module reads options, shows progress on
stderr and renders a Rich table (stdout) or JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from handoff.cli.evaluate import DATABASE_URL_OPTION, _emit, _run_in_phases, _table, _whole_ms

if TYPE_CHECKING:
    from handoff.benchmarks.api import APIResult, Tally


def bench_api_command(
    concurrency: list[int] = typer.Option(
        [50, 500],
        "--concurrency",
        min=1,
        max=5000,
        help="Visitors at once; repeat the option for several runs.",
    ),
    seconds: float = typer.Option(
        20.0, "--seconds", min=1, help="How long each phase runs (/healthz, then messages)."
    ),
    messages_per_conversation: int = typer.Option(
        4,
        "--messages-per-conversation",
        min=1,
        help="Questions each visitor asks, one after the other, before a new one takes over.",
    ),
    encoder_texts: int = typer.Option(
        200, "--encoder-texts", min=1, help="Texts sent in the run that the encoders are timed on."
    ),
    database_url: str | None = DATABASE_URL_OPTION,
    timeout: float = typer.Option(
        300.0, "--timeout", min=1, help="Seconds to wait for the server, and for one request."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
) -> None:
    """Send messages through the public API of one `handoff serve` (127.0.0.1), beside
    /healthz at the same concurrency and the encoders' own pace."""
    from handoff.benchmarks.api import APIConfig, run_api_benchmark

    config = APIConfig(
        concurrency=tuple(concurrency),
        seconds=seconds,
        messages_per_conversation=messages_per_conversation,
        encoder_texts=encoder_texts,
        database_url=database_url,
        timeout_seconds=timeout,
    )
    result = _run_in_phases(lambda tell: run_api_benchmark(config, progress=tell))
    _emit(result, as_json, render_api)


def render_api(result: APIResult, console: Console) -> None:
    """Print the benchmark table."""
    from handoff.benchmarks.api import RAISED_RATE_LIMIT
    from handoff.benchmarks.figures import percentile

    table = _table(
        f"Public API on one `handoff serve`, {result.backend}: {result.config.seconds:g} s a "
        f"phase, {result.config.messages_per_conversation} questions a visitor",
        ("run", "at once", "answered", "per second", "p50 ms", "p99 ms", "failed"),
    )
    for level in result.levels:
        at_once = str(level.concurrency)
        table.add_row("/healthz", at_once, *_cells(level.healthz))
        table.add_row("messages", at_once, *_cells(level.messages))
        table.add_row("  conversations", at_once, *_cells(level.starts))
    encoder = result.encoder
    table.add_row(
        "encoder passes",
        "—",
        f"{encoder.texts:,}",
        f"{encoder.per_second:,.1f}",
        _whole_ms(percentile(encoder.latency_ms, 0.5)),
        _whole_ms(percentile(encoder.latency_ms, 0.99)),
        "—",
    )
    escalated = sum(level.escalated for level in result.levels)
    table.caption = (
        f"rate limits raised to {RAISED_RATE_LIMIT} each (HANDOFF_RATE_LIMIT_*) for the "
        f"benchmark's server: every request comes from 127.0.0.1; encoder passes: "
        f"{' + '.join(encoder.encoders)} on each text, {encoder.threads} thread(s); "
        f"conversations handed to the team: {escalated}; load average "
        f"{result.load_average:.1f}"
    )
    console.print(table)


def _cells(tally: Tally) -> tuple[str, ...]:
    failed = ", ".join(f"{count} × {why}" for why, count in sorted(tally.failures.items()))
    return (
        f"{len(tally.latency_ms):,}",
        f"{tally.per_second:,.1f}",
        _whole_ms(tally.percentile(0.5)),
        _whole_ms(tally.percentile(0.99)),
        failed or "0",
    )
