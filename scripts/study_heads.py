"""Compare head and training variants of the learned decider on cached embeddings.

Each variant is fitted on `corpus/escalation/train` (+ the public sample) exactly as
`handoff train` fits the shipped model, then scored through the live decision code
(`LearnedDecider`, rules included) on:

- the development set, `corpus/escalation/dev` (variants are chosen on it), or `--dev`, with
  its conversations when it has them (`corpus/escalation/dev2`);
- leave-one-source-out on a sample of `messages.csv` (as `handoff eval --loso`): refit without
  each public source, score that source.

The held-out corpus is never read. Embeddings are cached in a file (``--cache``), so after the
first run a variant costs its fits only. Results and their reading: `docs/head-study.md`.

    .venv/bin/python scripts/study_heads.py --messages-csv ../shared/eval/messages.csv \
        --variants baseline,k10,c0.1 [--loso] [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from handoff.decide import training  # noqa: E402
from handoff.decide.encoder import E5Encoder, Encoder, Vector, get_encoder  # noqa: E402
from handoff.decide.learned import (  # noqa: E402
    CLASSES,
    CONVERSATION_FEATURES,
    NO_ESCALATION,
    FloatArray,
    LearnedDecider,
    LearnedModel,
    feature_row,
    neighbour_features,
    unit_rows,
)
from handoff.domain import Decision, Reason  # noqa: E402
from handoff.evaluation import metrics as ev  # noqa: E402


def disk_cached(encoder: Encoder, path: Path) -> Callable[[], None]:
    """Serve `encoder`'s embeddings from a file when known; return a function saving new ones."""
    known: dict[str, Vector] = {}
    if path.is_file():
        with path.open("rb") as f:
            known = pickle.load(f)
    embed = encoder._embed

    def cached(texts: list[str]) -> list[Vector]:
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            known.update(zip(missing, embed(missing), strict=True))
        return [known[t].copy() for t in texts]

    encoder._embed = cached  # type: ignore[method-assign]

    def save() -> None:
        with path.open("wb") as f:
            pickle.dump(known, f)

    return save


def out_of_fold(escalates: Any, routine: Any) -> dict[str, float]:
    """The false escalations and recall on train out of fold, as `handoff train` reports them."""
    return {
        "false_escalation_rate": round(float(escalates[routine].mean()), 4),
        "escalation_recall": round(float(escalates[~routine].mean()), 4),
    }


def cv_of(model: LearnedModel) -> dict[str, Any]:
    """A fitted model's out-of-fold figures (its metadata's `cv`)."""
    cv = model.meta["cv"]
    assert isinstance(cv, dict)
    return cv


def fields_of(model: LearnedModel) -> dict[str, Any]:
    """A fitted model's fields, to build a variant's model that differs in a few."""
    return {f: getattr(model, f) for f in LearnedModel.__dataclass_fields__}


# --- variants: each patches the training module's knobs while it fits ----------------------


# Read by both modules at call time (`learned` at decision time too): set in both.
SHARED_KNOBS = ("PHRASE_WEIGHT", "K_NEIGHBOURS")


@contextlib.contextmanager
def patched(**knobs: Any) -> Iterator[None]:
    """Set module-level knobs of `training` (C, the quota, `_head`) and `learned` for a while:
    a variant is fitted and scored by the shipped code with its knobs moved."""
    import handoff.decide.learned as learned

    saved = {}
    for name, value in knobs.items():
        module = learned if name in SHARED_KNOBS else training
        saved[name] = (module, getattr(module, name))
        setattr(module, name, value)
        if name in SHARED_KNOBS:
            setattr(training, name, value)
    try:
        yield
    finally:
        for name, (module, value) in saved.items():
            setattr(module, name, value)
            if module is not training:
                setattr(training, name, value)


def weighted_head(class_weight: Any) -> Callable[..., training.Head]:
    """`training._head` with another class weighting (the shipped one is "balanced")."""

    def head(x: FloatArray, texts: Any, y: training.Labels) -> training.Head:
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        from handoff.decide import learned

        scaler = StandardScaler().fit(x)
        tfidf = TfidfVectorizer(analyzer=learned.phrases, min_df=2, sublinear_tf=True)
        counted = tfidf.fit_transform(texts)
        weight = learned.PHRASE_WEIGHT
        inputs = sparse.hstack([sparse.csr_matrix(scaler.transform(x)), counted * weight])
        cw = class_weight
        if cw == "sqrt":  # halfway between none and balanced
            counts = np.bincount(y, minlength=int(y.max()) + 1).astype(float)
            cw = {c: float(np.sqrt(len(y) / (len(counts) * n))) for c, n in enumerate(counts) if n}
        lr = LogisticRegression(C=training.C, class_weight=cw, max_iter=5000)
        lr.fit(inputs.tocsr(), y)
        dense = x.shape[1]
        names = tuple(str(p) for p in tfidf.get_feature_names_out())
        weights = learned.PhraseWeights(names, tfidf.idf_, lr.coef_[:, dense:] * weight)
        return training.Head(
            scaler.mean_, scaler.scale_, lr.coef_[:, :dense], lr.intercept_, weights
        )

    return head


