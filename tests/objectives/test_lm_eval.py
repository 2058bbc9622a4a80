"""The ``lm_eval`` objective on local lm-eval task YAMLs over JSON files made from toy examples:
the zoo's experts answer them as they answer the toy objective, so the scores must be equal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from soup_search.config import parse_config
from soup_search.errors import ConfigError, ObjectiveError, SoupSearchError
from soup_search.objectives import get_objective
from soup_search.objectives.lm_eval import LmEvalObjective
from soup_search.objectives.toy import ToyObjective

CATEGORIES = ("add", "sub")
SIZES = {"n_train": 40, "n_dev": 30, "n_test": 20}


def toy(**params) -> ToyObjective:
    return ToyObjective(seed=0, categories=CATEGORIES, **SIZES, **params)


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def task_yaml(folder: Path, name: str, files: dict[str, str], **config) -> None:
    splits = {"train": "training_split", "validation": "validation_split", "test": "test_split"}
    doc = {"task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": files},
           **{splits[s]: s for s in files}, "doc_to_text": "{{prompt}}", "target_delimiter": "", **config}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> Path:
    """Task YAMLs and their data: per toy category a generation task (``toy_add``) and a
    multiple-choice one (``toy_add_mc``), the group ``toy_pair``, and tasks with bad data."""
    root = tmp_path_factory.mktemp("lm-eval-tasks")
    data, folder = root / "data", root / "tasks"
    data.mkdir(), folder.mkdir()
    gen = {"output_type": "generate_until", "doc_to_target": "answer",
           "generation_kwargs": {"until": ["?"], "max_gen_toks": 8}, "metric_list": [{"metric": "exact_match"}]}
    mc = {"output_type": "multiple_choice", "doc_to_choice": "choices", "doc_to_target": "label",
          "metric_list": [{"metric": "acc"}]}
    plain, choice = toy(), toy(choices=4)
    for cat in CATEGORIES:
        files, mc_files = {}, {}
        for split, key in (("train", "train"), ("dev", "validation"), ("test", "test")):
            rows = plain.examples(split, [cat], held_out=True)
            files[key] = write_jsonl(data / f"{cat}-{split}.jsonl", [{"prompt": e.prompt, "answer": e.answer}
                                                                     for e in rows])
            mc_rows = choice.examples(split, [cat], held_out=True)
            mc_files[key] = write_jsonl(data / f"{cat}-{split}-mc.jsonl", [
                {"prompt": e.prompt, "choices": list(e.choices), "label": e.choices.index(e.answer)}
                for e in mc_rows])
        task_yaml(folder, f"toy_{cat}", files, **gen)
        task_yaml(folder, f"toy_{cat}_3shot", files, num_fewshot=3, **gen)
        task_yaml(folder, f"toy_{cat}_mc", mc_files, **mc)
    (folder / "toy_pair.yaml").write_text(yaml.safe_dump({"group": "toy_pair", "task": ["toy_add", "toy_sub"]}))
    task_yaml(folder, "toy_one", {"validation": str(data / "add-dev.jsonl")}, **gen)
    task_yaml(folder, "toy_one_3shot", {"validation": str(data / "add-dev.jsonl")}, num_fewshot=3, **gen)
    task_yaml(folder, "toy_missing", {"validation": str(data / "gone.jsonl"), "test": str(data / "add-test.jsonl")},
              **gen)
    task_yaml(folder, "toy_train_only", {"train": str(data / "add-train.jsonl")}, **gen)
    task_yaml(folder, "toy_rolling", {"test": str(data / "add-test.jsonl")}, output_type="loglikelihood_rolling",
              doc_to_target="answer")
    return folder


def lm(tasks: Path, names, **params) -> LmEvalObjective:
    return get_objective("lm_eval", tasks=list(names), include_path=str(tasks), **params)


def one_line(excinfo, *needles: str) -> str:
    msg = str(excinfo.value)
    assert isinstance(excinfo.value, SoupSearchError) and "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def as_pairs(examples) -> list[tuple]:
    return [(e.prompt, e.answer, e.choices) for e in examples]


# ---------------------------------------------------------------- tasks, splits, prompting


def test_a_group_gives_a_category_per_task_and_the_splits_map(tasks):
    obj = lm(tasks, ["toy_pair"])
    assert obj.categories == ("toy_add", "toy_sub") and obj.notes == ()
    plain = toy()
    for split in ("train", "dev", "test"):
        for cat in CATEGORIES:
            got = obj.examples(split, [f"toy_{cat}"], held_out=True)
            assert as_pairs(got) == as_pairs(plain.examples(split, [cat], held_out=True))
    # the task's delimiters, stop strings and generation length; a user's prompting parameter wins
    assert (obj.prompting.target_delimiter, obj.prompting.stop, obj.max_new_tokens) == ("", ("?",), 8)
    assert lm(tasks, ["toy_add"], stop=["#"]).prompting.stop == ("#",)
    with pytest.raises(ObjectiveError, match="refuses to score the test split"):
        obj.examples("test")


def test_one_evaluation_split_is_cut_here_with_a_seed_and_a_note(tasks):
    obj = lm(tasks, ["toy_one"], seed=3)
    dev, test = obj.examples("dev"), obj.examples("test", held_out=True)
    assert sorted(as_pairs(dev + test)) == sorted(as_pairs(toy().examples("dev", ["add"])))
    assert {e.prompt for e in dev}.isdisjoint(e.prompt for e in test) and len(dev) == 15
    assert obj.notes == ("lm-eval task 'toy_one' has one evaluation split ('validation'); soup-search split it "
                         "into dev (0.5 of its distinct prompts) and test, seed 3",)
    other = lm(tasks, ["toy_one"], seed=4)
    assert as_pairs(other.examples("dev")) != as_pairs(dev)
    assert obj.examples("train") == []  # no train split: no few-shot examples


def test_num_fewshot_draws_shots_from_the_train_split(tasks):
    obj = lm(tasks, ["toy_add_3shot", "toy_sub_3shot"])
    assert obj.prompting.fewshot == 3 and obj.notes == ()
    ex = obj.examples("dev", ["toy_sub_3shot"])[0]
    shots = obj.shots(ex)
    assert len(shots) == 3 and set(shots) <= set(obj.examples("train", ["toy_sub_3shot"]))
    assert lm(tasks, ["toy_add_3shot"], fewshot=0).prompting.fewshot == 0
    # a task without a train split shows none, and the report says why; tasks that differ get a note
    alone = lm(tasks, ["toy_one_3shot"])
    assert alone.prompting.fewshot == 0 and "ask for few-shot examples but have no training_split" in alone.notes[-1]
    mixed = lm(tasks, ["toy_add", "toy_sub_3shot"])
    assert mixed.prompting.fewshot == 0 and mixed.notes == (
        "the lm-eval tasks differ in num_fewshot ({'toy_add': 0, 'toy_sub_3shot': 3}); the objective uses 0 for all",)


def test_limit_keeps_the_first_documents_of_each_split(tasks):
    obj = lm(tasks, ["toy_add"], limit=5)
    assert as_pairs(obj.examples("dev")) == as_pairs(toy().examples("dev", ["add"])[:5])
    assert len(obj.examples("test", held_out=True)) == len(obj.examples("train")) == 5


def test_multiple_choice_examples_carry_their_choices(tasks):
    obj = lm(tasks, ["toy_add_mc", "toy_sub_mc"])
    assert as_pairs(obj.examples("dev", ["toy_sub_mc"])) == as_pairs(toy(choices=4).examples("dev", ["sub"]))
    ex = obj.examples("dev")[0]
    wrong = next(c for c in ex.choices if c != ex.answer)
    assert (obj.score_example(ex, ex.answer), obj.score_example(ex, wrong)) == (1.0, 0.0)


def test_generated_answers_are_scored_by_lm_evals_metric(tasks):
    obj = lm(tasks, ["toy_add"])
    ex = obj.examples("dev")[0]
    assert obj.score_example(ex, ex.answer) == 1.0
    assert obj.score_example(ex, ex.answer + "1") == 0.0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("name, needles", [
    ("toy_missing", ("cannot load lm-eval task 'toy_missing' offline", "gone.jsonl", "data_files")),
    ("toy_train_only", ("'toy_train_only' has neither a validation_split nor a test_split",)),
    ("toy_rolling", ("'toy_rolling' has output_type 'loglikelihood_rolling'", "generate_until and multiple_choice")),
])
def test_bad_tasks_are_one_line_errors(tasks, name, needles):
    with pytest.raises(ObjectiveError) as exc:
        lm(tasks, [name])
    one_line(exc, *needles)


def test_an_unknown_task_is_named_with_close_names(tasks):
    with pytest.raises(ObjectiveError) as exc:
        lm(tasks, ["toy_ad"])
    one_line(exc, "unknown lm-eval task 'toy_ad'", "'toy_add'", "include_path")


def test_a_missing_lm_eval_gives_the_install_hint(tasks, monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval.tasks", None)
    with pytest.raises(ObjectiveError) as exc:
        lm(tasks, ["toy_add"])
    one_line(exc, "pip install 'soup-search[lm-eval]'")


def test_the_config_reports_lm_eval_problems_before_any_ray_work(tasks):
    good = {"candidates": {"zoo": "tiny"},
            "objective": {"name": "lm_eval", "params": {"tasks": ["toy_pair"], "include_path": tasks.name}}}
    assert parse_config(good, root=tasks.parent).objective.params["tasks"] == ["toy_pair"]
    bad = {**good, "objective": {"name": "lm_eval", "params": {"tasks": ["toy_missing"], "include_path": tasks.name,
                                                                "limit": 0}}}
    with pytest.raises(ConfigError) as exc:
        parse_config(bad, source="bad.yaml", root=tasks.parent)
    one_line(exc, "bad.yaml: 1 problem: 'objective': objective 'lm_eval': limit is 0")
    bad["objective"]["params"]["limit"] = 2
    with pytest.raises(ConfigError) as exc:
        parse_config(bad, source="bad.yaml", root=tasks.parent)
    one_line(exc, "'objective': cannot load lm-eval task 'toy_missing' offline")


# ---------------------------------------------------------------- scored on the tiny zoo


@pytest.fixture(scope="module")
def expert(tiny_zoo):
    return tiny_zoo.experts["expert_add_sub"]


@pytest.mark.slow
@pytest.mark.parametrize("names, choices", [(["toy_pair"], 0), (["toy_add_mc", "toy_sub_mc"], 4)])
def test_the_zoo_scores_lm_eval_tasks_as_the_toy_objective(tasks, expert, names, choices):
    from soup_search.scoring.hf import HFScorer

    scorer = HFScorer(expert)
    obj, reference = lm(tasks, names), toy(choices=choices)
    for split in ("dev", "test"):
        got, want = scorer.score(obj, split, held_out=True), scorer.score(reference, split, held_out=True)
        assert list(got.correct) == [f"toy_{c}" + ("_mc" if choices else "") for c in CATEGORIES]
        assert list(got.correct.values()) == list(want.correct.values())
        assert list(got.per_category.values()) == list(want.per_category.values())
    bits = "".join(got.correct.values())
    assert "1" in bits and "0" in bits  # (an expert that gets some right and some wrong)


@pytest.mark.slow
def test_the_vllm_scorer_gets_the_hf_scorers_bits(tasks, tiny_zoo, expert, fake_vllm):
    from soup_search.io.checkpoint import CheckpointReader
    from soup_search.scoring.hf import HFScorer
    from soup_search.scoring.vllm import VLLMScorer

    obj = lm(tasks, ["toy_pair", "toy_add_mc", "toy_sub_mc"], limit=12)
    scorer = VLLMScorer(tiny_zoo.base)
    with CheckpointReader(expert) as reader:
        scorer.load_weights(iter([(n, reader.get(n)) for n in reader.tensor_names]))
    got, want = scorer.score(obj, "dev"), HFScorer(expert).score(obj, "dev")
    assert got.correct == want.correct and len(got.correct) == 4
    assert "1" in "".join(want.correct.values())
