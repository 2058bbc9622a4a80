"""A scorer worker: one built scorer plus the objectives it scores, fed with shard results.

Plain Python (no Ray): :mod:`soup_search.engine.scorer_actors` wraps it as an actor. Weights
arrive as the shard group's per-shard ``{name: array}`` dicts and are loaded zero-copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from soup_search.errors import SoupSearchError
from soup_search.io import remote
from soup_search.io.checkpoint import TOKENIZER_FILES
from soup_search.io.safetensors_format import CONFIG_FILE
from soup_search.io.dtypes import array_to_torch
from soup_search.scoring.chunks import ChunkStop, chunk_examples
from soup_search.scoring.hf import HFScorer
from soup_search.scoring.protocol import ObjectiveSpec, ScoreResult, Scorer, WeightsNotLoaded
from soup_search.scoring.vllm import VLLMScorer

BACKENDS = ("hf", "vllm")


def make_scorer(backend: str, template: str | Path, batch_size: int = 256, threads: int | None = None,
                vllm: Mapping | None = None) -> Scorer:
    """The scorer registered as ``backend``: ``hf`` (transformers) or ``vllm`` (the extra is
    imported only when a vLLM scorer is built; ``vllm``: its engine options, ``resources.vllm``)."""
    if backend == "hf":
        return HFScorer(template, batch_size=batch_size, threads=threads)
    if backend == "vllm":
        return VLLMScorer(template, batch_size=batch_size, **dict(vllm or {}))
    raise SoupSearchError(f"unknown scorer backend {backend!r}; use one of {', '.join(BACKENDS)}")


def local_template(template: str | Path, cache_dir: str | None = None) -> Path:
    """A local folder to build the scorer's model from: the checkpoint itself, or for a URL its
    config and tokenizer files fetched on this node (the weights arrive from the shards)."""
    if not remote.is_url(template):
        return Path(template)
    return remote.local_files(str(template), (CONFIG_FILE, *TOKENIZER_FILES), cache_dir)


def shard_tensors(parts: Iterable[Mapping[str, np.ndarray]]):
    """Shard results as ``(name, tensor)`` pairs, zero-copy; uint16 arrays carry bfloat16 bits."""
    for part in parts:
        for name, array in part.items():
            if isinstance(array, torch.Tensor):
                yield name, array
            else:
                yield name, array_to_torch(array, torch.bfloat16 if array.dtype == np.uint16 else None)


class ScorerWorker:
    """One scorer plus a cache of built objectives (each built once per process)."""

    def __init__(self, template: str, backend: str = "hf", batch_size: int = 256, threads: int | None = None,
                 cache_dir: str | None = None, vllm: Mapping | None = None):
        self.scorer = make_scorer(backend, local_template(template, cache_dir), batch_size=batch_size,
                                  threads=threads, vllm=vllm)
        self._objectives: dict[str, object] = {}
        self.calls = 0
        self.loaded: str | None = None  # the load_id of the weights held (None: the template's)

    def objective(self, spec: ObjectiveSpec):
        key = spec.fingerprint()
        if key not in self._objectives:
            self._objectives[key] = spec.build()
        return self._objectives[key]

    def score_parts(self, spec: ObjectiveSpec, split: str, held_out: bool,
                    *parts: Mapping[str, np.ndarray]) -> ScoreResult:
        """Load the weights of ``parts`` (one dict per shard) and score them on ``split``."""
        self.loaded = None
        self.scorer.load_weights(shard_tensors(parts))
        self.calls += 1
        return self.scorer.score(self.objective(spec), split, held_out=held_out)

    def load_parts(self, load_id: str, *parts: Mapping[str, np.ndarray]) -> int:
        """Load the weights of ``parts`` (one dict per shard) under ``load_id``, to score them chunk by chunk."""
        self.calls += 1
        self.loaded = None
        n = self.scorer.load_weights(shard_tensors(parts))
        self.loaded = load_id
        return n

    def score_chunks(self, spec: ObjectiveSpec, split: str, chunks: int, load_id: str,
                     earlier: Sequence[ScoreResult] = (), stop: ChunkStop | None = None,
                     *parts: Mapping[str, np.ndarray]) -> list[ScoreResult]:
        """Score the chunks of ``chunks`` of a search split (never held out) after the ``earlier``
        ones, in order, on the weights loaded as ``load_id``; given ``parts``, load them as
        ``load_id`` first (:meth:`load_parts`, in the same call). Returns the new chunks' results.
        After each chunk but the last, ``stop`` may end the call early, given every chunk so far:
        one call, not one per chunk, so the scorer never idles between chunks waiting for the
        trial. A scorer that holds other weights (a restarted actor holds the template's) raises
        :class:`WeightsNotLoaded` instead of scoring them."""
        if parts:
            self.load_parts(load_id, *parts)
        if self.loaded != load_id:
            raise WeightsNotLoaded(f"scorer holds weights {self.loaded!r}, not {load_id!r}; load them again")
        objective = self.objective(spec)
        examples = objective.examples(split)
        new: list[ScoreResult] = []
        for chunk in range(len(earlier), chunks):
            new.append(self.scorer.score_examples(objective, chunk_examples(examples, chunk, chunks)))
            if stop is not None and chunk < chunks - 1 and stop.says_stop([*earlier, *new]):
                break
        return new

    def stats(self) -> dict:
        return {"calls": self.calls}
