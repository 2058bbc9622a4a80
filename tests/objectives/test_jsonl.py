"""The ``jsonl`` objective on real JSONL, CSV and Parquet files written in tmp_path."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from soup_search.objectives import get_objective
from soup_search.objectives.jsonl import JsonlObjective, seeded_split
from soup_search.errors import ObjectiveError, SoupSearchError

CATS = ("alpha", "beta", "gamma")


@pytest.fixture(autouse=True)
def _cache(cache_dir):
    """Every test reads through datasets with its cache in the session's test cache dir."""
    return cache_dir


def make_rows(n_per_cat: int = 30, cats=CATS, **extra) -> list[dict]:
    return [{"prompt": f"{c} question {i}", "answer": i * 7, "category": c, **extra}
            for c in cats for i in range(n_per_cat)]


def write(path: Path, rows: list[dict]) -> Path:
    frame = pd.DataFrame(rows)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def split_lists(obj) -> dict[str, list]:
    return {s: obj.examples(s, held_out=True) for s in ("train", "dev", "test")}


def assert_one_line_error(excinfo, *needles: str) -> str:
    msg = str(excinfo.value)
    assert isinstance(excinfo.value, SoupSearchError)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_reads_each_format(tmp_path, suffix):
    path = write(tmp_path / f"data{suffix}", make_rows())
    obj = get_objective("jsonl", path=str(path))
    assert isinstance(obj, JsonlObjective)
    assert obj.categories == CATS
    splits = split_lists(obj)
    assert sum(len(v) for v in splits.values()) == 90
    every = {ex.prompt: ex for exs in splits.values() for ex in exs}
    ex = every["beta question 3"]
    assert (ex.answer, ex.category) == ("21", "beta")  # numbers in the file become text
    assert all(isinstance(e.answer, str) for e in every.values())


def test_several_files_are_concatenated(tmp_path):
    rows = make_rows()
    a = write(tmp_path / "a.jsonl", rows[:45])
    b = write(tmp_path / "b.parquet", rows[45:])
    obj = JsonlObjective(path=[str(a), str(b)])
    assert obj.categories == CATS
    assert sum(len(v) for v in split_lists(obj).values()) == 90


def test_csv_answers_keep_their_text(tmp_path):
    path = tmp_path / "d.csv"
    lines = ["prompt,answer,category,split"]
    lines += [f"q{i},00{i},c,dev" for i in range(3)] + ["r,1.50,c,train", "s,-2,c,test"]
    path.write_text("\n".join(lines) + "\n")
    obj = JsonlObjective(path=str(path))
    assert [e.answer for e in obj.examples("dev")] == ["000", "001", "002"]
    assert obj.examples("train")[0].answer == "1.50"
    assert obj.examples("test", held_out=True)[0].answer == "-2"


def test_json_numbers_become_plain_text(tmp_path):
    rows = [{"prompt": "a", "answer": 12.0, "category": "c", "split": "dev"},
            {"prompt": "b", "answer": 2.5, "category": "c", "split": "dev"},
            {"prompt": "c", "answer": "text", "category": "c", "split": "dev"}]
    obj = JsonlObjective(path=str(write(tmp_path / "d.jsonl", rows)))
    assert [e.answer for e in obj.examples("dev")] == ["12", "2.5", "text"]


def test_custom_field_names_and_no_category_field(tmp_path):
    rows = [{"question": f"q{i}", "target": str(i), "subject": "s" if i % 2 else "t"} for i in range(20)]
    path = str(write(tmp_path / "d.jsonl", rows))
    obj = JsonlObjective(path=path, prompt_field="question", answer_field="target", category_field="subject")
    assert obj.categories == ("t", "s")  # order of first appearance in the file
    assert {e.prompt: e.answer for e in obj.examples("train")}.items() <= {f"q{i}": str(i) for i in range(20)}.items()
    single = JsonlObjective(path=path, prompt_field="question", answer_field="target", category_field=None)
    assert single.categories == ("all",)


# ---------------------------------------------------------------- splits


def test_explicit_split_field_is_kept(tmp_path):
    rows = []
    for c in CATS:
        for i, split in enumerate(["train"] * 5 + ["dev"] * 3 + ["validation"] + ["test"] * 2):
            rows.append({"prompt": f"{c}-{i}", "answer": str(i), "category": c, "split": split})
    obj = JsonlObjective(path=str(write(tmp_path / "d.csv", rows)), seed=123)
    sizes = {s: Counter(e.category for e in exs) for s, exs in split_lists(obj).items()}
    assert sizes == {"train": {c: 5 for c in CATS}, "dev": {c: 4 for c in CATS}, "test": {c: 2 for c in CATS}}
    assert [e.prompt for e in obj.examples("dev", ["beta"])] == [f"beta-{i}" for i in (5, 6, 7, 8)]


