"""One registry of channels: every channel has its adapter there, and nothing outside the
channels' own files branches on a channel's name: no module, no page, and no module imports a
channel's own module but where it is registered."""

from __future__ import annotations

import ast
import inspect
import re
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
# Where a channel's own module is registered, in one line: its inbound jobs for the worker,
# its routes for the app.
REGISTRATIONS = (SRC / "service" / "inbound.py", SRC / "web" / "app.py")
# The pages: they learn the channels from the API (the vocabulary, GET /api/v1/channels, the
# agent's public details) and from what the server renders.
PAGES = (SRC / "web" / "static", SRC / "web" / "templates")
CODES = {channel.value for channel in Channel}
# Codes that are ordinary words elsewhere too (the widget's settings, OpenAPI tags): only a
# comparison with them is a branch. The others are a branch wherever they are written.
AMBIGUOUS = {Channel.WIDGET.value, Channel.API.value}
# A code that means nothing but its channel, inside a longer name too (`whatsapp_send`,
# `"whatsapp:"`, `service.whatsapp`), and an ordinary-word code compared, chosen or matched in
# a page (`=== "widget"`, `? "widget"`, `case "api"`, `data-channel="api"`).
NAMED = re.compile(rf"(?<![A-Za-z])({'|'.join(sorted(CODES - AMBIGUOUS))})(?![A-Za-z])")
_QUOTED = rf"[\"'`]({'|'.join(sorted(AMBIGUOUS))})[\"'`]"
CHOSEN = re.compile(
    rf"(?:[=!]==?|\bcase|[?:]|\bincludes\(|data-channel\s*=)\s*{_QUOTED}|{_QUOTED}\s*[=!]==?"
)


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


def _docstrings(tree: ast.Module) -> set[int]:
    bodies = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    return {
        id(first.value)
        for body in bodies
        if body.body
        and isinstance(first := body.body[0], ast.Expr)
        and isinstance(first.value, ast.Constant)
    }


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return []


def channel_branches(path: Path) -> list[str]:
    """Where a file names a channel: `Channel.X`, a comparison with a channel's code, a
    code that means nothing but its channel in a string (its docstrings aside) or in an
    imported module's name, as `file:line what`."""
    where = path.relative_to(SRC)
    found: list[str] = []
    tree = ast.parse(path.read_text())
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if imports := [name for name in _imported(node) if NAMED.search(name)]:
            found.append(f"{where}:{node.lineno} imports {imports[0]}")
        elif isinstance(node, ast.Attribute) and ast.unparse(node.value) == "Channel":
            found.append(f"{where}:{node.lineno} Channel.{node.attr}")
        elif isinstance(node, ast.Compare):
            found += [f"{where}:{node.lineno} compares with {c!r}" for c in _compared_codes(node)]
        elif isinstance(node, ast.MatchValue) and ast.unparse(node.value).strip("'\"") in CODES:
            found.append(f"{where}:{node.lineno} matches {ast.unparse(node.value)}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and NAMED.search(node.value)
        ):
            found.append(f"{where}:{node.lineno} names {node.value!r}")
    return found


def page_branches(path: Path) -> list[str]:
    """Where a page names a channel, as `file:line what`."""
    where = path.relative_to(SRC)
    return [
        f"{where}:{number} {match.group(0)}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for pattern in (NAMED, CHOSEN)
        for match in pattern.finditer(line)
    ]


def _outside_own_modules(path: Path) -> bool:
    return not any(path == own or path.is_relative_to(own) for own in OWN_MODULES)


def test_no_module_outside_the_channels_branches_on_a_channel() -> None:
    wrong = [
        branch
        for path in sorted(SRC.rglob("*.py"))
        if _outside_own_modules(path)
        for branch in channel_branches(path)
        # A registration imports the channel's module, and does nothing else with it.
        if not (path in REGISTRATIONS and " imports " in branch)
    ]
    assert not wrong, wrong


def test_no_page_names_a_channel() -> None:
    pages = [
        p for folder in PAGES for p in sorted(folder.iterdir()) if p.suffix in {".js", ".html"}
    ]
    assert len(pages) > 10  # the widget, Settings, the inbox and their templates among them
    wrong = [branch for path in pages for branch in page_branches(path)]
    assert not wrong, wrong


@pytest.mark.parametrize(
    "code",
    [
        "if conversation.channel == Channel.WHATSAPP:\n    pass\n",
        "if conversation.channel in ('widget', 'help_page'):\n    pass\n",
        "if 'api' != channel:\n    pass\n",
        "match channel:\n    case 'widget':\n        pass\n",
        "KIND = 'whatsapp'\n",
        # The worker once ordered WhatsApp's inbound jobs itself.
        "from handoff.service.whatsapp import job_handlers as whatsapp_jobs\n",
        "from handoff.service import whatsapp\n",
        "def key(job):\n    return f\"whatsapp:{job.payload['wa_id']}\"\n",
        "KIND = 'whatsapp_inbound'\n",
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
    # A docstring may say which channel an example is from.
    assert not channel_branches(SRC / "service" / "delivery.py")


@pytest.mark.parametrize(
    "code",
    [
        # What widget.js, help.html and settings.js once held.
        'const CHANNEL = ds.channel || (MODE === "page" ? "help_page" : "widget");',
        '<script src="/static/widget.js" data-mode="page" data-channel="help_page" defer>',
        "const op = paths['/api/v1/agents/{agent_id}/channels/whatsapp'].put;",
        'if (!actions.some((x) => x.channels.includes("whatsapp"))) {}',
        # Ordinary words, chosen as a channel.
        'const CHANNEL = ds.channel || (bubble ? "widget" : other);',
        "if (channel === 'api') {}",
        "switch (channel) { case `widget`: break; }",
        '<script src="/static/widget.js" data-channel="widget">',
    ],
)
def test_the_page_check_finds_a_channel(tmp_path: Path, code: str) -> None:
    page = tmp_path / "handoff" / "web" / "static" / "rogue.js"
    page.parent.mkdir(parents=True)
    page.write_text(code)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys.modules[__name__], "SRC", tmp_path / "handoff")
        assert page_branches(page)


def test_the_page_check_lets_ordinary_words_be() -> None:
    # Settings' widget section, the widget's own URL and data attributes share the word.
    for page in ("settings.js", "widget.js"):
        assert not page_branches(SRC / "web" / "static" / page)
    assert '["widget", "Widget"' in (SRC / "web" / "static" / "settings.js").read_text()
