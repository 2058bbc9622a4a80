"""The CLI shell: help, version, and user errors as exit code 2 with one line and no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer

import soup_search
from soup_search.cli import app, main

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soup_search", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=ENV)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=ENV)


def command_names() -> list[str]:
    return sorted(typer.main.get_command(app).commands)


def test_help_lists_every_command():
    done = run_cli("--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    names = command_names()
    assert "version" in names
    for name in names:
        assert name in done.stdout, name


def test_no_arguments_shows_help():
    done = run_cli()
    assert "Usage" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(shutil.which("soup-search") is None, reason="console script not on PATH")
def test_console_script_help():
    done = subprocess.run(["soup-search", "--help"], capture_output=True, text=True, timeout=120, env=ENV)
    assert done.returncode == 0 and "version" in done.stdout


def test_version_subprocess_and_in_process(capsys):
    done = run_cli("version")
    assert done.returncode == 0
    assert done.stdout.strip() == soup_search.__version__
    with pytest.raises(SystemExit) as exc:
        main(["version"])
    assert exc.value.code in (0, None)
    assert capsys.readouterr().out.strip() == soup_search.__version__


def test_unknown_command_exits_2_without_traceback():
    done = run_cli("no-such-command")
    assert done.returncode == 2
    assert "no-such-command" in done.stderr and "Traceback" not in done.stderr


RAISING_APP = """
    import soup_search.cli as cli
    from soup_search.errors import {cls}

    @cli.app.command("boom")
    def boom():
        raise {raise_expr}

    cli.main(["boom"])
"""


@pytest.mark.parametrize("cls,raise_expr", [
    ("ObjectiveError", "ObjectiveError('data file d.jsonl has no column prompt; set prompt_field')"),
    ("ConfigError", "ConfigError('soup.yaml', ['objective.name: unknown', 'search.trials: must be > 0'])"),
])
def test_user_error_is_one_line_and_exit_2(cls, raise_expr):
    done = run_python(RAISING_APP.format(cls=cls, raise_expr=raise_expr))
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in done.stderr
    if cls == "ConfigError":
        assert "soup.yaml: 2 problems" in lines[0] and "search.trials" in lines[0]


def test_long_error_is_not_wrapped():
    long = "x" * 400
    done = run_python(RAISING_APP.format(cls="CandidateError", raise_expr=f"CandidateError('bad {long} end')"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"bad {long} end")


def test_error_message_is_printed_verbatim():
    msg = "unknown categories [add, sub]; use [bold] or [/] as you like"
    done = run_python(RAISING_APP.format(cls="AnalysisError", raise_expr=f"AnalysisError({msg!r})"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {msg}"


def test_other_exceptions_keep_their_traceback():
    """Bugs (not user errors) are not hidden: they exit 1 with a traceback."""
    done = run_python(RAISING_APP.format(cls="SoupSearchError", raise_expr="ZeroDivisionError('bug')"))
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ZeroDivisionError" in done.stderr


def test_keyboard_interrupt_exits_130():
    done = run_python(RAISING_APP.format(cls="SoupSearchError", raise_expr="KeyboardInterrupt"))
    assert done.returncode == 130
    assert "Traceback" not in done.stderr
