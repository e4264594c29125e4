from __future__ import annotations

from collections.abc import Callable

import pytest

from handoff.decide import Encoder
from handoff.decide.signals import (
    FIRE_SCORE,
    answer_did_not_help,
    explicit_request,
    frustration,
    low_confidence,
    repeated_question,
    sensitive_topic,
    small_talk_kind,
)
from handoff.domain import DEFAULT_SENSITIVE_TOPICS, Answer, Message, Reason

Convo = Callable[..., list[Message]]


@pytest.fixture
def convo(make_convo: Convo) -> Convo:
    return make_convo


def fires(evidence: object) -> bool:
    return evidence is not None and getattr(evidence, "score", 0.0) >= FIRE_SCORE


# --- explicit request ---


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a human?",
        "talk to a human",
        "I want to speak with a real person please",
        "connect me to support staff",
        "Please transfer me to customer service",
        "I need a manager",
        "representative",
        "agent please!",
        "is there anyone real there who could check with the workshop?",
        "Can I call someone to walk me through it?",
        "you're not helping, I need help speaking with a person",
        "I don't understand you and I want to contact someone",
        "is there any human agent available?",
        # Spanish, French, German, Portuguese
        "Vale. ¿Puedo hablar con una persona, por favor?",
        "Quiero hablar con un agente",
        "necesito hablar con un humano ya",
        "Je voudrais parler à un conseiller",
        "Je préférerais en parler avec un conseiller, c'est possible ?",
        "je veux parler à un humain",
        "Kann ich bitte mit einem Mitarbeiter sprechen?",
        "Ich möchte mit einem Menschen sprechen",
        "Posso falar com um atendente humano?",
        "quero falar com um humano",
    ],
)
def test_explicit_request_fires(text: str) -> None:
    evidence = explicit_request(text)
    assert evidence is not None
    assert evidence.reason is Reason.EXPLICIT_REQUEST
    assert evidence.score >= FIRE_SCORE
    assert "asked for a person" in evidence.detail


@pytest.mark.parametrize(
    "text",
    [
        "My travel agent booked my flights. Can I still pick my seats?",
        "Cool, and will my agent get notified if I change the seat?",
        "What user agent string should our client send?",
        "my real estate agent says I need a pre-approval letter",
        "How many agent seats come with the Growth plan?",
        "Can it be exported in a human-readable format instead?",
        "When is your support team available?",
        "what are your customer service phone hours at weekends?",
        "I don't need a human anymore",
        "never mind, no need for a person",
        "no need for a human, I figured it out",
        "I don't want to talk to a human",
        "are you a real person or a bot?",
        "could you ask an agent how to open an account?",
        "someone stole my card",
        "I need someone to look at my check engine light",
        "Mi agente de viajes reservó el hotel",
        "No quiero hablar con una persona, gracias",
        "Je ne veux pas parler à un conseiller",
        "Ich möchte nicht mit einem Mitarbeiter sprechen",
        "Não quero falar com um atendente",
    ],
)
def test_explicit_request_ignores_traps(text: str) -> None:
    assert explicit_request(text) is None


# --- frustration ---


@pytest.mark.parametrize(
    "text",
    [
        "this is useless",
        "you're not helping at all",
        "worst service ever",
        "Unbelievable. You people are a joke, I'm so done with this shop.",
        "this is absolute bullshit, second outage this week",
        "1-3 DAYS?? rent is due TODAY. this app is a f***ing joke",
        "WHY IS THIS STILL NOT WORKING!!!",
        "I want to file a complaint about your service",
        "this is ridiculous",
    ],
)
def test_frustration_fires(text: str) -> None:
    evidence = frustration(text, [])
    assert fires(evidence)
    assert evidence is not None and evidence.reason is Reason.FRUSTRATION
    assert "frustrated" in evidence.detail


@pytest.mark.parametrize(
    "text",
    [
        "holy shit that was quick, thank you!!",
        "this is ridiculous cheap, thanks!",
        "ugh the storm killed my delivery yesterday, can I pick a new slot?",
        "My old carrier was an absolute nightmare, so I'm switching to you.",
        "tell me a joke",
        "How do I export the CSV and JSON files?",
        "Thank you!!",
    ],
)
def test_frustration_keeps_precision(text: str) -> None:
    assert not fires(frustration(text, []))


def test_frustration_weak_cue_tips_over_after_upset_message(convo: Convo) -> None:
    weak = "why is it doing this??"
    assert not fires(frustration(weak, []))
    history = convo(("user", "hello?? anyone???"), ("assistant", "Sorry, how can I help?"))
    assert fires(frustration(weak, history))


# --- repeated question / answer did not help ---


def test_repeated_question_fires_on_same_question_after_answer(
    encoder: Encoder, convo: Convo
) -> None:
    history = convo(
        ("user", "How do I change the delivery address for order 44190?"),
        ("assistant", "You can manage saved addresses under Addresses."),
    )
    evidence = repeated_question(
        "How do I change the delivery address for order 44190?", history, encoder
    )
    assert fires(evidence)
    assert evidence is not None and evidence.reason is Reason.REPEATED_QUESTION
    assert "44190" in evidence.detail


