"""One shard of every candidate, held in memory, merged on demand (the hot path of a trial).

:func:`partition_by_bytes` splits the tensor names of a candidates into byte-balanced shards;
a :class:`Shard` holds its tensors of every candidate and merges them for any recipe.
``Shard`` is a plain class (no Ray); :mod:`soup_search.engine.shard_group` wraps it as an actor.

Two ways to hold them (``memory``): ``"resident"`` copies them once into RAM (or GPU memory),
the fast path below; ``"mmap"`` keeps read-only views onto the checkpoint files (each
tensor's bytes at its ``TensorInfo.offset``), so the data lives in the OS page cache and a
candidate set larger than RAM still merges (pages are read from disk as needed). Both run
the same torch ops in the same order: their results are bit-identical.

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
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soup_search.errors import MergeError
from soup_search.io import remote
from soup_search.io.checkpoint import CheckpointReader, TensorInfo
from soup_search.io.dtypes import torch_dtype
from soup_search.merge import MergePlan, MergeRecipe, merge_tensor, output_dtype

#: elements per block of the weighted-sum fast path: inputs stream through, the block stays in L2
BLOCK = 1 << 18
#: how a shard holds the candidates' tensors (``resources.shard_memory``)
MEMORY_MODES = ("resident", "mmap")
#: unsigned numpy dtype of each element size: the raw bits a mapped tensor is viewed through
_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


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
    """The tensors ``tensor_names`` of every candidate, held on ``device`` and merged for any recipe.

    ``candidates`` is the candidate set's ``[(name, checkpoint path), ...]``; model keys in the
    recipes given to :meth:`merge` are these names. ``memory="resident"`` copies the tensors
    once into flat buffers on ``device``; ``memory="mmap"`` keeps views onto the files' pages
    (no copy; on a GPU each tensor is copied over for the merge that uses it).
    """

    def __init__(self, candidates: Sequence[tuple[str, str | Path]], tensor_names: Sequence[str],
                 device: str = "cpu", num_threads: int | None = None, memory: str = "resident",
                 cache_dir: str | Path | None = None):
        if memory not in MEMORY_MODES:
            raise MergeError(f"shard memory {memory!r} is unknown; use one of {', '.join(MEMORY_MODES)}")
        if memory == "mmap" and any(remote.is_url(path) for _, path in candidates):
            raise MergeError("shard memory 'mmap' maps local files, but candidates are URLs; "
                             "use resources.shard_memory: resident, or mount the bucket")
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.memory = memory
        self.device = torch.device(device)
        self.names = list(tensor_names)
        self.candidates = [str(name) for name, _ in candidates]
        readers = {str(name): CheckpointReader(path, cache_dir) for name, path in candidates}
        first = readers[self.candidates[0]]
        self.num_layers = first.config.get("num_hidden_layers")
        self.shapes = {n: tuple(first.info(n).shape) for n in self.names}
        self.dtypes = {n: torch_dtype(first.info(n).dtype) for n in self.names}
        for cand, reader in readers.items():
            for n in self.names:
                if tuple(reader.info(n).shape) != self.shapes[n]:
                    raise MergeError(
                        f"tensor {n} of candidate {cand} has shape {tuple(reader.info(n).shape)}, expected "
                        f"{self.shapes[n]}; use checkpoints of one architecture")
        # group by input dtype: one flat output (and resident) buffer per dtype, tensors are views
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
        self._flat: dict[str, dict[torch.dtype, torch.Tensor]] = {}  # resident only
        self._tensors: dict[str, dict[str, torch.Tensor]] = {}
        self.mapped_bytes = 0
        maps: dict[Path, np.memmap] = {}
        for cand, reader in readers.items():
            if memory == "mmap":
                self._tensors[cand] = {n: _map_tensor(reader.info(n), maps) for n in self.names}
                self.mapped_bytes += sum(reader.info(n).nbytes for n in self.names)
            else:
                self._flat[cand], self._tensors[cand] = self._load(reader)
            reader.close()
        self._out: dict[torch.dtype, torch.Tensor] = {}  # reused output buffers, by output dtype
        self.merges = 0
        self.last_merge_s = 0.0

    def _load(self, reader: CheckpointReader) -> tuple[dict, dict]:
        """One candidate's tensors copied into one flat buffer per dtype group: (flats, views)."""
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
                flat[a:b].copy_(reader.get(n).reshape(-1))
                views[n] = flat[a:b].view(self.shapes[n])
            flats[dtype] = flat
        return flats, views

    def _tensor(self, cand: str, name: str) -> torch.Tensor:
        """Candidate ``cand``'s tensor ``name`` on this shard's device (a mapped one is copied to a GPU)."""
        return self._tensors[cand][name].to(self.device)

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
            if not in_dtype.is_floating_point:  # integer tensors: copied from the first model
                if self.memory == "resident":
                    out.copy_(self._flat[keys[0]][in_dtype])
                else:
                    for n in names:
                        a, b = self._offsets[n]
                        out[a:b].copy_(self._tensor(keys[0], n).reshape(-1))
            else:
                for start, stop, terms in self._runs(plan, names):
                    if terms is None:
                        self._generic_into(out, recipe, names[start:stop], plan)
                    elif self.memory == "resident":  # the whole run at once, over the flat buffers
                        a, b = self._offsets[names[start]][0], self._offsets[names[stop - 1]][1]
                        _weighted_sum_into(out, a, b, [(self._flat[k][in_dtype], c) for k, c in terms])
                    else:  # tensor by tensor, over the mapped views
                        for n in names[start:stop]:
                            a, b = self._offsets[n]
                            _weighted_sum_into(out[a:b], 0, b - a,
                                               [(self._tensor(k, n).reshape(-1), c) for k, c in terms if c != 0])
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

    def _generic_into(self, out: torch.Tensor, recipe: MergeRecipe, names: Sequence[str], plan: MergePlan):
        for n in names:
            a, b = self._offsets[n]
            merged = merge_tensor(recipe, n, {k: self._tensor(k, n) for k in plan.keys},
                                  self._tensor(plan.base_key, n) if plan.base_key else None,
                                  num_layers=self.num_layers)
            out[a:b].copy_(merged.reshape(-1))

    # ---------------------------------------------------------------- introspection
    def stats(self) -> dict:
        """Merges done, tensors, memory mode, resident bytes (copies of the candidates' tensors: 0
        when mapped), mapped bytes, device, last merge time, process id, CPU seconds used and bytes
        fetched from URLs by this process."""
        resident = sum(f.numel() * f.element_size() for fl in self._flat.values() for f in fl.values())
        return {"merges": self.merges, "tensors": len(self.names), "memory": self.memory,
                "resident_bytes": resident, "mapped_bytes": self.mapped_bytes, "device": str(self.device),
                "last_merge_s": self.last_merge_s, "pid": os.getpid(), "cpu_s": time.process_time(),
                "fetched_bytes": remote.fetched_total()}

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


