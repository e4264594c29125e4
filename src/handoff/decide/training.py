"""Build the learned decider's model from `corpus/escalation` (`handoff train`).

Deterministic: no random step (lbfgs from zeros, folds = languages), so a rebuild from the same
training files on the same machine gives the same numbers; the metadata carries the files'
sha256 and no date. On another machine (CPU, or library versions within the pinned ranges) e5's
embeddings can differ in the third decimal, which moves the weights a little (the rebuild
test's tolerances).
The held-out corpus is never read here.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from handoff.decide.encoder import E5_ENCODER_ID, Encoder
from handoff.decide.learned import (
    CLASSES,
    CONVERSATION_FEATURES,
    K_NEIGHBOURS,
    MAIN_HEAD_CUT,
    NO_ESCALATION,
    PHRASE_WEIGHT,
    FallbackJudge,
    FloatArray,
    LearnedModel,
    PhraseWeights,
    UnitRows,
    feature_row,
    neighbour_features,
    phrases,
    unit_rows,
)
from handoff.decide.policy import Thresholds

# Chosen on train alone: the best escalation recall at the 1% quota, out of fold.
C = 0.03
MAX_FALSE_ESCALATIONS = 0.01  # of routine training messages, out of fold
# The fallback judge's regularisation (standardised e5 dimensions, few hundred rows).
JUDGE_C = 0.1

Labels = npt.NDArray[np.int8]


# Where each training row comes from: `train/` (the project's own corpus, by language) and
# `public/intents.jsonl` (a fixed sample of three public intent datasets, by source);
# `assistant/answers.jsonl` holds assistant turns labelled whether they fell back.
OWN_FOLDER, PUBLIC_FILE, ANSWERS_FILE = "train", "public/intents.jsonl", "assistant/answers.jsonl"
# Messages with earlier turns that only the conversation head is fitted on: routine
# continuations, look-alikes and escalations after routine turns (briefs T5–T8), beside
# train/'s own.
CONVERSATION_FOLDER = "conversation"
# A conversation's escalation turn when the assistant kept falling back: the conversation is
# not progressing, the model's repeated_failed.
CONVERSATION_LABEL = {"low_confidence": "repeated_failed"}


@dataclass(frozen=True)
class TrainingRow:
    """One message to fit on, with its earlier turns, label and cross-validation group."""

    text: str
    users: tuple[str, ...]
    assistants: tuple[str, ...]
    reason: str
    # The language for the project's own rows, the dataset for public ones: a fold.
    group: str
    public: bool
    subtype: str = ""  # sensitive_topic rows: billing, refund, security_fraud, account_access


@dataclass(frozen=True)
class TrainingSet:
    """The training messages, their head inputs and labels."""

    texts: tuple[str, ...]
    classes: Labels
    subtypes: tuple[str, ...]
    groups: tuple[str, ...]
    public: npt.NDArray[np.bool_]
    features: FloatArray
    judge: FallbackJudge
    judge_report: dict[str, object]  # its out-of-fold figures, for the metadata
    sha256: dict[str, str]
    rule_thresholds: dict[str, float]

    def without(self, group: str) -> TrainingSet:
        """The same set with one group's rows left out (leave-one-source-out)."""
        return self.where(np.asarray(self.groups) != group)

    def where(self, keep: npt.NDArray[np.bool_]) -> TrainingSet:
        """The same set with only the rows `keep` marks."""
        return replace(
            self,
            texts=tuple(t for t, k in zip(self.texts, keep, strict=True) if k),
            classes=self.classes[keep],
            subtypes=tuple(t for t, k in zip(self.subtypes, keep, strict=True) if k),
            groups=tuple(g for g, k in zip(self.groups, keep, strict=True) if k),
            public=self.public[keep],
            features=self.features[keep],
        )


def training_files(root: Path) -> list[Path]:
    """Every file the model is fitted on, under a corpus root such as `corpus/escalation`."""
    own = sorted((root / OWN_FOLDER).glob("*.jsonl"))
    if not own:
        raise FileNotFoundError(f"{root / OWN_FOLDER}: no <lang>.jsonl training files")
    if not (root / ANSWERS_FILE).is_file():
        raise FileNotFoundError(f"{root / ANSWERS_FILE}: the assistant turns are missing")
    public = root / PUBLIC_FILE
    return [*own, root / ANSWERS_FILE, *([public] if public.is_file() else [])]


