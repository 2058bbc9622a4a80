"""The README stays the truth: CI runs its test command, and its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from soup_search.cli import app

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for b in blocks for line in b.splitlines() if line and not line.startswith("#")]


def test_quick_start_has_exactly_two_commands():
    cmds = quick_start_commands()
    assert len(cmds) == 2
    assert cmds[0].endswith("soup-search demo")
    assert cmds[1].endswith("pytest -q")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert quick_start_commands()[1] in ci.splitlines()


def test_readme_commands_exist():
    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    names |= {g.name for g in app.registered_groups}
    text = (ROOT / "README.md").read_text()
    for used in set(re.findall(r"`soup-search (\w+)", text)):
        assert used in names, used
