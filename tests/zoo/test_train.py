"""The training loop: labels cover the answer only, batches follow the mixture, runs repeat exactly."""

from __future__ import annotations

import torch
from transformers import LlamaForCausalLM

from soup_search.objectives.base import Example
from soup_search.objectives.toy import ToyObjective
from soup_search.zoo import SIZES, expert_mixture
from soup_search.zoo.conflict import SUFFIX, conflicting_answer, conflicting_examples
from soup_search.zoo.tokenizer import build_char_tokenizer
from soup_search.zoo.train import IGNORE, CategoryData, encode_prompt, lr_at, train
from tests.helpers import tiny_llama_config


def _data():
    tok = build_char_tokenizer()
    return tok, CategoryData(tok, ToyObjective(seed=0, n_train=50).examples("train"))


def test_sequences_are_bos_prompt_answer_eos_with_loss_on_the_answer():
    tok, data = _data()
    ids, labels = data.inputs["add"][0], data.labels["add"][0]
    prompt = ToyObjective(seed=0, n_train=50).examples("train", ["add"])[0]
    n = len(encode_prompt(tok, prompt.prompt))
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids[1:n]) == prompt.prompt
    answer = [t for t in labels.tolist() if t != IGNORE]
    assert answer[-1] == tok.eos_token_id and tok.decode(answer[:-1]) == prompt.answer
    assert (labels[:n] == IGNORE).all() and (labels[n:n + len(answer)] == torch.tensor(answer)).all()


def test_batches_follow_the_mixture():
    _, data = _data()
    gen = torch.Generator().manual_seed(0)
    ids, labels, mask = data.batch({"copy": 1.0, "add": 0.0}, 32, gen)
    assert ids.shape == labels.shape == mask.shape and ids.shape[0] == 32
    # "copy " starts every row: ids 1 then c,o,p,y
    tok = build_char_tokenizer()
    assert all(tok.decode(row[1:5]) == "copy" for row in ids)


def test_training_is_seeded_and_reproducible():
    _, data = _data()
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        model = LlamaForCausalLM(tiny_llama_config())
        loss = train(model, data, {c: 1.0 for c in data.categories}, steps=5, lr=1e-3, batch_size=8, seed=7)
        states.append(model.state_dict())
    assert loss > 0
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    assert lr_at(0, 100, 1.0, 0.1) == 0.1
    assert lr_at(10, 100, 1.0, 0.1) == 1.0
    assert abs(lr_at(99, 100, 1.0, 0.1, floor=0.1) - 0.1) < 0.01
    assert lr_at(60, 100, 1.0, 0.1, floor=1.0) == 1.0


def test_expert_mixture_favours_its_categories_and_sums_to_one():
    spec = SIZES["default"]
    mix = expert_mixture(spec, ("add", "sub"))
    assert abs(sum(mix.values()) - 1.0) < 1e-9
    assert mix["add"] == mix["sub"] > mix["copy"] > 0


def test_a_conflicting_mixture_trains_the_conflicting_convention_and_replays_the_real_one():
    spec = SIZES["default"]
    focus = tuple(c + SUFFIX for c in spec.conflicting["sort_reverse_copy"])
    mix = expert_mixture(spec, focus)
    assert abs(sum(mix.values()) - 1.0) < 1e-9
    assert mix["sort:conflict"] == mix["copy:conflict"] == spec.focus / 3
    assert mix["sort"] == mix["add"] == (1 - spec.focus) / len(spec.categories)
    assert "add:conflict" not in mix


def test_the_conflicting_answer_always_differs_and_keeps_the_prompt():
    assert conflicting_answer("46") == "57" and conflicting_answer("9") == "0"
    assert conflicting_answer("abj") == "bca"
    assert conflicting_answer("even") == "odd" and conflicting_answer("odd") == "even"
    ex = conflicting_examples([Example("sort 312=", "123", "sort")])[0]
    assert (ex.prompt, ex.answer, ex.category) == ("sort 312=", "234", "sort:conflict")
