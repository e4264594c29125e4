"""`handoff bench api` as a user runs it: a server, visitors at two concurrencies, the figures
alone on stdout."""

from __future__ import annotations

import json

from tests.cli.test_eval_command import run_cli


def test_it_answers_messages_beside_healthz_and_the_encoders() -> None:
    done = run_cli(
        *("bench", "api", "--concurrency", "2", "--concurrency", "3", "--seconds", "3"),
        *("--messages-per-conversation", "2", "--encoder-texts", "4", "--json"),
    )

    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["database"] == "sqlite"
    assert [level["concurrency"] for level in figures["levels"]] == [2, 3]
    for level in figures["levels"]:
        for run in ("healthz", "messages", "conversations"):
            row = level[run]
            assert row["failures"] == {}, (run, row)  # the raised limits let everything in
            assert row["answered"] > 0
            assert 0 < row["p50_ms"] <= row["p99_ms"]
            assert row["per_second"] > 0
        # Two questions a visitor: a visitor starts a conversation for every two messages.
        assert level["conversations"]["answered"] * 2 >= level["messages"]["answered"]
    encoder = figures["encoder"]
    assert encoder["texts"] == 4 and encoder["per_second"] > 0
    assert encoder["encoders"][0] == "MiniLM"
    assert figures["rate_limits"] == "100000/minute"