@dataclass(frozen=True)
class TwoStageModel(LearnedModel):
    """P(escalate) from a binary head, the reason from a head fitted on escalating rows."""

    gate: training.Head | None = None
    reason: training.Head | None = None
    gate_t: float = 1.0
    reason_t: float = 1.0

    def probabilities(self, base: Vector, text: str) -> FloatArray:
        message = base[None, : self.examples.shape[1]]
        near = neighbour_features(self.examples, self.example_classes, message)
        row = np.hstack([base[None].astype(np.float64), near])
        assert self.gate is not None and self.reason is not None
        proba: FloatArray = two_stage_proba(
            self.gate.logits(row, [text])[:, 0] / self.gate_t,
            self.reason.logits(row, [text]) / self.reason_t,
        )[0]
        return proba


def two_stage_proba(gate: FloatArray, reasons: FloatArray) -> FloatArray:
    from scipy.special import expit, softmax

    p_esc = expit(gate)[:, None]
    return np.hstack([softmax(reasons, axis=1) * p_esc, 1.0 - p_esc])


def binary_temperature(z: FloatArray, y: FloatArray) -> float:
    from scipy.optimize import minimize_scalar
    from scipy.special import log_expit

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(-(y * log_expit(s) + (1 - y) * log_expit(-s)).mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def fit_two_stage(data: training.TrainingSet, gate_c: float, reason_c: float) -> LearnedModel:
    """The gate and the reason head, each with its temperature, out of fold as fit_model."""
    x, y, texts = data.features, data.classes, data.texts
    units = unit_rows(x[:, : x.shape[1] - CONVERSATION_FEATURES])
    esc = (y != NO_ESCALATION).astype(np.int8)
    groups = np.asarray(data.groups)

    def heads(keep: Any) -> tuple[training.Head, training.Head]:
        xf = training._with_neighbours(x[keep], units[keep], y[keep])
        tf = training._select(texts, keep)
        with patched(C=gate_c):
            gate = training._head(xf, tf, esc[keep])
        on = esc[keep] == 1
        with patched(C=reason_c):
            reason = training._head(
                xf[on], [t for t, o in zip(tf, on, strict=True) if o], y[keep][on]
            )
        return gate, reason

    z_gate, z_reason = np.zeros(len(y)), np.zeros((len(y), NO_ESCALATION))
    for group in sorted(set(data.groups)):
        held = groups == group
        gate, reason = heads(~held)
        row = np.hstack([x[held], neighbour_features(units[~held], y[~held], units[held])])
        z_gate[held] = gate.logits(row, training._select(texts, held))[:, 0]
        z_reason[held] = reason.logits(row, training._select(texts, held))
    gate_t = binary_temperature(z_gate, esc.astype(float))
    on = esc == 1
    reason_t = training._temperature(z_reason[on], y[on])
    p_none = two_stage_proba(z_gate / gate_t, z_reason / reason_t)[:, NO_ESCALATION]
    own = ~data.public
    threshold = training._threshold(p_none[own], y[own])
    escalates, routine = p_none[own] < threshold, y[own] == NO_ESCALATION
    gate, reason = heads(np.ones(len(y), dtype=bool))
    cv = out_of_fold(escalates, routine)
    return TwoStageModel(
        mean=gate.mean,
        scale=gate.scale,
        coef=gate.coef,
        intercept=gate.intercept,
        temperature=1.0,
        threshold=threshold,
        examples=units,
        example_texts=texts,
        example_classes=y,
        example_subtypes=data.subtypes,
        judge=data.judge,
        phrase_weights=reason.phrases,
        meta={"cv": cv, "rule_thresholds": data.rule_thresholds},
        gate=gate,
        reason=reason,
        gate_t=gate_t,
        reason_t=reason_t,
    )


Logits = Callable[[FloatArray, Any], FloatArray]


@dataclass(frozen=True)
class AnyHeadModel(LearnedModel):
    """A model whose logits come from any fitted function of the features and the text."""

    head: Logits | None = None

    def probabilities(self, base: Vector, text: str) -> FloatArray:
        from scipy.special import softmax

        message = base[None, : self.examples.shape[1]]
        near = neighbour_features(self.examples, self.example_classes, message)
        row = np.hstack([base[None].astype(np.float64), near])
        assert self.head is not None
        return softmax(self.head(row, [text]) / self.temperature, axis=1)[0]  # type: ignore[no-any-return]


def mlp_head(hidden: int, alpha: float) -> Callable[[FloatArray, Any, training.Labels], Logits]:
    """An MLP on the dense features (early stopping on a fixed 10 % split), no phrases."""

    def fit(x: FloatArray, texts: Any, y: training.Labels) -> Logits:
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x)
        mlp = MLPClassifier(
            (hidden,), alpha=alpha, early_stopping=True, random_state=0, max_iter=500
        )
        mlp.fit(scaler.transform(x), y)
        return lambda rows, _texts: np.log(
            np.clip(mlp.predict_proba(scaler.transform(rows)), 1e-9, 1.0)
        )

    return fit


def fit_any(
    data: training.TrainingSet, make: Callable[[FloatArray, Any, training.Labels], Logits]
) -> LearnedModel:
    x, y, texts = data.features, data.classes, data.texts
    units = unit_rows(x[:, : x.shape[1] - CONVERSATION_FEATURES])
    groups = np.asarray(data.groups)
    logits = np.zeros((len(y), len(set(y.tolist()))))
    for group in sorted(set(data.groups)):
        held = groups == group
        head = make(
            training._with_neighbours(x[~held], units[~held], y[~held]),
            training._select(texts, ~held),
            y[~held],
        )
        row = np.hstack([x[held], neighbour_features(units[~held], y[~held], units[held])])
        logits[held] = head(row, training._select(texts, held))
    from scipy.special import softmax

    temperature = training._temperature(logits, y)
    p_none = softmax(logits / temperature, axis=1)[:, NO_ESCALATION]
    own = ~data.public
    threshold = training._threshold(p_none[own], y[own])
    escalates, routine = p_none[own] < threshold, y[own] == NO_ESCALATION
    full = make(training._with_neighbours(x, units, y), texts, y)
    baseline = training.fit_model(data)  # for the phrase evidence only
    cv = out_of_fold(escalates, routine)
    return AnyHeadModel(
        **{
            **fields_of(baseline),
            "temperature": temperature,
            "threshold": threshold,
            "meta": {"cv": cv, "rule_thresholds": data.rule_thresholds},
        },
        head=full,
    )


