"""Cheap escalation signals: small pure functions that each return `Evidence` or `None`.

Contract shared by every signal here:
- `None` means nothing matched at all.
- An `Evidence` with `score >= FIRE_SCORE` means the signal fires (the conversation should go
  to a person); a lower score is a near miss, kept so the decider can explain why it stayed.
- `detail` is one short sentence for the support agent's inbox, quoting what matched.

Regex signals know English plus Spanish, French, German and Portuguese phrasings of the
explicit request. Embedding signals take an `Encoder` and go through its per-text cache, so a
conversation's earlier messages are encoded once, not on every call.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from handoff.decide.encoder import Encoder, Vector
from handoff.decide.prototypes import ROUTINE_EXAMPLES, TOPIC_EXAMPLES
from handoff.domain import Answer, Evidence, Message, Reason, Role

FIRE_SCORE = 0.5
# An AI answer below this retrieval confidence is a fallback ("I'm not sure..."). The knowledge
# base uses the same default, so "low confidence" means the same thing on both sides; a
# knowledge base built with another `min_confidence` should pass it to the decider's thresholds.
LOW_CONFIDENCE = 0.55
# Cosine between the new message and an earlier, already answered user message. Paraphrases of
# one question score 0.9+ with MiniLM ("How do I reset my password?" / "how can I reset my
# password" 0.985, "I still can't reset my password, how do I do it?" 0.94); a related but
# different follow-up scores below 0.75 ("...the rain jacket from that same order?" 0.22).
REPEAT_SIMILARITY = 0.85
REPEAT_NEAR = 0.7
# Cosine between a message and a custom topic's name or short description. Bare topic names
# embed far from sentences, so this is low; it is only used for topics without phrase lists.
TOPIC_SIMILARITY = 0.5
TOPIC_NEAR = 0.4
# How many earlier answered user messages `repeated_question` compares against.
REPEAT_WINDOW = 8

_CLAUSE_SPLIT = re.compile(r"[.,;:!?¡¿\n]+")
_WORD = re.compile(r"[\w'’*]+", re.UNICODE)


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE_SPLIT.split(text) if c.strip()]


def quote(text: str, limit: int = 60) -> str:
    """The text in curly quotes, on one line, cut with an ellipsis past `limit` characters."""
    text = " ".join(text.split())
    return f"“{text if len(text) <= limit else text[: limit - 1].rstrip() + '…'}”"


def scaled(similarity: float, threshold: float, floor: float) -> float:
    """Map a cosine to a signal score: `threshold` maps to FIRE_SCORE, `floor` to 0, 1 to 1."""
    if similarity >= threshold:
        return min(1.0, FIRE_SCORE + (1 - FIRE_SCORE) * (similarity - threshold) / (1 - threshold))
    return max(0.0, FIRE_SCORE * (similarity - floor) / (threshold - floor))


def closest(
    reason: Reason,
    sims: Vector,
    candidates: Sequence[str],
    *,
    threshold: float,
    near: float,
    detail: Callable[[str, float], str],
) -> Evidence | None:
    """Evidence of the candidate most like the text (`sims`: cosine to each), scored from `near`
    up; None when even it is less alike than `near`. `detail` says it from it and its cosine."""
    best = int(np.argmax(sims))
    sim = float(sims[best])
    if sim < near:
        return None
    return Evidence(reason, round(scaled(sim, threshold, near), 3), detail(candidates[best], sim))


# --- small talk --------------------------------------------------------------------------------

_SMALL_TALK = {
    "greeting": re.compile(
        r"^(hi|hii+|hello|hey|heya|hiya|yo|howdy|good (morning|afternoon|evening|day)|"
        r"hola|buenos d[ií]as|buenas( tardes| noches)?|bonjour|bonsoir|salut|hallo|"
        r"guten (morgen|tag|abend)|servus|ol[aá]|oi|bom dia|boa (tarde|noite))"
        r"( there| team| all| everyone| again)?$"
    ),
    "thanks": re.compile(
        r"^((ok(ay)?|great|perfect|awesome|cool|nice|brilliant|super) )?"
        r"(thanks?|thank you|thank u|thx|ty|cheers|many thanks|thanks a lot|thank you so much|"
        r"gracias|muchas gracias|merci( beaucoup)?|danke( sch[oö]n)?|vielen dank|obrigad[oa])"
        r"( (so much|a lot|again|very much|for (the|your) help))?$"
    ),
    "goodbye": re.compile(
        r"^(bye|goodbye|good bye|see (you|ya)|adi[oó]s|au revoir|tsch[uü]ss|tchau)$"
    ),
}


def small_talk_kind(text: str) -> str | None:
    """Return "greeting", "thanks" or "goodbye" when the whole message is small talk."""
    norm = " ".join(_WORD.findall(text.lower().replace("’", "'")))
    if not norm or len(norm.split()) > 6:
        return None
    for kind, pattern in _SMALL_TALK.items():
        if pattern.match(norm):
            return kind
    return None


# --- explicit request ---------------------------------------------------------------------------

# Who the user may ask for. "someone/somebody" count: "can I speak with someone?" is a request.
_EN_TARGET = (
    r"(?:human(?:s| being| agent)?|person|(?:real|actual) people|"
    r"(?:live |real |actual |support |service )?agent|representative|rep|operator|manager|"
    r"supervisor|(?:support |your |the )staff|employee|"
    r"advis[oe]r|consultant|team member|member of (?:your |the )?(?:staff|team|support team))"
)
_EN_VERB = (
    r"(?:talk|talking|speak|speaking|chat|chatting|connect|connected|transfer|transferred|"
    r"put me through|escalate|get|give|need|want|reach|contact|contacting|call|phone|ring|"
    r"see|have)"
)
# "someone" is a person to hand over to only after a verb of talking: "I need someone to look at
# my car" and "someone stole my card" are not requests.
_EN_SOMEONE = re.compile(
    r"\b(?P<verb>talk|talking|speak|speaking|chat|chatting|connect|reach|contact|"
    r"contacting|call|phone)\b(?:\W+(?:to|with|me|through))?\W+(?P<target>someone|somebody|"
    r"anyone|anybody)\b",
    re.IGNORECASE,
)
_EN_REQUEST = re.compile(
    rf"\b(?P<verb>{_EN_VERB})\b(?P<gap>(?:\W+[\w'’-]+){{0,3}}?)\W+(?P<target>{_EN_TARGET})\b",
    re.IGNORECASE,
)
# "connect me to support", "talk to customer service": a channel rather than a person, only
# with verbs that ask for the hand-over itself (not "contact", which usually asks for an address).
_EN_CHANNEL = re.compile(
    r"\b(?:talk|speak|chat|connect|transfer|put me through|escalate)\w*\b(?:\W+[\w'’]+){0,2}?\W+"
    r"(?:(?:customer|client) (?:service|support|care)|support(?: team| desk)?|help ?desk|the team)"
    r"\b",
    re.IGNORECASE,
)
_EN_OTHER = [
    re.compile(r"\b(?:any|some)(?:one|body) real\b", re.IGNORECASE),
    re.compile(
        r"\b(?:is|are) (?:there |their )?(?:an?|any|some)(?:one|body)?\s*(?:human |live |real )?"
        r"(?:human|person|agent|representative|one|body) (?:available|there|around|online)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\bescalate (?:this|it|me|my|the|to)\b", re.IGNORECASE),
    re.compile(
        r"^\W*(?:an? )?(?:real |live )?(?:human|person|agent|representative|operator|"
        r"supervisor|manager)(?:\W+(?:please|pls|plz|now|asap))*\W*$",
        re.IGNORECASE,
    ),
]
# Words that make "agent", "human", "person" mean something else.
_TARGET_BEFORE_TRAP = re.compile(
    r"(?:travel|estate|insurance|booking|user|light|full|my|our|his|her|their|sales|"
    r"secret|ai|chat|software|the|in)\W*$",
    re.IGNORECASE,
)
_TARGET_AFTER_TRAP = re.compile(
    r"^\W*(?:string|seats?|licen[cs]es?|roles?|app|software|-?readable|resources|error|rights|"
    r"said|says|told|verification|id|header|name|account|profile|view)\b",
    re.IGNORECASE,
)
# "am I talking to a real person?" asks what the assistant is, it does not ask for a hand-over.
_ASKS_WHAT_BOT_IS = re.compile(
    r"\b(?:am i|are you|is this|was that)\b.{0,30}\b(?:talk|speak|chat)\w*|"
    r"\b(?:are|r) (?:you|u)\b.{0,30}\b(?:real|human|bot|robot|person|ai|computer|machine)\b|"
    r"\b(?:could|can) (?:you|u) be\b|\b(?:act|think|sound|talk)\w* like (?:a|an) ",
    re.IGNORECASE,
)
# "Do I have to talk to someone to close my account?" asks whether a person is needed.
_ASKS_WHETHER = re.compile(
    r"\b(?:do|does|would|will|should) (?:i|we|one) (?:have|need) to\W*$", re.IGNORECASE
)
_NEGATION = re.compile(
    r"\b(?:don'?t|do not|doesn'?t|does not|didn'?t|did not|not|never|no need|no longer|"
    r"never ?mind|nevermind|won'?t|without|no (?:quiero|necesito|hace falta)|no (?:deseo)|"
    r"ne (?:veux|souhaite|voudrais|dois) pas|pas besoin|plus besoin|nicht|kein\w*|"
    r"n[aã]o (?:quero|preciso|precisa))\b",
    re.IGNORECASE,
)

_FOREIGN_REQUESTS: list[tuple[str, re.Pattern[str]]] = [
    (
        "es",
        re.compile(
            r"\b(?:hablar|habla|comunicarme|contactar|p[aá]same|p[aá]seme|pasarme|"
            r"transfi[eé]reme|con[eé]ctame|comunicame|quiero|necesito)\b(?:\W+\w+){0,3}?\W+"
            r"(?:agente|humano|persona|asesor[a]?|representante|operador[a]?|alguien|"
            r"encargad[oa]|gerente|supervisor[a]?)\b(?!\W+de (?:viajes|seguros|bienes))",
            re.IGNORECASE,
        ),
    ),
    (
        "fr",
        re.compile(
            r"\b(?:parler|discuter|joindre|contacter|passez-moi|passer|mettre en relation|"
            r"transf[ée]rer|veux|voudrais|avoir)\b(?:\W+[\w']+){0,3}?\W+"
            r"(?:conseill[eè]re?|humain|personne|agent|op[ée]rat(?:eur|rice)|quelqu'un|"
            r"interlocut(?:eur|rice)|responsable|vrai(?:e)? personne)\b"
            r"(?!\W+(?:de voyages?|immobilier|d'assurance))",
            re.IGNORECASE,
        ),
    ),
    (
        "de",
        re.compile(
            r"\bmit\W+(?:\w+\W+){0,2}?(?:mensch(?:en)?|mitarbeiter(?:in)?|berater(?:in)?|person|"
            r"agenten|kundenberater(?:in)?|jemandem|kundendienst|support|ansprechpartner(?:in)?)"
            r"\b(?:\W+\w+){0,3}?\W+(?:sprechen|reden|verbinden|telefonieren|chatten)\b|"
            r"\bverbinden sie mich\b|"
            r"\b(?:einen|eine) (?:echten |menschlichen )?(?:menschen|mitarbeiter(?:in)?|"
            r"berater(?:in)?) (?:sprechen|haben)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "pt",
        re.compile(
            r"\b(?:falar|conversar|contatar|contactar|transferir|passar|quero|preciso)\b"
            r"(?:\W+\w+){0,3}?\W+(?:atendente|humano|pessoa|agente|operador[a]?|representante|"
            r"algu[eé]m|consultor[a]?|funcion[aá]rio)\b(?!\W+de viagens?)",
            re.IGNORECASE,
        ),
    ),
    (
        "hi",
        re.compile(r"\b(?:insaan|insan|aadmi|admi|agent|vyakti)\s+se\s+baat\b", re.IGNORECASE),
    ),
]


_CONJUNCTION = re.compile(r"\b(?:and|but|so|because|y|pero|et|mais|und|aber|e|mas)\b", re.I)


def _negated(clause: str, start: int) -> bool:
    # Only the four words before the verb: "I don't understand you and I want to talk to a
    # person" is a request, "I don't want to talk to a person" is not.
    # The verb itself is included so that "no need for a human" reads as "no need".
    # A conjunction starts a new thought: "you're not helping and I want to talk to a person".
    before = _WORD.findall(_CONJUNCTION.split(clause[:start])[-1])[-4:]
    verb = _WORD.findall(clause[start:])[:1]
    return bool(_NEGATION.search(" ".join(before + verb)))


def _is_request(clause: str, match: re.Match[str]) -> bool:
    before = clause[: match.start()]
    if _negated(clause, match.start()) or _ASKS_WHETHER.search(before):
        return False
    if match.group("verb").lower() in ("call", "phone", "ring"):
        # "Can I call someone?" is a request; "can you call someone for me" is an errand.
        return bool(re.search(r"\b(?:i|we|to)\W*$", before, re.IGNORECASE))
    return True


def _english_request(clause: str) -> str | None:
    someone = _EN_SOMEONE.search(clause)
    if someone and _is_request(clause, someone):
        return someone.group(0)
    for match in _EN_REQUEST.finditer(clause):
        before_target = clause[: match.start("target")]
        after_target = clause[match.end("target") :]
        if _TARGET_BEFORE_TRAP.search(before_target) and not re.search(
            r"\b(?:to|with) the\W*$", before_target, re.IGNORECASE
        ):
            continue
        if _TARGET_AFTER_TRAP.match(after_target):
            continue
        if not _is_request(clause, match):
            continue
        return match.group(0)
    for pattern in (_EN_CHANNEL, *_EN_OTHER):
        hit = pattern.search(clause)
        if (
            hit
            and not _negated(clause, hit.start())
            and not _ASKS_WHETHER.search(clause[: hit.start()])
        ):
            return hit.group(0)
    return None


# Swearing between the verb and the person ("talk to f*** someone") says nothing about whom.
_INTENSIFIER = re.compile(
    r"\b(?:fu?c?kin[g']?|f[*]+(?:in[g']?|ing)?|freakin[g']?|friggin[g']?|bloody|damn|goddamn|"
    r"effing)\s+",
    re.IGNORECASE,
)
# Words of a hand-over request, repaired when a typo or a missing space mangles them. Short words
# ("talk", "human") accept a swapped, missing or extra letter but no other letter: "task" and
# "walk" must stay themselves.
_REQUEST_WORDS = (
    "someone",
    "somebody",
    "person",
    "human",
    "agent",
    "speak",
    "talk",
    "contact",
    "available",
    "representative",
)
# English words one edit away from a request word, which must stay themselves.
_REAL_WORDS = frozenset({"gent", "gents", "stalk", "humane", "tall", "tale", "speck", "sneak"})
_GLUE = frozenset({"a", "an", "to", "with", "is", "any", "there", "some", "me"})
_SUBSTITUTION_MIN_LENGTH = 6


def _one_edit(word: str, key: str) -> bool:
    """Whether `word` is `key` with one letter swapped with its neighbour, added, dropped or
    (for long keys) replaced."""
    if abs(len(word) - len(key)) > 1 or word == key:
        return False
    if len(word) == len(key):
        diff = [i for i in range(len(key)) if word[i] != key[i]]
        if len(diff) == 2 and diff[1] == diff[0] + 1:
            return word[diff[0]] == key[diff[1]] and word[diff[1]] == key[diff[0]]
        return len(diff) == 1 and len(key) >= _SUBSTITUTION_MIN_LENGTH
    short, long_ = (word, key) if len(word) < len(key) else (key, word)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


@functools.lru_cache(maxsize=8192)
def _repair_word(word: str) -> str:
    low = word.lower()
    if len(low) < 4 or not low.isalpha() or low in _REQUEST_WORDS or low in _REAL_WORDS:
        return word
    for key in _REQUEST_WORDS:
        if _one_edit(low, key):
            return key
    for key in _REQUEST_WORDS:
        if low.startswith(key) and low[len(key) :] in _GLUE:
            return f"{key} {low[len(key) :]}"
        if low.endswith(key) and low[: -len(key)] in _GLUE:
            return f"{low[: -len(key)]} {key}"
    return word


def _repaired(text: str) -> str:
    """Return the text with swearing before a person removed and request words un-mangled."""
    text = _INTENSIFIER.sub("", text)
    return "".join(_repair_word(part) for part in re.split(r"(\W+)", text))


def explicit_request(text: str) -> Evidence | None:
    """Detect a request to be handed to a person, in English, es, fr, de, pt (and Hinglish)."""
    # Asking *about* support (hours, phone number, email) is a question the AI can answer and is
    # not matched; asking to reach a person ("can I talk to someone?") is.
    if _ASKS_WHAT_BOT_IS.search(text):
        return None
    for clause in _clauses(text):
        # Repairs are for English words only: "persona" and "agente" are words of their own.
        hit = _english_request(_repaired(clause))
        if hit:
            return Evidence(Reason.EXPLICIT_REQUEST, 0.95, f"asked for a person: {quote(hit)}")
        for lang, pattern in _FOREIGN_REQUESTS:
            found = pattern.search(clause)
            if found and not _negated(clause, found.start()):
                return Evidence(
                    Reason.EXPLICIT_REQUEST,
                    0.95,
                    f"asked for a person ({lang}): {quote(found[0])}",
                )
    return None


# --- frustration ---------------------------------------------------------------------------------

_STRONG_FRUSTRATION = re.compile(
    r"\b(?:useless|pointless|pathetic|garbage|rubbish|incompetent|unacceptable|outrageous|"
    r"furious|fed up|sick (?:and tired )?of|so done with|waste of (?:my |our )?(?:time|money)|"
    r"(?:is|are|'re|’re|was|it'?s) (?:a|an absolute|a complete|a total|such a|a f\W*\w*ing) joke|"
    r"worst (?:service|experience|company|support|bot|app|customer service|ever)|the worst|"
    r"(?:you'?re|you’re|you are|u r|ur|you|u) (?:not|aren'?t|arent|are not)\s+"
    r"(?:helping|helpful|listening|any help)|(?:you'?re|you’re|you are|this is) no help|"
    r"(?:not|isn'?t) helping(?: at all)?|"
    r"(?:i'?m|i’m|i am) (?:so |really |very |getting )?(?:angry|pissed|livid|fuming|disgusted|"
    r"furious|fed up|sick of)|scam|rip-?off|disgrace(?:ful)?|shame on you|"
    r"(?:fil|mak|lodg|logd|lod|submitt?|rais|regist|put)\w* (?:in )?(?:a |an |n |my )?(?:\w+ )?"
    r"(?:complaint|compl[a-z]*n[a-z]*t)|"
    r"(?:discontent|dissatisfied|unhappy|not happy|not satisfied|disappointed) with|"
    r"(?:don'?t|do not|dont) like (?:the|your) service|are you (?:serious|kidding|joking)|"
    r"unbelievable|bullshit|hate (?:this|you|your)|(?:terrible|awful|horrible|lousy) service|"
    r"no sirve(?:s)? para nada|in[úu]til|una verg[üu]enza|c'est nul|inadmissible|"
    r"n'importe quoi|unversch[äa]mt|nutzlos|frechheit|p[ée]ssimo|rid[íi]culo)\b",
    re.IGNORECASE,
)
_MODERATE_FRUSTRATION = re.compile(
    r"\b(?:ridiculous|terrible|awful|horrible|annoying|annoyed|frustrating|frustrated|stupid|"
    r"dumb|crap|crappy|fuck\w*|f\*+\w*|shit\w*|damn\w*|wtf|ffs|bloody|hopeless|upset|angry)\b",
    re.IGNORECASE,
)
# Cheerful context: "holy shit that was quick, thank you!!", "ridiculous cheap, thanks!".
_POSITIVE = re.compile(
    r"\b(?:thanks?|thank you|thx|great|awesome|love|perfect|amazing|brilliant|quick|fast|"
    r"cheap|nice|cool|wow|excellent|fantastic|appreciate)\b",
    re.IGNORECASE,
)
_PUNCT_RUN = re.compile(r"[!?]{3,}|!{2,}|\?{2,}")
_CAPS_WORD = re.compile(r"\b[A-Z]{4,}\b")


def _frustration_cues(text: str) -> tuple[float, list[str]]:
    cues: list[str] = []
    score = 0.0
    strong = _STRONG_FRUSTRATION.search(text)
    if strong:
        score += 0.9
        cues.append(quote(strong[0], 40))
    moderate = [m[0] for m in _MODERATE_FRUSTRATION.finditer(text)]
    if moderate:
        score += 0.55 + 0.2 * (len(moderate) - 1)
        cues.append(quote(moderate[0], 40))
    letters = [c for c in text if c.isalpha()]
    caps_words = _CAPS_WORD.findall(text)
    shouting = len(caps_words) >= 2 or (
        len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.7
    )
    if shouting:
        score += 0.3
        cues.append("writing in capitals")
    if _PUNCT_RUN.search(text):
        score += 0.3
        cues.append("repeated “!”/“?”")
    if not strong and _POSITIVE.search(text):
        score *= 0.5
    return min(score, 1.0), cues


def frustration(text: str, history: Sequence[Message]) -> Evidence | None:
    """Detect anger or frustration with the service: insults, complaints, profanity, shouting."""
    score, cues = _frustration_cues(text)
    if not cues:
        return None
    previous = next((m.text for m in reversed(history) if m.role == Role.USER), None)
    if previous is not None and score < FIRE_SCORE and _frustration_cues(previous)[0] >= 0.3:
        # A second upset-sounding message in a row tips a weak cue over.
        score = min(1.0, score + 0.2)
        cues.append("after an upset previous message")
    return Evidence(Reason.FRUSTRATION, round(score, 3), "sounds frustrated: " + ", ".join(cues))


# --- the previous answer did not help -----------------------------------------------------------

_DID_NOT_HELP = re.compile(
    r"\b(?:(?:did ?n[o']?t|didnt|does ?n[o']?t|doesnt|has ?n[o']?t|won'?t|wont|still does ?n[o']?t)"
    r" (?:work|help|fix|solve|change|resolve|do anything)|"
    r"still (?:not|no|doesn'?t|does not|isn'?t|is not|won'?t|can'?t|cannot|getting|get|says|"
    r"shows|showing|fails|failing|broken|crash\w*|kicks|there|in the|listed|pending|missing|"
    r"empty|the same|nothing|\d+)|"
    r"(?:that'?s|thats|that is|it'?s|its|this is) not (?:my question|what i (?:asked|meant|need))|"
    r"not what i (?:asked|meant)|you already (?:said|told|gave|answered|sent)|"
    r"(?:that'?s|thats|that is|you said|you gave me) (?:just )?the same (?:thing|answer|link)|"
    r"(?:i'?ve|i have|i|we'?ve|we) already (?:did|done|tried|checked|cleared|followed|restarted|"
    r"reinstalled|updated|sent|sending|reset)|"
    r"(?:i'?m|i am|we'?re|we are) already (?:sending|doing|on the latest|using)|"
    r"did (?:exactly|all of) (?:that|this|what)|did (?:wh?at|wat) (?:you|u) (?:said|told|asked)|"
    r"followed (?:your|the|those|all the) (?:steps|instructions)|"
    # The steps do not match what the user sees.
    r"there(?:'s| is) no \w+ (?:section|option|button|menu|tab|link|setting)|"
    r"(?:don'?t|do not|can'?t|cannot) (?:see|find) (?:the|that|this|any|an?) (?:\w+ )?"
    r"(?:section|option|button|menu|tab|link|setting)|(?:it'?s|it is) not there)\b",
    re.IGNORECASE,
)


# Checking one understood the answer is the opposite of saying it failed.
_CONFIRMING = re.compile(
    r"\b(?:just to (?:be sure|confirm|be clear|double[- ]check|check)|to be (?:sure|clear)|"
    r"so (?:just )?to confirm|if i understand (?:correctly|right)|just so i understand|"
    r"(?:i|we) got it|did i get (?:that|this|it) right|so you'?re saying)\b",
    re.IGNORECASE,
)


def answer_did_not_help(text: str, history: Sequence[Message]) -> Evidence | None:
    """Detect the user saying the assistant's last answer did not solve their problem."""
    # Only meaningful right after an assistant answer; reported as a repeated question, which is
    # what it is from the user's side ("I asked, the answer did not work, I am asking again").
    last = next((m for m in reversed(history) if m.role != Role.SYSTEM), None)
    if last is None or last.role != Role.ASSISTANT:
        return None
    hit = _DID_NOT_HELP.search(text)
    if hit is None or _CONFIRMING.search(text):
        return None
    return Evidence(
        Reason.REPEATED_QUESTION, 0.8, f"says the previous answer did not help: {quote(hit[0])}"
    )


