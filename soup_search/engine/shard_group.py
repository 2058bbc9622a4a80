"""Shards of a candidate set held by Ray actors; every trial merges in parallel, in memory.

:class:`ShardGroup` partitions the candidate set's tensors by bytes, starts one
:class:`~soup_search.engine.shard.Shard` actor per part in a placement group, and merges a
recipe on all of them at once. Results stay in the object store as one
``{name: ndarray}`` per shard (read zero-copy by whoever scores them); an LRU keyed by
the recipe fingerprint hands back the same refs for a recipe merged again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import ray
from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from soup_search.candidates import CandidateSet, load_candidates
from soup_search.engine.shard import partition_by_bytes
from soup_search.engine.shard_actor import ShardActor
from soup_search.engine.shard_merges import ShardMerges
from soup_search.errors import MergeError
from soup_search.io.checkpoint import TOKENIZER_FILES, write_checkpoint
from soup_search.io.dtypes import array_to_torch, torch_dtype
from soup_search.merge import output_dtype


class ShardGroup:
    """A candidate set split over ``n_shards`` Ray actors that merge recipes in memory.

    ``candidates``: a ``CandidateSet`` from :func:`soup_search.candidates.load_candidates`, or the
    specs to give it. ``placement``: ``"PACK"`` (one node if it fits) or ``"SPREAD"``
    (shards on different nodes). ``use_gpu=None`` uses GPUs when the cluster has any.
    ``num_cpus`` per actor is fractional so shards and scorers share the cores;
    ``num_threads`` is the torch threads per actor (default: 1); ``num_gpus`` per actor (default:
    the cluster's GPUs shared out, when it uses them).
    """

    def __init__(self, candidates, n_shards: int = 2, placement: str = "PACK",
                 use_gpu: bool | None = None, cache_size: int = 8, num_cpus: float = 0.25,
                 num_threads: int | None = 1, timeout_s: float = 120.0, num_gpus: float | None = None,
                 memory: str = "resident"):
        if placement not in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
            raise MergeError(f"placement {placement!r} is unknown; use PACK or SPREAD")
        self.candidates = _as_candidate_set(candidates)
        self.parts = partition_by_bytes(self.candidates.tensor_infos, n_shards)
        gpus = ray.cluster_resources().get("GPU", 0) if ray.is_initialized() else 0
        self.use_gpu = bool(gpus) if use_gpu is None else bool(use_gpu)
        if self.use_gpu and not gpus:
            raise MergeError("use_gpu=True but the Ray cluster has no GPU; pass use_gpu=False")
        if num_gpus is None:  # a group on its own takes the cluster's GPUs
            num_gpus = min(1.0, gpus / n_shards) if self.use_gpu else 0
        bundle = {"CPU": num_cpus} | ({"GPU": num_gpus} if num_gpus else {})
        self._pg = placement_group([dict(bundle) for _ in self.parts], strategy=placement)
        self._strategy, self._bundle, self._rescheduling_since = placement, bundle, None
        self._remove_pg = remove_placement_group
        try:
            ray.get(self._pg.ready(), timeout=timeout_s)
        except Exception as exc:
            remove_placement_group(self._pg)
            raise MergeError(f"could not place {n_shards} shard actors with {bundle} each within "
                             f"{timeout_s:.0f}s ({type(exc).__name__}); free resources or use fewer shards") from None
        cands = [(c.name, str(c.path)) for c in self.candidates.members]
        self.actors = [
            ShardActor.options(
                num_cpus=num_cpus, num_gpus=num_gpus,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=self._pg, placement_group_bundle_index=i),
            ).remote(cands, part, use_gpu=self.use_gpu, num_threads=num_threads, memory=memory,
                     cache_dir=str(self.candidates.cache_dir) if self.candidates.cache_dir else None)
            for i, part in enumerate(self.parts)
        ]
        #: what a trial holds: the actors, to merge on (torch-free, see :mod:`~soup_search.engine.shard_merges`)
        self.merges = ShardMerges(self.actors, self.candidates.names, cache_size)
        try:
            ray.get([a.ready.remote() for a in self.actors], timeout=timeout_s)
        except Exception:
            self.close()
            raise

    # ---------------------------------------------------------------- merging
    def merge(self, recipe, cache: bool = True) -> list:
        """One ObjectRef per shard, each resolving to ``{name: ndarray}`` (see :class:`ShardMerges`)."""
        return self.merges.merge(recipe, cache=cache)

    def merged_state_dict(self, recipe, cache: bool = True) -> dict:
        """The merged weights as ``{name: torch.Tensor}`` (zero-copy views of the object store)."""
        try:
            parts = ray.get(self.merge(recipe, cache=cache))
        except ray.exceptions.RayError:
            self.forget(recipe)  # do not hand out failed refs again
            raise
        out = {}
        for part in parts:
            for name, array in part.items():
                dtype = output_dtype(recipe, torch_dtype(self.candidates.tensor_infos[name].dtype))
                out[name] = array_to_torch(array, dtype)
        return {name: out[name] for name in self.candidates.tensor_infos}  # the candidate set's tensor order

    def merge_to_checkpoint(self, recipe, out_dir: str | Path, config=None,
                            tokenizer_src: str | Path | None = None) -> Path:
        """Write the merged model as a checkpoint (safetensors, config, tokenizer files) to ``out_dir``."""
        state = self.merged_state_dict(recipe)
        src = Path(tokenizer_src) if tokenizer_src is not None else self.candidates.tokenizer_dir
        extra = {f: (src / f).read_bytes() for f in TOKENIZER_FILES if src and (src / f).is_file()}
        return write_checkpoint(out_dir, state.items(), config=config if config is not None else self.candidates.config,
                                metadata={"soup_search_recipe": recipe.fingerprint()}, extra_files=extra)

    # ---------------------------------------------------------------- introspection / lifetime
    def stats(self) -> list[dict]:
        return ray.get([a.stats.remote() for a in self.actors])

    def copy_probe(self, nbytes: int, repeats: int = 3) -> list[tuple[float, float]]:
        """Each actor's (wall, CPU) seconds of its fastest ``np.copyto`` of ``nbytes``, all at once."""
        return ray.get([a.copy_probe.remote(nbytes, repeats) for a in self.actors])

    def placement_problem(self, grace_s: float = 60.0) -> str | None:
        """Why the shard actors have had nowhere to live for ``grace_s`` (their placement group could
        not be rescheduled after a node was lost), or None."""
        state = placement_group_table(self._pg).get("state") if self._pg is not None else None
        if state != "RESCHEDULING":
            self._rescheduling_since = None
            return None
        now = time.monotonic()
        self._rescheduling_since = self._rescheduling_since or now
        if now - self._rescheduling_since < grace_s:
            return None
        return (f"the {len(self.actors)} shard actors ({self._strategy}, {self._bundle} each) cannot be placed "
                f"again on the nodes left")

    def node_ids(self) -> list[str]:
        """The Ray node of each shard actor, in shard order."""
        return ray.get([a.node_id.remote() for a in self.actors])

    def forget(self, recipe) -> None:
        """Drop ``recipe`` from the cache (e.g. after its refs failed)."""
        self.merges.forget(recipe)

    def close(self) -> None:
        """Kill the actors and remove the placement group (idempotent)."""
        if hasattr(self, "merges"):
            self.merges.clear()
        for a in getattr(self, "actors", []):
            ray.kill(a, no_restart=True)
        self.actors = []
        if getattr(self, "_pg", None) is not None and self._remove_pg is not None:
            self._remove_pg(self._pg)
            self._pg = None

    def __getstate__(self) -> dict:
        """A trial process gets the actors and candidates, with an empty recipe cache of its own;
        only the process that built the group may close it."""
        return {**self.__dict__, "_pg": None, "_remove_pg": None}

    def __enter__(self) -> ShardGroup:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _as_candidate_set(candidates):
    if isinstance(candidates, CandidateSet):
        return candidates
    specs = candidates
    if isinstance(specs, (str, Path)):
        specs = [specs]
    return load_candidates(list(specs) if isinstance(specs, Sequence) else specs)
