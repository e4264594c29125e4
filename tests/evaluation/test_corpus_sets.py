"""The escalation corpus's evaluation sets read cleanly and share no text with what the
learned model is fitted on (so their figures are out of sample)."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.decide.training import read_corpus as read_training
from handoff.evaluation.metrics import read_corpus

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "escalation"
EVALUATION_SETS = ("dev", "dev2", "dev3", "dev4", "dev5", "dev6", "heldout")
# Independent writers type a short greeting alike ("hello? anyone there?" is in both train and
# heldout), so only texts longer than this many words must not repeat.
SHORT = 4


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.fixture(scope="module")
def fitted_texts() -> set[str]:
    rows = read_training(CORPUS).rows + read_training(CORPUS, conversation=True).rows
    return {_normal(r.text) for r in rows} | {_normal(t) for r in rows for t in r.users}


@pytest.mark.parametrize("name", EVALUATION_SETS)
def test_an_evaluation_set_shares_no_user_text_with_training(
    name: str, fitted_texts: set[str]
) -> None:
    messages, conversations = read_corpus(CORPUS / name)
    assert messages, f"{name}: no messages"
    texts = [m.text for m in messages]
    texts += [t.text for sc in conversations for t in sc.turns if t.role == "user"]
    shared = sorted(t for t in texts if len(t.split()) > SHORT and _normal(t) in fitted_texts)
    assert not shared, f"{name}: texts the model is fitted on: {shared[:5]}"
