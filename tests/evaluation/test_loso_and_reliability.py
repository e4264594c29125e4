"""Leave-one-source-out and the reliability table, on a small corpus written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handoff.decide import Encoder
from handoff.decide.encoder import get_e5_encoder
from handoff.decide.training import AssistantTurn, read_corpus
from handoff.domain import Decision
from handoff.evaluation.loso import leave_one_source_out
from handoff.evaluation.metrics import LabelledMessage, MessageResult, reliability

OWN = {
    "en": [
        ("I want to talk to a person", "explicit_request"),
        ("this is the third time my parcel is late, I'm fed up", "frustration"),
        ("that's the same page you sent before and it still fails", "repeated_failed"),
        ("someone took money from my account, I did not make that transfer", "sensitive_topic"),
        ("what time do you open on Saturday?", "no_escalation"),
        ("how do I change my delivery address?", "no_escalation"),
    ],
    "fr": [
        ("je veux parler à un conseiller", "explicit_request"),
        ("c'est inadmissible, troisième retard ce mois-ci", "frustration"),
        ("on m'a débité deux fois le même abonnement", "sensitive_topic"),
        ("quels sont vos horaires ?", "no_escalation"),
        ("comment changer mon mot de passe ?", "no_escalation"),
        ("j'ai déjà fait tout ça deux fois, même erreur", "repeated_failed"),
    ],
}
ANSWERS = {
    "en": [
        ("I couldn't find anything about that, sorry.", True),
        ("I don't have information on pet policies.", True),
        ("We open at 9 on Saturdays.", False),
        ("You can change it under Settings → Address.", False),
    ],
    "fr": [
        ("Je n'ai trouvé aucune information à ce sujet.", True),
        ("Désolé, je ne sais pas.", True),
        ("Nous sommes ouverts de 9 h à 18 h.", False),
        ("Allez dans Paramètres → Sécurité.", False),
    ],
}
PUBLIC = {
    "bank": [
        ("my card has been stolen", "sensitive_topic"),
        ("there is a payment I don't recognise", "sensitive_topic"),
        ("when will my card arrive?", "no_escalation"),
        ("which currencies can I hold?", "no_escalation"),
    ],
    "shop": [
        ("I need a refund for a broken kettle", "sensitive_topic"),
        ("I want to file a complaint", "frustration"),
        ("track my order", "no_escalation"),
        ("do you ship to Norway?", "no_escalation"),
    ],
}


def _line(text: str, reason: str, lang: str, **extra: object) -> str:
    item = {"text": text, "reason": reason, "lang": lang, "context": [], **extra}
    return json.dumps(item, ensure_ascii=False)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    (tmp_path / "train").mkdir()
    (tmp_path / "public").mkdir()
    for lang, rows in OWN.items():
        lines = [_line(t, r, lang) for t, r in rows]
        (tmp_path / "train" / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    conversation = {
        "lang": "en",
        "turns": [
            {"role": "user", "text": "can I add a second bag?"},
            {"role": "assistant", "text": "I'm not sure about that."},
            {"role": "user", "text": "and the weight limit?"},
            {"role": "assistant", "text": "I'm not sure about that."},
            {"role": "user", "text": "ok"},
            {"role": "assistant", "text": "Anything else?"},
            {"role": "user", "text": "never reached"},
        ],
        "expect": {"escalate_at": 4, "reason": "low_confidence"},
    }
    (tmp_path / "train" / "conversations-en.jsonl").write_text(json.dumps(conversation) + "\n")
    (tmp_path / "assistant").mkdir()
    answers = [
        json.dumps({"text": t, "fallback": f, "lang": lang}, ensure_ascii=False)
        for lang, rows in ANSWERS.items()
        for t, f in rows
    ]
    (tmp_path / "assistant" / "answers.jsonl").write_text("\n".join(answers) + "\n", "utf-8")
    public = [_line(t, r, "en", source=source) for source, rows in PUBLIC.items() for t, r in rows]
    (tmp_path / "public" / "intents.jsonl").write_text("\n".join(public) + "\n", "utf-8")
    return tmp_path


def test_conversations_give_routine_turns_then_the_escalation_turn(corpus: Path) -> None:
    read = read_corpus(corpus)
    rows, sha256 = read.rows, read.sha256
    turns = [r for r in rows if r.group == "en" and r.users]
    assert [(r.text, r.reason) for r in turns] == [
        ("and the weight limit?", "no_escalation"),
        ("ok", "repeated_failed"),  # the assistant's fallbacks: not progressing
    ]
    assert turns[1].assistants == ("I'm not sure about that.", "I'm not sure about that.")
    assert "can I add a second bag?" in {r.text for r in rows if not r.users}
    assert "never reached" not in {r.text for r in rows}
    # The assistant's two turns before it fell back: deduplicated, beside the labelled answers.
    assert read.answers[0] == AssistantTurn("I'm not sure about that.", True, "en")
    assert len(read.answers) == 9
    assert {r.group for r in rows if r.public} == {"bank", "shop"}
    assert set(sha256) == {
        "train/en.jsonl",
        "train/fr.jsonl",
        "train/conversations-en.jsonl",
        "assistant/answers.jsonl",
        "public/intents.jsonl",
    }


def _scored(source: str) -> list[LabelledMessage]:
    return [
        LabelledMessage(i, source, str(i), t, (), r, r != "no_escalation", False)
        for i, (t, r) in enumerate(PUBLIC[source])
    ]


def test_each_source_is_scored_by_a_model_that_never_saw_it(corpus: Path, encoder: Encoder) -> None:
    rows = _scored("bank") + _scored("shop")
    folds = leave_one_source_out(corpus, rows, get_e5_encoder(), encoder)
    assert [f.source for f in folds] == ["bank", "shop"]
    for fold in folds:
        assert fold.in_sample.n == fold.left_out.n == 4
        assert fold.in_sample.no_escalation_rows == 2
    with pytest.raises(ValueError, match="no training rows from web"):
        leave_one_source_out(corpus, _scored_as("web"), get_e5_encoder(), encoder)


def _scored_as(source: str) -> list[LabelledMessage]:
    return [LabelledMessage(1, source, "1", "hello", (), "no_escalation", False, False)]


def _result(p_escalate: float, escalate: bool) -> MessageResult:
    reason = "frustration" if escalate else "no_escalation"
    row = LabelledMessage(1, "s", "1", "t", (), reason, escalate, False)
    probabilities = (("frustration", p_escalate), ("no_escalation", 1.0 - p_escalate))
    return MessageResult(row, Decision(escalate=False, probabilities=probabilities), 0.0)


def test_reliability_bins_compare_predicted_and_observed() -> None:
    results = [_result(0.05, False)] * 9 + [_result(0.05, True)]  # 10% observed at 5%
    results += [_result(0.95, True)] * 10  # 100% observed at 95%
    table = reliability(results)
    assert table is not None
    filled = [b for b in table.bins if b.n]
    assert [(b.low, b.n, b.mean_predicted, b.observed) for b in filled] == [
        (0.0, 10, 0.05, 0.1),
        (0.9, 10, 0.95, 1.0),
    ]
    assert table.ece == pytest.approx(0.05)  # (10 * 0.05 + 10 * 0.05) / 20
    assert set(table.label_ece) == {"frustration", "no_escalation"}


def test_no_reliability_table_without_probabilities() -> None:
    row = LabelledMessage(1, "s", "1", "t", (), "no_escalation", False, False)
    assert reliability([MessageResult(row, Decision.stay(), 0.0)]) is None
