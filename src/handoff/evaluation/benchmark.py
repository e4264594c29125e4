"""Time the decider on one core beside two baselines: a keyword regex and one encoder pass.

What is measured, and how caches are kept out of it:

- Every thread of the process is pinned to one CPU (`os.sched_setaffinity`, where the OS has
  it) and torch to one intra-op thread for the run; the previous affinities are restored
  afterwards. Pinning the calling thread alone is not enough: the thread pools numpy's BLAS
  and the encoders start at import keep their own affinity, and would work on a second core.
- Every timed call gets a distinct text (duplicates are dropped), so the encoder's per-text
  cache never holds the message being timed. Warm-up texts are never timed.
- The decider and the encoder baseline each get their **own, fresh** `Encoder` (its own model
  copy and an empty cache), so neither profits from the other having seen a text. The encoder
  baseline calls the public `Encoder.encode([text])`: with a distinct text that is always a
  cache miss, so it times the model plus the cache bookkeeping, exactly what the decider pays
  for a new message. What the decider legitimately keeps cached across calls is what it keeps
  cached in production: its prototypes (topic phrases, `when_to_use` sentences), encoded in
  the warm-up. With earlier turns (`EARLIER_TURNS`, `--after-turns`), those too: a live
  conversation encoded them when they were said.
- Latency is the wall clock of each call (`time.perf_counter`); decisions per second is the
  number of decider calls over their summed wall clock.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from handoff.decide.encoder import Encoder
from handoff.decide.policy import Decider, LocalDecider
from handoff.domain import ActionConfig, DecisionContext, Message, Role
from handoff.evaluation.metrics import DEFAULT_ACTION, read_messages

KEYWORD = re.compile(r"\b(human|agent|person|representative|operator|someone|manager)\b", re.I)

# Never timed: they load the decider's prototypes and the model's first-call paths.
# A message decided after these takes the conversation head's path (`LearnedDecider`).
EARLIER_TURNS: tuple[Message, ...] = (
    Message(Role.USER, "Hi, where is my order?", datetime(2026, 1, 1, tzinfo=UTC)),
    Message(
        Role.ASSISTANT,
        "It left our warehouse yesterday and should arrive tomorrow.",
        datetime(2026, 1, 1, tzinfo=UTC),
    ),
)
WARMUP_TEXTS: tuple[str, ...] = (
    "warm up the decider before timing",
    "Hello, is anybody there today?",
    "What are your opening hours on Sunday?",
    "My parcel still has not arrived and I am annoyed.",
    "Please let me speak with a person about my bill.",
    "How can I change the e-mail address on my account?",
    "Is there a discount for students?",
    "I was charged twice for the same order.",
)

# Used when no messages file is given: ordinary and escalating support messages.
BUILTIN_MESSAGES: tuple[str, ...] = (
    "Where is my order? It was supposed to arrive yesterday.",
    "How do I reset my password?",
    "Can I talk to a real person please?",
    "I've asked three times already and you still haven't fixed it.",
    "This is ridiculous, I want my money back now.",
    "Do you ship to Canada?",
    "What's the difference between the Basic and Pro plans?",
    "My card was charged twice for the same subscription.",
    "Someone logged into my account from another country.",
    "How can I update my billing address?",
    "I want to cancel my subscription.",
    "Is there a way to export my data as CSV?",
    "Your app keeps crashing when I open the settings page.",
    "Get me a manager, this is unacceptable.",
    "Can you explain how the refund policy works?",
    "I never received the refund you promised two weeks ago.",
    "How long does standard delivery take?",
    "My account is locked and I can't log in.",
    "Thanks, that worked!",
    "I lost my card, please block it.",
    "Can I change the delivery address for order 4471?",
    "The discount code SPRING20 isn't working at checkout.",
    "Is customer support available on weekends?",
    "I'd like to speak to someone about a billing error.",
    "Why was my payment declined?",
    "How do I add a team member to my workspace?",
    "You are useless, nothing you say helps.",
    "What payment methods do you accept?",
    "I need an invoice for my last three purchases.",
    "There's a transaction on my statement I don't recognise.",
    "Can I pay in instalments?",
    "The tracking page has said 'in transit' for ten days.",
    "How do I delete my account and all my data?",
    "Please connect me with an agent.",
    "Does the jacket come in a larger size?",
    "I was overcharged on my last bill.",
    "How do I turn on two-factor authentication?",
    "What is your return window for shoes?",
    "I'm really disappointed with the quality of this product.",
    "Can I change my plan from monthly to yearly?",
    "My verification code never arrives by SMS.",
    "How do I connect the app to my calendar?",
    "I'd like to file a complaint about your courier.",
    "Is my personal data shared with third parties?",
    "The item I received is broken, what now?",
    "Can you tell me my current balance?",
    "Hablar con un agente, por favor.",
    "Je voudrais parler à un conseiller.",
    "What time does the store in Leeds close?",
    "I forgot my PIN, how can I get a new one?",
)


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of one timed operation, in milliseconds."""

    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    per_second: float


@dataclass(frozen=True, slots=True)
class BenchResult:
    """The decider beside its two baselines, measured in one run on the same texts."""

    decider: Latency
    encoder: Latency
    keyword: Latency
    cpu: int | None  # the CPU the run was pinned to; None where pinning is unavailable
    torch_threads: int | None

    def to_json(self) -> dict[str, float | int | None]:
        """Return the flat JSON object `handoff bench decide --json` prints."""
        return {
            "p50_ms": self.decider.p50_ms,
            "p99_ms": self.decider.p99_ms,
            "decisions_per_second": self.decider.per_second,
            "encoder_p50_ms": self.encoder.p50_ms,
            "keyword_p50_ms": self.keyword.p50_ms,
            "encoder_p99_ms": self.encoder.p99_ms,
            "keyword_p99_ms": self.keyword.p99_ms,
            "mean_ms": self.decider.mean_ms,
            "ratio_to_encoder": round(self.decider.p50_ms / self.encoder.p50_ms, 2)
            if self.encoder.p50_ms
            else None,
            "n": self.decider.n,
            "cpu": self.cpu,
        }