@dataclass(frozen=True)
class ExplicitCutModel(LearnedModel):
    """The shipped head with a second way to escalate: P(explicit_request) at or above its own
    cut, whatever P(no_escalation) is."""

    explicit_threshold: float = 1.01


class ExplicitCutDecider(LearnedDecider):
    def decide(self, ctx: Any) -> Decision:
        decision = super().decide(ctx)
        proba = dict(decision.probabilities)
        assert isinstance(self.model, ExplicitCutModel)
        if decision.escalate or proba["explicit_request"] < self.model.explicit_threshold:
            return decision
        return replace(
            decision,
            escalate=True,
            reasons=(Reason.EXPLICIT_REQUEST,),
            score=round(1.0 - proba["no_escalation"], 3),
        )


def fit_explicit_cut(data: training.TrainingSet) -> LearnedModel:
    """Both cuts out of fold on train, at the shipped quota: for each cut on P(explicit_request)
    (a grid of its quantiles), the P(no_escalation) cut that spends what is left of the quota;
    the pair that escalates most of train's own escalations out of fold."""
    from scipy.special import softmax

    x, y = data.features, data.classes
    units = unit_rows(x[:, : x.shape[1] - CONVERSATION_FEATURES])
    logits = training._out_of_fold_logits(x, units, data.texts, y, data.groups)
    own = ~data.public
    p = softmax(logits / training._temperature(logits, y), axis=1)[own]
    routine = y[own] == NO_ESCALATION
    allowed = int(np.floor(training.MAX_FALSE_ESCALATIONS * routine.sum()))
    explicit = p[:, CLASSES.index("explicit_request")]
    best: tuple[float, float, float, float] = (-1.0, 0.0, 0.0, 0.0)
    for t1 in [*sorted(set(np.quantile(explicit, np.linspace(0.5, 1.0, 201)))), 1.01]:
        by_explicit = explicit >= t1
        left = allowed - int((routine & by_explicit).sum())
        if left < 0:
            continue
        rest = np.sort(p[routine & ~by_explicit, NO_ESCALATION])
        t0 = float(rest[left]) if left < len(rest) else 1.0
        escalates = by_explicit | (p[:, NO_ESCALATION] < t0)
        recall = float(escalates[~routine].mean())
        if (recall, t1) > (best[0], best[2]):
            best = (recall, t0, float(t1), float(escalates[routine].mean()))
    recall, t0, t1, fe = best
    base = training.fit_model(data)
    cv = {"false_escalation_rate": round(fe, 4), "escalation_recall": round(recall, 4)}
    fields = fields_of(base)
    fields.update(threshold=t0, meta={**base.meta, "cv": cv, "explicit_threshold": round(t1, 4)})
    return ExplicitCutModel(**fields, explicit_threshold=t1)


@dataclass(frozen=True)
class MiniLMModel(LearnedModel):
    """The shipped head with the message's MiniLM embedding beside e5's in its dense input."""

    english: Encoder | None = None

    def probabilities(self, base: Vector, text: str) -> FloatArray:
        """The shipped computation on a wider row: [e5, shape, MiniLM], then the neighbours
        (still of the e5 part alone), the order `fit_minilm` fits on."""
        assert self.english is not None
        return super().probabilities(np.concatenate([base, self.english.encode([text])[0]]), text)


def fit_minilm(data: training.TrainingSet) -> LearnedModel:
    """`training.fit_model` with the MiniLM embedding of each message appended to its dense
    input (after the conversation's shape, before the neighbour features)."""
    from scipy.special import softmax

    english = get_encoder()
    x, y = data.features, data.classes
    units = unit_rows(x[:, : x.shape[1] - CONVERSATION_FEATURES])
    wide = np.hstack([x, english.encode(list(data.texts)).astype(np.float64)])
    logits = training._out_of_fold_logits(wide, units, data.texts, y, data.groups)
    temperature = training._temperature(logits, y)
    p_none = softmax(logits / temperature, axis=1)[:, NO_ESCALATION]
    own = ~data.public
    threshold = training._threshold(p_none[own], y[own])
    escalates, routine = p_none[own] < threshold, y[own] == NO_ESCALATION
    head = training._head(training._with_neighbours(wide, units, y), data.texts, y)
    base = training.fit_model(data)  # the examples, judge and rule cut-offs
    fields = fields_of(base)
    cv = out_of_fold(escalates, routine)
    fields.update(
        mean=head.mean,
        scale=head.scale,
        coef=head.coef,
        intercept=head.intercept,
        temperature=temperature,
        threshold=threshold,
        phrase_weights=head.phrases,
        meta={**base.meta, "cv": cv},
    )
    return MiniLMModel(**fields, english=english)


@dataclass(frozen=True)
class SplitQuotaModel(LearnedModel):
    """The shipped head with a threshold of its own for messages that come after earlier
    turns (`threshold` stays the one for a conversation's first message)."""

    threshold_in_conversation: float = 0.0


