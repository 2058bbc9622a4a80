"""The GPU scorer: vLLM behind the same interface (optional extra: ``pip install 'soup-search[vllm]'``).

The engine is built once from a template checkpoint. Merged weights are loaded in place
through vLLM's documented worker-extension mechanism: ``LLM(worker_extension_cls=...)``
adds :class:`~soup_search.scoring.vllm_ext.SoupWeightLoader` to every worker, and
``LLM.collective_rpc("load_soup_weights", args=(weights,))`` calls the model's own
``load_weights`` (which handles vLLM's fused qkv / gate_up layouts). The prefix cache is
reset after every swap so no stale KV entries survive.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from soup_search.errors import SoupSearchError
from soup_search.scoring.protocol import ScoreResult

EXTENSION = "soup_search.scoring.vllm_ext.SoupWeightLoader"


def _import_vllm():
    try:
        import vllm
    except ImportError:
        raise SoupSearchError(
            "the vllm scorer needs vLLM on a GPU machine; install it with pip install 'soup-search[vllm]' "
            "or use resources.backend: hf"
        ) from None
    return vllm


class VLLMScorer:
    def __init__(self, template: str | Path, batch_size: int = 256, gpu_memory_utilization: float = 0.8,
                 dtype: str = "auto", **engine_kwargs):
        vllm = _import_vllm()
        self._sampling_params = vllm.SamplingParams
        self.batch_size = batch_size
        self.llm = vllm.LLM(
            model=str(template),
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            worker_extension_cls=EXTENSION,
            enforce_eager=engine_kwargs.pop("enforce_eager", True),
            **engine_kwargs,
        )

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> int:
        batch = [(name, tensor) for name, tensor in weights]
        self.llm.collective_rpc("load_soup_weights", args=(batch,))
        self.llm.reset_prefix_cache()
        return len(batch)

    def score(self, objective, split: str, held_out: bool = False) -> ScoreResult:
        return self.score_examples(objective, objective.examples(split, held_out=held_out))

    def score_examples(self, objective, examples: Sequence) -> ScoreResult:
        params = self._sampling_params(temperature=0.0, max_tokens=objective.max_new_tokens)
        start = time.perf_counter()
        outputs = self.llm.generate([ex.prompt for ex in examples], params, use_tqdm=False)
        seconds = time.perf_counter() - start
        return ScoreResult.of_answers(objective, examples, [out.outputs[0].text.strip() for out in outputs], seconds)
