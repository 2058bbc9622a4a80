"""``soup-search analyze``: outputs, category names with spaces, and every bad input → exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from soup_search.cli import main

SCORES = """Rank,Model,Non-Live AST Acc,Live Acc,Multi Turn Acc,Relevance Detection,Latency Mean (s),Organization
1,alpha,90.00%,72.95%,75.00%,66.67%,1.5,Org A
2,beta,85.00%,74.23%,67.12%,88.89%,2.5,Org B
3,gamma,80.00%,77.74%,58.87%,94.44%,3.5,Org C
4,delta,70.00%,60.00%,10.00%,100.00%,4.5,Org D
5,eps,60.00%,50.00%,5.00%,70.00%,5.5,Org E
"""


def run(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture
def scores(tmp_path):
    path = tmp_path / "board.csv"
    path.write_text(SCORES)
    return path


def test_analyze_writes_outputs(scores, tmp_path, capsys):
    out_dir = tmp_path / "analysis"
    code, out, err = run(["analyze", "--scores", str(scores), "--categories",
                          "Non-Live AST Acc, Live Acc,Multi Turn Acc,Relevance Detection",
                          "--candidates", "alpha,beta,gamma", "--tau", "0.6", "--top-k", "2",
                          "--out", str(out_dir)], capsys)
    assert code == 0, err
    data = json.loads((out_dir / "analysis.json").read_text())
    assert data["categories"] == ["Non-Live AST Acc", "Live Acc", "Multi Turn Acc", "Relevance Detection"]
    assert data["models"] == ["alpha", "beta", "gamma", "delta", "eps"]
    assert data["candidates"] == ["alpha", "beta", "gamma"]
    assert data["tau"] == 0.6 and data["method"] == "pearson" and data["top_k"] == 2
    for key in ("correlation", "weak_categories", "clusters", "experts", "alternates"):
        assert key in data
    assert data["experts"]["Relevance Detection"] == "gamma"  # 94.44 among the candidates (delta has 100)
    assert data["alternates"]["Relevance Detection"] == ["gamma", "beta"]
    for png in ("heatmap.png", "dendrogram.png"):
        blob = (out_dir / png).read_bytes()
        assert blob.startswith(b"\x89PNG") and len(blob) > 5000
    assert "Relevance Detection" in out and "gamma" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis", "board.csv"]  # no temp dirs left


def test_analyze_defaults_spearman_and_cluster(scores, tmp_path, capsys):
    out_dir = tmp_path / "a"
    code, _, err = run(["analyze", "--scores", str(scores), "--method", "spearman", "--grouping", "cluster",
                        "--tau", "0.9", "--out", str(out_dir)], capsys)
    assert code == 0, err
    data = json.loads((out_dir / "analysis.json").read_text())
    # Rank, latency and Organization are not categories
    assert data["categories"] == ["Non-Live AST Acc", "Live Acc", "Multi Turn Acc", "Relevance Detection"]
    assert data["method"] == "spearman" and data["grouping"] == "cluster"
    # ranks of Non-Live AST Acc and Multi Turn Acc agree exactly
    assert data["correlation"]["Non-Live AST Acc"]["Multi Turn Acc"] == pytest.approx(1.0)
    assert set(data["experts"]) == {" + ".join(c) for c in data["clusters"]}


def test_candidates_matching(scores, tmp_path, capsys):
    code, _, err = run(["analyze", "--scores", str(scores), "--candidates-matching", "^(alpha|delta)$",
                        "--tau", "0.9", "--out", str(tmp_path / "m")], capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "m" / "analysis.json").read_text())
    assert data["candidates"] == ["alpha", "delta"]
    assert data["experts"]["Relevance Detection"] == "delta"


BAD = [
    (["--categories", "Live Acc,Multi Turn"], "unknown category 'Multi Turn' (did you mean 'Multi Turn Acc'"),
    (["--candidates", "alpha,zeta"], "unknown model 'zeta'"),
    (["--tau", "1.5"], "tau must be within [0, 1]"),
    (["--tau", "-0.1"], "tau must be within [0, 1]"),
    (["--method", "kendall"], "unknown correlation method 'kendall'"),
    (["--model-column", "Name"], "no model column 'Name'"),
    (["--candidates-matching", "zzz"], "--candidates-matching 'zzz' matches no model"),
    (["--candidates-matching", "a(", "--tau", "0.9"], "is not a valid regular expression"),
    (["--tau", "0"], "no category is weakly correlated under tau=0"),
]


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[b[1][:30] for b in BAD])
def test_bad_options_exit_2_one_line(scores, tmp_path, capsys, extra, message):
    out_dir = tmp_path / "out"
    code, _, err = run(["analyze", "--scores", str(scores), "--out", str(out_dir), *extra], capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.csv"]


@pytest.mark.parametrize(("text", "message"), [
    ("model,a,b\nm0,0.1,0.2\nm1,0.3,0.5\n", "at least 3 models, the table has 2"),
    ("model,a,b\nm0,0.1,0.2\nm1,0.1,0.5\nm2,0.1,0.9\n", "category 'a' has the same score 0.1 for every model"),
    ("model,a,b\nm0,0.1,0.2\nm1,x,0.5\nm2,0.4,0.9\n", "non-numeric score 'x' for model 'm1' in category 'a'"),
    ("model,a,b\nm0,0.1,0.2\nm0,0.3,0.5\nm2,0.4,0.9\n", "duplicate model names ['m0']"),
])
def test_bad_tables_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "s.csv"
    path.write_text(text)
    code, _, err = run(["analyze", "--scores", str(path), "--categories", "a,b", "--out", str(tmp_path / "o")],
                       capsys)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_console_script_error_has_no_traceback(scores, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "soup_search", "analyze", "--scores", str(scores),
                           "--categories", "Live Acc,Nope", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown category 'Nope'")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