# --- repeated question ---------------------------------------------------------------------------


def _answered_user_messages(history: Sequence[Message]) -> list[str]:
    answered: list[str] = []
    seen_answer = False
    for message in reversed(history):
        if message.role == Role.ASSISTANT:
            seen_answer = True
        elif message.role == Role.USER and seen_answer:
            text = message.text.strip()
            if len(text.split()) >= 3 and small_talk_kind(text) is None:
                answered.append(text)
            if len(answered) >= REPEAT_WINDOW:
                break
    return answered


def repeated_question(
    text: str,
    history: Sequence[Message],
    encoder: Encoder,
    *,
    threshold: float = REPEAT_SIMILARITY,
    near: float = REPEAT_NEAR,
) -> Evidence | None:
    """Detect the user asking again a question the assistant already answered."""
    if len(text.split()) < 3 or small_talk_kind(text) is not None:
        return None
    earlier = _answered_user_messages(history)
    if not earlier:
        return None
    return closest(
        Reason.REPEATED_QUESTION,
        encoder.similarity(text, earlier),
        earlier,
        threshold=threshold,
        near=near,
        detail=lambda asked, sim: (
            f"asks again what was already answered: {quote(asked)} (similarity {sim:.2f})"
        ),
    )


# --- low confidence ------------------------------------------------------------------------------