class SplitQuotaDecider(LearnedDecider):
    def __init__(self, encoder: Encoder, model: SplitQuotaModel) -> None:
        super().__init__(encoder, model)
        later = replace(model, threshold=model.threshold_in_conversation)
        self.in_conversation = LearnedDecider(encoder, later)

    def decide(self, ctx: Any) -> Decision:
        return self.in_conversation.decide(ctx) if ctx.history else super().decide(ctx)


def out_of_fold_p_none(data: training.TrainingSet) -> tuple[FloatArray, Any]:
    """P(no_escalation) out of fold, calibrated as `fit_model` does, and which rows have
    earlier turns."""
    from scipy.special import softmax

    x, y = data.features, data.classes
    units = unit_rows(x[:, : x.shape[1] - CONVERSATION_FEATURES])
    logits = training._out_of_fold_logits(x, units, data.texts, y, data.groups)
    p_none = softmax(logits / training._temperature(logits, y), axis=1)[:, NO_ESCALATION]
    # The shape features are all 0 exactly when a row has no earlier turns.
    return p_none, (x[:, -CONVERSATION_FEATURES:] != 0).any(axis=1)


def fit_fresh_quota(data: training.TrainingSet) -> LearnedModel:
    """One threshold, at the shipped quota of the own corpus's routine rows that have no
    earlier turns: routine turns inside conversations teach the head without tightening it."""
    p_none, in_conversation = out_of_fold_p_none(data)
    y, own = data.classes, ~data.public
    fresh = own & ~in_conversation
    threshold = training._threshold(p_none[fresh], y[fresh])
    escalates, routine = (p_none < threshold)[own], y[own] == NO_ESCALATION
    base = training.fit_model(data)
    fields = fields_of(base)
    cv = {**out_of_fold(escalates, routine), "threshold": round(threshold, 4)}
    fields.update(threshold=threshold, meta={**base.meta, "cv": cv})
    return LearnedModel(**fields)


def fit_split_quota(data: training.TrainingSet) -> LearnedModel:
    """Each threshold at the shipped quota of its own pool of the own corpus's routine rows,
    out of fold: rows without earlier turns, and rows with them."""
    p_none, in_conversation = out_of_fold_p_none(data)
    y = data.classes
    own = ~data.public
    fresh, later = own & ~in_conversation, own & in_conversation
    t_fresh = training._threshold(p_none[fresh], y[fresh])
    t_later = training._threshold(p_none[later], y[later])
    cut = np.where(in_conversation, t_later, t_fresh)
    escalates, routine = (p_none < cut)[own], y[own] == NO_ESCALATION
    base = training.fit_model(data)
    fields = fields_of(base)
    cv = {
        **out_of_fold(escalates, routine),
        "thresholds": [round(t_fresh, 4), round(t_later, 4)],
        "routine_rows": [
            int((fresh & (y == NO_ESCALATION)).sum()),
            int((later & (y == NO_ESCALATION)).sum()),
        ],
    }
    fields.update(threshold=t_fresh, meta={**base.meta, "cv": cv})
    return SplitQuotaModel(**fields, threshold_in_conversation=t_later)


@dataclass(frozen=True)
class ConversationHeadModel(LearnedModel):
    """The shipped model for a first message, and a head of its own, fitted on messages with
    earlier turns only, for the others."""

    in_conversation: LearnedModel | None = None


class ConversationHeadDecider(LearnedDecider):
    def __init__(self, encoder: Encoder, model: ConversationHeadModel) -> None:
        super().__init__(encoder, model)
        assert model.in_conversation is not None
        self.in_conversation = LearnedDecider(encoder, model.in_conversation)

    def decide(self, ctx: Any) -> Decision:
        return self.in_conversation.decide(ctx) if ctx.history else super().decide(ctx)


def fit_conversation_head_one_cut(
    data: training.TrainingSet, context_data: training.TrainingSet
) -> LearnedModel:
    """`fit_conversation_head`, its second head cutting where the first does."""
    two = fit_conversation_head(data, context_data)
    assert isinstance(two, ConversationHeadModel) and two.in_conversation is not None
    later = replace(two.in_conversation, threshold=two.threshold)
    return replace(two, in_conversation=later)


def fit_conversation_head_matched(
    data: training.TrainingSet, context_data: training.TrainingSet
) -> LearnedModel:
    """`fit_conversation_head`, its second head cut where its out-of-fold recall on its own
    rows equals the main head's: a quota of routine rows tightens as harder ones are added."""
    two = fit_conversation_head(data, context_data)
    assert isinstance(two, ConversationHeadModel) and two.in_conversation is not None
    in_conversation = (context_data.features[:, -CONVERSATION_FEATURES:] != 0).any(axis=1)
    rows = context_data.where(in_conversation)
    p_none, _ = out_of_fold_p_none(rows)
    own, y = ~rows.public, rows.classes
    target = float(cv_of(two)["escalation_recall"])
    cut = training._recall_cut(p_none[own], y[own], target)
    escalates, routine = (p_none < cut)[own], y[own] == NO_ESCALATION
    cv = {
        **cv_of(two),
        "in_conversation": {**out_of_fold(escalates, routine), "threshold": round(cut, 4)},
    }
    later = replace(two.in_conversation, threshold=cut)
    return replace(two, in_conversation=later, meta={**two.meta, "cv": cv})


