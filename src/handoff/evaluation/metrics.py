"""Measure a decider on labelled data: single messages (CSV) and conversations (JSONL).

The data format is the one of `shared/eval/` (see its README): `messages.csv` rows with a
`reason` label and `scenarios.jsonl` conversations with the user turn where a hand-off is right.
A corpus folder (`corpus/escalation/heldout`, see its README) holds the same two kinds of data
as `messages.jsonl` and `conversations.jsonl`, every line with its `lang`: its messages become
`LabelledMessage` rows (`hard_negative` as the aux flag of that name, the folder's name as the
source) and its conversations `Scenario`s, and every metric is also given per language.
Everything here is pure apart from the decider it runs: reading and validating the files,
running the decider, and the arithmetic of the metrics. The `handoff eval` command renders it.

How a decision is scored
------------------------
Decisions speak in `domain.Reason`; the data speaks in labels. A decision's reasons map to
labels like this:

- `explicit_request`, `frustration`, `sensitive_topic` map to the label of the same name;
- `repeated_question` and `low_confidence` both map to `repeated_failed`;
- `llm_tool_call` maps to no label: it is a correct *escalation* for any escalating row (the
  binary metrics count it), but it matches no specific reason.

Per reason R, on the rows of a block (headline = `ambiguous=0`), the data's label is the
*primary* reason of a row, so a decision is scored by its primary reason too, its first one
(`decision.reasons[0]`; the decider orders reasons: request, topic, feeling, then the rest):

- true positive: a row labelled R whose decision escalates with R first (after the mapping);
- false positive: a row not labelled R whose decision escalates with R first;
- false negative: a row labelled R whose decision stays or puts another reason first;
- support: rows labelled R; precision = TP / (TP + FP), recall = TP / support, F1 their
  harmonic mean. A ratio with a zero denominator is `None` (JSON `null`), never a made-up 0.

`reasons_any` is the looser variant with any-reason matching: R anywhere among the decision's
reasons counts, so a decision that escalates for R and also for S on a row labelled R is a true
positive for R *and* a false positive for S. `confusion` counts label x first reason.

Binary (`escalate`): positive = the row's `escalate` is 1; predicted = `decision.escalate`.
The false-escalation rate is escalated `no_escalation` rows / all `no_escalation` rows.

Scenarios are fed one user turn at a time (history = every earlier turn, user and assistant);
the first turn where the decider escalates is the predicted turn and the run of that scenario
stops there, as the conversation would go to a person. A scenario is correct when the predicted
turn equals `expect.escalate_at` (for `null`: it never escalated). `reason_match` counts correct
escalations whose decision includes the expected reason (`low_confidence` and `repeated_failed`
are one group, as above).

"Worst" mistakes are the most confident wrong decisions: false escalations of `no_escalation`
rows with the highest decision score; missed escalations whose strongest evidence (near miss)
scored lowest, so nothing came close; escalations for a wrong reason with the highest score.
Only headline (`ambiguous=0`) rows are listed.
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from handoff.decide.policy import Decider
from handoff.domain import (
    ActionConfig,
    Channel,
    Decision,
    DecisionContext,
    Message,
    Reason,
    Role,
)

EXPLICIT_REQUEST = "explicit_request"
FRUSTRATION = "frustration"
REPEATED_FAILED = "repeated_failed"
SENSITIVE_TOPIC = "sensitive_topic"
NO_ESCALATION = "no_escalation"
REASONS: tuple[str, ...] = (EXPLICIT_REQUEST, FRUSTRATION, REPEATED_FAILED, SENSITIVE_TOPIC)
LABELS: tuple[str, ...] = (*REASONS, NO_ESCALATION)
# Scenarios also name `low_confidence`; it is scored in the `repeated_failed` group.
SCENARIO_REASONS: tuple[str, ...] = (*REASONS, "low_confidence")

REASON_TO_LABEL: dict[Reason, str | None] = {
    Reason.EXPLICIT_REQUEST: EXPLICIT_REQUEST,
    Reason.FRUSTRATION: FRUSTRATION,
    Reason.REPEATED_QUESTION: REPEATED_FAILED,
    Reason.LOW_CONFIDENCE: REPEATED_FAILED,
    Reason.SENSITIVE_TOPIC: SENSITIVE_TOPIC,
    Reason.LLM_TOOL_CALL: None,
}

# The two files of a corpus folder, and the aux flag its `hard_negative` rows carry.
CORPUS_MESSAGES = "messages.jsonl"
CORPUS_CONVERSATIONS = "conversations.jsonl"
HARD_NEGATIVE = "hard_negative"

REQUIRED_COLUMNS: tuple[str, ...] = ("source", "text", "reason", "escalate", "ambiguous")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "split",
    "row_id",
    "context_json",
    "orig_label",
    "subtype",
    "aux",
)

# Messages in the data carry no time; the decider only needs one that is fixed.
FIXED_TIME = datetime(2025, 1, 1, tzinfo=UTC)

DEFAULT_ACTION = ActionConfig(
    name="Escalate_To_Human",
    platform="native",
    when_to_use=(
        "Use when the user asks for a person, is frustrated, repeats a question the assistant "
        "could not solve, or raises billing, refunds, security or account-access trouble. "
        "Creates a ticket in the inbox with the chat history, the user's details and a summary, "
        "notifies the support team and stops the AI from replying until the ticket is solved."
    ),
    channels=frozenset(Channel),
)


class EvalDataError(ValueError):
    """A data file that does not follow the evaluation schema; the message says where."""


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn of a conversation: who spoke and what they said."""

    role: Role
    text: str


