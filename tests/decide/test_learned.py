"""The learned decider (HANDOFF_DECIDER=learned) on messages written here, not from the corpus."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from handoff.decide.encoder import get_e5_encoder
from handoff.decide.learned import (
    CLASSES,
    CONVERSATION_MODEL_NAME,
    MODEL_NAME,
    NO_ESCALATION,
    LearnedDecider,
    LearnedModel,
    load_model,
    model_paths,
    neighbour_features,
    phrases,
    shipped_model,
)
from handoff.decide.training import _recall_cut, read_corpus
from handoff.domain import ActionConfig, Answer, DecisionContext, Message, Reason

ROOT = Path(__file__).resolve().parents[2]
REASON_CLASSES = [c for c in CLASSES if c != "no_escalation"]
Convo = Callable[..., list[Message]]


@pytest.fixture(scope="module")
def learned() -> LearnedDecider:
    return LearnedDecider(get_e5_encoder(), shipped_model())


@pytest.mark.parametrize(
    "text",
    [
        "Por favor, quiero hablar con una persona de verdad, no con un robot.",
        "Können Sie mich bitte mit einem echten Mitarbeiter verbinden?",
        # No Italian in the request regexes: only the model can catch this one.
        "Vorrei parlare con un operatore umano, per favore.",
    ],
)
def test_explicit_requests_in_other_languages_escalate_with_that_reason(
    learned: LearnedDecider, action: ActionConfig, text: str
) -> None:
    decision = learned.decide(DecisionContext(text, (), action))
    assert decision.escalate
    assert decision.reasons[0] == Reason.EXPLICIT_REQUEST
    # The model agrees with the patterns (where a pattern matched, its evidence explains it).
    probabilities = dict(decision.probabilities)
    assert max(REASON_CLASSES, key=probabilities.__getitem__) == "explicit_request"


@pytest.mark.parametrize(
    "text",
    [
        # About support, not a request for it; routine how-tos in three languages.
        "¿Cuál es el horario de atención al cliente los sábados?",
        "Wie ändere ich meine Lieferadresse?",
        "Comment est-ce que je télécharge mes factures ?",
    ],
)
def test_routine_questions_stay(learned: LearnedDecider, action: ActionConfig, text: str) -> None:
    decision = learned.decide(DecisionContext(text, (), action))
    assert not decision.escalate, decision


def test_evidence_names_the_closest_training_examples(
    learned: LearnedDecider, action: ActionConfig
) -> None:
    decision = learned.decide(
        DecisionContext("Vorrei parlare con un operatore umano, per favore.", (), action)
    )
    top = next(e for e in decision.evidence if e.detail.startswith("learned model"))
    assert "for “Vorrei parlare con un operatore umano" in top.detail  # the message
    examples = top.detail.split("; phrases that weighed most: ")[0]
    assert examples.count("“") == 4  # then three examples, each with its similarity
    assert "closest training examples" in top.detail
    assert "phrases that weighed most: “" in top.detail


def test_probabilities_are_calibrated_distributions(
    learned: LearnedDecider, make_convo: Convo
) -> None:
    model = learned.model
    history = make_convo(("user", "Où est ma commande ?"), ("assistant", "Elle arrive demain."))
    for text in ("Où est ma commande ???", "Gracias, eso es todo", "Ich will mein Geld zurück"):
        users = [m.text for m in history if m.role.value == "user"]
        assistants = [m.text for m in history if m.role.value == "assistant"]
        features = model.features(learned.encoder, text, users, assistants)
        proba = model.probabilities(features, text)
        assert proba.shape == (len(CLASSES),)
        assert np.all(proba >= 0)
        assert proba.sum() == pytest.approx(1.0, abs=1e-9)
    assert 0 < model.threshold < 1
    assert model.temperature > 0


def test_an_explicit_request_is_honoured_even_when_the_model_says_stay(
    action: ActionConfig,
) -> None:
    model = shipped_model()
    never = dataclasses.replace(model, threshold=0.0)  # the model alone never escalates
    decider = LearnedDecider(get_e5_encoder(), never)
    decision = decider.decide(DecisionContext("I want to talk to a human", (), action))
    assert decision.escalate
    assert decision.reasons == (Reason.EXPLICIT_REQUEST,)
    assert not decider.decide(DecisionContext("Ich will mein Geld zurück!", (), action)).escalate


def test_the_admins_trigger_example_still_escalates(
    learned: LearnedDecider, action: ActionConfig
) -> None:
    text = "Can I get my order in a different colour?"
    with_trigger = dataclasses.replace(
        action, trigger_examples=("I want to change the colour of my order",)
    )
    assert not learned.decide(DecisionContext(text, (), action)).escalate
    decision = learned.decide(DecisionContext(text, (), with_trigger))
    assert decision.escalate
    assert Reason.SENSITIVE_TOPIC in decision.reasons


def test_an_english_trigger_example_catches_its_paraphrase_in_another_language(
    learned: LearnedDecider, action: ActionConfig
) -> None:
    with_trigger = dataclasses.replace(
        action, trigger_examples=("I want to change the colour of my order",)
    )
    spanish = DecisionContext("Quiero cambiar el color de mi pedido", (), with_trigger)
    assert Reason.SENSITIVE_TOPIC in learned.decide(spanish).reasons
    unrelated = DecisionContext("¿Dónde está mi pedido?", (), with_trigger)
    assert not learned.decide(unrelated).escalate


def test_the_rules_cut_offs_sit_on_e5s_scale() -> None:
    """e5 puts unrelated sentences near 0.8: MiniLM's cut-offs would fire on everything."""
    moved = shipped_model().rule_thresholds
    assert 0.85 < moved.trigger_near < moved.trigger < moved.when_to_use < 1
    assert 0.8 < moved.topic_near < moved.topic < 1


