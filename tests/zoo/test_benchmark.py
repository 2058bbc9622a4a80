"""``soup-search zoo benchmark``: the toy benchmark as JSONL or lm-eval files, which the ``jsonl``
and ``lm_eval`` objectives read back to the toy objective's examples and prompting."""

from __future__ import annotations

import json
import os

import pytest

from soup_search.cli import main
from soup_search.errors import SoupSearchError
from soup_search.objectives import SPLITS, get_objective
from soup_search.objectives.toy import ToyObjective
from soup_search.zoo import benchmark
from soup_search.zoo.benchmark import STOP, write_benchmark
from soup_search.zoo.tokenizer import build_char_tokenizer

SIZES = {"n_train": 12, "n_dev": 6, "n_test": 5}


def toy(choices: int) -> ToyObjective:
    return ToyObjective(seed=3, choices=choices, **SIZES)


def as_rows(examples) -> list[tuple]:
    return [(e.prompt, e.answer, e.choices) for e in examples]


def same_prompting(got, want) -> None:
    """Prompts built alike; generated answers (no choices) as long."""
    def seen(obj):
        p = obj.prompting
        return (p.target_delimiter, p.fewshot_delimiter, p.fewshot, p.choice_norm,
                None if want.choices else obj.max_new_tokens)

    assert seen(got) == seen(want)


@pytest.mark.parametrize("choices", [0, 3])
def test_jsonl_reads_back_as_the_toy_objective(tmp_path, choices):
    bench = write_benchmark(tmp_path / "bench", "jsonl", seed=3, choices=choices, **SIZES)
    assert bench.files == ("toy.jsonl",) and bench.root == tmp_path / "bench"
    rows = [json.loads(line) for line in (bench.root / "toy.jsonl").read_text().splitlines()]
    assert len(rows) == 8 * sum(SIZES.values()) and ("choices" in rows[0]) == bool(choices)
    got, want = get_objective(bench.objective["name"], **bench.objective["params"]), toy(choices)
    assert got.categories == want.categories
    for split in SPLITS:
        assert as_rows(got.examples(split, held_out=True)) == as_rows(want.examples(split, held_out=True))
    same_prompting(got, want)


@pytest.mark.parametrize("choices", [0, 4])
def test_lm_eval_reads_back_as_the_toy_objective(tmp_path, choices):
    bench = write_benchmark(tmp_path / "bench", "lm-eval", seed=3, choices=choices, **SIZES)
    assert {"toy.yaml", "toy_add.yaml", "data/add-dev.jsonl"} <= set(bench.files)
    assert bench.objective == {"name": "lm_eval", "params": {"tasks": ["toy"], "include_path": str(bench.root)}}
    got, want = get_objective("lm_eval", **bench.objective["params"]), toy(choices)
    assert got.categories == tuple(f"toy_{c}" for c in want.categories) and got.notes == ()
    for split in SPLITS:
        for cat in want.categories:
            assert as_rows(got.examples(split, [f"toy_{cat}"], held_out=True)) == as_rows(
                want.examples(split, [cat], held_out=True))
    same_prompting(got, want)
    ex = got.examples("dev")[0]
    wrong = next(c for c in ex.choices if c != ex.answer) if choices else ex.answer + "1"
    assert (got.score_example(ex, ex.answer), got.score_example(ex, wrong)) == (1.0, 0.0)
    if not choices:
        # generation stops at a string the zoo's tokenizer spells and no toy answer holds
        tokenizer = build_char_tokenizer()
        assert got.prompting.stop == (STOP,)
        assert tokenizer.unk_token_id not in tokenizer(STOP, add_special_tokens=False)["input_ids"]
        assert not any(STOP in e.answer for s in SPLITS for e in got.examples(s, held_out=True))


def test_the_data_paths_are_absolute_and_work_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench = write_benchmark("bench", "lm-eval", **SIZES)
    assert bench.root == tmp_path / "bench"
    assert f"validation: {tmp_path}/bench/data/add-dev.jsonl" in (bench.root / "toy_add.yaml").read_text()
    monkeypatch.chdir(tmp_path.parent)
    obj = get_objective("lm_eval", tasks=["toy_sub"], include_path=str(bench.root))
    assert len(obj.examples("dev")) == SIZES["n_dev"]


def test_force_replaces_an_earlier_export_only(tmp_path):
    first = write_benchmark(tmp_path / "b", "jsonl", **SIZES)
    with pytest.raises(SoupSearchError, match="pass --force"):
        write_benchmark(tmp_path / "b", "lm-eval", **SIZES)
    write_benchmark(tmp_path / "b", "lm-eval", force=True, **SIZES)
    assert not (first.root / "toy.jsonl").exists() and (first.root / "toy.yaml").is_file()


def test_a_failed_export_leaves_nothing(tmp_path, monkeypatch):
    def fail(path, rows):
        raise OSError("disk full")

    monkeypatch.setattr(benchmark, "_write_lines", fail)
    with pytest.raises(OSError):
        write_benchmark(tmp_path / "b", "lm-eval", **SIZES)
    assert os.listdir(tmp_path) == []


def exit_2_line(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as info:
        main(["zoo", "benchmark", *args])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_bad_output_folders_are_one_line_exit_2(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert "holds files soup-search did not write" in exit_2_line(capsys, "--out", str(foreign))
    assert (foreign / "notes.txt").read_text() == "keep me" and len(os.listdir(foreign)) == 1
    (tmp_path / "file").write_text("")
    assert "exists and is not a folder" in exit_2_line(capsys, "--out", str(tmp_path / "file"))
    assert "cannot write" in exit_2_line(capsys, "--out", str(tmp_path / "file" / "sub"))
    assert "unknown benchmark format 'csv'" in exit_2_line(capsys, "--out", str(tmp_path / "b"), "--format", "csv")
    assert "choices must be 0" in exit_2_line(capsys, "--out", str(tmp_path / "b"), "--choices", "1")
    assert sorted(os.listdir(tmp_path)) == ["file", "mine"]


def test_the_command_prints_the_config_section(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["zoo", "benchmark", "--out", str(tmp_path / "b"), "--format", "jsonl", "--choices", "2",
              "--n-train", "4", "--n-dev", "3", "--n-test", "2"])
    out = capsys.readouterr().out
    assert info.value.code in (0, None)
    assert f"path: {tmp_path}/b/toy.jsonl" in out and "choices_field: choices" in out
    assert len((tmp_path / "b" / "toy.jsonl").read_text().splitlines()) == 8 * 9