# An assistant saying it has no answer, in the words assistants use for it.
_FALLBACK = re.compile(
    r"\b(?:i'?m not (?:sure|certain)|i am not (?:sure|certain)|i (?:don'?t|do not) know|"
    r"i (?:don'?t|do not) have (?:[\w-]+ ){0,3}(?:information|info|details|data|an answer)|"
    r"i (?:couldn'?t|could not|wasn'?t able to|was unable to) (?:find|locate)|"
    r"(?:no|not any) information (?:on|about)|i'?m unable to (?:find|answer)|"
    r"(?:don'?t|do not) want to guess)",
    re.IGNORECASE,
)


def low_confidence(
    answer: Answer | None,
    history: Sequence[Message],
    *,
    threshold: float = LOW_CONFIDENCE,
    run: int = 2,
    says_no_answer: Callable[[str], bool] | None = None,
) -> Evidence | None:
    """Detect the AI falling back `run` times in a row (current answer and earlier answers).

    An earlier answer without a retrieval score is judged on its words: by `says_no_answer`
    when given (the learned decider's multilingual judge), else by English phrases."""
    fell_back = says_no_answer or (lambda text: _FALLBACK.search(text) is not None)
    lows = 0
    if answer is not None:
        if answer.is_confident and answer.confidence >= threshold:
            return None
        lows += 1
    # Walk back over assistant answers; messages without a confidence (greetings, LLM replies,
    # human agents) are not retrieval answers and neither count nor break the run.
    for message in reversed(history):
        if lows >= run:
            break
        if message.role != Role.ASSISTANT:
            continue
        if message.confidence is None:
            # No retrieval score (an LLM reply, a transcript from elsewhere): judge the words.
            if not fell_back(message.text):
                break
        elif message.confidence >= threshold:
            break
        lows += 1
    if lows == 0:
        return None
    score = 0.8 if lows >= run else 0.3
    detail = (
        f"the AI could not find an answer {lows} times in a row"
        if lows >= run
        else "the AI could not find an answer once"
    )
    return Evidence(Reason.LOW_CONFIDENCE, score, detail)


