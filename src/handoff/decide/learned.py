"""The learned decider (the default, `HANDOFF_DECIDER=learned`): multilingual e5 embeddings
and a calibrated logistic head.

The model (`models/escalation-v2.npz` + `.json`) is built by `handoff train` from
`corpus/escalation` (see `decide/training.py`):

- input: the message's e5 embedding; the conversation's shape (the message vs earlier user
  turns, the last assistant turn vs earlier ones, whether each of the last two assistant turns
  fell back, by `FallbackJudge`); and its similarity to the closest training examples of each
  class (the same neighbours the inbox shows as evidence);
- head: standardisation + a multinomial logistic regression over five classes, softmax at one
  temperature fitted on out-of-fold logits;
- escalate when P(no_escalation) falls below the threshold chosen out of fold on train so that
  at most 1% of the corpus's routine training messages escalate;
- a message after earlier turns: the conversation head (`models/escalation-v2-conversation`,
  the same kind of head fitted on such messages only, cut where its out-of-fold recall equals
  the main head's), or the main head under its own 1 % quota of routine rows with earlier
  turns (`LearnedDecider.decide`).

What stays rule-based, because the model cannot know it: an explicit request for a person
always escalates (the regex signal); the admin's trigger examples, `when_to_use` and custom
sensitive topics, compared on the same e5 embedding (so an English trigger example also catches
its Spanish paraphrase) at cut-offs moved onto e5's scale by `handoff train` (`rule_thresholds`
in the metadata); a run of low-confidence answers (the model does not see answer confidence;
an answer without one, such as an LLM's or a replayed transcript's, is judged on its words by
`FallbackJudge`, in any language).
The action's default topics are honoured through the closest sensitive examples' subtype: a
message on billing does not escalate as sensitive when the action leaves billing out.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from handoff.decide.encoder import E5_ENCODER_ID, Encoder, Vector
from handoff.decide.policy import REASON_PRIORITY, LocalDecider, Thresholds
from handoff.decide.signals import (
    FIRE_SCORE,
    explicit_request,
    low_confidence,
    quote,
    topic_key,
)
from handoff.domain import Decision, DecisionContext, Evidence, Message, Reason, Role

# The corpus's labels, in the order of the head's outputs.
CLASSES: tuple[str, ...] = (
    "explicit_request",
    "frustration",
    "repeated_failed",
    "sensitive_topic",
    "no_escalation",
)
NO_ESCALATION = CLASSES.index("no_escalation")
REASON_OF: dict[str, Reason] = {
    "explicit_request": Reason.EXPLICIT_REQUEST,
    "frustration": Reason.FRUSTRATION,
    "repeated_failed": Reason.REPEATED_QUESTION,
    "sensitive_topic": Reason.SENSITIVE_TOPIC,
}
MODEL_NAME = "escalation-v2"
# The second head, for a message that comes after earlier turns (`LearnedModel.conversation`).
CONVERSATION_MODEL_NAME = f"{MODEL_NAME}-conversation"
# In the conversation head's metadata: the main head's cut for messages after earlier turns.
MAIN_HEAD_CUT = "main_head_escalates_below"
# A second reason is listed when the model gives it at least this probability.
SECOND_REASON = 0.25
NEAREST = 3
# Neighbour features: the mean of the K closest training examples' cosines in each class.
K_NEIGHBOURS = 5

FloatArray = npt.NDArray[np.float64]
UnitRows = npt.NDArray[np.float32]


def neighbour_features(
    examples: UnitRows, classes: npt.NDArray[np.int8], queries: UnitRows, *, skip_self: bool = False
) -> FloatArray:
    """For each query, per class: the closest example's cosine and the mean of the K closest.

    With `skip_self` the queries are the examples themselves (training), and a row does not
    count as its own neighbour.
    """
    sims = queries @ examples.T
    if skip_self:
        np.fill_diagonal(sims, -1.0)
    columns = []
    for cls in range(len(CLASSES)):
        if not (classes == cls).any():  # a class a fold lacks: no similarity at all
            columns += [np.zeros(len(queries))] * 2
            continue
        top = -np.sort(-sims[:, classes == cls], axis=1)[:, :K_NEIGHBOURS]
        columns += [top[:, 0], top.mean(axis=1)]
    return np.stack(columns, axis=1).astype(np.float64)


def unit_rows(embeddings: npt.NDArray[np.floating]) -> UnitRows:
    """L2-normalised rows as stored in the model (float16 precision, float32 to compute)."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    rows: UnitRows = unit.astype(np.float16).astype(np.float32)
    return rows


