"""`handoff bench sse` as a user runs it: a server, its streams held open, the figures alone on
stdout."""

from __future__ import annotations

import json

from tests.cli.test_eval_command import run_cli


def test_it_holds_the_streams_open_and_times_both_ways() -> None:
    done = run_cli("bench", "sse", "--streams", "20", "--messages", "4", "--rounds", "2", "--json")

    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert (figures["database"], figures["open_streams"]) == ("sqlite", 20)
    for run in ("alone", "crowded"):
        assert 0 < figures[run]["answer_p50_ms"] <= figures[run]["answer_p95_ms"]
        assert figures[run]["event_p50_ms"] > 0  # every probe message reached its stream
    assert figures["rss_after_mib"] >= figures["rss_before_mib"] > 0
