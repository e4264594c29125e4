"""The README documents every setting and opens with the two commands."""

from __future__ import annotations

from pathlib import Path

from handoff.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [name for name in Settings.model_fields if f"HANDOFF_{name.upper()}" not in README]
    assert missing == []


def test_readme_opens_with_the_two_commands() -> None:
    opening = README.split("##", 1)[0]
    assert "make run" in opening
    assert "make test" in opening
