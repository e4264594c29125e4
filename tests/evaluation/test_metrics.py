"""The arithmetic of `handoff eval`, on small files and a scripted decider."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from handoff.domain import Decision, DecisionContext, Evidence, Reason, Role
from handoff.evaluation.metrics import (
    EvalDataError,
    LabelledMessage,
    evaluate,
    read_corpus,
    read_messages,
    read_scenarios,
    sample_messages,
)

HEADER = [
    "source",
    "split",
    "row_id",
    "text",
    "context_json",
    "orig_label",
    "reason",
    "escalate",
    "ambiguous",
    "subtype",
    "aux",
]

E, F, RQ, LC, S, LLM = (
    Reason.EXPLICIT_REQUEST,
    Reason.FRUSTRATION,
    Reason.REPEATED_QUESTION,
    Reason.LOW_CONFIDENCE,
    Reason.SENSITIVE_TOPIC,
    Reason.LLM_TOOL_CALL,
)

CONTEXT = json.dumps(
    [{"role": "user", "text": "how do I reset it?"}, {"role": "assistant", "text": "Settings."}]
)

# (source, text, reason, ambiguous, aux, context) -> what the scripted decider answers
ROWS: list[tuple[str, str, str, int, str, str, tuple[Reason, ...], float]] = [
    ("a", "er1", "explicit_request", 0, "", "", (E,), 0.9),  # TP explicit
    ("a", "er2", "explicit_request", 0, "", "", (F, E), 0.8),  # TP explicit (any), FP frustr.
    ("a", "er3", "explicit_request", 0, "", "", (), 0.3),  # FN explicit
    ("a", "fr1", "frustration", 0, "", "", (F,), 0.7),  # TP frustration
    ("a", "no1", "no_escalation", 0, "", "", (S,), 0.7),  # false escalation, FP sensitive
    ("a", "no2", "no_escalation", 0, "", "", (), 0.2),
    ("a", "no3", "no_escalation", 0, "", "", (LLM,), 0.6),  # false escalation, no reason FP
    ("b", "st1", "sensitive_topic", 0, "", "", (S,), 0.9),  # TP sensitive
    ("b", "st2", "sensitive_topic", 0, "", "", (LLM,), 0.9),  # binary TP, FN sensitive
    ("b", "rf1", "repeated_failed", 0, "", CONTEXT, (RQ,), 0.8),  # TP via repeated_question
    ("b", "rf2", "repeated_failed", 0, "", "", (LC,), 0.8),  # TP via low_confidence
    ("b", "no4", "no_escalation", 0, "", "", (), 0.0),
    ("b", "fr2", "frustration", 0, "", "", (E,), 0.95),  # FN frustration, FP explicit
    ("a", "amb1", "sensitive_topic", 1, "", "", (), 0.1),
    ("a", "amb2", "no_escalation", 1, "agent_mention", "", (E,), 0.9),
]


class ScriptedDecider:
    """Answer from a table keyed by message text; everything else stays."""

    def __init__(self, script: dict[str, tuple[tuple[Reason, ...], float]]) -> None:
        self.script = script
        self.seen: list[DecisionContext] = []

    def decide(self, ctx: DecisionContext) -> Decision:
        self.seen.append(ctx)
        reasons, score = self.script.get(ctx.message, ((), 0.0))
        evidence = (Evidence(reasons[0] if reasons else F, score, f"scripted {ctx.message}"),)
        if not reasons:
            return Decision.stay(evidence)
        return Decision(escalate=True, reasons=reasons, score=score, evidence=evidence)


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def csv_row(source: str, text: str, reason: str, amb: int, aux: str, ctx: str) -> dict[str, str]:
    return {
        "source": source,
        "split": "train",
        "row_id": text,
        "text": text,
        "context_json": ctx,
        "orig_label": "x",
        "reason": reason,
        "escalate": "0" if reason == "no_escalation" else "1",
        "ambiguous": str(amb),
        "subtype": "billing" if reason == "sensitive_topic" else "",
        "aux": aux,
    }


def turns(*texts: str) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "text": t} for i, t in enumerate(texts)]


SCENARIOS: list[dict[str, object]] = [
    # right turn, right reason
    {"id": "s1", "turns": turns("hi", "Hello!", "human please"), "at": 2, "r": "explicit_request"},
    # trap kept
    {"id": "s2", "turns": turns("travel agent?", "Yes.", "thanks"), "at": None, "r": None},
    # trap escalated at turn 0
    {"id": "s3", "turns": turns("trap human", "Sure.", "ok"), "at": None, "r": None},
    # early
    {"id": "s4", "turns": turns("early esc", "Sorry.", "angry"), "at": 2, "r": "frustration"},
    # late, low_confidence
    {"id": "s5", "turns": turns("q", "Not sure.", "q2", "Not sure.", "late esc"), "at": 2,
     "r": "low_confidence"},
    # right turn, repeated_failed matched by low_confidence
    {"id": "s6", "turns": turns("a1", "x", "lc esc"), "at": 2, "r": "repeated_failed"},
    # right turn, wrong reason
    {"id": "s7", "turns": turns("b1", "x", "sens esc"), "at": 2, "r": "sensitive_topic"},
]  # fmt: skip

SCENARIO_SCRIPT: dict[str, tuple[tuple[Reason, ...], float]] = {
    "human please": ((E,), 0.95),
    "trap human": ((E,), 0.9),
    "early esc": ((F,), 0.6),
    "late esc": ((LC,), 0.7),
    "lc esc": ((LC,), 0.7),
    "sens esc": ((E,), 0.8),
}


def write_jsonl(path: Path, scenarios: list[dict[str, object]]) -> Path:
    lines = [
        json.dumps(
            {
                "id": s["id"],
                "channel": "widget",
                "turns": s["turns"],
                "expect": {"escalate_at": s["at"], "reason": s["r"]},
                "note": "",
            }
        )
        for s in scenarios
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    messages = write_csv(tmp_path / "m.csv", [csv_row(*r[:6]) for r in ROWS])
    return messages, write_jsonl(tmp_path / "s.jsonl", SCENARIOS)


@pytest.fixture
def decider() -> ScriptedDecider:
    script = {r[1]: (r[6], r[7]) for r in ROWS}
    return ScriptedDecider({**script, **SCENARIO_SCRIPT})


@pytest.fixture
def report(files: tuple[Path, Path], decider: ScriptedDecider) -> dict[str, object]:
    rows, scenarios = read_messages(files[0]), read_scenarios(files[1])
    return evaluate(lambda: decider, rows, scenarios, errors=5).to_json()


def prf(report: dict[str, object], *path: str) -> tuple[object, ...]:
    node: object = report
    for key in path:
        assert isinstance(node, dict)
        node = node[key]
    assert isinstance(node, dict)
    return (node["precision"], node["recall"], node["f1"], node["support"])


def test_reads_rows_with_empty_strings_and_context(files: tuple[Path, Path]) -> None:
    rows = read_messages(files[0])
    assert len(rows) == len(ROWS)
    no1 = rows[4]
    assert (no1.subtype, no1.aux, no1.context, no1.escalate) == ("", (), (), False)
    rf1 = rows[9]
    assert [(t.role, t.text) for t in rf1.context] == [
        (Role.USER, "how do I reset it?"),
        (Role.ASSISTANT, "Settings."),
    ]
    assert rows[-1].aux == ("agent_mention",)


def test_history_comes_from_context_json_and_earlier_turns(
    files: tuple[Path, Path], decider: ScriptedDecider
) -> None:
    evaluate(lambda: decider, read_messages(files[0]), read_scenarios(files[1]))
    by_text = {c.message: c for c in decider.seen}
    assert [m.text for m in by_text["rf1"].history] == ["how do I reset it?", "Settings."]
    assert by_text["er1"].history == []
    assert by_text["er1"].answer is None
    assert by_text["er1"].action.name == "Escalate_To_Human"
    assert [(m.role, m.text) for m in by_text["human please"].history] == [
        (Role.USER, "hi"),
        (Role.ASSISTANT, "Hello!"),
    ]
    # A scenario stops at its first escalation: s3's later user turn is never decided.
    assert "ok" not in by_text


def test_per_reason_any_reason_matching(report: dict[str, object]) -> None:
    assert prf(report, "headline", "reasons_any", "explicit_request") == (0.6667, 0.6667, 0.6667, 3)
    assert prf(report, "headline", "reasons_any", "frustration") == (0.5, 0.5, 0.5, 2)
    assert prf(report, "headline", "reasons_any", "sensitive_topic") == (0.5, 0.5, 0.5, 2)


def test_repeated_failed_is_matched_by_repeated_question_and_low_confidence(
    report: dict[str, object],
) -> None:
    assert prf(report, "headline", "reasons_any", "repeated_failed") == (1.0, 1.0, 1.0, 2)


def test_headline_reasons_count_the_first_reason(report: dict[str, object]) -> None:
    # er2's first reason is frustration: a miss for explicit_request when only the first counts.
    assert prf(report, "reasons", "explicit_request") == (0.5, 0.3333, 0.4, 3)
    headline = report["headline"]
    assert isinstance(headline, dict)
    assert headline["confusion"]["explicit_request"] == {
        "explicit_request": 1,
        "frustration": 1,
        "stay": 1,
    }
    assert headline["confusion"]["no_escalation"] == {
        "llm_tool_call": 1,
        "sensitive_topic": 1,
        "stay": 2,
    }


def test_binary_and_false_escalation_rate(report: dict[str, object]) -> None:
    # 9 escalate rows, 10 escalations, 8 right (llm_tool_call counts as an escalation).
    assert prf(report, "escalate") == (0.8, 0.8889, 0.8421, 9)
    assert report["false_escalation_rate"] == 0.5  # no1, no3 of no1..no4


def test_per_source(report: dict[str, object]) -> None:
    by_source = report["by_source"]
    assert isinstance(by_source, dict)
    assert set(by_source) == {"a", "b"}
    assert by_source["a"]["false_escalation_rate"] == pytest.approx(0.6667)
    assert by_source["b"]["false_escalation_rate"] == 0.0
    # Source b has no explicit_request rows: recall is undefined, precision 0 (fr2 escalated so).
    assert prf(report, "by_source", "b", "reasons", "explicit_request") == (0.0, None, None, 0)
    # First reason: er2 puts frustration first, so one of three explicit requests is matched.
    assert prf(report, "by_source", "a", "reasons", "explicit_request") == (1.0, 0.3333, 0.5, 3)
    assert by_source["a"]["n"] == 7


def test_ambiguous_rows_are_kept_apart(report: dict[str, object]) -> None:
    headline, ambiguous = report["headline"], report["ambiguous"]
    assert isinstance(headline, dict) and isinstance(ambiguous, dict)
    assert headline["n"] == 13
    assert ambiguous["n"] == 2
    assert ambiguous["false_escalation_rate"] == 1.0
    assert ambiguous["hard_negatives"] == {"agent_mention": {"n": 1, "count": 1, "rate": 1.0}}
    assert ambiguous["reasons"]["sensitive_topic"]["recall"] == 0.0
    assert set(ambiguous["by_source"]) == {"a"}


def test_scenario_accuracy_and_traps(report: dict[str, object]) -> None:
    sc = report["scenarios"]
    assert isinstance(sc, dict)
    assert (sc["total"], sc["correct"], sc["accuracy"]) == (7, 4, 0.5714)
    assert (sc["traps"], sc["traps_kept"]) == (2, 1)
    assert (sc["escalating"], sc["escalated_on_time"], sc["reason_match"]) == (5, 3, 2)
    assert sc["outcomes"] == {"correct": 4, "early": 1, "late": 1, "trap_escalated": 1}
    assert {k: v["correct"] for k, v in sc["by_reason"].items()} == {
        "explicit_request": 1,
        "frustration": 0,
        "low_confidence": 0,
        "no_escalation": 1,
        "repeated_failed": 1,
        "sensitive_topic": 1,
    }


def test_worst_errors_are_the_most_confident(report: dict[str, object]) -> None:
    errors = report["errors"]
    assert isinstance(errors, dict)
    assert [e["text"] for e in errors["false_escalations"]] == ["no1", "no3"]
    assert [e["text"] for e in errors["missed"]] == ["er3"]
    assert errors["missed"][0]["score"] == 0.3  # its near miss
    assert [e["text"] for e in errors["wrong_reason"]] == ["fr2"]
    assert [(s["id"], s["outcome"]) for s in errors["scenarios"]] == [
        ("s3", "trap_escalated"),
        ("s4", "early"),
        ("s5", "late"),
    ]
    assert errors["scenarios"][0]["predicted_at"] == 0


def test_report_shape_and_speed(report: dict[str, object]) -> None:
    for key in ("reasons", "false_escalation_rate", "by_source", "scenarios", "escalate"):
        assert key in report
    dps = report["decisions_per_second"]
    assert isinstance(dps, float) and dps > 0
    timing = report["timing"]
    assert isinstance(timing, dict)
    # 15 messages + scenario turns decided: s1 2, s2 2, s3 1, s4 1, s5 3, s6 2, s7 2.
    assert timing["decisions"] == 15 + 13


def test_messages_only_or_scenarios_only(
    files: tuple[Path, Path], decider: ScriptedDecider
) -> None:
    only_messages = evaluate(lambda: decider, read_messages(files[0])).to_json()
    assert only_messages["scenarios"] is None
    only_scenarios = evaluate(lambda: decider, scenarios=read_scenarios(files[1])).to_json()
    assert only_scenarios["reasons"] is None
    assert only_scenarios["scenarios"]["total"] == 7


def test_context_json_column_is_optional(tmp_path: Path) -> None:
    header = [h for h in HEADER if h not in ("context_json", "aux", "split")]
    path = write_csv(
        tmp_path / "m.csv", [csv_row("a", "hello", "no_escalation", 0, "", "")], header
    )
    (row,) = read_messages(path)
    assert (row.context, row.aux, row.split) == ((), (), "")


# --- malformed input: a precise message, never a traceback ----------------------------------


def test_missing_column(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "reason"]
    path = write_csv(tmp_path / "m.csv", [csv_row("a", "hi", "no_escalation", 0, "", "")], header)
    with pytest.raises(EvalDataError, match=r"missing column reason"):
        read_messages(path)


def test_bad_context_json_names_the_row(tmp_path: Path) -> None:
    rows = [
        csv_row("a", "fine", "no_escalation", 0, "", ""),
        csv_row("a", "broken", "no_escalation", 0, "", '[{"role": "user", "text": '),
    ]
    with pytest.raises(EvalDataError, match=r"row 2: bad JSON in context_json"):
        read_messages(write_csv(tmp_path / "m.csv", rows))


def test_context_json_with_unknown_role(tmp_path: Path) -> None:
    rows = [csv_row("a", "x", "no_escalation", 0, "", '[{"role": "bot", "text": "hi"}]')]
    with pytest.raises(EvalDataError, match=r"row 1: context_json: turn 0 has role 'bot'"):
        read_messages(write_csv(tmp_path / "m.csv", rows))


def test_unknown_reason(tmp_path: Path) -> None:
    row = csv_row("a", "x", "explicit_request", 0, "", "") | {"reason": "angry"}
    with pytest.raises(EvalDataError, match=r"row 1: unknown reason 'angry'"):
        read_messages(write_csv(tmp_path / "m.csv", [row]))


def test_escalate_flag_must_agree_with_reason(tmp_path: Path) -> None:
    row = csv_row("a", "x", "frustration", 0, "", "") | {"escalate": "0"}
    with pytest.raises(EvalDataError, match=r"row 1: escalate=0 contradicts reason"):
        read_messages(write_csv(tmp_path / "m.csv", [row]))


def test_bad_jsonl_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", SCENARIOS[:1])
    path.write_text(path.read_text() + '{"id": "s2", "turns": [\n', encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"line 2: bad JSON"):
        read_scenarios(path)


def test_scenario_expecting_an_assistant_turn(tmp_path: Path) -> None:
    bad = {**SCENARIOS[0], "at": 1}
    with pytest.raises(EvalDataError, match=r"line 1 \(s1\): expect.escalate_at=1 is not a user"):
        read_scenarios(write_jsonl(tmp_path / "s.jsonl", [bad]))


def test_scenario_without_expect(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"id": "x", "turns": turns("hi")}) + "\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"line 1 \(x\): missing 'expect'"):
        read_scenarios(path)


# --- a corpus folder: JSONL with languages -------------------------------------------------


def corpus_line(
    mid: str, lang: str, text: str, reason: str, *, subtype: str | None = None, hard: bool = False
) -> dict[str, object]:
    context = turns("how do I export?", "Use the menu.") if reason == "repeated_failed" else []
    return {
        "id": mid,
        "lang": lang,
        "text": text,
        "context": context,
        "reason": reason,
        "subtype": subtype,
        "hard_negative": hard,
        "industry": "retail",
        "register": "casual",
        "note": "",
    }


# (line, what the scripted decider answers); en rows first, then de, as in the corpus.
CORPUS: list[tuple[dict[str, object], tuple[tuple[Reason, ...], float]]] = [
    (corpus_line("en-1", "en", "agent please", "explicit_request"), ((E,), 0.9)),
    (corpus_line("en-2", "en", "refund now", "sensitive_topic", subtype="refund"), ((S,), 0.8)),
    (corpus_line("en-3", "en", "same again", "repeated_failed"), ((RQ,), 0.8)),
    (corpus_line("en-4", "en", "travel agent?", "no_escalation", hard=True), ((E,), 0.7)),
    (corpus_line("en-5", "en", "opening hours?", "no_escalation"), ((), 0.1)),
    (corpus_line("de-1", "de", "Mitarbeiter bitte", "explicit_request"), ((), 0.4)),
    (corpus_line("de-2", "de", "Eine Frechheit!", "frustration"), ((F,), 0.9)),
    (corpus_line("de-3", "de", "Rückerstattung?", "no_escalation", hard=True), ((), 0.2)),
    (
        corpus_line("de-4", "de", "Passwort weg", "sensitive_topic", subtype="account_access"),
        ((S,), 0.6),
    ),
]

CORPUS_CONVERSATIONS: list[dict[str, object]] = [
    {"id": "c-en-1", "lang": "en", "turns": turns("hi", "Hello!", "agent please"),
     "expect": {"escalate_at": 2, "reason": "explicit_request"}},
    {"id": "c-de-1", "lang": "de", "turns": turns("Hallo", "Hallo!", "danke"),
     "expect": {"escalate_at": None, "reason": None}},
    {"id": "c-de-2", "lang": "de", "turns": turns("Frage", "Antwort", "Mitarbeiter bitte"),
     "expect": {"escalate_at": 2, "reason": "explicit_request"}},
]  # fmt: skip


def write_corpus(folder: Path) -> Path:
    folder.mkdir()
    (folder / "messages.jsonl").write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line, _ in CORPUS),
        encoding="utf-8",
    )
    (folder / "conversations.jsonl").write_text(
        "".join(json.dumps(c) + "\n" for c in CORPUS_CONVERSATIONS), encoding="utf-8"
    )
    return folder


@pytest.fixture
def corpus_decider() -> ScriptedDecider:
    return ScriptedDecider({str(line["text"]): answer for line, answer in CORPUS})


@pytest.fixture
def corpus_report(tmp_path: Path, corpus_decider: ScriptedDecider) -> dict[str, Any]:
    rows, conversations = read_corpus(write_corpus(tmp_path / "heldout"))
    return evaluate(lambda: corpus_decider, rows, conversations, errors=5).to_json()


def test_corpus_rows_keep_language_subtype_hard_negative_and_context(tmp_path: Path) -> None:
    rows, conversations = read_corpus(write_corpus(tmp_path / "heldout"))
    assert [(r.lang, r.row_id, r.source) for r in rows[:2]] == [
        ("en", "en-1", "heldout"),
        ("en", "en-2", "heldout"),
    ]
    assert (rows[1].subtype, rows[1].escalate, rows[1].ambiguous) == ("refund", True, False)
    assert (rows[3].aux, rows[4].aux) == (("hard_negative",), ())
    assert [(t.role, t.text) for t in rows[2].context] == [
        (Role.USER, "how do I export?"),
        (Role.ASSISTANT, "Use the menu."),
    ]
    assert [c.lang for c in conversations] == ["en", "de", "de"]


def test_corpus_context_is_the_history_of_the_decision(
    tmp_path: Path, corpus_decider: ScriptedDecider
) -> None:
    rows, conversations = read_corpus(write_corpus(tmp_path / "heldout"))
    evaluate(lambda: corpus_decider, rows, conversations)
    by_text = {c.message: c for c in corpus_decider.seen}
    assert [(m.role, m.text) for m in by_text["same again"].history] == [
        (Role.USER, "how do I export?"),
        (Role.ASSISTANT, "Use the menu."),
    ]
    assert by_text["refund now"].history == []


def test_corpus_figures_per_language(corpus_report: dict[str, Any]) -> None:
    by_lang = corpus_report["by_lang"]
    assert list(by_lang) == ["en", "de"]  # the file's order
    en, de = by_lang["en"], by_lang["de"]
    assert (en["n"], de["n"]) == (5, 4)
    # en-4, a hard negative, escalated for a person: a false explicit_request.
    assert prf(corpus_report, "by_lang", "en", "reasons", "explicit_request") == (
        0.5,
        1.0,
        0.6667,
        1,
    )
    assert prf(corpus_report, "by_lang", "en", "reasons", "repeated_failed") == (1.0, 1.0, 1.0, 1)
    assert (en["false_escalation_rate"], de["false_escalation_rate"]) == (0.5, 0.0)
    assert en["hard_negatives"] == {"hard_negative": {"n": 1, "count": 1, "rate": 1.0}}
    assert de["hard_negatives"] == {"hard_negative": {"n": 1, "count": 0, "rate": 0.0}}
    assert prf(corpus_report, "by_lang", "de", "reasons", "explicit_request") == (
        None,
        0.0,
        None,
        1,
    )
    assert prf(corpus_report, "by_lang", "de", "reasons", "frustration") == (1.0, 1.0, 1.0, 1)
    assert de["subtypes"]["account_access"]["sensitive_topic"]["count"] == 1
    # Pooled: every row of the corpus, none of them ambiguous.
    assert corpus_report["headline"]["n"] == 9 and corpus_report["ambiguous"] is None
    assert corpus_report["headline"]["hard_negatives"]["hard_negative"]["n"] == 2
    assert set(corpus_report["by_source"]) == {"heldout"}


def test_corpus_conversations_per_language(corpus_report: dict[str, Any]) -> None:
    by_lang = corpus_report["scenarios_by_lang"]
    assert list(by_lang) == ["en", "de"]
    en, de = by_lang["en"], by_lang["de"]
    assert (en["total"], en["correct"], en["traps"]) == (1, 1, 0)
    assert (de["total"], de["correct"], de["traps"], de["traps_kept"]) == (2, 1, 1, 1)
    assert de["outcomes"] == {"correct": 1, "missed": 1}
    assert corpus_report["scenarios"]["total"] == 3


def test_corpus_mistakes_name_their_language(corpus_report: dict[str, Any]) -> None:
    errors = corpus_report["errors"]
    assert [(e["lang"], e["row_id"]) for e in errors["false_escalations"]] == [("en", "en-4")]
    assert [(e["lang"], e["row_id"]) for e in errors["missed"]] == [("de", "de-1")]
    assert [(s["lang"], s["id"]) for s in errors["scenarios"]] == [("de", "c-de-2")]


def test_csv_data_has_no_language_figures(report: dict[str, object]) -> None:
    assert "by_lang" not in report and "scenarios_by_lang" not in report


def test_corpus_line_without_language_is_named(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "heldout")
    line = {k: v for k, v in CORPUS[0][0].items() if k != "lang"}
    (folder / "messages.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(
        EvalDataError, match=r"messages.jsonl: line 1 \(en-1\): missing string 'lang'"
    ):
        read_corpus(folder)


def test_corpus_conversation_without_language_is_named(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "heldout")
    conversation = {k: v for k, v in CORPUS_CONVERSATIONS[0].items() if k != "lang"}
    (folder / "conversations.jsonl").write_text(json.dumps(conversation) + "\n", "utf-8")
    with pytest.raises(EvalDataError, match=r"line 1 \(c-en-1\): missing string 'lang'"):
        read_corpus(folder)


def test_corpus_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="not a directory"):
        read_corpus(tmp_path / "nowhere")


# --- sampling --------------------------------------------------------------------------------


def _rows(n: int, reason: str, source: str = "a") -> list[LabelledMessage]:
    return [
        LabelledMessage(
            row=i,
            source=source,
            row_id=f"{reason}{i}",
            text=f"{reason} {i}",
            context=(),
            reason=reason,
            escalate=reason != "no_escalation",
            ambiguous=False,
        )
        for i in range(n)
    ]


def test_sample_is_stratified_seeded_and_in_file_order() -> None:
    rows = _rows(80, "no_escalation") + _rows(15, "frustration") + _rows(5, "explicit_request")
    picked = sample_messages(rows, 20, seed=1)
    assert len(picked) == 20
    counts = {r: sum(p.reason == r for p in picked) for r in ("no_escalation", "frustration")}
    assert counts == {"no_escalation": 16, "frustration": 3}
    assert sum(p.reason == "explicit_request" for p in picked) == 1
    assert picked == sample_messages(rows, 20, seed=1)
    assert picked != sample_messages(rows, 20, seed=2)
    positions = [rows.index(p) for p in picked]
    assert positions == sorted(positions)
    assert sample_messages(rows, 500, seed=1) == rows