# scikit-learn's default token pattern: words of two or more letters or digits, in any script.
TOKEN = re.compile(r"(?u)\b\w\w+\b")
# The phrase features' weight beside the standardised embedding features (chosen on train, out
# of fold, among 3–20).
PHRASE_WEIGHT = 10.0
WEIGHED_MOST = 3


def phrases(text: str) -> list[str]:
    """The text's words and word pairs, lower-cased, as the head's phrase features count them
    (scikit-learn's `TfidfVectorizer(ngram_range=(1, 2))` analyser)."""
    words = TOKEN.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


@dataclass(frozen=True)
class PhraseWeights:
    """The head's weights on the message's words and word pairs (tf-idf, sublinear, unit
    length): what the embedding blurs, such as a team's name or "already tried"."""

    names: tuple[str, ...]  # the phrases, in column order
    idf: FloatArray
    coef: FloatArray  # (classes, phrases), the phrase weight folded in

    @functools.cached_property
    def vocabulary(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def _tfidf(self, text: str) -> tuple[npt.NDArray[np.intp], FloatArray]:
        counts = Counter(p for p in phrases(text) if p in self.vocabulary)
        if not counts:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        columns = np.fromiter((self.vocabulary[p] for p in counts), dtype=np.intp)
        values = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64))) * self.idf[columns]
        return columns, values / np.linalg.norm(values)

    def logits(self, text: str) -> FloatArray:
        """Each class's logit contribution from the text's phrases."""
        columns, values = self._tfidf(text)
        return self.coef[:, columns] @ values

    def weighed_most(self, text: str, cls: int, k: int = WEIGHED_MOST) -> list[str]:
        """The text's phrases that pushed most toward the class (positive weight only)."""
        columns, values = self._tfidf(text)
        push = self.coef[cls, columns] * values
        order = np.argsort(-push, kind="stable")[:k]
        return [self.names[int(columns[i])] for i in order if push[i] > 0]


@dataclass(frozen=True)
class FallbackJudge:
    """Whether an assistant turn fell back: it had no answer ("I'm not sure", "no encontré
    nada sobre eso", "mujhe iski jaankari nahi hai"). A logistic regression on the turn's e5
    embedding, fitted on `corpus/escalation/assistant/answers.jsonl` and the training
    conversations' fallback answers, folded into one weight vector."""

    coef: FloatArray
    intercept: float

    def probability(self, rows: Vector) -> FloatArray:
        """P(fell back) for each unit row."""
        if len(rows) == 0:
            return np.zeros(0)
        logits = rows.astype(np.float64) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))


def conversation_shape(
    message: Vector, users: Sequence[Vector], assistants: Sequence[Vector], judge: FallbackJudge
) -> tuple[float, ...]:
    """The conversation's shape, in `CONVERSATION_FEATURES` numbers (0 when a turn is absent):

    - the message's max cosine to earlier user turns (the user asks again);
    - the last assistant turn's max cosine to earlier ones (the assistant loops);
    - P(fell back) of the last and of the second-to-last assistant turn: a run of them.
    """
    repeat = max((float(u @ message) for u in users), default=0.0)
    looping = 0.0
    if len(assistants) >= 2:
        looping = max(float(a @ assistants[-1]) for a in assistants[:-1])
    last_two = np.stack(assistants[-2:]) if assistants else np.zeros((0, len(message)), np.float32)
    unsure = [0.0] * (2 - len(last_two)) + judge.probability(last_two).tolist()
    return repeat, looping, unsure[1], unsure[0]


