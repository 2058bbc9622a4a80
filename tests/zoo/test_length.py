"""The zoo's length pair (size ``tiny-verbose``): opt-in, fingerprints unchanged elsewhere, a verbose
model that answers longer and is still scored right, and a terse one, both of one base."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from soup_search.cli import main
from soup_search.objectives.base import Example
from soup_search.objectives.matching import exact_match
from soup_search.objectives.toy import ToyObjective
from soup_search.pipeline.curve_inputs import SAME_BASE_MAX, base_distance
from soup_search.scoring.generation import evaluate
from soup_search.zoo import SIZES, Zoo, build_zoo, fingerprint, get_spec
from soup_search.zoo.build import single_thread
from soup_search.zoo.length import SUFFIX, LengthPair, pair_mixture, verbose_answer, verbose_examples


def test_fingerprints_of_the_zoos_without_a_pair_are_those_of_today():
    """Cached builds rely on these: the pair must not move them. (They moved once, when the toy tasks
    left objectives/toy.py for objectives/toy_tasks.py, with the same examples; the hash now covers
    the task definitions only, so a change to how the objective serves them keeps the zoo.)"""
    assert fingerprint(SIZES["tiny"], 0) == "843a35c2f516"
    assert fingerprint(SIZES["tiny"], 1) == "4bc43d65df4a"
    assert fingerprint(SIZES["default"], 0) == "2ecd49ef3ce8"
    assert fingerprint(SIZES["default"], 1) == "f792ae97ce55"


def test_the_pair_fingerprint_is_stable_and_distinct():
    spec = SIZES["tiny-verbose"]
    assert fingerprint(spec, 0) == "7a567a39fc88"
    assert fingerprint(spec, 0) not in {fingerprint(SIZES["tiny"], 0), fingerprint(SIZES["default"], 0)}
    assert fingerprint(spec, 1) != fingerprint(spec, 0)
    longer = dataclasses.replace(spec, length_pair=dataclasses.replace(spec.length_pair, pause=5))
    assert fingerprint(longer, 0) != fingerprint(spec, 0)


def test_the_pair_is_opt_in_and_shares_the_tiny_base_recipe():
    name, spec = get_spec("tiny-verbose")
    assert name == "tiny-verbose" and spec.length_pair == LengthPair(pause=4, verbose_steps=300, terse_steps=60,
                                                                     lr=2e-3)
    assert SIZES["tiny"].length_pair is None and SIZES["default"].length_pair is None
    assert dataclasses.replace(spec, length_pair=None, experts=SIZES["tiny"].experts) == SIZES["tiny"]


def test_verbose_answers_are_scored_like_the_bare_answer_even_when_cut_short():
    assert verbose_answer("46", 4) == "46    "
    toy = ToyObjective(seed=0)
    assert toy.score(verbose_answer("46", 4), "46") == 1.0 and toy.score(verbose_answer("47", 4), "46") == 0.0
    long = verbose_answer("0123459", 4)[: toy.max_new_tokens]  # the scorer stops at max_new_tokens
    assert long == "0123459 " and exact_match(long, "0123459") == 1.0


def test_verbose_examples_keep_the_prompts_under_a_marked_category():
    examples = [Example("add 1+2=", "3", "add"), Example("max 19=", "9", "max")]
    assert verbose_examples(examples, 3) == [Example("add 1+2=", "3   ", "add" + SUFFIX),
                                             Example("max 19=", "9   ", "max" + SUFFIX)]
    assert pair_mixture("verbose", ("add", "max")) == {"add" + SUFFIX: 1.0, "max" + SUFFIX: 1.0}
    assert pair_mixture("terse", ("add", "max")) == {"add": 1.0, "max": 1.0}


@pytest.fixture(scope="module")
def pair_zoo(cache_dir):
    """The tiny-verbose zoo (base, verbose, terse), trained once into the test cache (~30 s)."""
    from filelock import FileLock

    with FileLock(str((cache_dir / "zoo").resolve().parent / "zoo.lock")):
        return build_zoo(size="tiny-verbose", progress=False)


@pytest.fixture(scope="module")
def dev_results(pair_zoo):
    toy = ToyObjective(seed=0)
    results = {}
    with single_thread():
        for name, path in pair_zoo.models().items():
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            results[name] = evaluate(model, AutoTokenizer.from_pretrained(path), toy, "dev")
    return results


@pytest.mark.slow
def test_the_pair_is_built_listed_and_offered_as_candidates(pair_zoo):
    assert list(pair_zoo.models()) == ["base", "verbose", "terse"]
    assert list(pair_zoo.candidates()) == ["verbose", "terse"] and pair_zoo.experts == {}
    assert get_spec("tiny-verbose")[1].candidate_names() == ["verbose", "terse"]
    assert {m["name"]: m["role"] for m in pair_zoo.manifest["models"]} == {
        "base": "base", "verbose": "verbose", "terse": "terse"}
    assert pair_zoo.manifest["fingerprint"] == "7a567a39fc88"
    assert Zoo.load(pair_zoo.root) == pair_zoo


@pytest.mark.slow
def test_verbose_generates_more_tokens_than_terse_on_dev(dev_results):
    """Seeded, one-thread build: verbose 6.77 tokens / 0.459 accuracy, terse 3.20 / 0.391, base 3.19 / 0.389."""
    verbose, terse, base = dev_results["verbose"], dev_results["terse"], dev_results["base"]
    assert verbose.mean_tokens > terse.mean_tokens + 3.0, (verbose.mean_tokens, terse.mean_tokens)
    assert abs(terse.mean_tokens - base.mean_tokens) < 0.5  # terse keeps the toy's own answer length
    assert verbose.mean > terse.mean + 0.04, (verbose.mean, terse.mean)  # and the two differ in accuracy


@pytest.mark.slow
def test_verbose_answers_are_scored_right_with_their_filler(dev_results):
    """Right answers of the verbose model are longer than the answers themselves: the filler was
    generated, stripped and matched."""
    toy = ToyObjective(seed=0)
    verbose = dev_results["verbose"]
    right = [(ex, n) for cat in toy.categories
             for ex, ok, n in zip(toy.examples("dev", [cat]), verbose.correct[cat], verbose.generated_tokens[cat],
                                  strict=True) if ok == "1"]
    assert len(right) == round(verbose.mean * verbose.n) > 300
    filler = sum(n - len(ex.answer) for ex, n in right) / len(right)
    assert filler > 3.0, filler  # 4 spaces after each answer, fewer where max_new_tokens (8) cuts them


@pytest.mark.slow
def test_the_pair_is_of_one_base_for_the_curve_checks(pair_zoo):
    zoo = pair_zoo.models()
    assert base_distance(zoo["verbose"], zoo["terse"]) < SAME_BASE_MAX
    assert all(0 < base_distance(zoo["base"], zoo[name]) < SAME_BASE_MAX for name in ("verbose", "terse"))


@pytest.mark.slow
def test_zoo_build_names_the_pair(pair_zoo, capsys):
    with pytest.raises(SystemExit) as info:
        main(["zoo", "build", "--size", "tiny-verbose"])
    assert info.value.code in (0, None)
    out = " ".join(capsys.readouterr().out.split())
    assert "3 models (base + verbose and terse)" in out
