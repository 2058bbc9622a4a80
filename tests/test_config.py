"""Search configs: every shipped YAML loads; bad configs report every problem at once, exit 2."""

from __future__ import annotations

import inspect
import json
import shlex
import shutil
import time
from pathlib import Path

import pytest
import yaml

from soup_search.cli import main
from soup_search.config import SearchConfig, load_config, parse_config
from soup_search.errors import ConfigError
from soup_search.objectives import PROMPTING_PARAMS
from soup_search.objectives.toy import ToyObjective
from soup_search.zoo import SIZES
from tests.helpers import make_checkpoint

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


#: configs that name files of a real cluster: here they must fail only on those missing files
CLUSTER_ONLY = {"cluster.yaml"}
#: configs of the README's "Souping your own models" recipe: they read the files its commands write
OWN_MODELS = {"own-models-jsonl.yaml", "own-models-lm-eval.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path):
    if path.name in CLUSTER_ONLY:
        with pytest.raises(ConfigError) as err:
            load_config(path)
        # exactly the four checkpoint folders and the data file of the cluster, nothing else
        assert err.value.problems == [
            *(f"'candidates.paths[{i}]': no checkpoint directory at /mnt/checkpoints/{name}"
              for i, name in enumerate(["expert-math", "expert-code", "expert-tools", "expert-chat"])),
            "'objective': data file /mnt/data/benchmark.jsonl does not exist; set the objective's path "
            "to an existing file"]
        return
    if path.name in OWN_MODELS:
        return
    cfg = load_config(path)
    assert cfg.search.n_trials > 0
    assert cfg.candidates.zoo or cfg.candidates.paths


@pytest.mark.parametrize("name", sorted(OWN_MODELS))
def test_own_models_configs_load_after_the_commands_they_name(name, tmp_path, monkeypatch, capsys):
    """Run the config's `zoo benchmark` command as its header says (from a repository root: here
    tmp_path) and stand in for `zoo build --size tiny` with the tiny zoo's model folders."""
    (tmp_path / "configs").mkdir()
    shutil.copy(CONFIGS[0].parent / name, tmp_path / "configs" / name)
    monkeypatch.chdir(tmp_path)
    header = [line.lstrip("# ") for line in (tmp_path / "configs" / name).read_text().splitlines()
              if line.startswith("#   soup-search zoo ")]
    assert [c.split()[2] for c in header] == ["build", "benchmark"]
    assert "--size tiny --out runs/own/models" in header[0]
    for i, model in enumerate(["base", *(f"expert_{key}" for key in SIZES["tiny"].experts)]):
        make_checkpoint(tmp_path / "runs" / "own" / "models" / model, seed=i)
    try:
        main(shlex.split(header[1])[1:])
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    cfg = load_config(tmp_path / "configs" / name)
    assert [cfg.resolve(p) for p in cfg.candidates.paths] == [
        tmp_path / "configs" / ".." / "runs" / "own" / "models" / f"expert_{key}" for key in SIZES["tiny"].experts]
    assert cfg.search.n_trials > 0 and cfg.objective.name in ("jsonl", "lm_eval")


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
    with pytest.raises(ConfigError) as err:
        parse_config({"candidates": {"zoo": "tiny"}, "objective": {"name": "toy", "params": {"n_devv": 1}}},
                     root=tmp_path)
    assert err.value.problems == [
        "'objective.params': unknown parameter 'n_devv' of objective 'toy'; valid parameters: "
        + ", ".join([*(p for p in inspect.signature(ToyObjective.__init__).parameters if p != "self"),
                     *PROMPTING_PARAMS])]
    assert "n_dev" in err.value.problems[0] and "unexpected keyword" not in str(err.value)


def test_a_typo_in_a_jsonl_parameter_lists_the_valid_names(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_config({"candidates": {"zoo": "tiny"}, "objective": {"name": "jsonl", "params": {"pathh": "d.jsonl"}}},
                     root=tmp_path)
    text = str(err.value)
    assert "unknown parameter 'pathh' of objective 'jsonl'; valid parameters: path, prompt_field" in text
    assert "objective 'jsonl' needs the parameter 'path'" in text and "__init__" not in text


def one_category_data(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "answer": str(i), "category": "math"}) + "\n"
                            for i in range(20)))
    return path


