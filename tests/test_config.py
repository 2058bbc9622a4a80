"""Search configs: every shipped YAML loads; bad configs report every problem at once, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from soup_search.cli import main
from soup_search.config import load_config, parse_config
from soup_search.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


#: configs that name files of a real cluster: here they must fail only on those missing files
CLUSTER_ONLY = {"cluster.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path):
    if path.name in CLUSTER_ONLY:
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert all("no checkpoint directory" in p or "does not exist" in p or "file" in p
                   for p in err.value.problems), err.value.problems
        return
    cfg = load_config(path)
    assert cfg.search.n_trials > 0
    assert cfg.candidates.zoo or cfg.candidates.paths


def test_configs_folder_is_not_empty():
    assert {"demo.yaml", "tiny.yaml"} <= {p.name for p in CONFIGS}


def test_all_problems_reported_together(tmp_path):
    bad = {
        "candidates": {"paths": ["missing_a", "missing_b"], "colour": "red"},
        "search": {"sampler": "annealing", "n_trials": 0, "min_weight": "lots"},
        "resources": {"scorers": 0},
        "speed": "fast",
    }
    with pytest.raises(ConfigError) as err:
        parse_config(bad, source="bad.yaml", root=tmp_path)
    problems = err.value.problems
    text = str(err.value)
    assert "unknown key 'speed'" in text
    assert "unknown key 'candidates.colour'" in text
    assert "'search.min_weight'" in text
    # a section with a type error is reported with the others' semantic problems
    assert "'resources.scorers' must be > 0" in text
    assert len(problems) == 4


def test_semantic_problems_reported_together(tmp_path):
    bad = {
        "candidates": {"paths": ["missing_a"]},
        "objective": {"name": "nope"},
        "search": {"sampler": "annealing", "n_trials": 0},
        "resources": {"scorers": 0, "shards": -1},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(bad, source="bad.yaml", root=tmp_path)
    text = str(err.value)
    for needle in ("unknown sampler 'annealing'", "'search.n_trials' must be > 0", "'resources.scorers' must be > 0",
                   "'resources.shards' must be > 0", "no checkpoint directory", "unknown objective 'nope'"):
        assert needle in text, needle
    assert len(err.value.problems) == 6


def test_objective_params_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="n_dev must be > 0"):
        parse_config({"candidates": {"zoo": "tiny"}, "objective": {"name": "toy", "params": {"n_dev": 0}}},
                     root=tmp_path)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        parse_config({"candidates": {"zoo": "tiny"}, "objective": {"name": "toy", "params": {"colour": 1}}},
                     root=tmp_path)


def test_incompatible_candidates_are_a_config_problem(tmp_path):
    from tests.helpers import make_checkpoint

    make_checkpoint(tmp_path / "a", seed=0)
    make_checkpoint(tmp_path / "b", seed=1, intermediate_size=48)
    with pytest.raises(ConfigError, match="'candidates':.*'a' and 'b' differ"):
        parse_config({"candidates": {"paths": ["a", "b"]}}, root=tmp_path)


def test_relative_paths_resolve_against_the_yaml(tmp_path):
    from tests.helpers import make_checkpoint

    make_checkpoint(tmp_path / "ckpts" / "a", seed=0)
    make_checkpoint(tmp_path / "ckpts" / "b", seed=1)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"candidates": {"paths": ["ckpts/a", "ckpts/b"]}}))
    cfg = load_config(path)
    assert cfg.resolve(cfg.candidates.paths[0]) == tmp_path / "ckpts" / "a"


def test_bad_config_exits_2_without_traceback(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("candidates: {zoo: huge}\nsearch: {sampler: nope, n_trials: -1}\n")
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(path), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "'candidates.zoo'" in err and "unknown sampler 'nope'" in err and "'search.n_trials' must be > 0" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_invalid_yaml_and_missing_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("candidates: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
