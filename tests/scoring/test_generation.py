"""Batched greedy generation: left padding gives the one-by-one answers; evaluate counts right."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from soup_search.objectives.toy import ToyObjective
from soup_search.errors import ObjectiveError
from soup_search.scoring.generation import evaluate, generate, generate_answers
from soup_search.scoring.prompts import cut_answer
from tests.helpers import make_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tiny_zoo):
    path = tiny_zoo.experts[next(iter(tiny_zoo.experts))]
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def _mixed_prompts(n_per_cat: int = 4) -> list[str]:
    toy = ToyObjective(seed=0)
    return [ex.prompt for cat in toy.categories for ex in toy.examples("dev", [cat])[:n_per_cat]]


def test_left_padded_batches_match_one_by_one_decoding(trained):
    model, tok = trained
    prompts = _mixed_prompts()
    assert len({len(p) for p in prompts}) > 5  # lengths really differ, so padding is exercised
    batched = generate_answers(model, tok, prompts, max_new_tokens=8, batch_size=7)
    single = [generate_answers(model, tok, [p], max_new_tokens=8, batch_size=1)[0] for p in prompts]
    assert batched == single
    assert sum(a != "" for a in batched) > len(prompts) // 2  # a trained model answers


def test_random_model_batches_match_too_and_answers_stop_at_budget(tmp_path):
    path = make_checkpoint(tmp_path / "rand", seed=3)
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    prompts = ["add 1+2=", "reverse abcdef=", "x", "parity 0101010101="]
    batched, lengths = generate(model, tok, prompts, max_new_tokens=5, batch_size=4)
    single = [generate(model, tok, [p], max_new_tokens=5) for p in prompts]
    assert batched == [a[0] for a, _ in single] and lengths == [n[0] for _, n in single]
    assert all(len(a) <= 5 for a in batched)  # one char per token, never past the budget
    assert all(0 <= n <= 5 for n in lengths)


def test_generate_answers_keeps_order_and_handles_empty(trained):
    model, tok = trained
    assert generate_answers(model, tok, [], max_new_tokens=4) == []
    prompts = _mixed_prompts(2)
    forward = generate_answers(model, tok, prompts, max_new_tokens=8)
    backward = generate_answers(model, tok, prompts[::-1], max_new_tokens=8)
    assert backward == forward[::-1]


def test_evaluate_reports_accuracy_per_category(trained):
    model, tok = trained
    toy = ToyObjective(seed=0, n_dev=20)
    result = evaluate(model, tok, toy, "dev", categories=["copy", "max", "parity"])
    assert result.counts == {"copy": 20, "max": 20, "parity": 20}
    assert result.n == 60 and result.seconds > 0
    assert all(0.0 <= v <= 1.0 for v in result.per_category.values())
    # one bit per example, in the split's order, that add up to the accuracy
    assert {c: len(b) for c, b in result.correct.items()} == result.counts
    assert all(result.correct[c].count("1") / 20 == result.per_category[c] for c in result.counts)
    # the accuracy is exactly what scoring the generated answers gives
    examples = toy.examples("dev", ["max"])
    preds = generate_answers(model, tok, [e.prompt for e in examples], toy.max_new_tokens)
    expected = sum(toy.score(p, e.answer) for p, e in zip(preds, examples)) / len(examples)
    assert result.per_category["max"] == pytest.approx(expected)
    assert result.correct["max"] == "".join("1" if toy.score(p, e.answer) else "0" for p, e in zip(preds, examples))


def test_evaluate_refuses_test_split_unless_held_out(trained):
    model, tok = trained
    toy = ToyObjective(seed=0, n_test=5)
    with pytest.raises(ObjectiveError, match="test split"):
        evaluate(model, tok, toy, "test")
    assert evaluate(model, tok, toy, "test", categories=["max"], held_out=True).n == 5


def test_an_answer_counts_the_tokens_before_the_end_of_sequence(trained):
    _, tok = trained
    ids = tok("12 ab", add_special_tokens=False)["input_ids"]
    eos = frozenset({tok.eos_token_id})
    assert cut_answer(tok, [*ids, tok.eos_token_id, 0, 0], eos, ()) == ("12 ab", 5)  # HF: padded after </s>
    assert cut_answer(tok, [*ids, tok.eos_token_id], eos, ()) == ("12 ab", 5)  # vLLM: ends with the </s>
    assert cut_answer(tok, ids, eos, ()) == ("12 ab", 5)  # the budget ran out
    assert cut_answer(tok, [tok.eos_token_id], eos, ()) == ("", 0) and cut_answer(tok, ids[:1], frozenset(), ()) == ("1", 1)


def test_a_stop_string_cuts_the_answer_and_its_token_count(trained):
    _, tok = trained
    ids = tok("12 ab", add_special_tokens=False)["input_ids"]
    eos = frozenset({tok.eos_token_id})
    assert cut_answer(tok, [*ids, tok.eos_token_id], eos, (" a",)) == ("12", 4)  # the tokens up to " a"
    assert cut_answer(tok, ids, eos, ("b", "2")) == ("1", 2)  # the first stop string in the text wins
    assert cut_answer(tok, ids, eos, ("zz",)) == ("12 ab", 5)


def test_token_counts_are_the_answers_lengths_batched_or_not(trained):
    """The char tokenizer spends one token per character: each count is its answer's length."""
    model, tok = trained
    prompts = _mixed_prompts()
    answers, lengths = generate(model, tok, prompts, max_new_tokens=8, batch_size=7)
    assert lengths == [generate(model, tok, [p], max_new_tokens=8, batch_size=1)[1][0] for p in prompts]
    assert lengths == [len(a) for a in answers] and sum(lengths) > len(prompts)
    toy = ToyObjective(seed=0, n_dev=5)
    result = evaluate(model, tok, toy, "dev", categories=["copy", "max"])
    examples = toy.examples("dev", ["copy", "max"])
    preds = generate_answers(model, tok, [e.prompt for e in examples], toy.max_new_tokens)
    assert result.generated_tokens == {c: [len(p) for p, e in zip(preds, examples) if e.category == c]
                                       for c in ("copy", "max")}
