"""One shard of every candidate, resident in memory, merged on demand (the hot path of a trial).

:func:`partition_by_bytes` splits the tensor names of a candidates into byte-balanced shards;
a :class:`Shard` loads its tensors of every candidate once and merges them for any recipe.
``Shard`` is a plain class (no Ray); :mod:`soup_search.engine.shard_group` wraps it as an actor.

Layout: for each candidate, the shard's tensors of one input dtype live in ONE flat
buffer (tensor views into it), so the weighted-sum fast path (any method whose
:meth:`~soup_search.merge.method.MergeMethod.linear_form` gives coefficients: linear,
interpolate, task_arithmetic) is a handful of large, cache-blocked kernels instead of
thousands of small ones. The output buffers are
allocated once and reused by the actor (Ray copies the result into the object store
when the method returns); used directly, :meth:`Shard.merge` returns fresh arrays.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soup_search.errors import MergeError
from soup_search.io.checkpoint import CheckpointReader
from soup_search.io.dtypes import torch_dtype
from soup_search.merge import MergePlan, MergeRecipe, merge_tensor, output_dtype

#: elements per block of the weighted-sum fast path: inputs stream through, the block stays in L2
BLOCK = 1 << 18


def partition_by_bytes(infos: Mapping[str, Any], n: int) -> list[list[str]]:
    """Split tensor names into ``n`` shards of about equal bytes.

    Greedy, largest tensor first onto the currently lightest shard (ties: lowest shard
    index; equal sizes: by name), so the result is deterministic. ``infos`` maps a name to
    anything with ``.nbytes`` (a ``TensorInfo``) or to a byte count. Names inside each
    shard keep the order of ``infos``. ``n`` larger than the number of tensors is an
    error: a shard without tensors would be an idle actor holding a CPU slot.
    """
    if n < 1:
        raise MergeError(f"number of shards must be at least 1, got {n}; pass n_shards >= 1")
    if n > len(infos):
        raise MergeError(
            f"{n} shards for only {len(infos)} tensors; pass n_shards <= {len(infos)}")
    sizes = {name: int(getattr(info, "nbytes", info)) for name, info in infos.items()}
    heap = [(0, i) for i in range(n)]
    owner: dict[str, int] = {}
    for name in sorted(sizes, key=lambda k: (-sizes[k], k)):
        load, i = heapq.heappop(heap)
        owner[name] = i
        heapq.heappush(heap, (load + sizes[name], i))
    return [[name for name in infos if owner[name] == i] for i in range(n)]


class Shard:
    """The tensors ``tensor_names`` of every candidate, loaded once and kept resident on ``device``.

    ``candidates`` is the candidate set's ``[(name, checkpoint path), ...]``; model keys in the
    recipes given to :meth:`merge` are these names.
    """

    def __init__(self, candidates: Sequence[tuple[str, str | Path]], tensor_names: Sequence[str],
                 device: str = "cpu", num_threads: int | None = None):
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.device = torch.device(device)
        self.names = list(tensor_names)
        self.candidates = [str(name) for name, _ in candidates]
        readers = {str(name): CheckpointReader(path) for name, path in candidates}
        first = readers[self.candidates[0]]
        self.num_layers = first.config.get("num_hidden_layers")
        self.shapes = {n: tuple(first.info(n).shape) for n in self.names}
        self.dtypes = {n: torch_dtype(first.info(n).dtype) for n in self.names}
        # group by input dtype: one flat buffer per (candidate, dtype), tensors are views
        self._groups: dict[torch.dtype, list[str]] = {}
        for n in self.names:
            self._groups.setdefault(self.dtypes[n], []).append(n)
        self._offsets = {}
        for names in self._groups.values():
            off = 0
            for n in names:
                numel = int(np.prod(self.shapes[n], dtype=np.int64))
                self._offsets[n] = (off, off + numel)
                off += numel
        self._flat: dict[str, dict[torch.dtype, torch.Tensor]] = {}
        self._tensors: dict[str, dict[str, torch.Tensor]] = {}
        for cand, reader in readers.items():
            flats, views = {}, {}
            for dtype, names in self._groups.items():
                # a candidate may store other dtypes than the first: keep its own if it has
                # one for the group, else float32 (merges accumulate in float32 anyway)
                own = {torch_dtype(reader.info(n).dtype) for n in names}
                store = own.pop() if len(own) == 1 else torch.float32
                total = self._offsets[names[-1]][1]
                flat = torch.empty(total, dtype=store, device=self.device)
                for n in names:
                    a, b = self._offsets[n]
                    src = reader.get(n)
                    if tuple(src.shape) != self.shapes[n]:
                        raise MergeError(
                            f"tensor {n} of candidate {cand} has shape {tuple(src.shape)}, expected "
                            f"{self.shapes[n]}; use checkpoints of one architecture")
                    flat[a:b].copy_(src.reshape(-1))
                    views[n] = flat[a:b].view(self.shapes[n])
                flats[dtype] = flat
            self._flat[cand], self._tensors[cand] = flats, views
            reader.close()
        self._out: dict[torch.dtype, torch.Tensor] = {}  # reused output buffers, by output dtype
        self.merges = 0
        self.last_merge_s = 0.0

    # ---------------------------------------------------------------- merging
    def merge(self, recipe: MergeRecipe, reuse_buffers: bool = False) -> dict[str, np.ndarray]:
        """Merge every tensor of this shard for ``recipe``; ``{name: array}`` in the output dtype.

        bfloat16 outputs (numpy has no bfloat16) come back as ``uint16`` arrays holding the
        raw bits; :func:`~soup_search.io.dtypes.array_to_torch` turns them back. With ``reuse_buffers`` the arrays are
        views of buffers that the next merge overwrites: only for a caller that copies them
        at once (the Ray actor, whose return value is copied into the object store).
        """
        t0 = time.perf_counter()
        plan = recipe.plan(self.num_layers)
        keys = list(plan.keys) + ([plan.base_key] if plan.base_key else [])
        unknown = [k for k in keys if k not in self._tensors]
        if unknown:
            raise MergeError(f"recipe uses models {unknown} that are not in the candidate set "
                             f"{self.candidates}; use candidate names as model keys")
        result: dict[str, np.ndarray] = {}
        for in_dtype, names in self._groups.items():
            out = self._out_buffer(in_dtype, output_dtype(recipe, in_dtype), names, reuse_buffers)
            if not in_dtype.is_floating_point:  # integer buffers: copied from the first model
                out.copy_(self._flat[keys[0]][in_dtype])
            else:
                for start, stop, terms in self._runs(plan, names):
                    if terms is None:
                        self._generic_into(out, recipe, names[start:stop], plan)
                    else:
                        a, b = self._offsets[names[start]][0], self._offsets[names[stop - 1]][1]
                        self._weighted_sum_into(out, in_dtype, a, b, terms)
            host = out if out.device.type == "cpu" else out.cpu()
            if host.dtype == torch.bfloat16:
                host = host.view(torch.uint16)
            flat = host.numpy()
            for n in names:
                a, b = self._offsets[n]
                result[n] = flat[a:b].reshape(self.shapes[n])
        self.merges += 1
        self.last_merge_s = time.perf_counter() - t0
        return result

    def _out_buffer(self, in_dtype, out_dtype, names, reuse: bool) -> torch.Tensor:
        total = self._offsets[names[-1]][1]
        key = (in_dtype, out_dtype)
        if not reuse:
            return torch.empty(total, dtype=out_dtype, device=self.device)
        if key not in self._out:
            self._out[key] = torch.empty(total, dtype=out_dtype, device=self.device)
        return self._out[key]

    @staticmethod
    def _runs(plan: MergePlan, names: Sequence[str]) -> list[tuple[int, int, tuple | None]]:
        """``(start, stop, terms)`` over ``names``: consecutive tensors whose merge is the same
        weighted sum (:meth:`MergePlan.linear_form`) form one run with ``terms`` the
        ``(model key, coefficient)`` pairs (one run in all for a plain soup); consecutive
        tensors with no linear form form runs with ``terms`` None."""
        runs: list[list] = []
        for i, n in enumerate(names):
            form = plan.linear_form(n)
            terms = None
            if form is not None:
                coeffs, base_coeff = form
                terms = tuple(zip(plan.keys, coeffs))
                if plan.base_key is not None:
                    terms += ((plan.base_key, base_coeff),)
            if runs and runs[-1][2] == terms:
                runs[-1][1] = i + 1
            else:
                runs.append([i, i + 1, terms])
        return [tuple(r) for r in runs]

    def _weighted_sum_into(self, out: torch.Tensor, in_dtype, start: int, stop: int,
                           coeffs: Sequence[tuple[str, float]]):
        """``out = sum(c_i * x_i)`` in float32, block by block over the flat buffers.

        The same torch ops, in the same order, as :func:`soup_search.merge.method.weighted_sum`
        (multiply the first input, ``add_(x, alpha=c)`` the others, skip zero coefficients),
        so results are bit-identical; blocking only keeps the float32 accumulator in cache
        when the output dtype is not float32.
        """
        terms = [(self._flat[k][in_dtype], c) for k, c in coeffs if c != 0]
        if not terms:
            out[start:stop].zero_()
            return
        f32 = out.dtype == torch.float32
        acc = None if f32 else torch.empty(min(BLOCK, stop - start), dtype=torch.float32, device=out.device)
        for s in range(start, stop, BLOCK):
            e = min(stop, s + BLOCK)
            a = out[s:e] if f32 else acc[: e - s]
            x0, c0 = terms[0]
            if x0.dtype == torch.float32:
                torch.mul(x0[s:e], c0, out=a)
            else:
                a.copy_(x0[s:e])
                a.mul_(c0)
            for x, c in terms[1:]:
                a.add_(x[s:e], alpha=c)
            if not f32:
                out[s:e].copy_(a)

    def _generic_into(self, out: torch.Tensor, recipe: MergeRecipe, names: Sequence[str], plan: MergePlan):
        for n in names:
            a, b = self._offsets[n]
            merged = merge_tensor(recipe, n, {k: self._tensors[k][n] for k in plan.keys},
                                  self._tensors[plan.base_key][n] if plan.base_key else None,
                                  num_layers=self.num_layers)
            out[a:b].copy_(merged.reshape(-1))

    # ---------------------------------------------------------------- introspection
    def stats(self) -> dict:
        """Merges done, tensors, resident bytes, device, last merge time, process id and CPU seconds used."""
        resident = sum(f.numel() * f.element_size() for fl in self._flat.values() for f in fl.values())
        return {"merges": self.merges, "tensors": len(self.names), "resident_bytes": resident,
                "device": str(self.device), "last_merge_s": self.last_merge_s, "pid": os.getpid(),
                "cpu_s": time.process_time()}

    def copy_probe(self, nbytes: int, repeats: int = 3) -> tuple[float, float]:
        """(wall, CPU) seconds of the fastest of ``repeats`` ``np.copyto`` of ``nbytes`` (bandwidth probe)."""
        src = np.ones(max(1, nbytes // 4), dtype=np.float32)
        dst = np.zeros_like(src)
        wall = cpu = float("inf")
        for _ in range(repeats):
            t, c = time.perf_counter(), time.thread_time()
            np.copyto(dst, src)
            wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.thread_time() - c)
        return wall, cpu