CONVERSATION_FEATURES = 4


def feature_row(
    encoder: Encoder,
    text: str,
    user_turns: Sequence[str],
    assistant_turns: Sequence[str],
    judge: FallbackJudge,
) -> Vector:
    """The head's input for one message before its neighbours: its embedding and the
    conversation's shape (`conversation_shape`)."""
    rows = encoder.encode([text, *user_turns, *assistant_turns])
    users = list(rows[1 : 1 + len(user_turns)])
    assistants = list(rows[1 + len(user_turns) :])
    shape = conversation_shape(rows[0], users, assistants, judge)
    return np.concatenate([rows[0], np.asarray(shape, dtype=np.float32)])


@dataclass(frozen=True)
class LearnedModel:
    """The trained head, its calibration and decision threshold, and the training examples."""

    mean: FloatArray
    scale: FloatArray
    coef: FloatArray
    intercept: FloatArray
    temperature: float
    threshold: float
    # Unit e5 rows of the training messages (stored as float16), their texts and class indices:
    # the neighbour features and the evidence.
    examples: UnitRows
    example_texts: tuple[str, ...]
    example_classes: npt.NDArray[np.int8]
    example_subtypes: tuple[str, ...]  # "" except on sensitive_topic rows
    judge: FallbackJudge
    phrase_weights: PhraseWeights
    meta: dict[str, object]
    # A head fitted only on messages that come after earlier turns, routine continuations
    # among them (`training.fit_heads`): the main head has seen few routine ones.
    conversation: LearnedModel | None = None

    @property
    def main_head_cut(self) -> float:
        """A conversation head's: under this P(no_escalation) the main head escalates too."""
        cut = self.meta[MAIN_HEAD_CUT]
        assert isinstance(cut, float)
        return cut

    @property
    def rule_thresholds(self) -> Thresholds:
        """The rules' cut-offs on e5 cosines (`training.rule_thresholds`), the rest default."""
        moved = self.meta["rule_thresholds"]
        assert isinstance(moved, dict)
        return Thresholds().overridden(moved)

    def features(
        self, encoder: Encoder, text: str, users: Sequence[str], assistants: Sequence[str]
    ) -> Vector:
        """`feature_row` with this model's fallback judge."""
        return feature_row(encoder, text, users, assistants, self.judge)

    def fell_back(self, encoder: Encoder, text: str) -> bool:
        """Whether an assistant turn had no answer, judged on its words in any language."""
        return bool(self.judge.probability(encoder.encode([text]))[0] >= 0.5)

    def probabilities(self, base: Vector, text: str) -> FloatArray:
        """Calibrated class probabilities, in `CLASSES` order, from `feature_row`'s output
        and the message's phrases."""
        message = base[None, : self.examples.shape[1]]
        near = neighbour_features(self.examples, self.example_classes, message)[0]
        features = np.concatenate([base.astype(np.float64), near])
        z = (features - self.mean) / self.scale
        phrase_logits = self.phrase_weights.logits(text)
        logits = (self.coef @ z + phrase_logits + self.intercept) / self.temperature
        e = np.exp(logits - logits.max())
        return e / e.sum()  # type: ignore[no-any-return]

    def nearest(self, message: Vector, cls: int, k: int = NEAREST) -> list[tuple[str, float]]:
        """The k training messages of class cls closest to the message, with their cosine."""
        return [(self.example_texts[i], sim) for i, sim in self._nearest(message, cls, k)]

    def sensitive_subtype(self, message: Vector) -> str:
        """The subtype most of the closest sensitive_topic examples share (billing, refund,
        security_fraud or account_access): which of the action's topics the message is on."""
        near = self._nearest(message, CLASSES.index("sensitive_topic"), K_NEIGHBOURS)
        votes = Counter(self.example_subtypes[i] for i, _ in near if self.example_subtypes[i])
        return votes.most_common(1)[0][0] if votes else ""

    def _nearest(self, message: Vector, cls: int, k: int) -> list[tuple[int, float]]:
        idx = np.flatnonzero(self.example_classes == cls)
        sims = self.examples[idx] @ message
        best = np.argsort(-sims, kind="stable")[:k]
        return [(int(idx[i]), float(sims[i])) for i in best]

    @classmethod
    def load(cls, npz: Path, meta_path: Path) -> LearnedModel:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta["encoder"] != E5_ENCODER_ID or tuple(meta["classes"]) != CLASSES:
            raise ValueError(f"{meta_path}: built for another encoder or label set")
        with np.load(npz, allow_pickle=False) as data:
            return cls(
                mean=data["mean"],
                scale=data["scale"],
                coef=data["coef"],
                intercept=data["intercept"],
                temperature=float(meta["temperature"]),
                threshold=float(meta["threshold"]),
                examples=data["examples"].astype(np.float32),
                example_texts=tuple(str(t) for t in data["example_texts"]),
                example_classes=data["example_classes"],
                example_subtypes=tuple(str(t) for t in data["example_subtypes"]),
                judge=FallbackJudge(data["fallback_coef"], float(data["fallback_intercept"])),
                phrase_weights=PhraseWeights(
                    tuple(str(p) for p in data["phrases"]),
                    data["phrase_idf"],
                    data["phrase_coef"].astype(np.float64),
                ),
                meta=meta,
            )