# What a rebuild on another machine may move (another CPU, or numeric libraries at other
# versions within the pinned ranges). The e5 embeddings differ there in the third decimal
# (seen: 0.0027 between the shipped artefact and a rebuild on an AVX-512 machine), which moves
# the fitted weights a little and can move an out-of-fold order statistic (the threshold, a
# rate) by a row. Everything else (texts, classes, vocabulary, settings, files' sha256) must be
# equal, and on one machine every number is.
NUMERIC_META = {
    "temperature": 1e-3,
    "threshold": 0.05,
    # The conversation head's: the main head's out-of-fold recall it matches, and the main
    # head's cut for messages after earlier turns, an order statistic of only 135 routine rows.
    "threshold_matches_recall": 0.01,
    "main_head_escalates_below": 0.25,
}
RATE_META = 0.01


def _same_meta(built: dict[str, object], shipped: dict[str, object]) -> None:
    for key, value in shipped.items():
        theirs = built[key]
        if key in NUMERIC_META:
            assert theirs == pytest.approx(value, rel=NUMERIC_META[key]), key
        elif isinstance(value, dict) and key in ("cv", "fallback_judge"):
            for k, v in value.items():
                rate = isinstance(v, float)
                assert theirs[k] == (pytest.approx(v, abs=RATE_META) if rate else v), (key, k)  # type: ignore[index]
        else:
            assert theirs == value, key
    assert built.keys() == shipped.keys()