def test_rows_without_split_are_split_by_seed_and_explicit_ones_kept(tmp_path):
    rows = make_rows(20, split="")
    rows[0]["split"] = "test"  # alpha question 0
    rows[1]["split"] = "TRAIN "  # case and space are forgiven
    obj = JsonlObjective(path=str(write(tmp_path / "d.jsonl", rows)))
    test = {e.prompt for e in obj.examples("test", held_out=True)}
    train = {e.prompt for e in obj.examples("train")}
    assert "alpha question 0" in test and "alpha question 1" in train
    assert sum(1 for e in obj.examples("dev") if e.category == "alpha") == 4  # round(19 * 0.2)


def test_seeded_split_is_deterministic_disjoint_and_stratified(tmp_path):
    path = str(write(tmp_path / "d.jsonl", make_rows(30)))
    a, b = split_lists(JsonlObjective(path=path, seed=5)), split_lists(JsonlObjective(path=path, seed=5))
    assert a == b
    other = split_lists(JsonlObjective(path=path, seed=6))
    assert {e.prompt for e in other["dev"]} != {e.prompt for e in a["dev"]}
    prompts = {s: {e.prompt for e in exs} for s, exs in a.items()}
    assert not (prompts["train"] & prompts["dev"] or prompts["train"] & prompts["test"]
                or prompts["dev"] & prompts["test"])
    for split, want in {"train": 18, "dev": 6, "test": 6}.items():  # 30 per category at 0.6/0.2/0.2
        assert Counter(e.category for e in a[split]) == {c: want for c in CATS}


def test_seeded_split_follows_the_fractions(tmp_path):
    path = str(write(tmp_path / "d.parquet", make_rows(40)))
    splits = split_lists(JsonlObjective(path=path, dev_fraction=0.3, test_fraction=0.1))
    assert {s: len(v) for s, v in splits.items()} == {"train": 72, "dev": 36, "test": 12}
    no_test = split_lists(JsonlObjective(path=path, dev_fraction=0.5, test_fraction=0.0))
    assert {s: len(v) for s, v in no_test.items()} == {"train": 60, "dev": 60, "test": 0}


def test_seeded_split_does_not_depend_on_row_order(tmp_path):
    rows = make_rows(25)
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    a = JsonlObjective(path=str(write(tmp_path / "a.jsonl", rows)))
    b = JsonlObjective(path=str(write(tmp_path / "b.jsonl", shuffled)))
    for split in ("train", "dev", "test"):
        assert ({e.prompt for e in a.examples(split, held_out=True)}
                == {e.prompt for e in b.examples(split, held_out=True)})


def test_duplicate_prompts_stay_in_one_split(tmp_path):
    rows = make_rows(20) * 3  # each prompt three times
    obj = JsonlObjective(path=str(write(tmp_path / "d.jsonl", rows)))
    splits = split_lists(obj)
    seen: dict[str, str] = {}
    for split, exs in splits.items():
        for e in exs:
            assert seen.setdefault(e.prompt, split) == split
    assert len(splits["dev"]) == 3 * 3 * 4  # 4 distinct dev prompts per category, each thrice


def test_seeded_split_function_counts():
    prompts = [f"p{i}" for i in range(10)]
    out = seeded_split(prompts, seed=0, dev_fraction=0.25, test_fraction=0.25)
    assert Counter(out.values()) == {"train": 4, "dev": 3, "test": 3}  # 2.5 rounds up
    assert out == seeded_split(list(reversed(prompts)), 0, 0.25, 0.25)
    assert seeded_split([], 0, 0.2, 0.2) == {}


# ---------------------------------------------------------------- scoring, weights, guard


def test_numeric_and_exact_scoring(tmp_path):
    path = str(write(tmp_path / "d.jsonl", make_rows()))
    numeric = JsonlObjective(path=path, scoring="numeric")
    exact = JsonlObjective(path=path)
    assert numeric.score("so the total is\n#### 1,234", "1234") == 1.0
    assert numeric.score("I think 3, no, 5", "5") == 1.0
    assert numeric.score("no idea", "5") == 0.0
    assert exact.score("#### 1234", "1234") == 0.0
    assert exact.score("  1234 ", "1234") == 1.0


def test_category_weights_and_categories_subset(tmp_path):
    path = str(write(tmp_path / "d.jsonl", make_rows()))
    obj = JsonlObjective(path=path, category_weights={"alpha": 2.0, "gamma": 0.0})
    assert obj.aggregate({"alpha": 1.0, "beta": 0.5, "gamma": 0.0}) == pytest.approx((2 * 1.0 + 0.5) / 3)
    sub = JsonlObjective(path=path, categories=["gamma", "alpha", "gamma"])
    assert sub.categories == ("gamma", "alpha")
    assert JsonlObjective(path=path, categories="beta").categories == ("beta",)
    assert {e.category for e in sub.examples("dev")} == {"gamma", "alpha"}
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=path, category_weights={"delta": 1.0})
    assert_one_line_error(exc, "delta", "alpha")


