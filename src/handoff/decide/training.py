"""Build the learned decider's model from `corpus/escalation/train` (`handoff train`).

Deterministic: no random step (lbfgs from zeros, folds = languages), so a rebuild from the same
training files gives the same numbers; the metadata carries the files' sha256 and no date.
The held-out corpus is never read here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from handoff.decide.encoder import E5_ENCODER_ID, Encoder
from handoff.decide.learned import (
    CLASSES,
    NO_ESCALATION,
    FloatArray,
    LearnedModel,
    feature_row,
)

C = 0.01  # the study's choice (leave-one-language-out CV on train)
MAX_FALSE_ESCALATIONS = 0.01  # of routine training messages, out of fold

Labels = npt.NDArray[np.int8]


@dataclass(frozen=True)
class TrainingSet:
    """The training messages, their head inputs and labels."""

    texts: tuple[str, ...]
    classes: Labels
    langs: tuple[str, ...]
    features: FloatArray
    sha256: dict[str, str]


def training_files(directory: Path) -> list[Path]:
    """The per-language message files (the conversation files are for evaluation)."""
    files = sorted(p for p in directory.glob("*.jsonl") if not p.name.startswith("conversations"))
    if not files:
        raise FileNotFoundError(f"{directory}: no <lang>.jsonl training files")
    return files


def read_training_set(
    directory: Path, encoder: Encoder, progress: Callable[[int], None] = lambda _: None
) -> TrainingSet:
    """Read and encode every training message with its context."""
    texts, classes, langs, rows = [], [], [], []
    sha256 = {}
    for path in training_files(directory):
        raw = path.read_bytes()
        sha256[path.name] = hashlib.sha256(raw).hexdigest()
        for line in raw.decode("utf-8").splitlines():
            item = json.loads(line)
            context = item["context"]
            users = [t["text"] for t in context if t["role"] == "user"]
            assistants = [t["text"] for t in context if t["role"] == "assistant"]
            rows.append(feature_row(encoder, item["text"], users, assistants))
            texts.append(item["text"])
            classes.append(CLASSES.index(item["reason"]))
            langs.append(item["lang"])
            progress(1)
    return TrainingSet(
        tuple(texts),
        np.asarray(classes, dtype=np.int8),
        tuple(langs),
        np.stack(rows).astype(np.float64),
        sha256,
    )


def count_messages(directory: Path) -> int:
    return sum(len(p.read_text(encoding="utf-8").splitlines()) for p in training_files(directory))


def _head(x: FloatArray, y: Labels) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=5000)
    lr.fit(scaler.transform(x), y)
    return scaler.mean_, scaler.scale_, lr.coef_, lr.intercept_


def _out_of_fold_logits(x: FloatArray, y: Labels, langs: Sequence[str]) -> FloatArray:
    """Logits for each message from a head that never saw its language."""
    logits = np.zeros((len(y), len(CLASSES)))
    groups = np.asarray(langs)
    for lang in sorted(set(langs)):
        held = groups == lang
        mean, scale, coef, intercept = _head(x[~held], y[~held])
        logits[held] = ((x[held] - mean) / scale) @ coef.T + intercept
    return logits


def _temperature(logits: FloatArray, y: Labels) -> float:
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def _threshold(p_none: FloatArray, y: Labels) -> float:
    """The highest P(no_escalation) cut-off under which at most 1% of routine messages fall."""
    routine = np.sort(p_none[y == NO_ESCALATION])
    allowed = int(np.floor(MAX_FALSE_ESCALATIONS * len(routine)))
    # Escalate when P(no_escalation) < threshold: exactly `allowed` routine messages are below.
    return float(routine[allowed])


def fit_model(data: TrainingSet) -> LearnedModel:
    """Fit the head, its temperature and threshold (both chosen out of fold on train)."""
    from scipy.special import softmax

    x, y = data.features, data.classes
    logits = _out_of_fold_logits(x, y, data.langs)
    temperature = _temperature(logits, y)
    p_none = softmax(logits / temperature, axis=1)[:, NO_ESCALATION]
    threshold = _threshold(p_none, y)
    escalates = p_none < threshold
    routine = y == NO_ESCALATION
    mean, scale, coef, intercept = _head(x, y)
    dim = x.shape[1] - 2
    meta: dict[str, object] = {
        "classes": list(CLASSES),
        "encoder": E5_ENCODER_ID,
        "features": "e5 query embedding + max cosine to earlier user turns + max cosine of the "
        "last assistant turn to earlier ones",
        "head": f"StandardScaler + LogisticRegression(C={C}, class_weight=balanced)",
        "temperature": round(temperature, 6),
        "threshold": round(threshold, 6),
        "cv": {
            "folds": "leave one language out",
            "false_escalation_rate": round(float(escalates[routine].mean()), 4),
            "escalation_recall": round(float(escalates[~routine].mean()), 4),
        },
        "train_messages": len(y),
        "train_sha256": data.sha256,
    }
    examples = x[:, :dim] / np.linalg.norm(x[:, :dim], axis=1, keepdims=True)
    return LearnedModel(
        mean=mean,
        scale=scale,
        coef=coef,
        intercept=intercept,
        temperature=round(temperature, 6),
        threshold=round(threshold, 6),
        examples=examples.astype(np.float16),
        example_texts=data.texts,
        example_classes=data.classes,
        meta=meta,
    )


def save_model(model: LearnedModel, npz: Path, meta_path: Path) -> None:
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        npz,
        mean=model.mean,
        scale=model.scale,
        coef=model.coef,
        intercept=model.intercept,
        examples=model.examples,
        example_texts=np.asarray(model.example_texts),
        example_classes=model.example_classes,
    )
    meta_path.write_text(json.dumps(model.meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
