"""``soup-search zoo build`` and ``zoo scores`` end to end on the tiny zoo."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from soup_search.cli import main

pytestmark = pytest.mark.slow


def _run(args: list[str]) -> None:
    """Run the CLI in process; typer ends a successful command with SystemExit(0)."""
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code in (0, None)


def test_zoo_build_prints_where_the_cached_zoo_is(tiny_zoo, capsys):
    _run(["zoo", "build", "--size", "tiny"])
    out = " ".join(capsys.readouterr().out.split())
    assert str(tiny_zoo.root) in out.replace(" ", "")  # rich may fold a long path
    assert "built in" in out and f"base + {len(tiny_zoo.experts)} experts" in out


def test_zoo_scores_writes_a_model_by_category_csv(tiny_zoo, tmp_path, capsys):
    target = tmp_path / "scores.csv"
    _run(["zoo", "scores", "--size", "tiny", "--out", str(target)])
    rows = list(csv.reader(target.open()))
    header, body = rows[0], rows[1:]
    assert header == ["model", "add", "sub", "sort", "reverse", "max", "copy", "count", "parity"]
    assert [r[0] for r in body] == list(tiny_zoo.models())
    assert all(0.0 <= float(v) <= 1.0 for r in body for v in r[1:])
    printed = capsys.readouterr().out
    assert "accuracy on dev" in printed and str(target) in printed.replace("\n", "")


def test_zoo_scores_default_csv_lives_in_the_zoo_root(tiny_zoo):
    _run(["zoo", "scores", "--size", "tiny"])
    rows = list(csv.reader((tiny_zoo.root / "scores_dev.csv").open()))
    assert len(rows) == 1 + len(tiny_zoo.models()) and len(rows[0]) == 9


@pytest.mark.parametrize("args, needle", [
    (["zoo", "scores", "--size", "tiny", "--split", "test"], "test split"),
    (["zoo", "build", "--size", "huge"], "unknown zoo size"),
])
def test_user_errors_exit_2_with_one_line_and_no_traceback(args, needle, tmp_path):
    env = {**os.environ, "SOUP_SEARCH_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "soup_search", *args], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