def latency(seconds: Sequence[float]) -> Latency:
    """Summarise per-call wall-clock seconds as p50, p99, mean (ms) and calls per second."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    total = float(np.sum(seconds))
    return Latency(
        n=len(seconds),
        p50_ms=round(float(np.percentile(ms, 50)), 6),
        p99_ms=round(float(np.percentile(ms, 99)), 6),
        mean_ms=round(float(np.mean(ms)), 6),
        per_second=round(len(seconds) / total, 1) if total > 0 else float("inf"),
    )


def bench_texts(path: Path | None, n: int, seed: int) -> list[str]:
    """Return up to n distinct texts: a seeded sample of a messages CSV, or the built-in set."""
    if path is None:
        pool = list(dict.fromkeys(BUILTIN_MESSAGES))
    else:
        pool = list(dict.fromkeys(row.text for row in read_messages(path)))
    pool = [t for t in pool if t not in WARMUP_TEXTS]
    if len(pool) <= n:
        return pool
    return random.Random(seed).sample(pool, n)


def _thread_ids() -> list[int]:
    """This process's threads (Linux lists them in /proc); elsewhere only the calling one."""
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def _affinities() -> dict[int, set[int]]:
    """Each live thread's allowed CPUs."""
    found = {}
    for tid in _thread_ids():
        with suppress(ProcessLookupError):  # a thread that ended meanwhile
            found[tid] = os.sched_getaffinity(tid)
    return found


def _pin(affinities: dict[int, set[int]]) -> None:
    for tid, cpus in affinities.items():
        with suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cpus)


@contextmanager
def one_core() -> Iterator[int | None]:
    """Pin every thread of this process to its first allowed CPU, and torch and the native
    thread pools (BLAS, OpenMP) to one thread, then restore them. Threads started inside
    inherit the pinning from the thread that starts them."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    before: dict[int, set[int]] = {}
    cpu: int | None = None
    if hasattr(os, "sched_setaffinity"):
        before = _affinities()
        cpu = min(os.sched_getaffinity(0))
        _pin({tid: {cpu} for tid in before})
    try:
        # A native pool's threads pinned to the one CPU would wait for each other there: one
        # thread each, as in a process that was only ever given one CPU.
        with threadpool_limits(limits=1):
            yield cpu
    finally:
        _pin(before)
        torch.set_num_threads(threads)


def _timed(
    calls: Sequence[Callable[[str], object]], texts: Sequence[str], tick: Callable[[], None]
) -> list[list[float]]:
    """Each call's wall clock on each text. The calls take turns on every text, so a change in
    the machine's load during the run weighs on the decider and its baselines alike."""
    out: list[list[float]] = [[] for _ in calls]
    for text in texts:
        for call, times in zip(calls, out, strict=True):
            start = time.perf_counter()
            call(text)
            times.append(time.perf_counter() - start)
        tick()
    return out


def run_benchmark(
    texts: Sequence[str],
    decider: Decider,
    encoder: Encoder | EncoderPasses,
    *,
    action: ActionConfig = DEFAULT_ACTION,
    history: Sequence[Message] = (),
    progress: Callable[[], None] | None = None,
) -> BenchResult:
    """Time the decider, one raw encoder pass and the keyword regex on the same texts, each
    decided after `history` (none: a conversation's first message).

    `encoder` must not be the decider's encoder (see the module docstring); texts must be
    distinct and not among the warm-up texts.
    """
    if len(set(texts)) != len(texts):
        raise ValueError("benchmark texts must be distinct, or the encoder cache would serve some")
    if not texts:
        raise ValueError("no texts to time")
    tick = progress or (lambda: None)
    import torch

    with one_core() as cpu:
        for text in WARMUP_TEXTS:
            decider.decide(DecisionContext(message=text, history=tuple(history), action=action))
            encoder.encode([text])
            KEYWORD.search(text)
        enc, dec, kw = _timed(
            [
                lambda t: encoder.encode([t]),
                lambda t: decider.decide(
                    DecisionContext(message=t, history=tuple(history), action=action)
                ),
                KEYWORD.search,
            ],
            texts,
            tick,
        )
        threads = torch.get_num_threads()
    return BenchResult(latency(dec), latency(enc), latency(kw), cpu, threads)


def fresh_pair(
    decider_factory: Callable[[Encoder], Decider] = LocalDecider,
) -> tuple[Decider, EncoderPasses]:
    """Load two fresh encoders: one under a new decider, one for the baseline (~4 s each)."""
    return decider_factory(Encoder()), EncoderPasses(Encoder())


class EncoderPasses:
    """One uncached pass of each encoder a decider uses, timed as one baseline."""

    def __init__(self, *encoders: Encoder) -> None:
        self.encoders = encoders

    def encode(self, texts: Sequence[str]) -> None:
        for encoder in self.encoders:
            encoder.encode(texts)


def learned_pair() -> tuple[Decider, EncoderPasses]:
    """The learned decider on a fresh e5 encoder, and another fresh e5 as the baseline.

    The learned decider encodes each message once, with e5: its rules for the action's
    `when_to_use`, trigger examples and custom topics compare on the same embedding."""
    from handoff.decide.encoder import E5Encoder
    from handoff.decide.learned import LearnedDecider, shipped_model

    return LearnedDecider(E5Encoder(), shipped_model()), EncoderPasses(E5Encoder())
