"""`handoff bench dispatch` as a user runs it: the figures alone on stdout."""

from __future__ import annotations

import json

from tests.cli.test_eval_command import run_cli


def test_json_is_the_only_thing_on_stdout() -> None:
    done = run_cli(
        "bench", "dispatch", "--tickets", "4", "--latency-ms", "10", "--timeout", "60", "--json"
    )

    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert (figures["escalations"], figures["created"]) == (4, 4)
    assert (figures["lost"], figures["duplicated"]) == (0, 0)
    assert figures["database"] == "sqlite"