# --- sensitive topics ----------------------------------------------------------------------------

# Rule: a default topic fires on a *personal incident or request* (I was charged twice, I want
# my money back, someone got into my account, I am locked out), not on a general question about
# the topic (what is your refund policy, how do I change my password, where are my invoices):
# those are FAQ material the AI can answer.
_BILLING = re.compile(
    r"\b(?:charged (?:me )?(?:twice|two times|double|again|wrong\w*|incorrectly|too much|more|"
    r"for something|without)|double[- ]charged|overcharged|(?:two|2|duplicate|double) "
    r"(?:charges|payments|transactions)|(?:unexpected|unknown|wrong|incorrect|duplicate|"
    r"unauthori[sz]ed|strange|weird|mystery) (?:charge|fee|payment|amount|transaction)s?|"
    r"(?:extra|additional|hidden) (?:charge|fee|payment)s? (?:on|in) (?:my|our|the) "
    r"(?:statement|account|card|bill|invoice)|"
    r"(?:payment|card|transaction)s? (?:was |is |got |keeps getting |has been )?"
    r"(?:declined|failed|rejected|bounced|refused)|"
    r"(?:can'?t|cannot|unable to|couldn'?t) (?:pay|make (?:a|the) payment|complete (?:the|my) "
    r"payment)|payment (?:issue|problem|error)|(?:issue|problem|trouble|error)s? (?:with |when |"
    r"while )?(?:trying to )?(?:making|make|paying|pay) (?:a |the |my )?(?:payment|bill|order)?|"
    r"(?:problem|issue|trouble) (?:with|paying) "
    r"(?:my |the )?(?:payment|bill|invoice|charge|card)|dispute (?:a |the |this )?"
    r"(?:charge|payment|transaction)|chargeback|(?:bill|invoice|charge) (?:is|was|looks) "
    r"(?:wrong|incorrect|too high)|wrong (?:amount|bill|invoice))\b|"
    r"\b(?:charge[ds]?|fee|payment|bill)\b[^.?!]{0,60}\b(?:but|although|even though) "
    r"(?:i|we) (?:haven'?t|didn'?t|never|did not|have not)\b",
    re.IGNORECASE,
)
_REFUNDS = re.compile(
    r"\b(?:(?:i|we) (?:want|need|would like|'d like|demand|expect|am requesting|request) "
    r"(?:a |my |our |the )?(?:full )?refund|refund (?:me|my|our|this|it)|(?:my|our) refund|"
    r"(?:my|our) money back|(?:my|our) reimbursement|"
    r"(?:get|obtain|receive|request|claim)(?:ing)? (?:a |my |the )?(?:full )?"
    r"(?:refund|reimbursement)\b(?!\W+(?:if|polic|rules|terms))|"
    r"(?:want|need|get|give me) (?:my |our )?money back|"
    r"(?:haven'?t|didn'?t|not|never|still not) (?:got|gotten|received|get|seen) (?:a |my |the |"
    r"our |any )?(?:refund|money back)|where is (?:my|the) refund|reimburse (?:me|us))\b",
    re.IGNORECASE,
)
_SECURITY = re.compile(
    r"\b(?:(?:account|card|phone|email|profile|password|identity)s? (?:was |has been |got |is "
    r"|were )?(?:hacked|compromised|stolen|breached)|hacked (?:into )?(?:my|our)|"
    r"(?:lost|stolen) (?:my |our )?(?:card|phone|wallet)|my (?:card|phone|wallet) (?:was |got "
    r"|has been |is )?(?:lost|stolen|missing)|fraud\w*|identity theft|phishing|"
    r"someone (?:else )?(?:has |is |was )?(?:accessed|accessing|logged into|logging into|used|"
    r"using|got into|changed) (?:my|our)|(?:unrecogni[sz]ed|unauthori[sz]ed) "
    r"(?:transaction|payment|charge|login|access|withdrawal)s?)\b",
    re.IGNORECASE,
)
# "I didn't buy that" only matters next to something that moves money or guards an account.
_NOT_ME = re.compile(
    r"\b(?:didn'?t|did not|never|haven'?t) (?:do|make|buy|bought|order|authori[sz]e|approve|"
    r"request|been to|recogni[sz]e)\b|\b(?:don'?t|do not) recogni[sz]e\b|\bwasn'?t me\b|"
    r"\bwithout my (?:permission|consent|knowledge)\b|\bnot mine\b",
    re.IGNORECASE,
)
_ASSET = re.compile(
    r"\b(?:account|card|payment|charge|transaction|purchase|bank|payout|email|password|login|"
    r"withdrawal|transfer)s?\b|[€$£]\s?\d",
    re.IGNORECASE,
)
_ACCOUNT_ACCESS = re.compile(
    r"\b(?:locked out|(?:account|profile|login|card|pin)s? (?:is |was |has been |got |keeps "
    r"getting )?(?:locked|blocked|suspended|disabled|frozen|deactivated)|account locked|"
    r"(?:can'?t|cannot|unable to|not able to|couldn'?t|can not) (?:log ?in|login|sign ?in|"
    r"access (?:my|our)|get in(?:to)?|reset (?:my|the) password|recover|verify (?:my|our))|"
    r"(?:forgot|forgotten|lost) (?:my |the )?(?:password|pin|passcode|username|login)|"
    r"(?:recover|retrieve)\w* (?:my |the |our )?(?:password|account|pin|passcode|access)|"
    r"too many (?:attempts|tries)|(?:password|reset) (?:link|email|code) (?:doesn'?t|isn'?t|"
    r"is not|does not|never|won'?t)|verification (?:failed|fails|isn'?t working))\b",
    re.IGNORECASE,
)


