"""The vLLM scorer against vLLM's documented API (vLLM cannot run on this CPU-only machine).

A stand-in ``vllm`` module implements the parts of the documented interface the adapter
uses — ``LLM(model=..., worker_extension_cls=...)``, ``LLM.collective_rpc(method, args=...)``,
``LLM.reset_prefix_cache()``, ``LLM.generate(prompts, SamplingParams, use_tqdm=...)`` returning
``RequestOutput``-like objects, and ``SamplingParams(temperature=..., max_tokens=...)`` —
backed by a real transformers model, so scores are real and comparable with ``HFScorer``.
Its worker mixes in the extension class by qualified name, as vLLM does.
"""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass

import pytest
import torch

from soup_search.objectives import get_objective
from tests.helpers import make_checkpoint


@dataclass
class SamplingParams:
    temperature: float = 1.0
    max_tokens: int = 16


class _ModelRunner:
    def __init__(self, model):
        self.model = _VllmModel(model)


class _VllmModel:
    """What vLLM's model classes offer: parameters() and load_weights(iterable of (name, tensor))."""

    def __init__(self, hf_model):
        self.hf = hf_model

    def parameters(self):
        return self.hf.parameters()

    def load_weights(self, weights):
        state = self.hf.state_dict()
        loaded = set()
        with torch.no_grad():
            for name, tensor in weights:
                state[name].copy_(tensor)
                loaded.add(name)
        return loaded


class LLM:
    instances: list = []

    def __init__(self, model: str, dtype="auto", gpu_memory_utilization=0.9, worker_extension_cls=None,
                 enforce_eager=False, **kwargs):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"
        hf = AutoModelForCausalLM.from_pretrained(model).eval()
        module, _, cls = worker_extension_cls.rpartition(".")
        ext = getattr(importlib.import_module(module), cls)
        worker_cls = type("Worker", (ext,), {})
        self.worker = worker_cls()
        self.worker.model_runner = _ModelRunner(hf)
        self.hf = hf
        self.calls = []
        self.prefix_resets = 0
        LLM.instances.append(self)

    def collective_rpc(self, method, timeout=None, args=(), kwargs=None):
        self.calls.append(method)
        return [getattr(self.worker, method)(*args, **(kwargs or {}))]

    def reset_prefix_cache(self):
        self.prefix_resets += 1
        return True

    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        from soup_search.scoring.generation import generate_answers

        assert sampling_params.temperature == 0.0
        texts = generate_answers(self.hf, self.tokenizer, list(prompts), sampling_params.max_tokens)
        return [types.SimpleNamespace(prompt=p, outputs=[types.SimpleNamespace(text=t)]) for p, t in zip(prompts, texts)]


@pytest.fixture()
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams = LLM, SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    LLM.instances.clear()
    return module


def test_missing_vllm_is_a_clear_error(monkeypatch, tmp_path):
    from soup_search.errors import SoupSearchError
    from soup_search.scoring.vllm import VLLMScorer

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(SoupSearchError, match=r"pip install 'soup-search\[vllm\]'"):
        VLLMScorer(tmp_path)


def test_vllm_scorer_loads_weights_in_place_and_matches_hf(fake_vllm, tmp_path):
    from soup_search.io.checkpoint import CheckpointReader
    from soup_search.scoring.hf import HFScorer
    from soup_search.scoring.vllm import VLLMScorer

    template = make_checkpoint(tmp_path / "template", seed=0)
    other = make_checkpoint(tmp_path / "other", seed=7)
    toy = get_objective("toy", n_dev=6, n_train=10, n_test=6)

    scorer = VLLMScorer(template)
    llm = LLM.instances[-1]
    with CheckpointReader(other) as reader:
        weights = [(n, reader.get(n)) for n in reader.tensor_names]
    assert scorer.load_weights(iter(weights)) == len(weights)
    assert llm.calls == ["load_soup_weights"] and llm.prefix_resets == 1
    for name, tensor in weights:
        assert torch.equal(llm.hf.state_dict()[name], tensor)

    got = scorer.score(toy, "dev")
    hf = HFScorer(other)
    want = hf.score(toy, "dev")
    assert got.per_category == want.per_category
    assert got.counts == want.counts == {c: 6 for c in toy.categories}


def test_vllm_scorer_respects_the_held_out_guard(fake_vllm, tmp_path):
    from soup_search.errors import ObjectiveError
    from soup_search.scoring.vllm import VLLMScorer

    scorer = VLLMScorer(make_checkpoint(tmp_path / "t", seed=0))
    with pytest.raises(ObjectiveError, match="refuses to score the test split"):
        scorer.score(get_objective("toy", n_dev=2, n_test=2), "test")
