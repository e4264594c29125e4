"""Dependencies point one way: each part imports only the parts it may (see DESIGN), and
only the store builds SQL."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "handoff"
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "decide": {"domain"},
    "agent": {"domain", "decide"},
    "helpdesks": {"domain"},
    "channels": {"domain"},
    "store": {"domain"},
    "dispatch": {"domain", "store", "helpdesks"},
    "service": {"domain", "decide", "agent", "helpdesks", "channels", "store", "dispatch"},
    "web": {"service", "domain"},
    # Measuring the decider is the commands' business, never the decider's own.
    "evaluation": {"domain", "decide"},
    # Measuring the whole service needs it all but the web layer: the fakes play the rest.
    "benchmarks": {"domain", "decide", "helpdesks", "service"},
    # eval, bench and train load the decider itself.
    "cli": {"service", "web", "domain", "decide", "evaluation", "benchmarks"},
}
SHARED = {"settings", "__init__"}  # the version and the settings are everyone's
# What builds SQL; only the store may import it, so every query has one home.
STATEMENT_BUILDERS = {"select", "update", "delete", "insert", "text"}


def imported_parts(path: Path) -> set[str]:
    parts: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "handoff" and len(pieces) > 1:
                parts.add(pieces[1])
    return parts


def imported_statement_builders(path: Path) -> set[str]:
    return {
        alias.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy"
        for alias in node.names
        if alias.name in STATEMENT_BUILDERS
    }


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_part_imports_only_what_it_may(part: str) -> None:
    wrong = {
        f"{path.relative_to(SRC)} imports {other}"
        for path in (SRC / part).rglob("*.py")
        for other in imported_parts(path) - ALLOWED[part] - SHARED - {part}
    }
    assert not wrong, sorted(wrong)


def test_every_part_is_listed() -> None:
    folders = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders - {"demo"} == set(ALLOWED)


@pytest.mark.parametrize("part", ["service", "web"])
def test_queries_live_in_the_store(part: str) -> None:
    wrong = {
        f"{path.relative_to(SRC)} imports {name} from sqlalchemy"
        for path in (SRC / part).rglob("*.py")
        for name in imported_statement_builders(path)
    }
    assert not wrong, sorted(wrong)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """Which of `modules` a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                # `from handoff.service import events` imports the module service.events, not
                # the package's __init__ (which Python runs first for any submodule anyway).
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & modules


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_cycle(part: str) -> list[str]:
    """One import cycle among the part's modules (empty when there is none)."""
    modules = {module_name(p): p for p in (SRC / part).rglob("*.py")}
    graph = {m: sorted(imported_modules(p, set(modules)) - {m}) for m, p in modules.items()}
    done: set[str] = set()

    def walk(module: str, trail: list[str]) -> list[str]:
        if module in trail:
            return [*trail[trail.index(module) :], module]
        if module in done:
            return []
        for nxt in graph[module]:
            if cycle := walk(nxt, [*trail, module]):
                return cycle
        done.add(module)
        return []

    for module in sorted(graph):
        if cycle := walk(module, []):
            return cycle
    return []


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_no_import_cycle_inside_a_part(part: str) -> None:
    assert import_cycle(part) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "handoff" / "loop"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from handoff.loop import b\n")
    (package / "b.py").write_text("def f() -> None:\n    from handoff.loop.a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "handoff")
    assert import_cycle("loop") == ["handoff.loop.a", "handoff.loop.b", "handoff.loop.a"]


# The handoff state of a conversation, which only the lifecycle writes.
HANDOFF_STATE = {"owner", "pending_escalation", "stretch", "first_reply_at", "handback_reason"}
LIFECYCLE = "service/lifecycle"
# `status` is a common name (tickets, jobs, integrations have one): an escalation's is the one
# set to an EscalationStatus, or on a variable named for an escalation.
ESCALATION_STATUS = "EscalationStatus"
# The store's conditional UPDATEs of an escalation, which the lifecycle's transitions wrap.
STATE_CLAIMS = {"claim_handback", "claim_wait_notice"}


def _writes_escalation_status(target: ast.Attribute, value: ast.expr | None) -> bool:
    if target.attr != "status":
        return False
    owner = ast.unparse(target.value).lower()
    return "escalation" in owner or (value is not None and ESCALATION_STATUS in ast.unparse(value))


def handoff_state_writes(path: Path) -> list[str]:
    """Where a file assigns handoff state, builds an Escalation row or claims a change in the
    store, as `file:line what`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("Escalation"):
            found.append(f"{path.relative_to(SRC)}:{node.lineno} builds an Escalation")
        elif isinstance(node, ast.Call) and ast.unparse(node.func).startswith("repo.claim_"):
            name = ast.unparse(node.func).removeprefix("repo.")
            if name in STATE_CLAIMS:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} calls {name}")
        for target in targets:
            # `a.x, b.y = ...` assigns each element of the tuple.
            for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(element, ast.Attribute) and (
                    element.attr in HANDOFF_STATE or _writes_escalation_status(element, value)
                ):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} sets {element.attr}")
    return found


def test_only_the_lifecycle_writes_handoff_state() -> None:
    # The store defines the columns and the claims the lifecycle calls to write them.
    exempt = (SRC / LIFECYCLE, SRC / "store")
    wrong = [
        write
        for path in SRC.rglob("*.py")
        if not any(path.is_relative_to(folder) for folder in exempt)
        for write in handoff_state_writes(path)
    ]
    assert not wrong, wrong


def test_the_state_check_finds_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "handoff" / "service" / "rogue.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "def f(conversation, escalation, ticket, job):\n"
        "    conversation.owner = 'bot'\n"
        "    conversation.stretch += 1\n"
        "    escalation.status = 'solved'\n"
        "    job.status = EscalationStatus.OPEN\n"
        "    escalation.ticket_id, escalation.first_reply_at = 't', None\n"
        "    ticket.status = 'solved'\n"  # a ticket's own status is not handoff state
        "    repo.claim_job(None)\n"  # leasing a job changes no handoff state
        "    repo.claim_wait_notice(escalation)\n"
        "    return Escalation(status='pending')\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "handoff")
    assert handoff_state_writes(module) == [
        "service/rogue.py:2 sets owner",
        "service/rogue.py:3 sets stretch",
        "service/rogue.py:4 sets status",
        "service/rogue.py:5 sets status",
        "service/rogue.py:6 sets first_reply_at",
        "service/rogue.py:9 calls claim_wait_notice",
        "service/rogue.py:10 builds an Escalation",
    ]