def _security(text: str) -> str | None:
    hit = _SECURITY.search(text)
    if hit:
        return hit[0]
    not_me = _NOT_ME.search(text)
    if not_me and _ASSET.search(text):
        return not_me[0]
    return None


TopicMatcher = Callable[[str], str | None]


def _regex_topic(pattern: re.Pattern[str]) -> TopicMatcher:
    def match(text: str) -> str | None:
        hit = pattern.search(text)
        return hit[0] if hit else None

    return match


DEFAULT_TOPIC_MATCHERS: dict[str, TopicMatcher] = {
    "billing": _regex_topic(_BILLING),
    "refunds": _regex_topic(_REFUNDS),
    "security": _security,
    "account access": _regex_topic(_ACCOUNT_ACCESS),
}
_TOPIC_ALIASES = {
    "refund": "refunds",
    "payments": "billing",
    "payment": "billing",
    "fraud": "security",
    "security_fraud": "security",
    "account_access": "account access",
    "login": "account access",
}


def topic_key(topic: str) -> str:
    """The default topic a name or alias stands for ("refund" → "refunds"), else the name."""
    key = topic.strip().lower()
    return _TOPIC_ALIASES.get(key, key)


# A message reads as a personal problem on a default topic when it is close to that topic's
# examples and clearly closer to them than to the routine questions about the same subject.
TOPIC_EXAMPLE_SIMILARITY = 0.6
TOPIC_EXAMPLE_NEAR = 0.5
TOPIC_MARGIN = 0.05