def test_handoff_train_rebuilds_the_shipped_model(tmp_path: Path) -> None:
    """Encoding the 4,015 training messages and the conversation head's 2,000 or so takes
    about 7 minutes on one core."""
    run = subprocess.run(
        [sys.executable, "-m", "handoff.cli.main", "train", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert run.returncode == 0, run.stderr
    for name in (MODEL_NAME, CONVERSATION_MODEL_NAME):
        _assert_rebuilt(model_paths(name=name), model_paths(tmp_path, name))


def _assert_rebuilt(shipped_paths: tuple[Path, Path], built_paths: tuple[Path, Path]) -> None:
    (shipped_npz, shipped_json), (_, built_json) = shipped_paths, built_paths
    _same_meta(json.loads(built_json.read_text()), json.loads(shipped_json.read_text()))
    shipped, built = LearnedModel.load(*shipped_paths), LearnedModel.load(*built_paths)
    assert np.allclose(built.mean, shipped.mean, atol=1e-3)
    assert np.allclose(built.scale, shipped.scale, atol=1e-3)
    assert np.allclose(built.coef, shipped.coef, atol=0.02)
    assert np.allclose(built.intercept, shipped.intercept, atol=0.02)
    assert built.phrase_weights.names == shipped.phrase_weights.names
    assert np.allclose(built.phrase_weights.idf, shipped.phrase_weights.idf)
    assert np.allclose(built.phrase_weights.coef, shipped.phrase_weights.coef, atol=0.05)
    assert np.allclose(built.examples, shipped.examples, atol=5e-3)
    assert built.example_texts == shipped.example_texts
    assert np.array_equal(built.example_classes, shipped.example_classes)
    with np.load(shipped_npz) as stored:
        assert stored["examples"].dtype == np.float16
    assert int((shipped.example_classes == NO_ESCALATION).sum()) > 0


def test_the_conversation_head_reads_messages_after_earlier_turns(
    learned: LearnedDecider, action: ActionConfig, make_convo: Convo
) -> None:
    conversation = learned.model.conversation
    assert conversation is not None
    history = make_convo(
        ("user", "Is the 7:40 ferry to Brightsea running tomorrow?"),
        ("assistant", "I'm not sure about tomorrow's timetable yet, sorry."),
        ("user", "ok and the 9:10?"),
        ("assistant", "The 9:10 sails daily; tomorrow it is 62% booked."),
    )
    text = "great, I'll book the 9:10 then"
    users = [m.text for m in history if m.role.value == "user"]
    assistants = [m.text for m in history if m.role.value == "assistant"]
    decision = learned.decide(DecisionContext(text, history, action))
    probabilities = np.array([p for _, p in decision.probabilities])
    features = conversation.features(learned.encoder, text, users, assistants)
    assert np.allclose(probabilities, conversation.probabilities(features, text), atol=1e-3)
    assert not decision.escalate
    first = learned.decide(DecisionContext(text, (), action))
    main = learned.model.probabilities(learned.model.features(learned.encoder, text, [], []), text)
    assert np.allclose([p for _, p in first.probabilities], main, atol=1e-3)


def test_a_failed_resolution_after_earlier_turns_escalates(
    learned: LearnedDecider, action: ActionConfig, make_convo: Convo
) -> None:
    history = make_convo(
        ("user", "My router light is blinking orange, what do I do?"),
        ("assistant", "Unplug the router for 30 seconds, plug it back in and wait 2 minutes."),
    )
    text = "I did exactly that, twice, and it is still blinking orange. Nothing changed."
    decision = learned.decide(DecisionContext(text, history, action))
    assert decision.escalate
    assert Reason.REPEATED_QUESTION in decision.reasons


def test_the_conversation_head_is_cut_where_its_recall_matches_the_main_heads() -> None:
    model = load_model()
    assert model.conversation is not None
    main_cv, its_cv = model.meta["cv"], model.conversation.meta["cv"]
    assert isinstance(main_cv, dict) and isinstance(its_cv, dict)
    # Matched when both are built on one machine; the shipped main head was built on another
    # (its out-of-fold recall moves by a row or so there: `RATE_META`).
    target = model.conversation.meta["threshold_matches_recall"]
    assert target == pytest.approx(main_cv["escalation_recall"], abs=RATE_META)
    assert its_cv["escalation_recall"] == pytest.approx(target, abs=0.002)
    assert 0 < model.conversation.main_head_cut < model.threshold


def test_a_recall_cut_lets_that_share_of_escalations_under_it() -> None:
    p_none = np.array([0.05, 0.1, 0.2, 0.3, 0.6, 0.7, 0.9, 0.95])
    escalation = CLASSES.index("frustration")
    y = np.full(len(p_none), escalation, dtype=np.int8)
    y[[5, 7]] = NO_ESCALATION
    escalating = p_none[y != NO_ESCALATION]
    for recall, caught in ((0.5, 3), (0.67, 5), (0.2, 2)):
        cut = _recall_cut(p_none, y, recall)
        assert int((escalating < cut).sum()) == caught, recall


def test_only_the_conversation_head_reads_the_conversation_folder() -> None:
    corpus = ROOT / "corpus" / "escalation"
    main, conversation = read_corpus(corpus), read_corpus(corpus, conversation=True)
    assert not any(name.startswith("conversation/") for name in main.sha256)
    assert any(name.startswith("conversation/") for name in conversation.sha256)
    assert all(row.users or row.assistants for row in conversation.rows)
    assert len(conversation.rows) > sum(1 for row in main.rows if row.users or row.assistants)


def test_a_run_of_unsure_answers_still_escalates(
    learned: LearnedDecider, action: ActionConfig, make_convo: Convo
) -> None:
    history = make_convo(
        ("user", "¿El vaso VortexPro está libre de BPA?"),
        ("assistant", "No estoy seguro de eso.", 0.3),
    )
    unsure = Answer("No estoy seguro de eso.", confidence=0.31, source=None)
    ctx = DecisionContext("¿y de qué material es el vaso?", history, action, answer=unsure)
    decision = learned.decide(ctx)
    assert decision.escalate
    assert decision.reasons == (Reason.LOW_CONFIDENCE,)
    sure = dataclasses.replace(ctx, answer=Answer("Es Tritan.", 0.8, "¿De qué es el vaso?"))
    assert not learned.decide(sure).escalate


def test_neighbour_features_take_each_class_closest_examples() -> None:
    examples = np.eye(6, dtype=np.float32)[:5]  # one example per class, orthogonal
    classes = np.arange(5, dtype=np.int8)
    query = np.zeros((1, 6), dtype=np.float32)
    query[0, 1] = 1.0  # the frustration example itself
    near = neighbour_features(examples, classes, query)[0]
    # Per class: the closest cosine, then the mean of the closest few (one example each here).
    assert near.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    itself = neighbour_features(examples, classes, examples, skip_self=True)
    assert (itself <= 0.0).all()  # no row is its own neighbour


def test_decisions_carry_calibrated_probabilities(
    learned: LearnedDecider, action: ActionConfig
) -> None:
    for text in ("Where can I see my invoices?", "Hai sbagliato l'importo due volte, basta!"):
        decision = learned.decide(DecisionContext(text, (), action))
        probabilities = dict(decision.probabilities)
        assert set(probabilities) == set(CLASSES)
        assert abs(sum(probabilities.values()) - 1.0) < 1e-3
        escalates = probabilities["no_escalation"] < learned.model.threshold
        assert decision.escalate == escalates


@pytest.mark.parametrize(
    ("text", "fell_back"),
    [
        ("Leider habe ich dazu keine Informationen gefunden.", True),
        ("Désolé, je n'ai pas la réponse à cette question.", True),
        ("Maaf kijiye, iske baare mein mujhe kuch nahi mila.", True),
        ("Il ritiro in negozio è gratuito e pronto in due ore.", False),
        # Shares a fallback's words, but moves the conversation on.
        ("No estoy seguro de qué pedido me dices: ¿me pasas el número?", False),
    ],
)
def test_the_fallback_judge_reads_an_answer_in_any_language(
    learned: LearnedDecider, text: str, fell_back: bool
) -> None:
    assert learned.model.fell_back(learned.encoder, text) is fell_back


def test_two_worded_fallbacks_without_a_score_escalate_as_low_confidence(
    learned: LearnedDecider, action: ActionConfig, make_convo: Convo
) -> None:
    """An LLM's replies or a replayed transcript carry no retrieval score: their words decide."""
    unsure = make_convo(
        ("user", "Posso spedire un pacco in Islanda con voi?"),
        ("assistant", "Mi dispiace, non trovo informazioni sulle spedizioni in Islanda."),
        ("user", "E in Groenlandia?"),
        ("assistant", "Purtroppo non so rispondere a questa domanda."),
    )
    decision = learned.decide(DecisionContext("Mi serve saperlo entro oggi.", unsure, action))
    assert decision.escalate
    assert Reason.LOW_CONFIDENCE in decision.reasons
    answered = [*unsure[:3], dataclasses.replace(unsure[3], text="Sì, in 5 giorni lavorativi.")]
    calm = learned.decide(DecisionContext("Perfetto, grazie.", answered, action))
    assert Reason.LOW_CONFIDENCE not in calm.reasons


def test_phrases_are_counted_as_the_training_vectoriser_counts_them() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["Ich möchte mit einem Menschen sprechen!", "mujhe kisi insaan se baat karni", "a b"]
    default = TfidfVectorizer(ngram_range=(1, 2)).build_analyzer()
    for text in texts:
        assert sorted(phrases(text)) == sorted(default(text))


def test_the_phrases_that_weighed_most_point_toward_the_reason(learned: LearnedDecider) -> None:
    weights = learned.model.phrase_weights
    cls = CLASSES.index("explicit_request")
    top = weights.weighed_most("please let me talk to a human agent", cls)
    assert top
    assert all(weights.coef[cls, weights.vocabulary[p]] > 0 for p in top)
    assert weights.weighed_most("zzzz qqqq", cls) == []  # no known phrase: nothing to show