def test_test_split_is_refused_during_search(tmp_path):
    obj = JsonlObjective(path=str(write(tmp_path / "d.jsonl", make_rows())), name="mybench", max_new_tokens=4)
    with pytest.raises(ObjectiveError) as exc:
        obj.examples("test")
    assert_one_line_error(exc, "mybench", "held_out")
    assert len(obj.examples("test", held_out=True)) == 18
    assert obj.max_new_tokens == 4


def test_pickles_for_ray(tmp_path):
    obj = JsonlObjective(path=str(write(tmp_path / "d.jsonl", make_rows())), scoring="numeric")
    back = pickle.loads(pickle.dumps(obj))
    assert back.examples("dev") == obj.examples("dev") and back.score("#### 7", "7") == 1.0


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(tmp_path / "nope.jsonl"))
    assert_one_line_error(exc, "nope.jsonl", "does not exist", "path")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("prompt\n")
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(path))
    assert_one_line_error(exc, "d.txt", ".txt", ".jsonl", ".csv", ".parquet")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_missing_field_names_it_and_lists_columns(tmp_path, suffix):
    path = write(tmp_path / f"d{suffix}", [{"question": "q", "answer": "1", "category": "c"}])
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(path))
    assert_one_line_error(exc, str(path), "'prompt'", "question", "prompt_field")


def test_named_split_field_must_exist(tmp_path):
    path = write(tmp_path / "d.jsonl", make_rows())
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(path), split_field="fold")
    assert_one_line_error(exc, "'fold'", "category")


def test_bad_split_value(tmp_path):
    rows = make_rows(split="dev")
    rows[4]["split"] = "holdout"
    path = write(tmp_path / "d.csv", rows)
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(path))
    assert_one_line_error(exc, str(path), "row 5", "holdout", "train, dev, test")


def test_category_without_dev_examples(tmp_path):
    rows = make_rows(20) + [{"prompt": "lonely 1", "answer": 1, "category": "tiny"},
                            {"prompt": "lonely 2", "answer": 2, "category": "tiny"}]
    path = write(tmp_path / "d.jsonl", rows)
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(path))
    assert_one_line_error(exc, "'tiny'", "no dev examples", "dev_fraction")
    explicit = [dict(r, split="train") for r in make_rows(5)]
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(write(tmp_path / "e.jsonl", explicit)))
    assert_one_line_error(exc, "alpha", "no dev examples")


@pytest.mark.parametrize("suffix,content", [(".jsonl", ""), (".jsonl", "\n\n"), (".csv", "prompt,answer,category\n"),
                                            (".csv", ""), (".parquet", None)])
def test_empty_file(tmp_path, suffix, content):
    path = tmp_path / f"empty{suffix}"
    if content is None:
        pd.DataFrame({"prompt": pd.Series([], dtype=str), "answer": pd.Series([], dtype=str),
                      "category": pd.Series([], dtype=str)}).to_parquet(path)
    else:
        path.write_text(content)
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(path))
    assert_one_line_error(exc, str(path), "no rows")


def test_empty_cell_and_malformed_file(tmp_path):
    rows = make_rows()
    rows[2]["answer"] = None
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(write(tmp_path / "d.jsonl", rows)))
    assert_one_line_error(exc, "row 3", "'answer' is empty")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "answer": "1", "category": "c"}\n{not json\n')
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(bad))
    assert_one_line_error(exc, "cannot read", str(bad))
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not a parquet file at all")
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(junk))
    assert_one_line_error(exc, "cannot read", str(junk))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_byte_that_is_not_utf8(tmp_path, suffix):
    rows = make_rows()
    path = write(tmp_path / f"d{suffix}", rows)
    data = path.read_bytes().split(b"\n")
    data[3] = data[3].replace(b"question", b"questi\xffn")  # a Latin-1 byte on line 4
    path.write_bytes(b"\n".join(data))
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(path=str(path))
    assert_one_line_error(exc, str(path), "line 4", "not UTF-8", "save the file as UTF-8")


@pytest.mark.parametrize("kwargs,needle", [
    ({"dev_fraction": 0.7, "test_fraction": 0.5}, "dev_fraction"),
    ({"test_fraction": -0.1}, "test_fraction"),
    ({"scoring": "bleu"}, "bleu"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"categories": ["delta"]}, "delta"),
    ({"path": []}, "no data file"),
])
def test_bad_arguments(tmp_path, kwargs, needle):
    params = {"path": str(write(tmp_path / "d.jsonl", make_rows())), **kwargs}
    with pytest.raises(ObjectiveError) as exc:
        JsonlObjective(**params)
    assert_one_line_error(exc, needle)


