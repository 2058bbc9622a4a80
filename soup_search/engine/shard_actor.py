"""The shard actor's class: a :class:`~soup_search.engine.shard.Shard` inside a Ray actor.

Light on purpose. Whoever receives a handle to an actor (a trial process, with the shard group's
handles) imports the module of its class, so this module imports only Ray: the shard and torch
are imported inside the actor, when it starts.
"""

from __future__ import annotations

import ray

#: actor restarts / task retries after a crash (the actor reloads its shard on restart)
MAX_RESTARTS = 3


def pick_device(use_gpu: bool) -> str:
    """The one place a shard's device is chosen: the actor's (Ray-assigned) GPU, else the CPU."""
    import torch

    return "cuda:0" if use_gpu and torch.cuda.is_available() else "cpu"


class ShardActorImpl:
    """One shard in an actor: picks its device itself (one place) and reuses buffers."""

    def __init__(self, candidates, tensor_names, use_gpu: bool = False, num_threads: int | None = None,
                 memory: str = "resident", cache_dir: str | None = None):
        from soup_search.engine.shard import Shard

        self.shard = Shard(candidates, tensor_names, device=pick_device(use_gpu), num_threads=num_threads,
                           memory=memory, cache_dir=cache_dir)

    def merge(self, recipe):
        # buffers reused: safe, as Ray copies the returned arrays into the object store before the next call runs
        return self.shard.merge(recipe, reuse_buffers=True)

    def stats(self) -> dict:
        return self.shard.stats()

    def copy_probe(self, nbytes: int, repeats: int = 3) -> tuple[float, float]:
        return self.shard.copy_probe(nbytes, repeats)

    def ready(self) -> bool:
        return True

    def node_id(self) -> str:
        """The Ray node this actor runs on (it changes when a restart moves it)."""
        return ray.get_runtime_context().get_node_id()

    def gpu_ids(self) -> list:
        return ray.get_gpu_ids()


#: the Ray actor: a crashed actor is restarted (reloading its shard) and its call retried
ShardActor = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)(ShardActorImpl)
