"""A child search end to end on the tiny zoo: the parent searched all candidates but one, the child
all of them; real Ray, real Optuna storage, real checkpoints."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from soup_search.engine.run_store import read_evaluations
from soup_search.pipeline.state import STATE
from tests.helpers import cli

pytestmark = pytest.mark.slow

N_TRIALS = 3


def write(tmp_path, name: str, paths: list[str], n_trials: int, lineage: dict | None = None):
    cfg = {"name": name, "candidates": {"paths": paths},
           "objective": {"name": "toy", "params": {"seed": 111, "n_dev": 24, "n_test": 24}},
           "analysis": {"tau": 0.5, "top_k": 3},
           "search": {"sampler": "tpe", "n_trials": n_trials, "seed": 0},
           "resources": {"shards": 2, "scorers": 2, "shard_cpus": 0.25, "scorer_cpus": 0.5}}
    if lineage:
        cfg["lineage"] = lineage
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_child_search_carries_and_seeds_from_its_parent(tiny_zoo, ray_session, private_scores, tmp_path, capsys):
    zoo = {name: str(path) for name, path in tiny_zoo.candidates().items()}
    newcomer = list(zoo)[-1]
    parent_out, child_out = tmp_path / "parent", tmp_path / "child"
    cli("run", str(write(tmp_path, "parent", [p for n, p in zoo.items() if n != newcomer], 5)),
        "--out", str(parent_out))
    parent = json.loads((parent_out / "results.json").read_text())
    assert parent["lineage"] is None and newcomer not in parent["candidates"]
    assert sorted(parent["profiled"]["scored"]) == sorted(n for n in zoo if n != newcomer)

    child_cfg = write(tmp_path, "child", list(zoo.values()), N_TRIALS, lineage={"parent": str(parent_out)})
    cli("run", str(child_cfg), "--out", str(child_out))
    child = json.loads((child_out / "results.json").read_text())
    lin = child["lineage"]
    parent_search = [t for t in parent["trials"] if t["stage"] == "search"]
    assert lin["parent"] == str(parent_out) and lin["parent_study"].startswith("parent-")
    assert lin["carried"] >= 1 and lin["carried"] + lin["skipped"] == len(parent_search)
    assert lin["fresh"] == N_TRIALS and 0 <= lin["seeded"] <= 3
    assert f"newcomers: {newcomer}" in lin["notes"]
    assert child["objective_revision"] == parent["objective_revision"]
    assert {n: c["fingerprint"] for n, c in child["candidates"].items() if n != newcomer} == \
        {n: c["fingerprint"] for n, c in parent["candidates"].items()}
    # profiling scored only the newcomer: the parent's candidates came from the score cache
    assert child["profiled"] == {"scored": [newcomer], "cached": [n for n in zoo if n != newcomer]}

    # carried trials: in results.json with the parent's dev values, and in the trial log as cached rows
    carried = [t for t in child["trials"] if t["carried_from"]]
    assert len(carried) == lin["carried"] and {t["carried_from"] for t in carried} == {lin["parent_study"]}
    by_number = {t["number"]: t for t in parent_search}
    rows = read_evaluations(child_out / STATE / "run.sqlite", "search")
    carried_rows = [r for r in rows if r["timings"].get("carried_from")]
    assert len(carried_rows) == lin["carried"] and all(r["cached"] for r in carried_rows)
    for r in carried_rows:
        assert r["value"] == pytest.approx(by_number[r["timings"]["parent_trial"]]["dev_mean"])
        assert r["counts"] == {}  # not scored: no dev example was seen for it
    fresh = [r for r in rows if not r["timings"].get("carried_from")]
    assert len(fresh) == N_TRIALS  # the budget counts fresh trials only
    assert len(child["trials"]) == lin["carried"] + N_TRIALS

    # ... and in the child's Optuna study, complete, with their origin as user attributes
    def study_trials():
        storage = f"sqlite:///{child_out / STATE / 'optuna.sqlite'}"
        (summary,) = optuna.get_all_study_summaries(storage)
        return optuna.load_study(study_name=summary.study_name, storage=storage).get_trials()

    in_study = [t for t in study_trials() if "carried_from" in t.user_attrs]
    assert len(in_study) == lin["carried"] and all(t.state.name == "COMPLETE" for t in in_study)
    assert sorted(t.user_attrs["parent_trial"] for t in in_study) == \
        sorted(r["timings"]["parent_trial"] for r in carried_rows)
    assert child["best"]["dev_mean"] >= max(t["dev_mean"] for t in carried) - 1e-9
    assert "## Lineage" in (child_out / "report.md").read_text()

    # resumed, the child carries nothing twice and runs no trial again
    before = len(study_trials())
    cli("run", str(child_cfg), "--out", str(child_out), "--resume")
    again = json.loads((child_out / "results.json").read_text())
    assert again["lineage"] == lin and len(again["trials"]) == len(child["trials"])
    assert len(read_evaluations(child_out / STATE / "run.sqlite", "search")) == len(rows)
    assert len(study_trials()) == before
    capsys.readouterr()