@dataclass(frozen=True)
class OrMainModel(ConversationHeadModel):
    """`fit_conversation_head_matched`'s two heads; after earlier turns, the main head escalates
    too when it is as sure as 1 % of its own routine rows with earlier turns."""

    main_threshold_in_conversation: float = 0.0


class OrMainDecider(ConversationHeadDecider):
    def __init__(self, encoder: Encoder, model: OrMainModel) -> None:
        super().__init__(encoder, model)
        sure = replace(model, threshold=model.main_threshold_in_conversation)
        self.main_when_sure = LearnedDecider(encoder, sure)

    def decide(self, ctx: Any) -> Decision:
        if not ctx.history:
            return LearnedDecider.decide(self, ctx)
        decision = self.in_conversation.decide(ctx)
        if decision.escalate:
            return decision
        main = self.main_when_sure.decide(ctx)
        return main if main.escalate else decision


def fit_conversation_head_or_main(
    data: training.TrainingSet, context_data: training.TrainingSet
) -> LearnedModel:
    two = fit_conversation_head_matched(data, context_data)
    assert isinstance(two, ConversationHeadModel)
    p_none, in_conversation = out_of_fold_p_none(data)
    later = ~data.public & in_conversation
    sure = training._threshold(p_none[later], data.classes[later])
    cv = {**cv_of(two), "main_threshold_in_conversation": round(sure, 4)}
    fields = {**fields_of(two), "meta": {**two.meta, "cv": cv}}
    return OrMainModel(
        **fields, in_conversation=two.in_conversation, main_threshold_in_conversation=sure
    )


@dataclass(frozen=True)
class RepeatVetoModel(ConversationHeadModel):
    """The shipped decision; a failed resolution inside a conversation needs the conversation
    head's agreement."""


class RepeatVetoDecider(ConversationHeadDecider):
    def decide(self, ctx: Any) -> Decision:
        decision = LearnedDecider.decide(self, ctx)
        if not ctx.history or decision.reasons != (Reason.REPEATED_QUESTION,):
            return decision
        if self.in_conversation.decide(ctx).escalate:
            return decision
        return Decision.stay(decision.evidence, decision.probabilities)


def fit_repeat_veto(data: training.TrainingSet, context_data: training.TrainingSet) -> LearnedModel:
    two = fit_conversation_head(data, context_data)
    assert isinstance(two, ConversationHeadModel)
    return RepeatVetoModel(**fields_of(two), in_conversation=two.in_conversation)


def fit_conversation_head(
    data: training.TrainingSet, context_data: training.TrainingSet
) -> LearnedModel:
    """`data`'s model for first messages; for later ones, a model fitted as `fit_model` fits,
    on `context_data`'s rows that have earlier turns (its threshold at the quota of those)."""
    in_conversation = (context_data.features[:, -CONVERSATION_FEATURES:] != 0).any(axis=1)
    later = training.fit_model(context_data.where(in_conversation))
    base = training.fit_model(data)
    cv = {
        **cv_of(base),
        "in_conversation": later.meta["cv"],
        "rows": int(in_conversation.sum()),
    }
    fields = fields_of(base)
    fields.update(meta={**base.meta, "cv": cv})
    return ConversationHeadModel(**fields, in_conversation=later)


@dataclass(frozen=True)
class ConversationGateModel(LearnedModel):
    """The shipped head, with the split between a failed resolution and a routine turn taken
    from a head fitted on messages with earlier turns only, for a message that has them."""

    in_conversation: LearnedModel | None = None

    def probabilities(self, base: Vector, text: str) -> FloatArray:
        p = super().probabilities(base, text)
        if self.in_conversation is None or not base[-CONVERSATION_FEATURES:].any():
            return p
        q = self.in_conversation.probabilities(base, text)
        split = [CLASSES.index("repeated_failed"), NO_ESCALATION]
        gated = p.copy()
        gated[split] = p[split].sum() * q[split] / q[split].sum()
        return gated


def fit_conversation_gate(
    data: training.TrainingSet, context_data: training.TrainingSet
) -> LearnedModel:
    """`data`'s model, gated as `ConversationGateModel` says by `fit_conversation_head`'s
    second head."""
    two = fit_conversation_head(data, context_data)
    assert isinstance(two, ConversationHeadModel)
    fields = fields_of(two)
    return ConversationGateModel(**fields, in_conversation=two.in_conversation)


def shape_of(x: FloatArray) -> FloatArray:
    shape: FloatArray = x[:, -CONVERSATION_FEATURES:]
    return shape


def held_out_log_probabilities(
    data: training.TrainingSet, rows: training.TrainingSet, temperature: float
) -> FloatArray:
    """The shipped head's calibrated log-probabilities for `rows`, each row's from a head
    fitted on `data` without the row's language."""
    from scipy.special import log_softmax

    x, y = data.features, data.classes
    units = unit_rows(x[:, :-CONVERSATION_FEATURES])
    theirs = unit_rows(rows.features[:, :-CONVERSATION_FEATURES])
    logits = np.zeros((len(rows.classes), len(CLASSES)))
    groups = np.asarray(rows.groups)
    for group in sorted(set(rows.groups)):
        keep, held = np.asarray(data.groups) != group, groups == group
        head = training._head(
            training._with_neighbours(x[keep], units[keep], y[keep]),
            training._select(data.texts, keep),
            y[keep],
        )
        near = neighbour_features(units[keep], y[keep], theirs[held])
        inputs = np.hstack([rows.features[held], near])
        logits[held] = head.logits(inputs, training._select(rows.texts, held))
    stacked: FloatArray = log_softmax(logits / temperature, axis=1)
    return stacked