def _semantic_topic(
    text: str,
    topics: Sequence[str],
    encoder: Encoder,
    *,
    threshold: float,
    near: float,
    margin: float,
) -> Evidence | None:
    if not topics:
        return None
    row = encoder.encode_one(text)
    routine = float(np.max(encoder.matrix(ROUTINE_EXAMPLES) @ row))
    best: tuple[float, str, str] | None = None
    for topic in topics:
        examples = TOPIC_EXAMPLES[topic_key(topic)]
        sims = encoder.matrix(examples) @ row
        i = int(np.argmax(sims))
        if best is None or float(sims[i]) > best[0]:
            best = (float(sims[i]), topic, examples[i])
    assert best is not None
    sim, topic, example = best
    if sim < near:
        return None
    score = scaled(sim, threshold, near)
    if sim - routine < margin:
        score = min(score, FIRE_SCORE - 0.01)  # as close to a routine question: a near miss
    return Evidence(
        Reason.SENSITIVE_TOPIC,
        round(score, 3),
        f"{topic}: like “{example}” (similarity {sim:.2f}; routine question {routine:.2f})",
    )


def sensitive_topic(
    text: str,
    topics: Iterable[str],
    encoder: Encoder | None,
    *,
    threshold: float = TOPIC_SIMILARITY,
    near: float = TOPIC_NEAR,
    example_threshold: float = TOPIC_EXAMPLE_SIMILARITY,
    example_near: float = TOPIC_EXAMPLE_NEAR,
    margin: float = TOPIC_MARGIN,
) -> Evidence | None:
    """Detect a personal incident on a default topic, or a message close to a custom topic."""
    custom: list[str] = []
    defaults: list[str] = []
    for topic in topics:
        matcher = DEFAULT_TOPIC_MATCHERS.get(topic_key(topic))
        if matcher is None:
            custom.append(topic)
            continue
        defaults.append(topic)
        hit = matcher(text)
        if hit:
            return Evidence(Reason.SENSITIVE_TOPIC, 0.85, f"{topic}: {quote(hit)}")
    if encoder is None:
        return None
    candidates = [
        _semantic_topic(
            text,
            defaults,
            encoder,
            threshold=example_threshold,
            near=example_near,
            margin=margin,
        ),
        _custom_topic(text, custom, encoder, threshold=threshold, near=near),
    ]
    found = [e for e in candidates if e is not None]
    return max(found, key=lambda e: e.score) if found else None


def _custom_topic(
    text: str, custom: Sequence[str], encoder: Encoder, *, threshold: float, near: float
) -> Evidence | None:
    # Custom topics have no phrase list: compare with the topic's name or short description.
    if not custom:
        return None
    return closest(
        Reason.SENSITIVE_TOPIC,
        encoder.matrix(tuple(custom)) @ encoder.encode_one(text),
        custom,
        threshold=threshold,
        near=near,
        detail=lambda topic, sim: f"close to the topic {quote(topic, 40)} (similarity {sim:.2f})",
    )
