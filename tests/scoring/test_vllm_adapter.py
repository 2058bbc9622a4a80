"""The vLLM scorer against a stand-in engine that keeps vLLM's process boundary (``tests/fake_vllm``).

vLLM cannot run on this CPU-only machine. The stand-in runs its engine core in a spawned process
unless ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (vLLM's default is 1, and the fixture sets it), and
msgpack-encodes ``collective_rpc`` arguments the way vLLM does, so a tensor crosses it as a list.
Its answers come from a real transformers model, so they compare with the HF scorer's.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

from soup_search.errors import CandidateError, ObjectiveError, SoupSearchError
from soup_search.objectives import get_objective
from tests.helpers import make_checkpoint, weights_of

EXT = "soup_search.scoring.vllm_ext.SoupWeightLoader"


def in_process_model(scorer):
    """The transformers model inside an in-process stand-in engine."""
    return scorer.llm.engine_core.core.workers[0].get_model().hf


def test_missing_vllm_is_a_clear_error(monkeypatch, tmp_path):
    from soup_search.scoring.vllm import VLLMScorer

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(SoupSearchError, match=r"pip install 'soup-search\[vllm\]'"):
        VLLMScorer(tmp_path)


def test_the_stand_in_boundary_turns_tensors_into_lists(fake_vllm, tmp_path):
    """What broke the old adapter: under vLLM's default settings the engine core is another process,
    and a tensor handed to collective_rpc reaches the worker as ``[dtype, shape, index]``."""
    template = make_checkpoint(tmp_path / "t", seed=0)
    llm = fake_vllm.LLM(model=str(template), worker_extension_cls=EXT, load_format="dummy")
    try:
        assert llm.engine_core.pid != os.getpid()
        name, tensor = weights_of(template)[0]
        with pytest.raises(fake_vllm.EngineCoreError, match="as list, not a tensor: it crossed vLLM's process"):
            llm.collective_rpc("load_soup_weights", args=([(name, tensor)],))
        # a path crosses it: the worker reads the file itself, and reports what it left unset
        missing = llm.collective_rpc("load_soup_file", args=(str(template / "model.safetensors"),))
        assert missing == [[]]
    finally:
        llm.shutdown()


def test_weights_reach_the_engine_under_vllms_default_settings(fake_vllm, tmp_path):
    """Tensor parallel 1: the scorer runs the engine in its own process and loads in place, bit for bit."""
    from soup_search.scoring.vllm import VLLMScorer

    template, other = make_checkpoint(tmp_path / "t", seed=0), make_checkpoint(tmp_path / "o", seed=7)
    scorer = VLLMScorer(template)
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert scorer.llm.engine_core.pid == os.getpid() and scorer.llm.load_format == "dummy"
    weights = weights_of(other)
    assert scorer.load_weights(iter(weights)) == len(weights)
    state = in_process_model(scorer).state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in weights)
    assert scorer.llm.engine_core.core.prefix_resets == 1


def test_tensor_parallel_scorers_load_through_a_tmpfs_file(fake_vllm, tmp_path, monkeypatch):
    """Tensor parallel 2: the workers are other processes; the soup reaches them as a file in tmpfs,
    removed after the load, and both ranks answer as the HF scorer does on those weights."""
    import soup_search.scoring.vllm as adapter
    from soup_search.scoring.hf import HFScorer

    monkeypatch.setattr(adapter, "TMPFS", str(tmp_path / "shm"))
    (tmp_path / "shm").mkdir()
    template, other = make_checkpoint(tmp_path / "t", seed=0), make_checkpoint(tmp_path / "o", seed=7)
    toy = get_objective("toy", n_dev=6, n_train=10, n_test=6)
    scorer = adapter.VLLMScorer(template, tensor_parallel_size=2)
    try:
        assert scorer.llm.engine_core.pid != os.getpid()
        assert scorer.load_weights(iter(weights_of(other))) == len(weights_of(other))
        assert list((tmp_path / "shm").iterdir()) == []
        got, want = scorer.score(toy, "dev"), HFScorer(other).score(toy, "dev")
        assert got.correct == want.correct and got.per_category == want.per_category
        assert got.generated_tokens == want.generated_tokens
    finally:
        scorer.llm.shutdown()


def test_vllm_and_hf_give_the_same_zoo_answers(fake_vllm, tiny_zoo):
    """The prompts go in as token ids with the BOS the zoo was trained with. A string prompt loses
    it (vLLM's tokenisation adds none for this tokenizer) and changes the answers."""
    from soup_search.scoring.prompts import encode_text
    from soup_search.scoring.hf import HFScorer
    from soup_search.scoring.vllm import VLLMScorer

    expert = next(p for p in tiny_zoo.experts.values())
    toy = get_objective("toy", n_dev=40, n_test=6)
    scorer = VLLMScorer(tiny_zoo.base)
    scorer.load_weights(iter(weights_of(expert)))
    got, want = scorer.score(toy, "dev"), HFScorer(expert).score(toy, "dev")
    assert got.correct == want.correct and got.counts == want.counts
    assert sum(want.per_category.values()) > 0  # (an expert that answers something right)
    # vLLM's token_ids end with the EOS it stopped at; both count the answer's tokens only
    assert got.generated_tokens == want.generated_tokens and want.mean_tokens > 0

    examples = toy.examples("dev")
    assert encode_text(scorer.tokenizer, examples[0].prompt)[0] == scorer.tokenizer.bos_token_id
    params = fake_vllm.SamplingParams(temperature=0, max_tokens=toy.max_new_tokens)
    as_strings = [o.outputs[0].text.strip() for o in scorer.llm.generate([e.prompt for e in examples], params)]
    as_ids = [o.outputs[0].text.strip() for o in scorer.llm.generate(
        [{"prompt_token_ids": encode_text(scorer.tokenizer, e.prompt)} for e in examples], params)]
    assert as_strings != as_ids


def test_a_swap_a_b_a_reproduces_as_answers(fake_vllm, tmp_path):
    from soup_search.scoring.vllm import VLLMScorer

    a, b = make_checkpoint(tmp_path / "a", seed=1), make_checkpoint(tmp_path / "b", seed=2)
    toy = get_objective("toy", n_dev=8, n_train=10, n_test=6)
    scorer = VLLMScorer(a)
    answers = []
    for path in (a, b, a):
        scorer.load_weights(iter(weights_of(path)))
        examples = toy.examples("dev")
        answers.append(scorer.score_examples(toy, examples).correct)
    assert answers[0] == answers[2]
    assert scorer.llm.engine_core.core.prefix_resets == 3


def test_a_soup_that_leaves_a_parameter_at_its_dummy_value_is_refused(fake_vllm, tmp_path):
    from soup_search.scoring.vllm import VLLMScorer

    template = make_checkpoint(tmp_path / "t", seed=0)
    scorer = VLLMScorer(template)
    weights = [(n, t) for n, t in weights_of(template) if n != "model.norm.weight"]
    with pytest.raises(CandidateError, match=r"left 1 parameter\(s\) of the vLLM model unset \(first: 'model.norm.weight'\)"):
        scorer.load_weights(iter(weights))


def test_a_refused_prefix_cache_reset_is_an_error(fake_vllm, tmp_path, monkeypatch):
    from soup_search.scoring.vllm import VLLMScorer

    template = make_checkpoint(tmp_path / "t", seed=0)
    scorer = VLLMScorer(template)
    monkeypatch.setenv("FAKE_VLLM_REFUSE_PREFIX_RESET", "1")
    with pytest.raises(SoupSearchError, match="refused to reset its prefix cache"):
        scorer.load_weights(iter(weights_of(template)))


def test_vllm_scorer_respects_the_held_out_guard(fake_vllm, tmp_path):
    from soup_search.scoring.vllm import VLLMScorer

    scorer = VLLMScorer(make_checkpoint(tmp_path / "t", seed=0))
    with pytest.raises(ObjectiveError, match="refuses to score the test split"):
        scorer.score(get_objective("toy", n_dev=2, n_test=2), "test")
