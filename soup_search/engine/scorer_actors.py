"""Scorer actors: long-lived Ray actors that each hold one built model.

:class:`~soup_search.scoring.worker.ScorerWorker` is the plain class; :class:`ScorerActorImpl`
holds one inside an actor and :class:`ScorerActors` starts them at the edge, with fractional
CPUs, a GPU where asked, and Ray's restart and retry settings so that a crashed scorer is
rebuilt and its call retried. Trials share the actors through a free-list queue.

Light on purpose: whoever receives a handle to an actor (a trial process, from the free list)
imports the module of its class, so the scorer's libraries (torch, transformers) are imported
inside the actor, when it starts.
"""

from __future__ import annotations

from pathlib import Path

import ray
from ray.util.queue import Queue


class ScorerActorImpl:
    """A :class:`~soup_search.scoring.worker.ScorerWorker` in an actor, which can say where it runs."""

    def __init__(self, template: str, backend: str = "hf", batch_size: int = 256, threads: int | None = None,
                 cache_dir: str | None = None, vllm: dict | None = None):
        from soup_search.scoring.worker import ScorerWorker

        self.worker = ScorerWorker(template, backend, batch_size, threads, cache_dir, vllm)

    def score_parts(self, spec, split, held_out, *parts):
        return self.worker.score_parts(spec, split, held_out, *parts)

    def load_parts(self, load_id, *parts):
        return self.worker.load_parts(load_id, *parts)

    def score_chunks(self, spec, split, chunks, load_id, earlier=(), stop=None, *parts):
        return self.worker.score_chunks(spec, split, chunks, load_id, earlier, stop, *parts)

    def stats(self) -> dict:
        return self.worker.stats()

    def node_id(self) -> str:
        """The Ray node this actor runs on (it changes when a restart moves it)."""
        return ray.get_runtime_context().get_node_id()

    def gpu_ids(self) -> list:
        return ray.get_gpu_ids()


class ScorerActors:
    """``n`` scorer actors on the cluster, with a free-list queue shared by trials.

    ``vllm``: the engine options of vLLM scorers (``resources.vllm``).
    ``free_list_at``: a scheduling strategy for the free list's actor (the session pins it beside
    the driver, so that losing a worker node cannot lose it)."""

    def __init__(self, template: str | Path, n: int = 2, backend: str = "hf", num_cpus: float = 0.5,
                 num_gpus: float = 0.0, batch_size: int = 256, max_restarts: int = 3, free_list_at=None,
                 cache_dir: str | Path | None = None, vllm: dict | None = None):
        threads = max(1, int(num_cpus)) if num_cpus else 1
        actor_cls = ray.remote(ScorerActorImpl).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=max_restarts, max_task_retries=max_restarts,
        )
        cache = str(cache_dir) if cache_dir is not None else None
        self.actors = [actor_cls.remote(str(template), backend, batch_size, threads, cache, vllm) for _ in range(n)]
        where = {"scheduling_strategy": free_list_at} if free_list_at is not None else {}
        self.free = Queue(maxsize=n, actor_options={"num_cpus": 0, **where})
        # filled without waiting for the queue's worker to start: the shard group starts meanwhile
        self._filled = self.free.actor.put_nowait_batch.remote(list(self.actors))

    def wait_ready(self) -> None:
        """Block until every scorer has built its model and the free list holds them all (a failed
        build raises here)."""
        ray.get([self._filled, *(actor.stats.remote() for actor in self.actors)])

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.free.shutdown()

    def __enter__(self) -> "ScorerActors":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