def _weighted_sum_into(out: torch.Tensor, start: int, stop: int, terms: Sequence[tuple[torch.Tensor, float]]):
    """``out[start:stop] = sum(c_i * x_i[start:stop])`` in float32, block by block; ``terms`` are
    ``(flat tensor, coefficient)`` pairs indexed like ``out``.

    The same torch ops, in the same order, as :func:`soup_search.merge.method.weighted_sum`
    (multiply the first input, ``add_(x, alpha=c)`` the others, skip zero coefficients),
    so results are bit-identical; blocking only keeps the float32 accumulator in cache
    when the output dtype is not float32.
    """
    terms = [(x, c) for x, c in terms if c != 0]
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


def _map_tensor(info: TensorInfo, maps: dict[Path, np.memmap]) -> torch.Tensor:
    """A read-only tensor over ``info``'s bytes in its file (``maps`` holds one map per file): no copy,
    the data stays in the page cache. Raw bits are viewed as an unsigned integer of the element's
    size, then as the tensor's dtype (numpy has no bfloat16)."""
    mm = maps.get(info.file)
    if mm is None:
        mm = maps[info.file] = np.memmap(info.file, dtype=np.uint8, mode="r")
    dtype = torch_dtype(info.dtype)
    raw = mm[info.offset:info.offset + info.nbytes].view(_BITS[dtype.itemsize])
    with warnings.catch_warnings():  # read-only memory: torch warns, and never writes to its inputs here
        warnings.simplefilter("ignore", UserWarning)
        bits = torch.from_numpy(raw)
    return bits.view(dtype).view(info.shape)