@dataclass(frozen=True, slots=True)
class LabelledMessage:
    """One row of a messages CSV."""

    row: int  # 1-based data row in the file
    source: str
    row_id: str
    text: str
    context: tuple[Turn, ...]
    reason: str
    escalate: bool
    ambiguous: bool
    split: str = ""
    orig_label: str = ""
    subtype: str = ""
    aux: tuple[str, ...] = ()
    lang: str = ""  # corpus rows only


@dataclass(frozen=True, slots=True)
class Scenario:
    """One conversation of a scenarios JSONL file and the turn where a hand-off is right."""

    line: int
    id: str
    channel: str
    turns: tuple[Turn, ...]
    escalate_at: int | None
    reason: str | None
    note: str = ""
    lang: str = ""  # corpus conversations only


def _flag(value: str, column: str, row: int) -> bool:
    if value not in ("0", "1"):
        raise EvalDataError(f"row {row}: column {column!r} must be 0 or 1, got {value!r}")
    return value == "1"


def _turns(raw: object, where: str) -> tuple[Turn, ...]:
    if not isinstance(raw, list):
        raise EvalDataError(f"{where}: expected a JSON list of {{'role', 'text'}} turns")
    turns: list[Turn] = []
    roles = ", ".join(r.value for r in Role)
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise EvalDataError(f"{where}: turn {i} is not an object")
        role, text = item.get("role"), item.get("text")
        if role not in {r.value for r in Role}:
            raise EvalDataError(f"{where}: turn {i} has role {role!r}; expected one of {roles}")
        if not isinstance(text, str):
            raise EvalDataError(f"{where}: turn {i} has no string 'text'")
        turns.append(Turn(Role(role), text))
    return tuple(turns)


