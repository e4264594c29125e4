"""Which language a visitor is answered in: the page's `lang`, else their own messages.

py3langid's model (inside the package) is restricted to the service's languages. A message
must be long enough and clearly in one language to count: "ok", "merci" or an email address
say nothing, and the conversation keeps the language it has (at first the workspace's
default, `HANDOFF_DEFAULT_LANGUAGE`). Identification is model work: it runs in a worker
thread, before the message's transaction opens.
"""

from __future__ import annotations

import re
from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from handoff.domain import Language

# Shorter messages are guesses: "ok", "no", "merci", "salta" look alike in many languages.
MIN_LETTERS = 12
# py3langid's normalised probability over our six languages; a clear sentence scores > 0.95.
MIN_CONFIDENCE = 0.9
# The start of a long message says its language as well as the whole, in a bounded time.
MAX_CHARS = 500

_NOT_WORDS = re.compile(r"\S+@\S+|https?://\S+|www\.\S+")
_LETTER = re.compile(r"[^\W\d_]")


def load() -> None:
    """Load the model now (about a second), so that the first visitor does not wait for it."""
    _identifier()


@cache
def _identifier() -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([language.value for language in Language])
    return identifier


def identify(text: str) -> Language | None:
    """Return the language `text` is clearly written in, or None when it does not say."""
    words = _NOT_WORDS.sub(" ", text[:MAX_CHARS])
    if len(_LETTER.findall(words)) < MIN_LETTERS:
        return None
    code, confidence = _identifier().classify(words)
    return Language(code) if confidence >= MIN_CONFIDENCE else None


def choose(current: str, *, pinned: bool, heard: Language | None) -> str:
    """Return the conversation's language after a message in which `heard` was identified."""
    if pinned or heard is None:
        return current
    return heard.value