@dataclass(frozen=True)
class Stack:
    mean: FloatArray
    scale: FloatArray
    coef: FloatArray
    intercept: FloatArray
    temperature: float = 1.0

    def logits(self, z: FloatArray) -> FloatArray:
        out: FloatArray = ((z - self.mean) / self.scale) @ self.coef.T + self.intercept
        return out


def fit_stack(z: FloatArray, y: Any) -> Stack:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(z)
    lr = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(z), y)
    if len(lr.classes_) != len(CLASSES):
        raise ValueError("a fold lacks a class")
    return Stack(scaler.mean_, scaler.scale_, lr.coef_, lr.intercept_)


@dataclass(frozen=True)
class ConversationStackModel(SplitQuotaModel):
    """The shipped head for a first message; for a later one, a small head over the shipped
    head's log-probabilities and the conversation's shape, with a threshold of its own."""

    stack: Stack | None = None

    def probabilities(self, base: Vector, text: str) -> FloatArray:
        p = super().probabilities(base, text)
        if self.stack is None or not base[-CONVERSATION_FEATURES:].any():
            return p
        z = np.concatenate([np.log(np.maximum(p, 1e-12)), base[-CONVERSATION_FEATURES:]])
        logits = self.stack.logits(z[None, :])[0] / self.stack.temperature
        e = np.exp(logits - logits.max())
        out: FloatArray = e / e.sum()
        return out


def fit_conversation_stack(
    data: training.TrainingSet, context_data: training.TrainingSet
) -> LearnedModel:
    from scipy.special import log_softmax

    base = training.fit_model(data)
    later = context_data.where(np.asarray(shape_of(context_data.features).any(axis=1)))
    z = np.hstack(
        [held_out_log_probabilities(data, later, base.temperature), shape_of(later.features)]
    )
    y, groups = later.classes, np.asarray(later.groups)
    oof = np.zeros((len(y), len(CLASSES)))
    for group in sorted(set(later.groups)):
        held = groups == group
        oof[held] = fit_stack(z[~held], y[~held]).logits(z[held])
    temperature = training._temperature(oof, y)
    p_none = np.exp(log_softmax(oof / temperature, axis=1))[:, NO_ESCALATION]
    threshold = training._threshold(p_none, y)
    routine = y == NO_ESCALATION
    escalates = p_none < threshold
    stack = replace(fit_stack(z, y), temperature=temperature)
    cv = {
        **cv_of(base),
        "in_conversation": {**out_of_fold(escalates, routine), "threshold": round(threshold, 4)},
    }
    fields = fields_of(base)
    fields.update(meta={**base.meta, "cv": cv})
    return ConversationStackModel(**fields, stack=stack, threshold_in_conversation=threshold)


def in_context(text: str, assistants: Any) -> str:
    """What the pair head encodes: the message after the assistant's last turn."""
    return f"{assistants[-1]}\n{text}" if assistants else text


@dataclass(frozen=True)
class PairModel(LearnedModel):
    """A head whose embedding is of the message read after the assistant's last turn."""

    def features(self, encoder: Encoder, text: str, users: Any, assistants: Any) -> Vector:
        return super().features(encoder, in_context(text, assistants), users, assistants)


def fit_pair_head(data: training.TrainingSet, context_corpus: Path, e5: Encoder) -> LearnedModel:
    """`fit_conversation_head`, its second head on the pair embeddings."""
    base = training.fit_model(data)
    rows = [r for r in training.read_corpus(context_corpus).rows if r.users or r.assistants]
    features = np.stack(
        [
            feature_row(e5, in_context(r.text, r.assistants), r.users, r.assistants, base.judge)
            for r in rows
        ]
    ).astype(np.float64)
    pairs = training.TrainingSet(
        tuple(r.text for r in rows),
        np.asarray([CLASSES.index(r.reason) for r in rows], dtype=np.int8),
        tuple(r.subtype for r in rows),
        tuple(r.group for r in rows),
        np.asarray([r.public for r in rows]),
        features,
        base.judge,
        {},
        {},
        data.rule_thresholds,
    )
    later = training.fit_model(pairs)
    cv = {**cv_of(base), "in_conversation": later.meta["cv"], "rows": len(rows)}
    fields = fields_of(base)
    fields.update(meta={**base.meta, "cv": cv})
    return ConversationHeadModel(**fields, in_conversation=PairModel(**fields_of(later)))


# The escalation turns whose earlier turns an unrelated routine message may follow: not the
# ones where the assistant kept failing, which escalate whatever the user says next.
UNRELATED_AFTER = {"explicit_request", "frustration", "sensitive_topic"}


