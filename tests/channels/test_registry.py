"""One registry of channels: every channel has its adapter there, and no module outside the
channels' own branches on a channel's name."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from handoff.channels import ADAPTERS, CHANNELS, SENDERS
from handoff.domain import Channel

SRC = Path(__file__).resolve().parents[2] / "src" / "handoff"
# Where a channel may be named: the registry and its adapters, the list of codes itself,
# WhatsApp's own connect form and webhook (service and route), and the migrations' history.
OWN_MODULES = (
    SRC / "channels",
    SRC / "domain" / "conversation.py",
    SRC / "service" / "whatsapp.py",
    SRC / "web" / "api_whatsapp.py",
    SRC / "store" / "migrations",
)
CODES = {channel.value for channel in Channel}
# Codes that are ordinary words elsewhere too (the widget's settings, OpenAPI tags): only a
# comparison with them is a branch. The others are a branch wherever they are written.
AMBIGUOUS = {Channel.WIDGET.value, Channel.API.value}


def test_every_channel_has_one_adapter() -> None:
    assert list(CHANNELS) == list(Channel)  # in the order the pages list them
    assert len(ADAPTERS) == len(CHANNELS)
    assert all(a.title.strip() and a.place.strip() for a in ADAPTERS)
    assert len({a.title for a in ADAPTERS}) == len(ADAPTERS)


def test_each_mode_of_the_chat_widget_opens_one_live_channel() -> None:
    modes = [a.widget_mode for a in ADAPTERS if a.widget_mode is not None]
    assert sorted(modes) == ["bubble", "page"]  # widget.js's two modes, once each
    assert all(a.live for a in ADAPTERS if a.widget_mode is not None)


def test_a_channel_with_an_outside_api_can_deliver() -> None:
    assert set(SENDERS) == {a.channel for a in ADAPTERS if not a.live}
    for sender in SENDERS.values():
        assert issubclass(sender.credentials_model, BaseModel)
        assert inspect.iscoroutinefunction(sender.deliver)


def _compared_codes(node: ast.Compare) -> set[str]:
    found: set[str] = set()
    for side in [node.left, *node.comparators]:
        elements = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
        found |= {e.value for e in elements if isinstance(e, ast.Constant) and e.value in CODES}
    return found


def channel_branches(path: Path) -> list[str]:
    """Where a file names a channel: `Channel.X`, a comparison with a channel's code, or a
    code that means nothing but its channel, as `file:line what`."""
    where = path.relative_to(SRC)
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "Channel":
            found.append(f"{where}:{node.lineno} Channel.{node.attr}")
        elif isinstance(node, ast.Compare):
            found += [f"{where}:{node.lineno} compares with {c!r}" for c in _compared_codes(node)]
        elif isinstance(node, ast.MatchValue) and ast.unparse(node.value).strip("'\"") in CODES:
            found.append(f"{where}:{node.lineno} matches {ast.unparse(node.value)}")
        elif isinstance(node, ast.Constant) and node.value in CODES - AMBIGUOUS:
            found.append(f"{where}:{node.lineno} names {node.value!r}")
    return found


def _outside_own_modules(path: Path) -> bool:
    return not any(path == own or path.is_relative_to(own) for own in OWN_MODULES)


def test_no_module_outside_the_channels_branches_on_a_channel() -> None:
    wrong = [
        branch
        for path in sorted(SRC.rglob("*.py"))
        if _outside_own_modules(path)
        for branch in channel_branches(path)
    ]
    assert not wrong, wrong


@pytest.mark.parametrize(
    "code",
    [
        "if conversation.channel == Channel.WHATSAPP:\n    pass\n",
        "if conversation.channel in ('widget', 'help_page'):\n    pass\n",
        "if 'api' != channel:\n    pass\n",
        "match channel:\n    case 'widget':\n        pass\n",
        "KIND = 'whatsapp'\n",
    ],
)
def test_the_branch_check_finds_a_branch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    module = tmp_path / "handoff" / "service" / "rogue.py"
    module.parent.mkdir(parents=True)
    module.write_text(code)
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "handoff")
    assert channel_branches(module)


def test_the_branch_check_lets_ordinary_words_be() -> None:
    # The widget's settings and an OpenAPI tag share the word with the channel.
    assert not channel_branches(SRC / "web" / "api_admin.py")
