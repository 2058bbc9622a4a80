"""The GPU scorer: vLLM behind the same interface (optional extra: ``pip install 'soup-search[vllm]'``).

Written against vLLM 0.33's API (:data:`TESTED_VLLM`; the ``vllm`` extra pins it). The engine is built once from the template's
config and tokenizer with ``load_format="dummy"`` (its weights are never read: every candidate
brings all of them), then for each soup:

- **Weights** go in through :class:`~soup_search.scoring.vllm_ext.SoupWeightLoader`, a worker
  extension. With tensor parallel 1 the engine runs in this process
  (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, set before vLLM is imported), the documented route for
  in-place weight access, and the tensors are handed to the worker as they are. With tensor
  parallel > 1 the workers are other processes and ``collective_rpc`` msgpack-encodes its
  arguments (tensors would arrive as lists), so the soup is written once to a safetensors file in
  tmpfs and each worker reads it by path. vLLM's own ``reload_weights(weights_path=...)`` does the
  same read but only logs parameters it did not load; ours refuses the soup.
- **Prompts** are token ids (``TokensPrompt``) encoded by the function the HF scorer uses
  (:func:`~soup_search.scoring.generation.encode_prompt`): vLLM tokenizes a string prompt
  without the BOS the zoo models were trained with.
- **The prefix cache** is reset after every load (every soup scores the same prompts), and a
  reset vLLM refuses is an error, not stale answers.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from transformers import AutoTokenizer

from soup_search.errors import CandidateError, SoupSearchError
from soup_search.scoring.generation import answer_length, encode_prompt
from soup_search.scoring.protocol import ScoreResult

EXTENSION = "soup_search.scoring.vllm_ext.SoupWeightLoader"
#: the vLLM releases whose API this adapter was checked against (the ``vllm`` extra pins them)
TESTED_VLLM = ">=0.33,<0.34"
#: where tensor-parallel scorers write the soup for their workers (RAM-backed on Linux)
TMPFS = "/dev/shm"


def import_vllm(tensor_parallel_size: int):
    if tensor_parallel_size == 1:
        # before vLLM is imported: the engine core then runs in this process, so that the
        # weights reach the worker as tensors (vLLM reads its environment lazily, this is belt and braces)
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    try:
        import vllm
        from vllm.inputs import TokensPrompt
    except ImportError:
        raise SoupSearchError(
            "the vllm scorer needs vLLM on a GPU machine; install it with pip install 'soup-search[vllm]' "
            "or use resources.backend: hf"
        ) from None
    return vllm, TokensPrompt


class VLLMScorer:
    def __init__(self, template: str | Path, batch_size: int = 256, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.8, dtype: str = "auto", max_model_len: int | None = None,
                 enforce_eager: bool = True, **engine_kwargs):
        vllm, self._tokens_prompt = import_vllm(tensor_parallel_size)
        self._sampling_params = vllm.SamplingParams
        self.batch_size = batch_size  # (vLLM schedules its own batches)
        self.in_process = tensor_parallel_size == 1
        self.tokenizer = AutoTokenizer.from_pretrained(template)
        if max_model_len is not None:
            engine_kwargs["max_model_len"] = max_model_len
        self.llm = vllm.LLM(
            model=str(template), tokenizer=str(template), dtype=dtype, load_format="dummy",
            tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
            worker_extension_cls=EXTENSION, enforce_eager=enforce_eager, **engine_kwargs,
        )

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> int:
        batch = [(name, tensor) for name, tensor in weights]
        if self.in_process:
            missing = self.llm.collective_rpc("load_soup_weights", args=(batch,))
        else:
            with _tmpfs_file(batch) as path:
                missing = self.llm.collective_rpc("load_soup_file", args=(str(path),))
        left = sorted({name for names in missing for name in names})
        if left:
            raise CandidateError(
                f"the soup's weights left {len(left)} parameter(s) of the vLLM model unset (first: {left[0]!r}); "
                "every candidate must hold every weight of the template's architecture")
        if not self.llm.reset_prefix_cache():
            raise SoupSearchError("vLLM refused to reset its prefix cache after a weight load (a request is "
                                  "still running); the soup's answers would reuse the last soup's cache")
        return len(batch)

    def score(self, objective, split: str, held_out: bool = False) -> ScoreResult:
        return self.score_examples(objective, objective.examples(split, held_out=held_out))

    def score_examples(self, objective, examples: Sequence) -> ScoreResult:
        params = self._sampling_params(temperature=0, max_tokens=objective.max_new_tokens)
        prompts = [self._tokens_prompt(prompt_token_ids=encode_prompt(self.tokenizer, ex.prompt))
                   for ex in examples]
        start = time.perf_counter()
        outputs = self.llm.generate(prompts, params, use_tqdm=False) if prompts else []
        seconds = time.perf_counter() - start
        answers = [out.outputs[0] for out in outputs]
        eos = self.tokenizer.eos_token_id
        return ScoreResult.of_answers(objective, examples, [a.text.strip() for a in answers], seconds,
                                      [answer_length(a.token_ids, eos) for a in answers])


@contextlib.contextmanager
def _tmpfs_file(weights: list[tuple[str, torch.Tensor]]) -> Iterator[Path]:
    """The weights as one safetensors file in RAM-backed tmpfs (a temp dir where there is none),
    removed when the block ends."""
    from safetensors.torch import save_file

    root = TMPFS if Path(TMPFS).is_dir() else None
    with tempfile.TemporaryDirectory(prefix="soup-search-", dir=root) as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file({name: tensor.contiguous() for name, tensor in weights}, str(path))
        yield path
