"""`handoff bench decide`: percentiles, distinct texts, one core, and the JSON it prints."""

from __future__ import annotations

import csv
import os
import threading
from pathlib import Path

import pytest

from handoff.decide import Encoder
from handoff.domain import Decision, DecisionContext, Message
from handoff.evaluation.benchmark import (
    BUILTIN_MESSAGES,
    EARLIER_TURNS,
    WARMUP_TEXTS,
    bench_texts,
    latency,
    one_core,
    run_benchmark,
)


class CountingDecider:
    """Stay on everything, counting the calls."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.histories: list[tuple[Message, ...]] = []

    def decide(self, ctx: DecisionContext) -> Decision:
        self.messages.append(ctx.message)
        self.histories.append(tuple(ctx.history))
        return Decision.stay()


def test_latency_percentiles_in_milliseconds() -> None:
    lat = latency([0.001] * 98 + [0.010, 0.100])
    assert lat.n == 100
    assert lat.p50_ms == pytest.approx(1.0)
    assert lat.mean_ms == pytest.approx(2.08)
    assert 10.0 <= lat.p99_ms <= 100.0
    assert lat.per_second == pytest.approx(100 / 0.208, rel=1e-3)


def test_builtin_texts_are_distinct_and_never_warm_up_texts() -> None:
    texts = bench_texts(None, 500, seed=0)
    assert len(texts) == len(set(texts)) >= 45
    assert not set(texts) & set(WARMUP_TEXTS)
    assert set(texts) <= set(BUILTIN_MESSAGES)


def test_texts_from_a_csv_are_a_seeded_sample_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "text", "reason", "escalate", "ambiguous"])
        for i in range(40):
            writer.writerow(["a", f"message {i % 30}", "no_escalation", 0, 0])
    texts = bench_texts(path, 10, seed=3)
    assert len(texts) == len(set(texts)) == 10
    assert texts == bench_texts(path, 10, seed=3)
    assert len(bench_texts(path, 100, seed=3)) == 30


def test_duplicate_texts_are_refused(encoder: Encoder) -> None:
    with pytest.raises(ValueError, match="distinct"):
        run_benchmark(["a", "a"], CountingDecider(), encoder)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this OS")
def test_one_core_pins_every_thread_and_restores() -> None:
    # A thread started before the pinning stands for the pools numpy's BLAS and the encoders
    # start at import: it must not go on working on another core.
    started, stop = threading.Event(), threading.Event()
    native_ids: list[int] = []

    def pool_thread() -> None:
        native_ids.append(threading.get_native_id())
        started.set()
        stop.wait()

    thread = threading.Thread(target=pool_thread)
    thread.start()
    started.wait()
    (tid,) = native_ids
    before = os.sched_getaffinity(0), os.sched_getaffinity(tid)
    try:
        with one_core() as cpu:
            assert os.sched_getaffinity(0) == {cpu}
            assert os.sched_getaffinity(tid) == {cpu}
        assert (os.sched_getaffinity(0), os.sched_getaffinity(tid)) == before
    finally:
        stop.set()
        thread.join()


def test_run_times_every_text_once_after_warm_up(encoder: Encoder) -> None:
    texts = [f"bench test message number {i}" for i in range(6)]
    decider = CountingDecider()
    ticks: list[int] = []
    result = run_benchmark(texts, decider, encoder, progress=lambda: ticks.append(1))
    assert decider.messages == [*WARMUP_TEXTS, *texts]
    assert len(ticks) == len(texts)
    out = result.to_json()
    for key in ("p50_ms", "p99_ms", "decisions_per_second", "encoder_p50_ms", "keyword_p50_ms"):
        value = out[key]
        assert isinstance(value, float) and value > 0, key
    assert out["n"] == 6
    assert result.torch_threads == 1
    assert set(decider.histories) == {()}


def test_a_run_after_earlier_turns_decides_every_message_after_them(encoder: Encoder) -> None:
    decider = CountingDecider()
    run_benchmark(["after turns one", "after turns two"], decider, encoder, history=EARLIER_TURNS)
    assert decider.histories == [EARLIER_TURNS] * (len(WARMUP_TEXTS) + 2)