def test_every_problem_knowable_from_the_config_is_found_before_ray(tmp_path):
    """Each of these used to be found only after Ray started and profiling ran."""
    one_category_data(tmp_path)
    bad = {
        "candidates": {"zoo": "tiny"},
        "objective": {"name": "jsonl", "params": {"path": "one.jsonl"}},
        "analysis": {"categories": ["math"]},
        "search": {"min_weight": 0.5},
        "resources": {"num_cpus": 1, "shards": 2, "scorers": 2, "shard_cpus": 0.25, "scorer_cpus": 0.5},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(bad, source="bad.yaml", root=tmp_path)
    problems = err.value.problems
    assert len(problems) == 4, problems
    assert any("'objective': 'jsonl' has 1 category ('math'); SoCE needs at least 2" in p for p in problems)
    assert any("'analysis.categories' names 1; SoCE needs at least 2" in p for p in problems)
    assert any("'search.min_weight' 0.5 leaves no room" in p and "below 0.5" in p for p in problems)
    assert any("'resources.num_cpus' 1 is too few" in p and "need 1.52 CPUs" in p for p in problems)
    ok = {**bad, "objective": {"name": "toy"}, "analysis": {}, "search": {"min_weight": 0.45},
          "resources": {**bad["resources"], "num_cpus": 2}}
    assert parse_config(ok, root=tmp_path).search.min_weight == 0.45


def test_analysis_categories_the_objective_lacks(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_config({"candidates": {"zoo": "tiny"}, "analysis": {"categories": ["add", "sbu"]},
                      "search": {"n_trials": 0}}, root=tmp_path)
    assert len(err.value.problems) == 2
    assert "'analysis.categories': 'sbu' not among the objective's categories; use some of add, sub" in str(err.value)
    cfg = parse_config({"candidates": {"zoo": "tiny"}, "objective": {"name": "toy"},
                        "analysis": {"categories": ["add", "sub"]}}, root=tmp_path)
    assert cfg.analysis.categories == ["add", "sub"]


def test_objective_leaderboard_points_to_scores_among_other_problems(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_config({"candidates": {"zoo": "tiny"}, "objective": {"name": "leaderboard"},
                      "search": {"n_trials": 0}}, root=tmp_path)
    assert len(err.value.problems) == 2, err.value.problems
    assert "'objective.name': 'leaderboard' is not an objective" in str(err.value)
    assert "'scores:' section" in str(err.value) and "No module named" not in str(err.value)


def test_an_objective_whose_module_is_gone_is_one_problem(tmp_path):
    from soup_search.objectives import REGISTRY, register_objective

    register_objective("gone", "no_such_package.bench:Gone")
    try:
        with pytest.raises(ConfigError) as err:
            parse_config({"candidates": {"zoo": "tiny"}, "objective": {"name": "gone"}}, root=tmp_path)
    finally:
        REGISTRY.pop("gone")
    assert err.value.problems == ["'objective.name': objective 'gone' points to 'no_such_package.bench:Gone', "
                                  "which cannot be imported (No module named 'no_such_package'); fix the "
                                  "registration or install its package (on every node)"]


def test_unreachable_address_is_a_config_problem_within_seconds(tmp_path):
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        parse_config({"candidates": {"zoo": "tiny"}, "search": {"n_trials": 0},
                      "resources": {"address": "127.0.0.1:1"}}, root=tmp_path)
    assert time.perf_counter() - start < 10
    assert len(err.value.problems) == 2
    assert "no Ray cluster answers at 127.0.0.1:1" in str(err.value)
    with pytest.raises(ConfigError, match="is not host:port"):
        parse_config({"candidates": {"zoo": "tiny"}, "resources": {"address": "head-node"}}, root=tmp_path)


def test_a_score_csv_that_names_no_candidate(tmp_path):
    from tests.helpers import make_checkpoint

    for name in ("a", "b"):
        make_checkpoint(tmp_path / name, seed=0)
    (tmp_path / "board.csv").write_text("Model,x,y\nmodel-a,1,2\nmodel-b,3,1\nother,2,2\n")
    cfg = {"candidates": {"paths": ["a", "b"]}, "scores": {"csv": "board.csv"}}
    with pytest.raises(ConfigError) as err:
        parse_config(cfg, root=tmp_path)
    text = str(err.value)
    assert "candidates 'a', 'b' are not rows of" in text and str(tmp_path / "board.csv") in text
    assert "scores.rename (e.g. 'model-a': 'a')" in text
    renamed = {**cfg, "scores": {"csv": "board.csv", "rename": {"model-a": "a", "model-b": "b"}}}
    assert parse_config(renamed, root=tmp_path).scores.rename["model-a"] == "a"


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


def test_held_out_categories_must_exist_and_leave_two_to_search(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_config({"candidates": {"zoo": "tiny"},
                      "objective": {"name": "toy", "params": {"categories": ["add", "sub", "sort"]},
                                    "held_out_categories": ["nope"]}}, root=tmp_path)
    assert "'objective.held_out_categories': 'nope' not among the objective's categories" in str(err.value)
    with pytest.raises(ConfigError, match="leaves 1 category to search"):
        parse_config({"candidates": {"zoo": "tiny"},
                      "objective": {"name": "toy", "params": {"categories": ["add", "sub", "sort"]},
                                    "held_out_categories": ["add", "sub"]}}, root=tmp_path)
    cfg = parse_config({"candidates": {"zoo": "tiny"}, "objective": {"name": "toy", "held_out_categories": ["add"]}},
                       root=tmp_path)
    assert cfg.objective.held_out_categories == ["add"]


def test_pruning_and_weight_map_problems_reported_together(tmp_path):
    base = {"candidates": {"zoo": "tiny"}, "objective": {"name": "toy"}}
    with pytest.raises(ConfigError) as err:
        parse_config({**base, "search": {"prune": True, "chunks": 1, "n_trials": 0}}, root=tmp_path)
    assert len(err.value.problems) == 2
    assert "'search.prune' needs 'search.chunks' >= 2" in str(err.value) and "'search.n_trials'" in str(err.value)
    with pytest.raises(ConfigError, match="'search.chunks' must be >= 1"):
        parse_config({**base, "search": {"prune": False, "chunks": 0}}, root=tmp_path)
    with pytest.raises(ConfigError, match="search.weights"):
        parse_config({**base, "search": {"weights": "softmax"}}, root=tmp_path)
    cfg = parse_config({**base, "search": {"prune": False, "chunks": 1, "weights": "normalize"}}, root=tmp_path)
    assert (cfg.search.prune, cfg.search.chunks, cfg.search.weights) == (False, 1, "normalize")
    assert (SearchConfig().prune, SearchConfig().chunks, SearchConfig().weights) == (True, 4, "stick")


def test_lineage_parent_without_results_is_reported_with_the_other_problems(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "results.json").write_text('{"config": {}}')
    for parent, needle in (("nowhere", "no results.json in"), ("broken", "is unreadable"),
                           ("partial", "lacks analysis, trials")):
        with pytest.raises(ConfigError) as err:
            parse_config({"candidates": {"zoo": "tiny"}, "search": {"n_trials": 0},
                          "lineage": {"parent": parent, "seed_top_k": -1}}, source="child.yaml", root=tmp_path)
        problems = err.value.problems
        assert any("'search.n_trials' must be > 0" in p for p in problems)
        assert any("'lineage.seed_top_k'" in p for p in problems) and len(problems) == 2
        with pytest.raises(ConfigError) as err:
            parse_config({"candidates": {"zoo": "tiny"}, "lineage": {"parent": parent}}, root=tmp_path)
        (problem,) = err.value.problems
        assert problem.startswith("'lineage.parent'") and needle in problem
        assert problem.endswith("point lineage.parent at the --out folder of a finished run")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "results.json").write_text('{"config": {}, "analysis": {}, "trials": []}')
    cfg = parse_config({"candidates": {"zoo": "tiny"}, "lineage": {"parent": "done"}}, root=tmp_path)
    assert cfg.lineage.carry_over and cfg.lineage.seed_top_k == 3
    assert cfg.resolve(cfg.lineage.parent) == tmp_path / "done"
    assert parse_config({"candidates": {"zoo": "tiny"}, "lineage": None}, root=tmp_path).lineage is None


def test_the_config_accepts_every_zoo_size_and_alias():
    from typing import get_args

    from soup_search.config import CandidatesConfig
    from soup_search.zoo import SIZE_ALIASES, SIZES

    literal = get_args(CandidatesConfig.model_fields["zoo"].annotation)[0]
    assert set(get_args(literal)) == set(SIZES) | set(SIZE_ALIASES)


# ---- search.method interpolate / task_vector: the models are given ---------------------------------

def _given_model_problems(search: dict, candidates: dict | None = None, **sections) -> list[str]:
    data = {"candidates": {"zoo": "tiny", **(candidates or {})}, "search": search, **sections}
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="c.yaml")
    return err.value.problems


def test_an_interpolation_and_a_task_vector_search_load():
    cfg = parse_config({"candidates": {"zoo": "tiny"},
                        "search": {"method": "interpolate", "pair": ["expert_add_sub", "expert_sort_max"],
                                   "per_module": True}})
    assert cfg.search.pair == ("expert_add_sub", "expert_sort_max")
    cfg = parse_config({"candidates": {"zoo": "tiny", "include_base": True},
                        "search": {"method": "task_vector", "target": "expert_add_sub",
                                   "vectors": [{"plus": "expert_sort_max", "minus": "base"}],
                                   "alpha_range": [-2, 3]}})
    assert (cfg.search.vectors[0].plus, cfg.search.alpha_range) == ("expert_sort_max", (-2.0, 3.0))


def test_a_bad_interpolation_search_names_every_problem_on_its_own_line():
    problems = _given_model_problems({"method": "interpolate", "target": "expert_add_sub", "base_model": "base",
                                      "lambda_range": [0, 1], "min_weight": 0.1})
    assert problems == [
        "'search.target' is only for search.method task_vector; remove it",
        "'search.base_model' is not used by search.method interpolate (it has no base): remove it",
        "'search.lambda_range' is not used by search.method interpolate (it searches lambda in [0, 1]): remove it",
        "'search.min_weight' is not used by search.method interpolate: remove it",
        "'search.pair' is required by search.method interpolate: name the two candidates [A, B] of "
        "lambda·A + (1 − lambda)·B",
    ]
    assert _given_model_problems({"method": "interpolate", "pair": ["expert_add_sub", "expert_add_sub"]}) == [
        "'search.pair' names 'expert_add_sub' twice; give two different candidates"]


def test_interpolation_pair_names_must_be_candidates():
    problems = _given_model_problems({"method": "interpolate", "pair": ["expert_add_sub", "nope"]})
    assert len(problems) == 1 and problems[0].startswith("'search.pair' 'nope' is not a candidate; name one of: ")
    assert "expert_sort_max" in problems[0]
    assert _given_model_problems({"method": "interpolate", "pair": ["base", "expert_add_sub"]}) == [
        "'search.pair' base is the zoo's base model: set candidates.include_base: true"]
    with pytest.raises(ConfigError, match="'search.pair': Tuple should have at most 2 items"):
        parse_config({"candidates": {"zoo": "tiny"}, "search": {"method": "interpolate", "pair": ["a", "b", "c"]}})


def test_a_bad_task_vector_search_names_every_problem_on_its_own_line():
    [unknown_nope] = _given_model_problems({"method": "interpolate", "pair": ["nope", "expert_add_sub"]})
    problems = _given_model_problems(
        {"method": "task_vector", "pair": ["expert_add_sub", "expert_sort_max"], "per_module": True,
         "vectors": [{"plus": "expert_add_sub", "minus": "expert_add_sub"},
                     {"plus": "nope", "minus": "base"}, {"plus": "nope", "minus": "base"}],
         "alpha_range": [0.5, 2]})
    assert problems == [
        "'search.pair' is only for search.method interpolate; remove it",
        "'search.per_module' is not supported by search.method task_vector (one alpha per vector for the whole "
        "model): remove it",
        "'search.target' is required by search.method task_vector: name the candidate the vectors are added to",
        "'search.vectors[0]': plus and minus are both 'expert_add_sub', a zero vector; give two different candidates",
        "'search.vectors[2]': nope − base is given twice; remove one",
        "'search.alpha_range' must be [low, high] with low <= 0 and high >= 1 (the baselines: the target at alpha "
        "0, each vector at 1), got [0.5, 2]",
    ] + [line for i in (1, 2) for line in (
        unknown_nope.replace("'search.pair'", f"'search.vectors[{i}].plus'"),
        f"'search.vectors[{i}].minus' base is the zoo's base model: set candidates.include_base: true")]


def test_task_vector_settings_need_their_method_and_their_keys():
    assert _given_model_problems({"method": "task_vector"}) == [
        "'search.target' is required by search.method task_vector: name the candidate the vectors are added to",
        "'search.vectors' is required by search.method task_vector: give one or more {plus: A, minus: B} "
        "(candidates, fine-tunes of one base)"]
    assert _given_model_problems({"method": "ties", "base_model": "base", "target": "expert_add_sub",
                                  "vectors": [{"plus": "expert_add_sub", "minus": "base"}], "alpha_range": [-1, 2]},
                                 {"include_base": True}) == [
        "'search.target' is only for search.method task_vector; remove it",
        "'search.vectors' is only for search.method task_vector; remove it",
        "'search.alpha_range' is only for search.method task_vector; remove it"]
    with pytest.raises(ConfigError, match="missing key 'search.vectors.0.minus'"):
        parse_config({"candidates": {"zoo": "tiny"},
                      "search": {"method": "task_vector", "target": "expert_add_sub", "vectors": [{"plus": "x"}]}})


def test_a_search_of_given_models_cannot_be_a_lineage_child(tmp_path):
    problems = _given_model_problems({"method": "interpolate", "pair": ["expert_add_sub", "expert_sort_max"]},
                                     lineage={"parent": str(tmp_path)})
    assert ("'lineage' carries linear soups only; a search.method interpolate run cannot be a lineage child: "
            "remove lineage, or use search.method: linear") in problems
