"""``bench scoring``: multiple choice against generation on the tiny zoo, with its intervals."""

from __future__ import annotations

import json

import pytest

from soup_search.cli import main


def test_bench_scoring_times_each_mode_on_every_zoo_model(tiny_zoo, tmp_path, capsys):
    figures = tmp_path / "scoring.json"
    try:
        main(["bench", "scoring", "--choices", "2,3", "--repeats", "2", "--n-dev", "4", "--json", str(figures)])
    except SystemExit as exc:
        assert not exc.code
    data = json.loads(figures.read_text())
    assert data["models"] == ["base", *tiny_zoo.experts] and data["repeats"] == 2
    modes = {m["mode"]: m for m in data["modes"]}
    assert list(modes) == ["generate", "choices 2", "choices 3"]
    for m in modes.values():
        assert m["examples"] == 4 * 8 and m["ci_low"] <= m["examples_per_s"] <= m["ci_high"]
        assert 0 <= m["accuracy"] <= 1
    assert modes["generate"]["speedup"] is None
    # each choice re-reads its context: more choices, more tokens fed per example
    assert modes["generate"]["tokens_fed_per_example"] < modes["choices 2"]["tokens_fed_per_example"] \
        < modes["choices 3"]["tokens_fed_per_example"]
    low, high = modes["choices 2"]["speedup_ci"]
    assert low <= modes["choices 2"]["speedup"] <= high
    out = capsys.readouterr().out
    assert "bench scoring" in out and "choices 3" in out


@pytest.mark.parametrize("value", ["1", "two", ""])
def test_bad_choices_are_a_one_line_error(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "scoring", "--choices", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--choices" in err and "Traceback" not in err