# ---------------------------------------------------------------- offline, no writes into the home dir


def test_reads_offline_without_touching_home(tmp_path):
    path = write(tmp_path / "d.csv", make_rows())
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XDG_"))}
    env.update(HOME=str(home), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", SOUP_SEARCH_CACHE_DIR=str(cache))
    code = textwrap.dedent(f"""
        from soup_search.objectives import get_objective
        obj = get_objective("jsonl", path={str(path)!r})
        print(len(obj.examples("dev")))
    """)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "18"
    assert list(home.rglob("*")) == []
    assert (cache / "datasets").is_dir()


# ---------------------------------------------------------------- multiple choice and prompting

@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_choices_column_makes_multiple_choice_examples(tmp_path, suffix):
    rows = [{"prompt": f"{c} q{i}", "answer": i % 3, "category": c, "options": ["red", "green", "blue"]}
            for c in CATS for i in range(12)]
    if suffix == ".csv":  # a CSV cell holds the list as JSON
        rows = [{**r, "options": json.dumps(r["options"])} for r in rows]
    obj = get_objective("jsonl", path=str(write(tmp_path / f"mc{suffix}", rows)), choices_field="options")
    examples = obj.examples("dev")
    assert examples and all(e.choices == ("red", "green", "blue") for e in examples)
    # a 0-based index answer becomes the choice's text
    by_prompt = {r["prompt"]: ["red", "green", "blue"][r["answer"]] for r in rows}
    assert all(e.answer == by_prompt[e.prompt] for e in examples)


def test_a_choice_answer_may_be_its_text(tmp_path):
    rows = [{"prompt": f"q{i}", "answer": "no", "options": ["yes", "no"], "category": "c"} for i in range(10)]
    obj = get_objective("jsonl", path=str(write(tmp_path / "mc.jsonl", rows)), choices_field="options")
    assert {e.answer for e in obj.examples("dev")} == {"no"}


@pytest.mark.parametrize(("options", "answer", "needle"), [
    (["only"], 0, "must be a list of two or more non-empty choices"),
    ("not a list", 0, "must be a list of two or more"),
    (["a", "b"], 5, "neither one of the row's choices nor a 0-based index below 2"),
    (["a", "b"], "c", "'answer' is 'c'"),
])
def test_bad_choices_are_one_line_errors(tmp_path, options, answer, needle):
    rows = [{"prompt": f"q{i}", "answer": answer, "options": options, "category": "c"} for i in range(5)]
    with pytest.raises(ObjectiveError) as err:
        get_objective("jsonl", path=str(write(tmp_path / "mc.jsonl", rows)), choices_field="options")
    assert_one_line_error(err, "row 1", needle)


def test_a_missing_choices_column_is_named(tmp_path):
    with pytest.raises(ObjectiveError) as err:
        get_objective("jsonl", path=str(write(tmp_path / "d.jsonl", make_rows())), choices_field="options")
    assert_one_line_error(err, "no column 'options'", "choices_field")


def test_jsonl_takes_the_prompting_parameters(tmp_path):
    path = str(write(tmp_path / "d.jsonl", make_rows()))
    obj = get_objective("jsonl", path=path, fewshot=2, system_prompt="answer with a number", stop=["\n"],
                        chat_template="false")
    assert (obj.prompting.fewshot, obj.prompting.system_prompt, obj.prompting.stop) == (2, "answer with a number",
                                                                                       ("\n",))
    assert obj.prompting.chat_template is False and obj.prompting.target_delimiter == " "
    ex = obj.examples("dev")[0]
    train = {e.prompt for e in obj.examples("train")}
    assert len(obj.shots(ex)) == 2 and {s.prompt for s in obj.shots(ex)} <= train


def test_edited_data_behind_the_same_parameters_is_another_objective(tmp_path):
    """The score cache keys on the spec's fingerprint: an edited file must not reuse old scores."""
    from soup_search.scoring.protocol import ObjectiveSpec

    path = write(tmp_path / "d.jsonl", make_rows())
    spec = ObjectiveSpec.of("jsonl", {"path": str(path)})
    before = spec.with_data()
    assert spec.with_data().fingerprint() == before.fingerprint() != spec.fingerprint()
    write(path, [{**r, "answer": r["answer"] + 1} for r in make_rows()])
    from soup_search.scoring import protocol

    protocol._BUILT.clear()  # (a new process: the built objective is kept per process)
    after = spec.with_data()
    assert after.fingerprint() != before.fingerprint() and after.data != before.data
    # few-shot prompts show train rows: then train edits count too, else not
    assert ObjectiveSpec.of("jsonl", {"path": str(path), "fewshot": 1}).with_data().data != after.data
