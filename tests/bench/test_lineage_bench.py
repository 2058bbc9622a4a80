"""``bench lineage``: how fresh trials to the parent's best are counted, and bad options (no Ray)."""

from __future__ import annotations

import pytest

from soup_search.bench.lineage import fresh_to_reach


def row(value, carried=False, pruned=False):
    timings = {"pruned": pruned} | ({"carried_from": "parent", "parent_trial": 0} if carried else {})
    return {"value": value, "timings": timings}


def test_a_carried_trial_at_the_parents_best_costs_nothing():
    assert fresh_to_reach([row(0.5, carried=True), row(0.8, carried=True), row(0.9)], 0.8) == 0


def test_fresh_trials_count_pruned_ones_too_and_none_when_never_reached():
    rows = [row(0.5, carried=True), row(0.95, pruned=True), row(0.6), row(0.8)]
    assert fresh_to_reach(rows, 0.8) == 3  # the pruned trial's running value is no dev score
    assert fresh_to_reach(rows, 0.81) is None
    assert fresh_to_reach([], 0.1) is None


@pytest.mark.parametrize("args", [["--seeds", "a"], ["--seeds", "1,1"], ["--n-trials", "0"]])
def test_bad_options_are_one_line_and_exit_2_before_any_run(args, capsys):
    from soup_search.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "lineage", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "bench lineage" in err and "Traceback" not in err