def test_repeated_question_fires_on_paraphrase(encoder: Encoder, convo: Convo) -> None:
    history = convo(
        ("user", "How do I reset my password?"),
        ("assistant", "Use 'Forgot password' on the sign-in page."),
    )
    assert fires(repeated_question("how can I reset my password", history, encoder))


def test_repeated_question_ignores_unanswered_earlier_message(
    encoder: Encoder, convo: Convo
) -> None:
    history = convo(("user", "How do I reset my password?"))
    assert repeated_question("how can I reset my password", history, encoder) is None


@pytest.mark.parametrize(
    "text",
    [
        "Ok and the rain jacket from that same order, same process for that one?",
        "Great. Different question: can I pay with Klarna?",
    ],
)
def test_repeated_question_ignores_different_question(
    encoder: Encoder, text: str, convo: Convo
) -> None:
    history = convo(
        ("user", "How do I return the running shoes from my last order? They're too small."),
        ("assistant", "Orders → select the order → Return items, then print the label."),
    )
    assert not fires(repeated_question(text, history, encoder))


def test_repeated_question_ignores_repeated_small_talk(encoder: Encoder, convo: Convo) -> None:
    history = convo(("user", "thanks"), ("assistant", "You're welcome!"))
    assert repeated_question("thanks", history, encoder) is None


@pytest.mark.parametrize(
    "text",
    [
        "That didn't solve it. Still no events after Friday.",
        "you already said that. I'm asking whether it can run every week.",
        "I know it's paid monthly, that's not my question.",
        "nope, restarted the phone too. still no data",
        "There is no Extras section when I open the booking, only Seats and Meals.",
        "I can't find that option anywhere in the settings page",
    ],
)
def test_answer_did_not_help_fires_after_an_answer(text: str, convo: Convo) -> None:
    history = convo(("user", "My calendar stopped syncing"), ("assistant", "Reconnect it."))
    evidence = answer_did_not_help(text, history)
    assert fires(evidence)
    assert evidence is not None and evidence.reason is Reason.REPEATED_QUESTION
    # Without an assistant answer just before, there is nothing that failed.
    assert answer_did_not_help(text, convo(("user", "hello"))) is None


def test_answer_did_not_help_ignores_success(convo: Convo) -> None:
    history = convo(("user", "where is the PIN?"), ("assistant", "In the email."))
    assert answer_did_not_help("found it, thanks, that worked!", history) is None
    assert answer_did_not_help("Can I still pick my seats myself?", history) is None


# --- low confidence ---


def test_low_confidence_fires_on_second_fallback_in_a_row(convo: Convo) -> None:
    history = convo(("user", "Is the jar BPA free?"), ("assistant", "I'm not sure.", 0.2))
    evidence = low_confidence(Answer("I'm not sure.", confidence=0.3, source=None), history)
    assert fires(evidence)
    assert evidence is not None and evidence.reason is Reason.LOW_CONFIDENCE


def test_low_confidence_fires_on_two_fallbacks_in_history(convo: Convo) -> None:
    history = convo(
        ("user", "q1"),
        ("assistant", "not sure", 0.1),
        ("user", "q2"),
        ("assistant", "still not sure", 0.2),
    )
    assert fires(low_confidence(None, history))


def test_low_confidence_needs_twice_in_a_row(convo: Convo) -> None:
    once = convo(("user", "q"), ("assistant", "Here is how.", 0.9))
    fallback = Answer("I'm not sure.", confidence=0.3, source=None)
    assert not fires(low_confidence(fallback, once))
    assert not fires(low_confidence(fallback, []))
    # A confident current answer breaks the run, whatever came before.
    lows = convo(("user", "q"), ("assistant", "no idea", 0.1), ("user", "q2"))
    assert low_confidence(Answer("Here.", confidence=0.8, source="faq"), lows) is None


def test_low_confidence_judges_replies_without_a_score_by_their_words(convo: Convo) -> None:
    # An answer with no retrieval score (an LLM reply) breaks the run unless it is a fallback.
    history = convo(
        ("assistant", "Hi, I'm Nova!"),
        ("user", "q"),
        ("assistant", "You can change it under Settings → Billing."),
    )
    assert not fires(low_confidence(Answer("not sure", 0.2, None), history))
    history = convo(("user", "q"), ("assistant", "Sorry, I don't have that information."))
    assert fires(low_confidence(Answer("not sure", 0.2, None), history))


@pytest.mark.parametrize(
    "fallback",
    [
        "I'm not sure about that, sorry.",
        "I'm sorry, I don't have fee information for transfers to that country.",
        "I couldn't find a fee table for that, sorry.",
        "Good question! I don't know the answer to that one.",
    ],
)
def test_fallback_replies_in_a_transcript_count_twice_in_a_row(convo: Convo, fallback: str) -> None:
    history = convo(
        ("user", "q1"), ("assistant", fallback), ("user", "q2"), ("assistant", fallback)
    )
    assert fires(low_confidence(None, history))
    assert not fires(low_confidence(None, history[:2]))  # once is not a run


