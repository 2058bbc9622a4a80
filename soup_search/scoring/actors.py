"""Scorer actors: long-lived Ray actors that each hold one built model.

``ScorerWorker`` is a plain class (testable without Ray); ``ScorerPool`` wraps it with
``ray.remote`` at the edge, with fractional CPUs, a GPU where asked, and Ray's restart
and retry settings so that a crashed scorer is rebuilt and its call retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from soup_search.errors import SoupSearchError
from soup_search.scoring.base import ObjectiveSpec, ScoreResult


def make_scorer(backend: str, template: str | Path, batch_size: int = 256, threads: int | None = None):
    """The scorer registered as ``backend``: ``hf`` (transformers) or ``vllm``."""
    if backend == "hf":
        from soup_search.scoring.hf import HFScorer

        return HFScorer(template, batch_size=batch_size, threads=threads)
    if backend == "vllm":
        from soup_search.scoring.vllm import VLLMScorer

        return VLLMScorer(template, batch_size=batch_size)
    raise SoupSearchError(f"unknown scorer backend {backend!r}; use hf or vllm")


def _as_tensors(parts: Iterable[Mapping[str, np.ndarray]]):
    """Shard results as tensors, zero-copy; uint16 arrays carry bfloat16 bits (numpy has no bf16)."""
    from soup_search.shards import to_torch

    for part in parts:
        for name, array in part.items():
            if isinstance(array, torch.Tensor):
                yield name, array
            else:
                yield name, to_torch(array, torch.bfloat16 if array.dtype == np.uint16 else None)


class ScorerWorker:
    """One scorer plus a cache of built objectives; weights arrive as shard dicts of arrays."""

    def __init__(self, template: str, backend: str = "hf", batch_size: int = 256, threads: int | None = None):
        self.scorer = make_scorer(backend, template, batch_size=batch_size, threads=threads)
        self._objectives: dict[str, object] = {}
        self.calls = 0

    def _objective(self, spec: ObjectiveSpec):
        key = spec.fingerprint()
        if key not in self._objectives:
            self._objectives[key] = spec.build()
        return self._objectives[key]

    def score_parts(self, parts: Sequence, spec: ObjectiveSpec, split: str,
                    categories: Sequence[str] | None = None, held_out: bool = False) -> ScoreResult:
        """Load weights from shard results (dicts of arrays, or ObjectRefs to them) and score."""
        import ray

        if any(isinstance(p, ray.ObjectRef) for p in parts):
            parts = ray.get([p if isinstance(p, ray.ObjectRef) else ray.put(p) for p in parts])
        self.scorer.load_weights(_as_tensors(parts))
        self.calls += 1
        return self.scorer.score(self._objective(spec), split, categories=categories, held_out=held_out)

    def stats(self) -> dict:
        return {"calls": self.calls}


class ScorerPool:
    """``n`` scorer actors on the local cluster, with a free-list queue shared by trials."""

    def __init__(self, template: str | Path, n: int = 2, backend: str = "hf", num_cpus: float = 0.5,
                 num_gpus: float = 0.0, batch_size: int = 256, max_restarts: int = 3):
        import ray
        from ray.util.queue import Queue

        threads = max(1, int(num_cpus)) if num_cpus else 1
        actor_cls = ray.remote(ScorerWorker).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=max_restarts, max_task_retries=max_restarts,
        )
        self.actors = [actor_cls.remote(str(template), backend, batch_size, threads) for _ in range(n)]
        self.free = Queue(maxsize=n, actor_options={"num_cpus": 0})
        for actor in self.actors:
            self.free.put(actor)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.free.shutdown()

    def __enter__(self) -> "ScorerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def score_with_free_scorer(free, parts: Sequence, spec: ObjectiveSpec, split: str,
                           categories: Sequence[str] | None = None, held_out: bool = False) -> ScoreResult:
    """Take a scorer from the free list, score on it, and give it back (used by trials)."""
    import ray

    actor = free.get(block=True)
    try:
        return ray.get(actor.score_parts.remote(list(parts), spec, split, categories, held_out))
    finally:
        free.put(actor)
