"""`handoff bench sse`: memory per open live stream and a message's latency beside them.

The run lives in `handoff.benchmarks.sse`; this module reads options, shows progress on
stderr and renders a Rich table (stdout) or JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from handoff.cli.evaluate import DATABASE_URL_OPTION, _emit, _run_in_phases, _table, _whole_ms

if TYPE_CHECKING:
    from handoff.benchmarks.sse import SSEResult


def bench_sse_command(
    streams: int = typer.Option(
        1000, "--streams", min=1, max=5000, help="Visitors' streams to open at once."
    ),
    messages: int = typer.Option(
        30, "--messages", min=1, max=500, help="Probe messages timed with and without them."
    ),
    rounds: int = typer.Option(
        3, "--rounds", min=1, max=20, help="Alternations of the probe without and with them."
    ),
    database_url: str | None = DATABASE_URL_OPTION,
    timeout: float = typer.Option(
        300.0, "--timeout", min=1, help="Seconds to wait for the server and for the streams."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
) -> None:
    """Open many live streams on one `handoff serve` (127.0.0.1); time a message beside them."""
    from handoff.benchmarks.sse import SSEConfig, run_sse_benchmark

    config = SSEConfig(
        streams=streams,
        messages=messages,
        rounds=rounds,
        database_url=database_url,
        timeout_seconds=timeout,
    )
    result = _run_in_phases(lambda tell: run_sse_benchmark(config, progress=tell))
    _emit(result, as_json, render_sse)


def render_sse(result: SSEResult, console: Console) -> None:
    """Print the benchmark table."""
    table = _table(
        f"Live streams on one `handoff serve`, {result.backend}: {result.open_streams} visitors' "
        f"streams open, {result.config.messages} probe messages",
        ("probe message", "answer p50 ms", "answer p95 ms", "event p50 ms", "event p95 ms"),
    )
    for label, latency in (
        ("no other stream open", result.alone),
        (f"{result.open_streams} streams open", result.crowded),
    ):
        table.add_row(
            label,
            *(
                _whole_ms(latency.percentile(which, q))
                for which in ("answer", "event")
                for q in (0.5, 0.95)
            ),
        )
    table.caption = (
        f"server memory {result.rss_before / 2**20:,.0f} MiB → {result.rss_after / 2**20:,.0f} "
        f"MiB: {result.bytes_per_stream / 1024:,.1f} KiB per open stream; answer p50 "
        f"{result.ratio:.2f}x with the streams open; load average {result.load_average:.1f}"
    )
    console.print(table)