def test_a_real_answer_is_not_a_fallback(convo: Convo) -> None:
    history = convo(
        ("user", "q1"),
        ("assistant", "Transfers are limited to €10,000 per day."),
        ("user", "q2"),
        ("assistant", "Fees are listed under Payments → Fees."),
    )
    assert low_confidence(None, history) is None


# --- sensitive topic ---


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("I see two charges of $240 from you on my card this month", "billing"),
        ("I was charged twice for my subscription", "billing"),
        ("I want my money back", "refunds"),
        ("I still haven't got my refund of €129", "refunds"),
        ("someone hacked my account", "security"),
        (
            "I noticed a payment of €312 yesterday. I've never been to Lyon and didn't buy that.",
            "security",
        ),
        (
            "it says 'Account locked – too many attempts' and I can't get in at all",
            "account access",
        ),
        ("I forgot my PIN and the card is blocked", "account access"),
    ],
)
def test_sensitive_topic_fires_on_incidents(text: str, topic: str) -> None:
    evidence = sensitive_topic(text, DEFAULT_SENSITIVE_TOPICS, None)
    assert fires(evidence)
    assert evidence is not None and evidence.reason is Reason.SENSITIVE_TOPIC
    assert evidence.detail.startswith(topic)


@pytest.mark.parametrize(
    "text",
    [
        "what's your refund policy?",
        "how do I get a refund if I cancel?",
        "How do I change my password?",
        "how long is a password reset link valid for?",
        "Where can I download the invoices for January to March?",
        "can we switch from monthly to annual billing?",
        "I hacked together a quick Python script against your API",
        "are there extra fees for using my card in mexico",
    ],
)
def test_sensitive_topic_ignores_general_questions(text: str) -> None:
    assert sensitive_topic(text, DEFAULT_SENSITIVE_TOPICS, None) is None


def test_sensitive_topic_only_checks_configured_topics() -> None:
    assert sensitive_topic("I want my money back", ("billing",), None) is None


def test_sensitive_topic_custom_topic_by_embedding(encoder: Encoder) -> None:
    topics = ("cancellation of the contract",)
    evidence = sensitive_topic("I want to cancel my contract", topics, encoder)
    assert fires(evidence)
    assert evidence is not None and "cancellation" in evidence.detail
    assert not fires(sensitive_topic("where is my order", topics, encoder))


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        # Phrasings no keyword list covers: the examples in embedding space do.
        ("the cash machine only gave me half of what I withdrew", "billing"),
        ("the conversion rate on my purchase abroad looks off", "billing"),
        ("my parcel came broken and I'd like to be reimbursed", "refunds"),
        ("somebody bought things with my card details", "security"),
        ("I cannot get past the ID check in the app", "account access"),
    ],
)
def test_sensitive_topic_recognises_paraphrases_by_meaning(
    encoder: Encoder, text: str, topic: str
) -> None:
    evidence = sensitive_topic(text, DEFAULT_SENSITIVE_TOPICS, encoder)
    assert fires(evidence), evidence
    assert evidence is not None and evidence.detail.startswith(topic)


@pytest.mark.parametrize(
    "text",
    [
        "If I cancel my subscription, when does it stop?",
        "what do I need to verify my identity?",
        "when will my replacement card arrive?",
        "which payment methods can I use?",
        "remind me to call my mum tomorrow",
    ],
)
def test_routine_questions_on_sensitive_subjects_stay(encoder: Encoder, text: str) -> None:
    assert not fires(sensitive_topic(text, DEFAULT_SENSITIVE_TOPICS, encoder))


def test_semantic_topics_follow_the_configured_list(encoder: Encoder) -> None:
    text = "the cash machine only gave me half of what I withdrew"
    assert not fires(sensitive_topic(text, ("refunds",), encoder))


# --- small talk ---


@pytest.mark.parametrize(
    ("text", "kind"),
    [("hi", "greeting"), ("Hello there!", "greeting"), ("thanks!", "thanks"), ("bye", "goodbye")],
)
def test_small_talk_kind(text: str, kind: str) -> None:
    assert small_talk_kind(text) == kind


def test_small_talk_kind_rejects_real_questions() -> None:
    assert small_talk_kind("hi where is my order 58213?") is None


@pytest.mark.parametrize(
    "text",
    [
        "can you speakwith a human?",
        "i want to pseak with a human gaent",
        "can u contcat someone?",
        "you aren't helping, how do I contact fucking someone?",
        "is their any human available?",
        "tell me if there issomeone available",
    ],
)
def test_explicit_request_survives_typos_and_swearing(text: str) -> None:
    assert fires(explicit_request(text))


@pytest.mark.parametrize(
    "text",
    [
        "I have a task for a human resources manager at my company",
        "walk me through the setup, no human needed",
        "¿Qué es una persona jurídica?",
        "can you speak with a british gent's accent",
    ],
)
def test_typo_repair_does_not_invent_requests(text: str) -> None:
    assert not fires(explicit_request(text))