def _context(turns: Sequence[dict[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    users = tuple(t["text"] for t in turns if t["role"] == "user")
    return users, tuple(t["text"] for t in turns if t["role"] == "assistant")


def _message_rows(item: dict[str, Any], public: bool) -> list[TrainingRow]:
    users, assistants = _context(item["context"])
    group = item["source"] if public else item["lang"]
    subtype = item.get("subtype") or ""
    return [TrainingRow(item["text"], users, assistants, item["reason"], group, public, subtype)]


def _conversation_rows(item: dict[str, Any]) -> list[TrainingRow]:
    """Each user turn up to the one where a person should take over: routine before it, the
    expected reason at it (every user turn of a trap is routine)."""
    turns, expect = item["turns"], item["expect"]
    at = expect["escalate_at"]
    rows = []
    for i, turn in enumerate(turns):
        if turn["role"] != "user" or (at is not None and i > at):
            continue
        reason = "no_escalation"
        if i == at:
            reason = CONVERSATION_LABEL.get(expect["reason"], expect["reason"])
        users, assistants = _context(turns[:i])
        rows.append(TrainingRow(turn["text"], users, assistants, reason, item["lang"], False))
    return rows


@dataclass(frozen=True)
class AssistantTurn:
    """An assistant turn and whether it fell back (had no answer), for the fallback judge."""

    text: str
    fell_back: bool
    lang: str  # its cross-validation fold


@dataclass(frozen=True)
class Corpus:
    """What the model is fitted on, as read from the corpus root."""

    rows: list[TrainingRow]
    # `assistant/answers.jsonl`, and the last two assistant turns before each low_confidence
    # escalation of the training conversations: what falling back looks like in each language.
    answers: list[AssistantTurn]
    sha256: dict[str, str]


def _fallbacks(item: dict[str, Any]) -> list[AssistantTurn]:
    at = item["expect"]["escalate_at"]
    if item["expect"]["reason"] != "low_confidence" or at is None:
        return []
    said = [t["text"] for t in item["turns"][:at] if t["role"] == "assistant"][-2:]
    return [AssistantTurn(text, True, item["lang"]) for text in said]


def read_corpus(root: Path, *, conversation: bool = False) -> Corpus:
    """Every training row under the corpus root, and the sha256 of each file read.

    With `conversation`, the conversation head's rows instead: the messages with earlier
    turns, of `train/` and `conversation/`."""
    rows: list[TrainingRow] = []
    answers: list[AssistantTurn] = []
    sha256 = {}
    extra = sorted((root / CONVERSATION_FOLDER).glob("*.jsonl")) if conversation else []
    for path in [*training_files(root), *extra]:
        raw = path.read_bytes()
        name = path.relative_to(root).as_posix()
        sha256[name] = hashlib.sha256(raw).hexdigest()
        public = path.parent.name not in (OWN_FOLDER, CONVERSATION_FOLDER)
        for line in raw.decode("utf-8").splitlines():
            item = json.loads(line)
            if name == ANSWERS_FILE:
                answers.append(AssistantTurn(item["text"], item["fallback"], item["lang"]))
            elif "turns" in item:
                rows.extend(_conversation_rows(item))
                answers.extend(_fallbacks(item))
            else:
                rows.extend(_message_rows(item, public))
    if conversation:
        rows = [r for r in rows if r.users or r.assistants]
    return Corpus(rows, list(dict.fromkeys(answers)), sha256)


def _fit_judge(x: FloatArray, y: npt.NDArray[np.bool_]) -> FallbackJudge:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(C=JUDGE_C, class_weight="balanced", max_iter=5000)
    lr.fit(scaler.transform(x), y)
    # Fold the standardisation into the weights: one dot product at decision time.
    coef = lr.coef_[0] / scaler.scale_
    return FallbackJudge(coef, float(lr.intercept_[0] - coef @ scaler.mean_))


def fallback_judge(
    answers: Sequence[AssistantTurn], encoder: Encoder
) -> tuple[FallbackJudge, dict[str, object]]:
    """Fit the judge on every assistant turn, and measure it leaving one language out."""
    x = encoder.encode([a.text for a in answers]).astype(np.float64)
    y = np.asarray([a.fell_back for a in answers])
    langs = np.asarray([a.lang for a in answers])
    said = np.zeros(len(y), dtype=bool)
    for lang in sorted(set(langs.tolist())):
        held = langs == lang
        said[held] = _fit_judge(x[~held], y[~held]).probability(x[held].astype(np.float32)) >= 0.5
    report: dict[str, object] = {
        "turns": len(y),
        "fell_back": int(y.sum()),
        "cv": "leave one language out",
        "recall": round(float(said[y].mean()), 4),
        "false_alarm_rate": round(float(said[~y].mean()), 4),
    }
    return _fit_judge(x, y), report


def encode(
    corpus: Corpus,
    encoder: Encoder,
    english: Encoder,
    progress: Callable[[int], None] = lambda _: None,
) -> TrainingSet:
    """Fit the fallback judge, then encode every row as the head is fitted on them, and move
    the rules' cut-offs onto the encoder's scale (`english` is the rules decider's MiniLM)."""
    judge, report = fallback_judge(corpus.answers, encoder)
    features = []
    for row in corpus.rows:
        features.append(feature_row(encoder, row.text, row.users, row.assistants, judge))
        progress(1)
    rows = corpus.rows
    messages = np.stack(features)[:, : encoder.dim].astype(np.float64)
    in_english = [i for i, r in enumerate(rows) if r.public or r.group == "en"]
    moved = rule_thresholds(
        [rows[i].text for i in in_english], messages[in_english], encoder, english
    )
    return TrainingSet(
        tuple(r.text for r in rows),
        np.asarray([CLASSES.index(r.reason) for r in rows], dtype=np.int8),
        tuple(r.subtype for r in rows),
        tuple(r.group for r in rows),
        np.asarray([r.public for r in rows]),
        np.stack(features).astype(np.float64),
        judge,
        report,
        corpus.sha256,
        moved,
    )


# The rules' cut-offs the learned decider applies to e5 cosines: the admin's examples and
# `when_to_use` sentences are compared with the message as sentences, a custom topic by its name.
SENTENCE_THRESHOLDS = ("trigger", "trigger_near", "when_to_use")
NAME_THRESHOLDS = ("topic", "topic_near")
# One in so many of the English word pairs stands for a topic's name (a few hundred).
NAME_SAMPLE_STEP = 10


def rule_thresholds(
    texts: Sequence[str], rows: FloatArray, encoder: Encoder, english: Encoder
) -> dict[str, float]:
    """The rules decider's MiniLM cut-offs moved onto `encoder`'s cosines.

    e5's cosines sit higher than MiniLM's (unrelated sentences score about 0.8), so each default
    becomes the e5 cosine that the same share of pairs reaches: pairs of the English training
    messages (`rows` are their unit e5 rows) for the sentence cut-offs, and messages against
    English word pairs (standing for a custom topic's name) for the topic ones. A cut-off that
    lets through the same share of unrelated pairs keeps its meaning; only the scale moves.
    """
    defaults = Thresholds()
    unique = {t: i for i, t in enumerate(texts)}  # the last row of each repeated text
    keep = sorted(unique.values())
    ours = rows[keep].astype(np.float64)
    theirs = english.encode([texts[i] for i in keep], cache=False).astype(np.float64)
    upper = np.triu_indices(len(keep), 1)
    pairs_theirs, pairs_ours = (theirs @ theirs.T)[upper], (ours @ ours.T)[upper]
    moved = {
        name: _same_share(getattr(defaults, name), pairs_theirs, pairs_ours)
        for name in SENTENCE_THRESHOLDS
    }
    names = _word_pairs([texts[i] for i in keep])[::NAME_SAMPLE_STEP]
    ours_n = encoder.encode(names, cache=False).astype(np.float64)
    theirs_n = english.encode(names, cache=False).astype(np.float64)
    for name in NAME_THRESHOLDS:
        moved[name] = _same_share(
            getattr(defaults, name), (theirs @ theirs_n.T).ravel(), (ours @ ours_n.T).ravel()
        )
    return moved


def _same_share(cut: float, theirs: FloatArray, ours: FloatArray) -> float:
    share = float((theirs >= cut).mean())
    return round(float(np.quantile(ours, 1.0 - share)), 3)


def _word_pairs(texts: Sequence[str]) -> list[str]:
    """The word pairs found in at least two of the texts, sorted."""
    seen: Counter[str] = Counter()
    for text in texts:
        seen.update({p for p in phrases(text) if " " in p})
    return sorted(p for p, n in seen.items() if n >= 2)


@dataclass(frozen=True)
class Head:
    """A fitted head: standardisation and weights of the dense features, and the phrases'."""

    mean: FloatArray
    scale: FloatArray
    coef: FloatArray
    intercept: FloatArray
    phrases: PhraseWeights

    def logits(self, x: FloatArray, texts: Sequence[str]) -> FloatArray:
        """Uncalibrated logits, through the same phrase code as a live decision."""
        dense = ((x - self.mean) / self.scale) @ self.coef.T + self.intercept
        return dense + np.stack([self.phrases.logits(t) for t in texts])


def _head(x: FloatArray, texts: Sequence[str], y: Labels) -> Head:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    tfidf = TfidfVectorizer(analyzer=phrases, min_df=2, sublinear_tf=True)
    counted = tfidf.fit_transform(texts)
    inputs = sparse.hstack([sparse.csr_matrix(scaler.transform(x)), counted * PHRASE_WEIGHT])
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=5000)
    lr.fit(inputs.tocsr(), y)
    dense = x.shape[1]
    names = tuple(str(p) for p in tfidf.get_feature_names_out())
    weights = PhraseWeights(names, tfidf.idf_, lr.coef_[:, dense:] * PHRASE_WEIGHT)
    return Head(scaler.mean_, scaler.scale_, lr.coef_[:, :dense], lr.intercept_, weights)


def _with_neighbours(x: FloatArray, units: UnitRows, y: Labels) -> FloatArray:
    """Training rows with their neighbour features (a row is not its own neighbour)."""
    return np.hstack([x, neighbour_features(units, y, units, skip_self=True)])


def _out_of_fold_logits(
    x: FloatArray, units: UnitRows, texts: Sequence[str], y: Labels, folds: Sequence[str]
) -> FloatArray:
    """Logits for each message from a head that never saw its language (or public source),
    its neighbours and phrases drawn from the other folds only."""
    logits = np.zeros((len(y), len(CLASSES)))
    groups = np.asarray(folds)
    for group in sorted(set(folds)):
        held = groups == group
        if missing := set(range(len(CLASSES))) - set(y[~held].tolist()):
            names = ", ".join(CLASSES[c] for c in sorted(missing))
            raise ValueError(f"without {group}, no {names} rows are left to fit on")
        fitted = _select(texts, ~held)
        head = _head(_with_neighbours(x[~held], units[~held], y[~held]), fitted, y[~held])
        near = neighbour_features(units[~held], y[~held], units[held])
        logits[held] = head.logits(np.hstack([x[held], near]), _select(texts, held))
    return logits


def _select(texts: Sequence[str], keep: npt.NDArray[np.bool_]) -> list[str]:
    return [t for t, k in zip(texts, keep, strict=True) if k]


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


def _recall_cut(p_none: FloatArray, y: Labels, recall: float) -> float:
    """The P(no_escalation) cut-off under which `recall` of the escalating messages fall: the
    midpoint of the k-th and (k+1)-th lowest of theirs, k = ceil(recall * n)."""
    escalating = np.sort(p_none[y != NO_ESCALATION])
    k = min(max(int(np.ceil(recall * len(escalating))), 1), len(escalating) - 1)
    return float((escalating[k - 1] + escalating[k]) / 2)


def fit_model(data: TrainingSet) -> LearnedModel:
    """Fit the head, its temperature and threshold (both chosen out of fold on train)."""
    return _fit(data)[0]


def fit_heads(main: TrainingSet, conversation: TrainingSet) -> tuple[LearnedModel, LearnedModel]:
    """The main head, and the conversation head for messages that come after earlier turns.

    The conversation head is cut where its out-of-fold recall equals the main head's: its
    routine rows are mostly look-alikes of escalations, on which a 1 % quota would tighten as
    more are written. Its metadata carries the main head's own cut for such messages (1 % of
    the main head's routine rows with earlier turns, out of fold), under which the main head
    still escalates (`LearnedDecider`)."""
    main_model, p_none = _fit(main)
    later = ~main.public & (main.features[:, -CONVERSATION_FEATURES:] != 0).any(axis=1)
    sure = _threshold(p_none[later], main.classes[later])
    cv = main_model.meta["cv"]
    assert isinstance(cv, dict)
    conversation_model = _fit(conversation, recall=cv["escalation_recall"])[0]
    meta = {**conversation_model.meta, MAIN_HEAD_CUT: round(sure, 6)}
    return main_model, replace(conversation_model, meta=meta)


def _fit(data: TrainingSet, *, recall: float | None = None) -> tuple[LearnedModel, FloatArray]:
    """`fit_model`, with the out-of-fold P(no_escalation) of each row; with `recall`, the
    threshold escalates that share of the escalating rows instead of 1 % of routine ones."""
    from scipy.special import softmax

    x, y = data.features, data.classes
    units = unit_rows(x[:, : x.shape[1] - CONVERSATION_FEATURES])
    logits = _out_of_fold_logits(x, units, data.texts, y, data.groups)
    temperature = _temperature(logits, y)
    p_none = softmax(logits / temperature, axis=1)[:, NO_ESCALATION]
    # The quota is counted on the project's own routine messages, hard negatives included: the
    # public datasets' easy ones would loosen it.
    own = ~data.public
    if recall is None:
        threshold = _threshold(p_none[own], y[own])
    else:
        threshold = _recall_cut(p_none[own], y[own], recall)
    escalates = p_none[own] < threshold
    routine = y[own] == NO_ESCALATION
    head = _head(_with_neighbours(x, units, y), data.texts, y)
    meta: dict[str, object] = {
        "classes": list(CLASSES),
        "encoder": E5_ENCODER_ID,
        "features": "e5 query embedding + max cosine to earlier user turns + max cosine of the "
        "last assistant turn to earlier ones + P(fell back) of the last two assistant turns "
        "+ per class, the closest and the mean "
        f"of the {K_NEIGHBOURS} closest training examples' cosines",
        "head": f"StandardScaler + LogisticRegression(C={C}, class_weight=balanced)",
        "phrases": {
            "what": "words and word pairs of the message, tf-idf (sublinear, unit length), "
            "in at least 2 training messages",
            "weight": PHRASE_WEIGHT,
            "count": len(head.phrases.vocabulary),
        },
        "temperature": round(temperature, 6),
        "threshold": round(threshold, 6),
        "rule_thresholds": data.rule_thresholds,
        "cv": {
            "folds": "leave one language (own corpus) or one public source out",
            "scored_on": "the own corpus's rows",
            "false_escalation_rate": round(float(escalates[routine].mean()), 4),
            "escalation_recall": round(float(escalates[~routine].mean()), 4),
        },
        "fallback_judge": {
            "head": f"StandardScaler + LogisticRegression(C={JUDGE_C}, class_weight=balanced)",
            **data.judge_report,
        },
        **({} if recall is None else {"threshold_matches_recall": recall}),
        "train_messages": len(y),
        "train_sha256": data.sha256,
    }
    fitted = LearnedModel(
        mean=head.mean,
        scale=head.scale,
        coef=head.coef,
        intercept=head.intercept,
        temperature=round(temperature, 6),
        threshold=round(threshold, 6),
        examples=units,
        example_texts=data.texts,
        example_classes=data.classes,
        example_subtypes=data.subtypes,
        judge=data.judge,
        phrase_weights=head.phrases,
        meta=meta,
    )
    return fitted, p_none


def save_model(model: LearnedModel, npz: Path, meta_path: Path) -> None:
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        npz,
        mean=model.mean,
        scale=model.scale,
        coef=model.coef,
        intercept=model.intercept,
        examples=model.examples.astype(np.float16),
        example_texts=np.asarray(model.example_texts),
        example_classes=model.example_classes,
        example_subtypes=np.asarray(model.example_subtypes),
        fallback_coef=model.judge.coef,
        fallback_intercept=np.float64(model.judge.intercept),
        phrases=np.asarray(model.phrase_weights.names),
        phrase_idf=model.phrase_weights.idf,
        phrase_coef=model.phrase_weights.coef.astype(np.float32),
    )
    meta_path.write_text(json.dumps(model.meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
