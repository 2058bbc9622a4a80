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
- **Prompts** are token ids (``TokensPrompt``) built by the one prompt builder the HF scorer
  uses (:mod:`~soup_search.scoring.prompts`, through :func:`~soup_search.scoring.answers.answer_examples`):
  vLLM would tokenize a string prompt its own way, without the BOS the zoo models were trained with.
  Answers are read from the generated token ids by the same function too.
- **Multiple choice** ranks choices by prompt logprobs (``prompt_logprobs=1``, one token generated).
- **The prefix cache** is reset after every load (every soup scores the same prompts), and a
  reset vLLM refuses is an error, not stale answers.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from transformers import AutoTokenizer, GenerationConfig

from soup_search.errors import CandidateError, SoupSearchError
from soup_search.scoring.answers import answer_examples
from soup_search.scoring.prompts import eos_ids
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
        self.eos = eos_ids(self.tokenizer, _generation_config(template))
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
        return answer_examples(self, objective, examples)

    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int, stop: Sequence[str] = ()) -> list[list[int]]:
        """Greedy continuations' token ids (the answer is read from them, as for HF, not from vLLM's text)."""
        if not prompts:
            return []
        params = self._sampling_params(temperature=0, max_tokens=max_new_tokens, stop=list(stop) or None)
        outputs = self.llm.generate([self._tokens_prompt(prompt_token_ids=ids) for ids in prompts], params,
                                    use_tqdm=False)
        return [list(out.outputs[0].token_ids) for out in outputs]

    def sum_logprobs(self, requests: list[tuple[list[int], list[int]]]) -> list[float]:
        """Summed log-probabilities of continuations from vLLM's prompt logprobs (one token is
        generated and ignored): each position's entry holds the prompt's own token."""
        if not requests:
            return []
        params = self._sampling_params(temperature=0, max_tokens=1, prompt_logprobs=1)
        outputs = self.llm.generate([self._tokens_prompt(prompt_token_ids=c + x) for c, x in requests], params,
                                    use_tqdm=False)
        sums = []
        for (context, continuation), out in zip(requests, outputs, strict=True):
            entries = out.prompt_logprobs[len(context):len(context) + len(continuation)]
            sums.append(sum(entry[token].logprob for entry, token in zip(entries, continuation, strict=True)))
        return sums


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


def _generation_config(template: str | Path):
    """The template's generation config (its end-of-sequence ids), or None when it has none."""
    try:
        return GenerationConfig.from_pretrained(template)
    except OSError:
        return None
