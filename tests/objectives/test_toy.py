"""The ``toy`` objective's contract: deterministic, disjoint, sized splits with correct answers."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from soup_search.objectives import get_objective
from soup_search.objectives.toy import ToyObjective
from soup_search.errors import ObjectiveError

SMALL = dict(n_train=60, n_dev=12, n_test=12)


def all_splits(obj) -> dict[str, list]:
    return {s: obj.examples(s, held_out=True) for s in ("train", "dev", "test")}


def body(prompt: str, category: str) -> str:
    """The task text of a prompt: without the category prefix and the trailing '='."""
    assert prompt.startswith(category + " "), prompt
    text = prompt[len(category) + 1:].strip()
    return text[:-1].strip() if text.endswith("=") else text


def test_has_at_least_eight_categories():
    toy = ToyObjective(**SMALL)
    assert len(toy.categories) >= 8
    assert len(set(toy.categories)) == len(toy.categories)
    assert toy.name == "toy" and toy.scoring == "exact_match" and toy.max_new_tokens > 0


def test_same_seed_gives_same_examples_from_two_instances():
    a, b = ToyObjective(seed=3, **SMALL), ToyObjective(seed=3, **SMALL)
    assert all_splits(a) == all_splits(b)
    assert a.examples("dev")[:3] == b.examples("dev")[:3]
    other = ToyObjective(seed=4, **SMALL)
    assert [e.prompt for e in other.examples("dev")] != [e.prompt for e in a.examples("dev")]
    assert [e.prompt for e in other.examples("train")] != [e.prompt for e in a.examples("train")]


def test_splits_are_disjoint():
    splits = all_splits(ToyObjective(seed=0, n_train=300, n_dev=40, n_test=40))
    prompts = {s: [e.prompt for e in exs] for s, exs in splits.items()}
    for s, ps in prompts.items():
        assert len(ps) == len(set(ps)), f"duplicate prompts inside {s}"
    assert not set(prompts["train"]) & set(prompts["dev"])
    assert not set(prompts["train"]) & set(prompts["test"])
    assert not set(prompts["dev"]) & set(prompts["test"])


def test_each_split_is_generated_separately():
    base = ToyObjective(seed=1, **SMALL)
    more_test = ToyObjective(seed=1, n_train=60, n_dev=12, n_test=30)
    more_train = ToyObjective(seed=1, n_train=90, n_dev=12, n_test=12)
    assert more_test.examples("dev") == base.examples("dev")
    assert more_test.examples("train") == base.examples("train")
    assert more_train.examples("dev") == base.examples("dev")
    assert len(more_test.examples("test", held_out=True)) == 30 * len(base.categories)


def test_sizes_per_category():
    toy = ToyObjective(seed=0, **SMALL)
    for split, n in {"train": 60, "dev": 12, "test": 12}.items():
        counts = Counter(e.category for e in toy.examples(split, held_out=True))
        assert counts == {c: n for c in toy.categories}, split
    assert [e.category for e in toy.examples("dev", ["sub"])] == ["sub"] * 12


def test_answers_are_correct():
    toy = ToyObjective(seed=0, n_train=50, n_dev=20, n_test=20)
    checked = Counter()
    for ex in toy.examples("train") + toy.examples("dev"):
        cat, text, ans = ex.category, body(ex.prompt, ex.category), ex.answer
        assert ans and ans == ans.strip()
        if cat == "add":
            assert int(ans) == sum(int(n) for n in re.findall(r"\d+", text))
        elif cat == "sub":
            first, *rest = (int(n) for n in re.findall(r"\d+", text))
            assert int(ans) == first - sum(rest)
        elif cat == "sort":
            assert ans == "".join(sorted(ans)) and sorted(ans) == sorted(re.sub(r"\W", "", text))
        elif cat == "reverse":
            assert ans == re.sub(r"\W", "", text)[::-1]
        elif cat == "copy":
            assert ans == re.sub(r"\W", "", text)
        elif cat == "max":
            assert ans == max(re.sub(r"\W", "", text))
        else:
            continue
        checked[cat] += 1
    assert set(checked) >= {"add", "sub", "sort", "reverse"}


def test_answer_is_a_function_of_the_prompt():
    """The same prompt gets the same answer in every split and seed."""
    answer_of: dict[str, str] = {}
    for seed in (0, 1, 2):
        for exs in all_splits(ToyObjective(seed=seed, **SMALL)).values():
            for e in exs:
                assert answer_of.setdefault(e.prompt, e.answer) == e.answer, e.prompt


def test_test_split_needs_held_out():
    toy = ToyObjective(**SMALL)
    with pytest.raises(ObjectiveError) as exc:
        toy.examples("test")
    assert "held_out" in str(exc.value) and "\n" not in str(exc.value)
    assert len(toy.examples("test", held_out=True)) == 12 * len(toy.categories)


def test_unknown_category_or_split():
    with pytest.raises(ObjectiveError, match="unknown toy categories.*'nope'"):
        ToyObjective(categories=["add", "nope"])
    toy = ToyObjective(categories=["add", "sort"], **SMALL)
    assert toy.categories == ("add", "sort")
    with pytest.raises(ObjectiveError, match="unknown categories.*'sub'"):
        toy.examples("dev", categories=["sub"])
    with pytest.raises(ObjectiveError, match="unknown split 'valid'"):
        toy.examples("valid")
    with pytest.raises(ObjectiveError, match="n_dev"):
        ToyObjective(n_dev=0)


def test_aggregate_with_category_weights():
    plain = ToyObjective(categories=["add", "sub", "sort"], **SMALL)
    scores = {"add": 1.0, "sub": 0.5, "sort": 0.0}
    assert plain.aggregate(scores) == pytest.approx(0.5)
    weighted = ToyObjective(categories=["add", "sub", "sort"], category_weights={"add": 3.0, "sort": 0.0}, **SMALL)
    assert weighted.aggregate(scores) == pytest.approx((3 * 1.0 + 0.5) / 4)
    assert weighted.aggregate({"sub": 0.25}) == pytest.approx(0.25)  # only the categories given count
    with pytest.raises(ObjectiveError, match="unknown categories"):
        ToyObjective(category_weights={"nope": 1.0})
    zero = ToyObjective(categories=["add", "sub"], category_weights={"add": 0.0, "sub": 0.0}, **SMALL)
    with pytest.raises(ObjectiveError, match="sum to zero"):
        zero.aggregate({"add": 1.0, "sub": 1.0})
    with pytest.raises(ObjectiveError, match="no category scores"):
        plain.aggregate({})


def test_score_is_exact_match():
    toy = get_objective("toy", **SMALL)
    ex = toy.examples("dev")[0]
    assert toy.score(f" {ex.answer}\n", ex.answer) == 1.0
    assert toy.score(ex.answer + "x", ex.answer) == 0.0


def test_held_out_categories_are_invisible_until_the_final_report():
    toy = ToyObjective(seed=0, n_dev=5, n_test=5).hold_out(["add", "sort"])
    assert toy.search_categories == tuple(c for c in toy.categories if c not in ("add", "sort"))
    for split in ("train", "dev"):
        assert {ex.category for ex in toy.examples(split)} == set(toy.search_categories)
    with pytest.raises(ObjectiveError, match=r"holds out \['add'\] until the final report"):
        toy.examples("dev", ["add", "copy"])
    assert {ex.category for ex in toy.examples("test", held_out=True)} == set(toy.categories)
    with pytest.raises(ObjectiveError, match="unknown categories"):
        ToyObjective(seed=0).hold_out(["nope"])