def read_messages(path: Path) -> list[LabelledMessage]:
    """Read and validate a messages CSV; raise EvalDataError naming the row on bad input."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        raise EvalDataError(f"{path}: cannot read: {e.strerror or e}") from e
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        if not header:
            raise EvalDataError(f"{path}: empty file, expected a header row")
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise EvalDataError(
                f"{path}: missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} (header has: {', '.join(header)})"
            )
        rows: list[LabelledMessage] = []
        try:
            for n, record in enumerate(reader, start=1):
                rows.append(_message(record, n, path))
        except csv.Error as e:
            raise EvalDataError(f"{path}: line {reader.line_num}: malformed CSV: {e}") from e
        except UnicodeDecodeError as e:
            raise EvalDataError(f"{path}: not UTF-8: {e}") from e
    return rows


def _message(record: dict[str | Any, str | Any], n: int, path: Path) -> LabelledMessage:
    if None in record:
        raise EvalDataError(f"{path}: row {n}: more fields than the header has columns")

    def get(column: str) -> str:
        value = record.get(column)
        return value if isinstance(value, str) else ""

    text = get("text")
    if not text.strip():
        raise EvalDataError(f"{path}: row {n}: empty 'text'")
    reason = get("reason")
    if reason not in LABELS:
        raise EvalDataError(
            f"{path}: row {n}: unknown reason {reason!r}; expected one of {', '.join(LABELS)}"
        )
    try:
        escalate = _flag(get("escalate"), "escalate", n)
        ambiguous = _flag(get("ambiguous"), "ambiguous", n)
    except EvalDataError as e:
        raise EvalDataError(f"{path}: {e}") from None
    if escalate != (reason != NO_ESCALATION):
        raise EvalDataError(
            f"{path}: row {n}: escalate={int(escalate)} contradicts reason {reason!r}"
        )
    context: tuple[Turn, ...] = ()
    raw_context = get("context_json").strip()
    if raw_context:
        try:
            parsed = json.loads(raw_context)
        except json.JSONDecodeError as e:
            raise EvalDataError(f"{path}: row {n}: bad JSON in context_json: {e}") from None
        context = _turns(parsed, f"{path}: row {n}: context_json")
    return LabelledMessage(
        row=n,
        source=get("source") or "unknown",
        row_id=get("row_id") or str(n),
        text=text,
        context=context,
        reason=reason,
        escalate=escalate,
        ambiguous=ambiguous,
        split=get("split"),
        orig_label=get("orig_label"),
        subtype=get("subtype"),
        aux=tuple(a for a in get("aux").split(";") if a),
    )


def _jsonl(path: Path) -> Iterator[tuple[int, object, str]]:
    """Yield (line number, parsed object, "path: line n") for every non-blank line."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as e:
        raise EvalDataError(f"{path}: cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise EvalDataError(f"{path}: not UTF-8: {e}") from e
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalDataError(f"{where}: bad JSON: {e}") from None
        yield number, obj, where


def read_scenarios(path: Path) -> list[Scenario]:
    """Read and validate a scenarios JSONL file; raise EvalDataError naming the line."""
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    for number, obj, where in _jsonl(path):
        scenario = _scenario(obj, number, where)
        if scenario.id in seen:
            raise EvalDataError(f"{where}: duplicate id {scenario.id!r}")
        seen.add(scenario.id)
        scenarios.append(scenario)
    return scenarios


def _scenario(obj: object, number: int, where: str) -> Scenario:
    if not isinstance(obj, dict):
        raise EvalDataError(f"{where}: expected a JSON object")
    sid = obj.get("id")
    if not isinstance(sid, str) or not sid:
        raise EvalDataError(f"{where}: missing string 'id'")
    where = f"{where} ({sid})"
    turns = _turns(obj.get("turns"), f"{where}: turns")
    if not turns:
        raise EvalDataError(f"{where}: 'turns' is empty")
    expect = obj.get("expect")
    if not isinstance(expect, dict) or "escalate_at" not in expect:
        raise EvalDataError(f"{where}: missing 'expect' with 'escalate_at' and 'reason'")
    at, reason = expect.get("escalate_at"), expect.get("reason")
    if at is not None:
        if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at < len(turns):
            raise EvalDataError(
                f"{where}: expect.escalate_at must be null or a turn index 0..{len(turns) - 1}"
            )
        if turns[at].role != Role.USER:
            raise EvalDataError(f"{where}: expect.escalate_at={at} is not a user turn")
    if reason is not None and reason not in SCENARIO_REASONS:
        raise EvalDataError(
            f"{where}: unknown expect.reason {reason!r}; "
            f"expected null or one of {', '.join(SCENARIO_REASONS)}"
        )
    if (at is None) != (reason is None):
        raise EvalDataError(f"{where}: expect.escalate_at and expect.reason must both be set")
    channel, note, lang = obj.get("channel", "widget"), obj.get("note", ""), obj.get("lang", "")
    return Scenario(
        line=number,
        id=sid,
        channel=channel if isinstance(channel, str) else "widget",
        turns=turns,
        escalate_at=at,
        reason=reason,
        note=note if isinstance(note, str) else "",
        lang=lang if isinstance(lang, str) else "",
    )


def read_corpus(folder: Path) -> tuple[list[LabelledMessage], list[Scenario]]:
    """Read a corpus folder's messages and conversations (a folder may have messages only);
    every line must name its `lang`."""
    if not folder.is_dir():
        raise EvalDataError(f"{folder}: not a directory")
    messages = read_corpus_messages(folder / CORPUS_MESSAGES, source=folder.name)
    conversations = folder / CORPUS_CONVERSATIONS
    scenarios = read_scenarios(conversations) if conversations.is_file() else []
    for sc in scenarios:
        if not sc.lang:
            where = f"{folder / CORPUS_CONVERSATIONS}: line {sc.line} ({sc.id})"
            raise EvalDataError(f"{where}: missing string 'lang'")
    return messages, scenarios


def read_corpus_messages(path: Path, *, source: str) -> list[LabelledMessage]:
    """Read and validate a corpus `messages.jsonl`; raise EvalDataError naming the line."""
    rows: list[LabelledMessage] = []
    seen: set[str] = set()
    for number, obj, where in _jsonl(path):
        row = _corpus_message(obj, number, where, source)
        if row.row_id in seen:
            raise EvalDataError(f"{where}: duplicate id {row.row_id!r}")
        seen.add(row.row_id)
        rows.append(row)
    return rows


def _string(obj: dict[str, object], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise EvalDataError(f"{where}: missing string {key!r}")
    return value


def _corpus_message(obj: object, number: int, where: str, source: str) -> LabelledMessage:
    if not isinstance(obj, dict):
        raise EvalDataError(f"{where}: expected a JSON object")
    row_id = _string(obj, "id", where)
    where = f"{where} ({row_id})"
    lang, text, reason = (_string(obj, k, where) for k in ("lang", "text", "reason"))
    if reason not in LABELS:
        raise EvalDataError(
            f"{where}: unknown reason {reason!r}; expected one of {', '.join(LABELS)}"
        )
    subtype = obj.get("subtype")
    if subtype is not None and not isinstance(subtype, str):
        raise EvalDataError(f"{where}: 'subtype' must be null or a string")
    hard = obj.get(HARD_NEGATIVE, False)
    if not isinstance(hard, bool):
        raise EvalDataError(f"{where}: {HARD_NEGATIVE!r} must be true or false")
    return LabelledMessage(
        row=number,
        source=source,
        row_id=row_id,
        text=text,
        context=_turns(obj.get("context", []), f"{where}: context"),
        reason=reason,
        escalate=reason != NO_ESCALATION,
        ambiguous=False,
        subtype=subtype or "",
        aux=(HARD_NEGATIVE,) if hard else (),
        lang=lang,
    )


def sample_messages(rows: Sequence[LabelledMessage], n: int, seed: int) -> list[LabelledMessage]:
    """Draw n rows stratified by (source, language, reason, ambiguous), proportionally, in
    file order."""
    if n >= len(rows):
        return list(rows)
    strata: dict[tuple[str, str, str, bool], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        strata[(row.source, row.lang, row.reason, row.ambiguous)].append(i)
    quota = {key: n * len(members) / len(rows) for key, members in strata.items()}
    take = {key: math.floor(q) for key, q in quota.items()}
    # Largest remainder: hand the rows lost to rounding to the strata that lost the most.
    by_remainder = sorted(quota, key=lambda k: (-(quota[k] - take[k]), k))
    for key in by_remainder[: n - sum(take.values())]:
        take[key] += 1
    rng = random.Random(seed)
    chosen: list[int] = []
    for key in sorted(strata):
        chosen.extend(rng.sample(strata[key], take[key]))
    return [rows[i] for i in sorted(chosen)]


# --- running the decider -------------------------------------------------------------------


def _history(turns: Iterable[Turn]) -> list[Message]:
    return [Message(role=t.role, text=t.text, created_at=FIXED_TIME) for t in turns]


def message_context(row: LabelledMessage, action: ActionConfig = DEFAULT_ACTION) -> DecisionContext:
    """Build the decider's input for one labelled message."""
    return DecisionContext(message=row.text, history=_history(row.context), action=action)


@dataclass(frozen=True, slots=True)
class MessageResult:
    """A labelled message and the decision it got."""

    row: LabelledMessage
    decision: Decision
    seconds: float


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """A scenario, the turn where the decider first escalated (None: never), and its decision."""

    scenario: Scenario
    predicted_at: int | None
    decision: Decision | None  # the escalating decision, or the last one when it never did
    decisions: int
    seconds: float

    @property
    def correct(self) -> bool:
        return self.predicted_at == self.scenario.escalate_at

    @property
    def outcome(self) -> str:
        """Return correct, early, late, missed or trap_escalated."""
        expected, got = self.scenario.escalate_at, self.predicted_at
        if got == expected:
            return "correct"
        if expected is None:
            return "trap_escalated"
        if got is None:
            return "missed"
        return "early" if got < expected else "late"


Progress = Callable[[int], None]
T = TypeVar("T")
U = TypeVar("U")


def run_messages(
    decider: Decider,
    rows: Iterable[LabelledMessage],
    *,
    action: ActionConfig = DEFAULT_ACTION,
    progress: Progress | None = None,
) -> list[MessageResult]:
    """Decide every row, timing each `decide` call alone."""
    return _each(rows, lambda row: run_message(decider, row, action=action), progress)


def run_message(
    decider: Decider, row: LabelledMessage, *, action: ActionConfig = DEFAULT_ACTION
) -> MessageResult:
    """Decide one row, timing the `decide` call alone."""
    ctx = message_context(row, action)
    start = time.perf_counter()
    decision = decider.decide(ctx)
    return MessageResult(row, decision, time.perf_counter() - start)


def run_scenario(
    decider: Decider, scenario: Scenario, *, action: ActionConfig = DEFAULT_ACTION
) -> ScenarioResult:
    """Feed the user turns one at a time and stop at the first escalation."""
    seconds = 0.0
    decisions = 0
    last: Decision | None = None
    for i, turn in enumerate(scenario.turns):
        if turn.role != Role.USER:
            continue
        ctx = DecisionContext(
            message=turn.text, history=_history(scenario.turns[:i]), action=action
        )
        start = time.perf_counter()
        last = decider.decide(ctx)
        seconds += time.perf_counter() - start
        decisions += 1
        if last.escalate:
            return ScenarioResult(scenario, i, last, decisions, seconds)
    return ScenarioResult(scenario, None, last, decisions, seconds)


def run_scenarios(
    decider: Decider,
    scenarios: Iterable[Scenario],
    *,
    action: ActionConfig = DEFAULT_ACTION,
    progress: Progress | None = None,
) -> list[ScenarioResult]:
    """Run every scenario."""
    return _each(scenarios, lambda one: run_scenario(decider, one, action=action), progress)


def _each(items: Iterable[T], work: Callable[[T], U], progress: Progress | None) -> list[U]:
    """Do `work` on every item in turn, telling `progress` of each one done."""
    results: list[U] = []
    for item in items:
        results.append(work(item))
        if progress is not None:
            progress(1)
    return results


# --- metrics -------------------------------------------------------------------------------


def predicted_labels(decision: Decision) -> frozenset[str]:
    """Return the data labels an escalating decision's reasons stand for (empty if it stays)."""
    if not decision.escalate:
        return frozenset()
    return frozenset(
        label for r in decision.reasons if (label := REASON_TO_LABEL.get(r)) is not None
    )


def primary_label(decision: Decision) -> str:
    """Return the label of the first reason: `stay`, a label, `llm_tool_call` or `escalate`."""
    if not decision.escalate:
        return "stay"
    if not decision.reasons:
        return "escalate"
    first = decision.reasons[0]
    return REASON_TO_LABEL.get(first) or first.value


def signal_score(decision: Decision) -> float:
    """Return the decision's score, or for a stay its strongest near miss (0 when none)."""
    if decision.escalate:
        return decision.score
    return max((e.score for e in decision.evidence), default=0.0)


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


@dataclass(frozen=True, slots=True)
class PRF:
    """Precision, recall and F1 with the counts they come from (None: undefined)."""

    precision: float | None
    recall: float | None
    f1: float | None
    support: int
    tp: int
    fp: int
    fn: int

    @classmethod
    def of(cls, tp: int, fp: int, fn: int) -> PRF:
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = None
        if p is not None and r is not None:
            f1 = round(2 * p * r / (p + r), 4) if p + r else 0.0
        return cls(p, r, f1, tp + fn, tp, fp, fn)


@dataclass(frozen=True, slots=True)
class Rate:
    """How many of n rows did something, and the share."""

    n: int
    count: int
    rate: float | None


@dataclass(frozen=True, slots=True)
class BlockMetrics:
    """Every message metric for one set of rows (a block: headline, ambiguous, one source)."""

    n: int
    reasons: dict[str, PRF]  # by the decision's first reason
    reasons_any: dict[str, PRF]  # by any of its reasons
    escalate: PRF
    false_escalation_rate: float | None
    no_escalation_rows: int
    # label -> first predicted reason (`stay`, a label, `llm_tool_call`) -> rows
    confusion: dict[str, dict[str, int]]
    # sensitive_topic subtype -> share escalated (any reason) and share with sensitive_topic
    subtypes: dict[str, dict[str, Rate]]
    # aux flag on no_escalation rows (hard negatives such as agent_mention) -> escalated share
    hard_negatives: dict[str, Rate]


def block_metrics(results: Sequence[MessageResult]) -> BlockMetrics:
    """Compute the metrics of one block of rows (see the module docstring)."""
    any_counts = {r: [0, 0, 0] for r in REASONS}  # tp, fp, fn
    first_counts = {r: [0, 0, 0] for r in REASONS}
    binary = [0, 0, 0]
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    subtype_n: Counter[str] = Counter()
    subtype_esc: Counter[str] = Counter()
    subtype_reason: Counter[str] = Counter()
    aux_n: Counter[str] = Counter()
    aux_esc: Counter[str] = Counter()
    negatives = false_escalations = 0
    for res in results:
        label, decision = res.row.reason, res.decision
        labels = predicted_labels(decision)
        first = primary_label(decision)
        confusion[label][first] += 1
        for reason in REASONS:
            _count(any_counts[reason], label == reason, reason in labels)
            _count(first_counts[reason], label == reason, first == reason)
        _count(binary, res.row.escalate, decision.escalate)
        if label == NO_ESCALATION:
            negatives += 1
            false_escalations += decision.escalate
            for flag in res.row.aux:
                aux_n[flag] += 1
                aux_esc[flag] += decision.escalate
        if label == SENSITIVE_TOPIC and res.row.subtype:
            subtype_n[res.row.subtype] += 1
            subtype_esc[res.row.subtype] += decision.escalate
            subtype_reason[res.row.subtype] += SENSITIVE_TOPIC in labels
    return BlockMetrics(
        n=len(results),
        reasons={r: PRF.of(*c) for r, c in first_counts.items()},
        reasons_any={r: PRF.of(*c) for r, c in any_counts.items()},
        escalate=PRF.of(*binary),
        false_escalation_rate=_ratio(false_escalations, negatives),
        no_escalation_rows=negatives,
        confusion={label: dict(sorted(c.items())) for label, c in sorted(confusion.items())},
        subtypes={
            s: {
                "escalated": Rate(n, subtype_esc[s], _ratio(subtype_esc[s], n)),
                "sensitive_topic": Rate(n, subtype_reason[s], _ratio(subtype_reason[s], n)),
            }
            for s, n in sorted(subtype_n.items())
        },
        hard_negatives={
            flag: Rate(n, aux_esc[flag], _ratio(aux_esc[flag], n))
            for flag, n in sorted(aux_n.items())
        },
    )


def _count(counts: list[int], actual: bool, predicted: bool) -> None:
    if actual and predicted:
        counts[0] += 1
    elif predicted:
        counts[1] += 1
    elif actual:
        counts[2] += 1


@dataclass(frozen=True, slots=True)
class MessageMetrics:
    """A block of rows with the same metrics per source beside it."""

    pooled: BlockMetrics
    by_source: dict[str, BlockMetrics]


def message_metrics(results: Sequence[MessageResult]) -> MessageMetrics:
    """Compute pooled and per-source metrics of a set of rows."""
    per_source: dict[str, list[MessageResult]] = defaultdict(list)
    for res in results:
        per_source[res.row.source].append(res)
    return MessageMetrics(
        pooled=block_metrics(results),
        by_source={s: block_metrics(rs) for s, rs in sorted(per_source.items())},
    )


def by_language(items: Iterable[T], lang: Callable[[T], str]) -> dict[str, list[T]]:
    """Group corpus items by language, languages in order of first appearance (the file's)."""
    groups: dict[str, list[T]] = {}
    for item in items:
        if code := lang(item):
            groups.setdefault(code, []).append(item)
    return groups


def expected_label(reason: str | None) -> str | None:
    """Return the label group of a scenario's expected reason (`low_confidence` is a failure)."""
    return REPEATED_FAILED if reason == "low_confidence" else reason


@dataclass(frozen=True, slots=True)
class ScenarioGroup:
    """Accuracy of the scenarios that expect one reason."""

    total: int
    correct: int
    accuracy: float | None


@dataclass(frozen=True, slots=True)
class ScenarioMetrics:
    """How often the decider escalated at exactly the right turn, and kept the traps."""

    total: int
    correct: int
    accuracy: float | None
    traps: int
    traps_kept: int
    escalating: int
    escalated_on_time: int
    reason_match: int  # correct escalations whose decision includes the expected reason
    outcomes: dict[str, int]
    # expected reason (`no_escalation` for the traps) -> accuracy
    by_reason: dict[str, ScenarioGroup]


def scenario_metrics(results: Sequence[ScenarioResult]) -> ScenarioMetrics:
    """Compute scenario accuracy, traps kept and accuracy per expected reason."""
    groups: dict[str, list[ScenarioResult]] = defaultdict(list)
    for res in results:
        groups[res.scenario.reason or NO_ESCALATION].append(res)
    traps = groups.get(NO_ESCALATION, [])
    escalating = [r for r in results if r.scenario.escalate_at is not None]
    on_time = [r for r in escalating if r.correct]
    reason_match = sum(
        1
        for r in on_time
        if r.decision is not None
        and expected_label(r.scenario.reason) in predicted_labels(r.decision)
    )
    correct = sum(r.correct for r in results)
    return ScenarioMetrics(
        total=len(results),
        correct=correct,
        accuracy=_ratio(correct, len(results)),
        traps=len(traps),
        traps_kept=sum(r.correct for r in traps),
        escalating=len(escalating),
        escalated_on_time=len(on_time),
        reason_match=reason_match,
        outcomes=dict(sorted(Counter(r.outcome for r in results).items())),
        by_reason={
            reason: ScenarioGroup(
                len(rs), sum(r.correct for r in rs), _ratio(sum(r.correct for r in rs), len(rs))
            )
            for reason, rs in sorted(groups.items())
        },
    )


# --- the worst mistakes --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageError:
    """One wrong decision on a labelled message, as a person would want to read it."""

    kind: str  # false_escalation, missed, wrong_reason
    source: str
    row_id: str
    row: int
    text: str
    label: str
    subtype: str
    predicted: tuple[str, ...]  # the decision's reasons, as the decider named them
    score: float  # decision score, or the strongest near miss for a stay
    evidence: tuple[str, ...]  # "reason score: detail", strongest first
    lang: str = ""


@dataclass(frozen=True, slots=True)
class ScenarioError:
    """A scenario where the decider escalated at the wrong turn or never."""

    id: str
    outcome: str
    expected_at: int | None
    expected_reason: str | None
    predicted_at: int | None
    predicted: tuple[str, ...]
    score: float
    evidence: tuple[str, ...]
    turn: str  # the user turn it escalated at (or the expected one when it missed)
    lang: str = ""


def _evidence(decision: Decision | None) -> tuple[str, ...]:
    if decision is None:
        return ()
    return tuple(f"{e.reason.value} {e.score:.2f}: {e.detail}" for e in decision.evidence)


def _message_error(kind: str, res: MessageResult) -> MessageError:
    d, row = res.decision, res.row
    return MessageError(
        kind=kind,
        source=row.source,
        row_id=row.row_id,
        row=row.row,
        text=row.text,
        label=row.reason,
        subtype=row.subtype,
        predicted=tuple(r.value for r in d.reasons) if d.escalate else (),
        score=round(signal_score(d), 4),
        evidence=_evidence(d),
        lang=row.lang,
    )


@dataclass(frozen=True, slots=True)
class Errors:
    """The n most confident mistakes of each kind."""

    false_escalations: list[MessageError]
    missed: list[MessageError]
    wrong_reason: list[MessageError]
    scenarios: list[ScenarioError]


def worst_errors(
    messages: Sequence[MessageResult], scenarios: Sequence[ScenarioResult], n: int
) -> Errors:
    """Pick the n most confident wrong decisions of each kind (ties keep file order)."""
    false_esc = [r for r in messages if r.row.reason == NO_ESCALATION and r.decision.escalate]
    missed = [r for r in messages if r.row.escalate and not r.decision.escalate]
    wrong = [
        r
        for r in messages
        if r.row.escalate
        and r.decision.escalate
        and r.decision.reasons
        and REASON_TO_LABEL.get(r.decision.reasons[0]) is not None
        and r.row.reason not in predicted_labels(r.decision)
    ]
    false_esc.sort(key=lambda r: -r.decision.score)
    missed.sort(key=lambda r: signal_score(r.decision))
    wrong.sort(key=lambda r: -r.decision.score)
    failed: list[ScenarioError] = []
    for res in scenarios:
        if res.correct:
            continue
        sc, d = res.scenario, res.decision
        at = res.predicted_at if res.predicted_at is not None else sc.escalate_at
        failed.append(
            ScenarioError(
                id=sc.id,
                outcome=res.outcome,
                expected_at=sc.escalate_at,
                expected_reason=sc.reason,
                predicted_at=res.predicted_at,
                predicted=tuple(r.value for r in d.reasons) if d and d.escalate else (),
                score=round(signal_score(d), 4) if d else 0.0,
                evidence=_evidence(d),
                turn=sc.turns[at].text if at is not None else "",
                lang=sc.lang,
            )
        )
    return Errors(
        false_escalations=[_message_error("false_escalation", r) for r in false_esc[:n]],
        missed=[_message_error("missed", r) for r in missed[:n]],
        wrong_reason=[_message_error("wrong_reason", r) for r in wrong[:n]],
        scenarios=failed[:n],
    )


# --- the whole run -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Rows whose predicted probability fell in [low, high): what was predicted, what was so."""

    low: float
    high: float
    n: int
    mean_predicted: float | None
    observed: float | None


@dataclass(frozen=True, slots=True)
class Reliability:
    """How well a calibrated decider's probabilities match what happens (a reliability table).

    `bins` are for P(escalate) = 1 - P(no_escalation); `ece` is the expected calibration error
    of that probability (the bins' |predicted - observed| weighted by their rows), `label_ece`
    the same for each label's probability against "the row has this label"."""

    bins: tuple[ReliabilityBin, ...]
    ece: float
    label_ece: dict[str, float]


def _calibration(pairs: Sequence[tuple[float, bool]], n_bins: int) -> tuple[ReliabilityBin, ...]:
    bins = []
    for k in range(n_bins):
        low, high = k / n_bins, (k + 1) / n_bins
        inside = [(p, y) for p, y in pairs if low <= p < high or (k == n_bins - 1 and p == 1.0)]
        mean_p = round(sum(p for p, _ in inside) / len(inside), 4) if inside else None
        observed = _ratio(sum(y for _, y in inside), len(inside))
        bins.append(ReliabilityBin(low, high, len(inside), mean_p, observed))
    return tuple(bins)


def _ece(bins: Sequence[ReliabilityBin]) -> float:
    total = sum(b.n for b in bins)
    gap = sum(b.n * abs((b.mean_predicted or 0.0) - (b.observed or 0.0)) for b in bins if b.n)
    return round(gap / total, 4) if total else 0.0


def reliability(results: Sequence[MessageResult], n_bins: int = 10) -> Reliability | None:
    """The reliability table of the rows whose decision carries probabilities (else None)."""
    scored = [(dict(r.decision.probabilities), r.row) for r in results if r.decision.probabilities]
    if not scored:
        return None
    escalate = _calibration([(1.0 - p[NO_ESCALATION], row.escalate) for p, row in scored], n_bins)
    labels = sorted({label for p, _ in scored for label in p})
    return Reliability(
        bins=escalate,
        ece=_ece(escalate),
        label_ece={
            label: _ece(
                _calibration([(p[label], row.reason == label) for p, row in scored], n_bins)
            )
            for label in labels
        },
    )


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall clock of the `decide` calls alone."""

    decisions: int
    seconds: float
    decisions_per_second: float | None


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Everything `handoff eval` shows."""

    headline: MessageMetrics | None  # ambiguous=0 rows
    ambiguous: MessageMetrics | None  # ambiguous=1 rows
    scenarios: ScenarioMetrics | None
    timing: Timing
    messages: int
    errors: Errors | None = None
    meta: dict[str, object] = field(default_factory=dict)
    # Corpus data only: the headline messages and the conversations of each language.
    by_lang: dict[str, BlockMetrics] = field(default_factory=dict)
    scenarios_by_lang: dict[str, ScenarioMetrics] = field(default_factory=dict)
    # Deciders with calibrated probabilities only, on the headline rows.
    reliability: Reliability | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the report as one JSON-ready object (the shape `--json` writes)."""
        head = self.headline
        out: dict[str, Any] = {
            "reasons": _plain(head.pooled.reasons) if head else None,
            "false_escalation_rate": head.pooled.false_escalation_rate if head else None,
            "escalate": _plain(head.pooled.escalate) if head else None,
            "headline": _plain(head.pooled) if head else None,
            "by_source": _plain(head.by_source) if head else {},
            "ambiguous": (
                {**_plain(self.ambiguous.pooled), "by_source": _plain(self.ambiguous.by_source)}
                if self.ambiguous
                else None
            ),
            "scenarios": _plain(self.scenarios) if self.scenarios else None,
            "decisions_per_second": self.timing.decisions_per_second,
            "timing": _plain(self.timing),
            "messages": self.messages,
            "meta": self.meta,
        }
        if self.by_lang:
            out["by_lang"] = _plain(self.by_lang)
        if self.scenarios_by_lang:
            out["scenarios_by_lang"] = _plain(self.scenarios_by_lang)
        if self.errors is not None:
            out["errors"] = _plain(self.errors)
        if self.reliability is not None:
            out["reliability"] = _plain(self.reliability)
        return out


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return asdict(obj)


def evaluate(
    decider_factory: Callable[[], Decider],
    messages: Sequence[LabelledMessage] = (),
    scenarios: Sequence[Scenario] = (),
    *,
    action: ActionConfig = DEFAULT_ACTION,
    errors: int = 0,
    progress: Progress | None = None,
) -> EvalReport:
    """Build the decider, run it on the messages and scenarios, and compute every metric."""
    decider = decider_factory()
    message_results = run_messages(decider, messages, action=action, progress=progress)
    scenario_results = run_scenarios(decider, scenarios, action=action, progress=progress)
    decisions = len(message_results) + sum(r.decisions for r in scenario_results)
    seconds = sum(r.seconds for r in message_results) + sum(r.seconds for r in scenario_results)
    clear = [r for r in message_results if not r.row.ambiguous]
    unclear = [r for r in message_results if r.row.ambiguous]
    return EvalReport(
        headline=message_metrics(clear) if message_results else None,
        ambiguous=message_metrics(unclear) if unclear else None,
        scenarios=scenario_metrics(scenario_results) if scenario_results else None,
        timing=Timing(
            decisions, round(seconds, 3), round(decisions / seconds, 1) if seconds else None
        ),
        messages=len(message_results),
        errors=worst_errors(clear, scenario_results, errors) if errors > 0 else None,
        by_lang={
            lang: block_metrics(rs) for lang, rs in by_language(clear, lambda r: r.row.lang).items()
        },
        scenarios_by_lang={
            lang: scenario_metrics(rs)
            for lang, rs in by_language(scenario_results, lambda r: r.scenario.lang).items()
        },
        reliability=reliability(clear),
    )