def conversation_prefixes(root: Path) -> list[list[dict[str, str]]]:
    """The earlier turns before each training conversation's user turns (after the first) that
    an unrelated routine message could follow, in every language (the shape features are
    cosines and fallback probabilities, which the encoder aligns across languages)."""
    prefixes = []
    for path in sorted((root / training.OWN_FOLDER).glob("conversations-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            at, reason = item["expect"]["escalate_at"], item["expect"]["reason"]
            for i, turn in enumerate(item["turns"]):
                if i == 0 or turn["role"] != "user" or (at is not None and i > at):
                    continue
                if i == at and reason not in UNRELATED_AFTER:
                    continue
                prefixes.append(item["turns"][:i])
    return prefixes


def public_in_context(corpus: training.Corpus, root: Path) -> training.Corpus:
    """Every second public routine row moved after the earlier turns of a training
    conversation (round robin): routine messages that come after earlier turns, outside the
    quota's pool, and no copy of a row (a copy would be its own nearest neighbour)."""
    prefixes = itertools.cycle(conversation_prefixes(root))
    rows, moved = [], 0
    for row in corpus.rows:
        if row.public and row.reason == "no_escalation":
            if moved % 2 == 0:
                users, assistants = training._context(next(prefixes))
                row = replace(row, users=users, assistants=assistants)
            moved += 1
        rows.append(row)
    return replace(corpus, rows=rows)


@dataclass(frozen=True)
class Variant:
    name: str
    knobs: dict[str, Any] = field(default_factory=dict)
    fitter: Callable[[training.TrainingSet], LearnedModel] = training.fit_model

    def fit(self, data: training.TrainingSet) -> LearnedModel:
        return self.fitter(data)


VARIANTS = {
    "baseline": Variant("baseline", {}),
    "c0.01": Variant("c0.01", {"C": 0.01}),
    "c0.1": Variant("c0.1", {"C": 0.1}),
    "fe0.5": Variant("fe0.5", {"MAX_FALSE_ESCALATIONS": 0.005}),
    "fe1.5": Variant("fe1.5", {"MAX_FALSE_ESCALATIONS": 0.015}),
    "fe2": Variant("fe2", {"MAX_FALSE_ESCALATIONS": 0.02}),
    "pw5": Variant("pw5", {"PHRASE_WEIGHT": 5.0}),
    "pw20": Variant("pw20", {"PHRASE_WEIGHT": 20.0}),
    "k10": Variant("k10", {"K_NEIGHBOURS": 10}),
    "cw_none": Variant("cw_none", {"_head": weighted_head(None)}),
    "cw_sqrt": Variant("cw_sqrt", {"_head": weighted_head("sqrt")}),
    "mlp64": Variant("mlp64", fitter=lambda d: fit_any(d, mlp_head(64, 1e-2))),
    "mlp64_a1": Variant("mlp64_a1", fitter=lambda d: fit_any(d, mlp_head(64, 1.0))),
    "two_stage": Variant("two_stage", fitter=lambda d: fit_two_stage(d, 0.03, 0.03)),
    "two_stage_g.01": Variant("two_stage_g.01", fitter=lambda d: fit_two_stage(d, 0.01, 0.03)),
    "two_stage_r.1": Variant("two_stage_r.1", fitter=lambda d: fit_two_stage(d, 0.03, 0.1)),
    "explicit_cut": Variant("explicit_cut", fitter=fit_explicit_cut),
    "minilm": Variant("minilm", fitter=fit_minilm),
    "split_quota": Variant("split_quota", fitter=fit_split_quota),
    "fresh_quota": Variant("fresh_quota", fitter=fit_fresh_quota),
}


# --- scoring ---------------------------------------------------------------------------------


def summary(block: ev.BlockMetrics) -> dict[str, Any]:
    def f(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    r = block.reasons
    out = {
        "n": block.n,
        "esc_P": f(block.escalate.precision),
        "esc_R": f(block.escalate.recall),
        "esc_F1": f(block.escalate.f1),
        "FE": f(block.false_escalation_rate),
    }
    for name, short in (
        ("explicit_request", "expl"),
        ("frustration", "frus"),
        ("sensitive_topic", "sens"),
        ("repeated_failed", "rep"),
    ):
        prf = r.get(name)
        if prf is not None and prf.support:
            out[f"{short}_P"], out[f"{short}_R"], out[f"{short}_F1"] = (
                f(prf.precision),
                f(prf.recall),
                f(prf.f1),
            )
    return out


def decider_for(model: LearnedModel, e5: Encoder) -> LearnedDecider:
    if isinstance(model, ExplicitCutModel):
        return ExplicitCutDecider(e5, model)
    if isinstance(model, SplitQuotaModel):
        return SplitQuotaDecider(e5, model)
    if isinstance(model, OrMainModel):
        return OrMainDecider(e5, model)
    if isinstance(model, RepeatVetoModel):
        return RepeatVetoDecider(e5, model)
    if isinstance(model, ConversationHeadModel):
        return ConversationHeadDecider(e5, model)
    return LearnedDecider(e5, model)


def score(model: LearnedModel, e5: Encoder, rows: list[ev.LabelledMessage]) -> dict[str, Any]:
    results = ev.run_messages(decider_for(model, e5), rows)
    return {**summary(ev.block_metrics(results)), **ranking(results)}


def score_conversations(
    model: LearnedModel, e5: Encoder, scenarios: list[ev.Scenario]
) -> dict[str, Any]:
    """Conversations at the exact turn, traps kept, and each outcome's count."""
    m = ev.scenario_metrics(ev.run_scenarios(decider_for(model, e5), scenarios))
    by_reason = {reason: f"{g.correct}/{g.total}" for reason, g in m.by_reason.items()}
    return {
        "exact": f"{m.correct}/{m.total}",
        "traps_kept": f"{m.traps_kept}/{m.traps}",
        "outcomes": m.outcomes,
        "by_reason": by_reason,
    }


def ranking(results: list[ev.MessageResult]) -> dict[str, float]:
    """How well 1 - P(no_escalation) orders escalations before routine messages, whatever
    the threshold: AUROC, and the recall where 1 % or 2 % of this set's routine messages
    would escalate. Two variants that differ only by a threshold have the same figures."""
    from sklearn.metrics import roc_auc_score

    gold = np.array([r.row.escalate for r in results])
    risk = np.array([1.0 - dict(r.decision.probabilities)["no_escalation"] for r in results])
    if gold.all() or not gold.any():
        return {}
    routine = np.sort(risk[~gold])[::-1]
    figures = {"auroc": round(float(roc_auc_score(gold, risk)), 4)}
    for quota in (0.01, 0.02):
        cut = routine[int(quota * len(routine))]  # at most quota of routine rows lie above it
        figures[f"R@{quota:.0%}FE"] = round(float((risk[gold] > cut).mean()), 3)
    return figures


def load_training_set(
    corpus: Path, cache: Path, e5: Encoder, english: Encoder, in_context: bool
) -> training.TrainingSet:
    """The corpus's training set, encoded, from the cache when it holds it."""
    # Keyed by the training files' bytes, so that a study of another corpus never reads
    # the encodings of this one.
    digest = hashlib.sha256()
    for path in training.training_files(corpus):
        digest.update(path.read_bytes())
    digest.update(b"public_in_context" if in_context else b"")
    data_path = cache / f"training_set-{digest.hexdigest()[:16]}.pkl"
    if data_path.is_file():
        with data_path.open("rb") as f:
            data: training.TrainingSet = pickle.load(f)
        return data
    read = training.read_corpus(corpus)
    if in_context:
        read = public_in_context(read, corpus)
    data = training.encode(read, e5, english)
    with data_path.open("wb") as f:
        pickle.dump(data, f)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus/escalation")
    parser.add_argument(
        "--dev", type=Path, default=None, help="the development set (default: CORPUS/dev)"
    )
    parser.add_argument(
        "--scenarios", type=Path, default=None, help="more conversations to score (a JSONL file)"
    )
    parser.add_argument("--messages-csv", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=3000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/study_heads"))
    parser.add_argument("--variants", default="baseline")
    parser.add_argument("--loso", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    parser.add_argument(
        "--public-in-context",
        action="store_true",
        help="move every second public routine row after a training conversation's turns",
    )
    parser.add_argument(
        "--context-corpus",
        type=Path,
        default=None,
        help="variant conversation_head: fit its second head on this corpus's rows",
    )
    args = parser.parse_args()

    args.cache.mkdir(parents=True, exist_ok=True)
    e5, english = E5Encoder(cache_size=10**6), get_encoder()
    saves = [
        disk_cached(e5, args.cache / "e5.pkl"),
        disk_cached(english, args.cache / "minilm.pkl"),
    ]
    data = load_training_set(args.corpus, args.cache, e5, english, args.public_in_context)
    if args.context_corpus:
        context = load_training_set(args.context_corpus, args.cache, e5, english, False)
        VARIANTS["conversation_head"] = Variant(
            "conversation_head", fitter=lambda d: fit_conversation_head(d, context)
        )
        VARIANTS["conversation_stack"] = Variant(
            "conversation_stack", fitter=lambda d: fit_conversation_stack(d, context)
        )
        VARIANTS["pair_head"] = Variant(
            "pair_head", fitter=lambda d: fit_pair_head(d, args.context_corpus, e5)
        )
        VARIANTS["conversation_head_one_cut"] = Variant(
            "conversation_head_one_cut",
            fitter=lambda d: fit_conversation_head_one_cut(d, context),
        )
        VARIANTS["conversation_head_matched"] = Variant(
            "conversation_head_matched",
            fitter=lambda d: fit_conversation_head_matched(d, context),
        )
        VARIANTS["conversation_head_or_main"] = Variant(
            "conversation_head_or_main",
            fitter=lambda d: fit_conversation_head_or_main(d, context),
        )
        VARIANTS["repeat_veto"] = Variant(
            "repeat_veto", fitter=lambda d: fit_repeat_veto(d, context)
        )
        VARIANTS["conversation_gate"] = Variant(
            "conversation_gate", fitter=lambda d: fit_conversation_gate(d, context)
        )
    for save in saves:
        save()
    dev, dev_conversations = ev.read_corpus(args.dev or args.corpus / "dev")
    conversations = {
        "dev_conversations": dev_conversations,
        "scenarios": ev.read_scenarios(args.scenarios) if args.scenarios else [],
    }
    sample = ev.sample_messages(ev.read_messages(args.messages_csv), args.sample, 0)
    for variant in args.variants.split(","):
        v = VARIANTS[variant]
        start = time.time()
        with patched(**v.knobs):
            result = run_variant(v, data, e5, dev, conversations, sample, args.loso)
        result["seconds"] = round(time.time() - start)
        result["corpus"], result["public_in_context"] = str(args.corpus), args.public_in_context
        for save in saves:
            save()
        line = json.dumps(result)
        print(line, flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(line + "\n")


def run_variant(
    v: Variant,
    data: training.TrainingSet,
    e5: Encoder,
    dev: list[ev.LabelledMessage],
    conversations: dict[str, list[ev.Scenario]],
    sample: list[ev.LabelledMessage],
    loso: bool,
) -> dict[str, Any]:
    model = v.fit(data)
    result: dict[str, Any] = {"variant": v.name, "cv": model.meta["cv"]}
    result["dev"] = score(model, e5, dev)
    for name, scenarios in conversations.items():
        if scenarios:
            result[name] = score_conversations(model, e5, scenarios)
    if loso:
        for source in sorted({r.source for r in sample}):
            rows = [r for r in sample if r.source == source and not r.ambiguous]
            result[f"loso_{source}"] = score(v.fit(data.without(source)), e5, rows)
    return result


if __name__ == "__main__":
    main()
