"""Plain words for the validation errors Pydantic raises.

Pydantic's messages speak of its own types ("List should have at least 1 item after
validation, not 0"); the pages show `msg` as it comes, so each error is reworded here to say
what is wrong in the person's terms and which field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}

Wording = Callable[[str, Any, Mapping[str, Any]], str]


def field_label(loc: object, title: str | None = None) -> str:
    """Name a field for a person: its title, else its last name in `loc`, in words."""
    if title:
        return title
    names = (
        [str(part) for part in loc if isinstance(part, str) and part != "body"]
        if isinstance(loc, list | tuple)
        else []
    )
    return names[-1].replace("_", " ").capitalize() if names else "This value"


def _count(number: object, one: str) -> str:
    """'one channel', '3 channels'."""
    amount = number if isinstance(number, int) else 0
    words = NUMBER_WORDS.get(amount, str(amount))
    return f"{words} {one}" if amount == 1 else f"{words} {one}s"


def _item_noun(label: str) -> str:
    """The word for one item of a list field: 'Channels' → 'channel'."""
    noun = label.lower()
    return noun[:-1] if noun.endswith("s") and not noun.endswith("ss") else noun


def _too_short(label: str, given: Any, ctx: Mapping[str, Any]) -> str:
    least = ctx.get("min_length")
    if isinstance(given, list | tuple | set | dict):
        return f"Choose at least {_count(least, _item_noun(label))}"
    if least == 1:
        return f"{label} cannot be empty"
    return f"{label} must be at least {_count(least, 'character')}"


def _too_long(label: str, given: Any, ctx: Mapping[str, Any]) -> str:
    most = ctx.get("max_length")
    if isinstance(given, list | tuple | set | dict):
        return f"Choose at most {_count(most, _item_noun(label))}"
    return f"{label} must be at most {_count(most, 'character')}"


def _pattern(label: str, _: Any, ctx: Mapping[str, Any]) -> str:
    pattern = str(ctx.get("pattern", ""))
    if pattern.startswith("^https?://"):
        return f"{label} must start with http:// or https://"
    only = re.fullmatch(r"\^(\w+)\$", pattern)
    if only:
        return f"{label} must be {only.group(1)}"
    # No plain words for an arbitrary pattern: it is shown, for whoever can read it.
    return f"{label} is not in the expected form ({pattern})"


def _choice(label: str, _: Any, ctx: Mapping[str, Any]) -> str:
    expected = ctx.get("expected")
    return f"{label} must be one of {expected}" if expected else f"{label} is not a known choice"


def _bound(relation: str, key: str) -> Wording:
    return lambda label, _, ctx: f"{label} must be {relation} {ctx.get(key)}"


def _fixed(sentence: str) -> Wording:
    return lambda label, _given, _ctx: sentence.format(label=label)


WORDINGS: dict[str, Wording] = {
    "too_short": _too_short,
    "string_too_short": _too_short,
    "too_long": _too_long,
    "string_too_long": _too_long,
    "string_pattern_mismatch": _pattern,
    "enum": _choice,
    "literal_error": _choice,
    "greater_than": _bound("more than", "gt"),
    "greater_than_equal": _bound("at least", "ge"),
    "less_than": _bound("less than", "lt"),
    "less_than_equal": _bound("at most", "le"),
    "missing": _fixed("{label} is required"),
    "extra_forbidden": _fixed("{label} is not a field this takes"),
    "string_type": _fixed("{label} must be text"),
    "int_type": _fixed("{label} must be a whole number"),
    "int_parsing": _fixed("{label} must be a whole number"),
    "int_from_float": _fixed("{label} must be a whole number"),
    "float_type": _fixed("{label} must be a number"),
    "float_parsing": _fixed("{label} must be a number"),
    "bool_type": _fixed("{label} must be true or false"),
    "bool_parsing": _fixed("{label} must be true or false"),
    "list_type": _fixed("{label} must be a list"),
    "dict_type": _fixed("{label} must be an object"),
    "model_type": _fixed("{label} must be an object"),
    "model_attributes_type": _fixed("{label} must be an object"),
    "json_invalid": _fixed("The body is not valid JSON"),
}


def plain_message(error: Mapping[str, Any], title: str | None = None) -> str:
    """Reword one Pydantic error; one this does not know keeps its own message."""
    kind = str(error.get("type", ""))
    message = str(error.get("msg", ""))
    if kind == "value_error":
        # Our own validators' words, behind Pydantic's prefix.
        return message.removeprefix("Value error, ")
    wording = WORDINGS.get(kind)
    if wording is None:
        return message
    label = field_label(error.get("loc", ()), title)
    return wording(label, error.get("input"), error.get("ctx") or {})