def model_paths(directory: Path | None = None, name: str = MODEL_NAME) -> tuple[Path, Path]:
    """A shipped artefact's two files (or those under directory)."""
    base = directory or Path(str(resources.files("handoff.decide") / "models"))
    return base / f"{name}.npz", base / f"{name}.json"


def load_model(directory: Path | None = None) -> LearnedModel:
    """The main head with its conversation head, from the package (or directory)."""
    conversation = LearnedModel.load(*model_paths(directory, CONVERSATION_MODEL_NAME))
    return replace(LearnedModel.load(*model_paths(directory)), conversation=conversation)


@functools.cache
def shipped_model() -> LearnedModel:
    """The model shipped in the package, loaded once."""
    return load_model()


class LearnedDecider:
    """Decide with the learned head; explicit requests and admin triggers as the rules do."""

    def __init__(self, encoder: Encoder, model: LearnedModel) -> None:
        self.encoder = encoder
        self.model = model
        # Only for the admin's trigger examples, `when_to_use` and custom topics: on the same
        # e5 embedding as the model, so a decision costs one encoder pass.
        self.rules = LocalDecider(encoder, model.rule_thresholds)

    def decide(self, ctx: DecisionContext) -> Decision:
        """Return whether this message should go to a person, with the evidence."""
        rules = [e for e in self._rule_evidence(ctx) if e.score >= FIRE_SCORE]
        conversation = self.model.conversation
        # Only after an earlier user turn: the conversation head never saw a message whose only
        # earlier turn is the assistant's greeting, which is how a widget chat opens.
        if conversation is None or not _turns(ctx.history, Role.USER):
            return self._decide(ctx, rules, self.model, self.model.threshold)
        # After earlier turns the conversation head decides: the main head has seen few
        # routine continuations and reads many as a failed resolution ("great, I'll book that"
        # after one unsure answer). The main head still escalates where it is as sure as it is
        # on 1 % of its own routine rows with earlier turns: plain repetitions ("third time you
        # ask, I ALREADY GAVE IT") that the conversation head, fitted on fewer rows, can miss.
        decision = self._decide(ctx, rules, conversation, conversation.threshold)
        if decision.escalate:
            return decision
        main = self._decide(ctx, rules, self.model, conversation.main_head_cut)
        return main if main.escalate else decision

    def _decide(
        self, ctx: DecisionContext, rules: list[Evidence], head: LearnedModel, threshold: float
    ) -> Decision:
        """One head's decision, escalating when its P(no_escalation) is under `threshold` or a
        rule fired."""
        users, assistants = _turns(ctx.history, Role.USER), _turns(ctx.history, Role.ASSISTANT)
        features = head.features(self.encoder, ctx.message, users, assistants)
        proba = head.probabilities(features, ctx.message)
        message = features[: self.encoder.dim]
        subtype = head.sensitive_subtype(message)
        # Sensitive only on a topic the action lists (an admin may take billing off, say).
        topics = {topic_key(t) for t in ctx.action.sensitive_topics}
        on_topic = not subtype or topic_key(subtype) in topics
        model = self._learned_evidence(head, ctx.message, message, proba, subtype)
        escalate = bool(proba[NO_ESCALATION] < threshold)
        chosen = [e for e in model if e.score >= SECOND_REASON] or model[:1]
        # A reason a rule gave is explained by the rule's evidence (one item per reason).
        given = {e.reason for e in rules}
        learned = [e for e in model if e.reason not in given]
        chosen = [
            e
            for e in chosen
            if e.reason not in given and (e.reason != Reason.SENSITIVE_TOPIC or on_topic)
        ]
        fired = rules + (chosen if escalate else [])
        evidence = tuple(rules + learned)
        probabilities = tuple((c, round(float(p), 4)) for c, p in zip(CLASSES, proba, strict=True))
        if not fired:
            return Decision.stay(evidence, probabilities)
        # The rules' reasons first (a person was asked for, the admin's trigger), then the
        # model's by probability.
        reasons = tuple(dict.fromkeys(e.reason for e in fired))
        score = max([1.0 - float(proba[NO_ESCALATION]), *(e.score for e in rules)])
        return Decision(
            escalate=True,
            reasons=reasons,
            score=round(score, 3),
            evidence=evidence,
            probabilities=probabilities,
        )

    def _rule_evidence(self, ctx: DecisionContext) -> list[Evidence]:
        # The model sees neither the AI's answer confidence nor the admin's configuration, so
        # these signals stay rule-based, with the action's threshold overrides.
        t = self.rules.thresholds.overridden(ctx.action.thresholds)
        found = [
            explicit_request(ctx.message),
            self.rules.trigger_evidence(ctx),
            self.rules.custom_topic_evidence(ctx),
            low_confidence(
                ctx.answer,
                ctx.history,
                threshold=t.low_confidence,
                run=t.low_confidence_run,
                says_no_answer=lambda text: self.model.fell_back(self.encoder, text),
            ),
        ]
        return sorted(
            (e for e in found if e is not None), key=lambda e: REASON_PRIORITY.index(e.reason)
        )

    def _learned_evidence(
        self, head: LearnedModel, text: str, message: Vector, proba: FloatArray, subtype: str
    ) -> list[Evidence]:
        """One Evidence per escalation reason, most probable first. Each reason the model
        would give (the top one, and any at `SECOND_REASON` or more) quotes the message and
        names the closest training examples of that reason and the message's phrases that
        weighed most toward it, so the inbox can show why."""
        order = sorted(REASON_OF, key=lambda c: -proba[CLASSES.index(c)])
        evidence = []
        for rank, name in enumerate(order):
            p = float(proba[CLASSES.index(name)])
            detail = f"learned model: P({name}) = {p:.2f}"
            if name == "sensitive_topic" and subtype:
                detail += f" (on {topic_key(subtype)})"
            if rank == 0 or p >= SECOND_REASON:
                near = head.nearest(message, CLASSES.index(name))
                detail += f" for {quote(text)}; closest training examples: " + "; ".join(
                    f"{quote(example)} ({sim:.2f})" for example, sim in near
                )
                if weighed := head.phrase_weights.weighed_most(text, CLASSES.index(name)):
                    detail += "; phrases that weighed most: " + ", ".join(map(quote, weighed))
            evidence.append(Evidence(REASON_OF[name], round(p, 3), detail))
        return evidence


def _turns(history: Sequence[Message], role: Role) -> list[str]:
    return [m.text for m in history if m.role == role and m.text]
