"""Disk-to-disk merging: stream tensor by tensor from safetensors inputs into a new checkpoint.

The candidate set is validated first (same architecture, config, tensor names and shapes,
vocabulary: :func:`load_candidates`), and every tensor's parameters are resolved and checked
before anything is written. Each output file's header is computed up front from the
shapes and dtypes and written first. Then, for a tensor whose merge is a weighted sum
(:meth:`MergeMethod.linear_form`: linear, interpolate, task_arithmetic without
sparsification), it is merged in chunks of :data:`CHUNK` elements:
``pread`` of the chunk from each input with a non-zero coefficient into a small reused
buffer (no memory map grows the resident set; a zero-weight model is not read), the same
torch ops as :func:`soup_search.merge.merge_tensor` into a reused float32 buffer (elementwise,
so the output is bit-identical), and the bytes go straight to the output file. Every input
byte is read once and every output byte written once, with no other copy; peak memory is
a few MiB of buffers. Other methods (ties needs whole tensors for its top-k) read whole
tensors into per-input buffers and call :meth:`MergePlan.merge`; so does a non-CPU
``device``. The arithmetic runs on one torch thread (see :data:`MERGE_THREADS`). A whole-model
method (``fda``: forward and backward passes through the models) is the one exception: the
validated checkpoints go to :meth:`MergeMethod.merge_checkpoints`, and its state dict is written.

NaN/Inf check: for a weighted sum the *result* is checked (a non-finite input with a non-zero coefficient always makes the result
non-finite: NaN*c = NaN, Inf*c = ±Inf, Inf-Inf = NaN), and only a non-finite result sends
us to the inputs to name the culprit; a model with coefficient zero is ignored. For other
methods (ties: pruning can drop an entry, and a zero weight multiplies NaN into NaN) every
input is checked. Both use a cheap test first: a finite ``sum()`` proves every element finite.

The output is a Hugging Face checkpoint (config.json with the new dtype, safetensors files
and index, tokenizer files, README.md card), written atomically: on any error nothing is
left behind, by :func:`soup_search.io.safetensors_format.write_streamed_checkpoint` (shared with
:func:`soup_search.io.checkpoint.write_checkpoint`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from soup_search.candidates import load_candidates
from soup_search.errors import CandidateError, MergeError
from soup_search.io.checkpoint import TOKENIZER_FILES, CheckpointReader, write_checkpoint
from soup_search.io.dtypes import st_dtype, torch_dtype
from soup_search.io.safetensors_format import DEFAULT_FILE_BYTES, TensorSpec, file_layout, write_streamed_checkpoint
from soup_search.merge import output_dtype
from soup_search.merge.card import model_card
from soup_search.merge.plan import MergePlan
from soup_search.merge.recipe import MergeRecipe

# torch threads for the arithmetic: the loop is memory-bound, and a second OpenMP thread that
# spin-waits between ops while this thread is in read()/write() costs more than it gains
MERGE_THREADS = 1
# elements merged at a time: 1 MiB of float32, so what pread just copied is still in cache
# when it is summed (whole 16 MB tensors cost ~30% more CPU), and buffers stay small for any model
CHUNK = 2**18


def resolve_model_paths(recipe: MergeRecipe, root: str | Path) -> dict[str, Path]:
    """Model key -> path: absolute keys as they are, relative ones under ``root`` (the YAML's folder)."""
    def resolve(key: str) -> Path:
        path = Path(key).expanduser()
        return path if path.is_absolute() else (Path(root) / path).resolve()

    keys = recipe.model_keys
    if recipe.tokenizer_source and recipe.tokenizer_source != "base":
        keys = [*keys, recipe.tokenizer_source]
    return {k: resolve(k) for k in keys}


def merge_to_disk(
    recipe: MergeRecipe,
    out_dir: str | Path,
    paths: Mapping[str, str | Path],
    *,
    max_file_bytes: int = DEFAULT_FILE_BYTES,
    allow_negative: bool = False,
    allow_nonfinite: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Merge the checkpoints at ``paths`` (model key -> directory) by ``recipe`` into ``out_dir``.

    Weight files hold at most ``max_file_bytes`` each (a larger tensor gets a file of its own).
    Runs torch on :data:`MERGE_THREADS` intra-op threads meanwhile (process-wide; restored after).
    """
    keys = recipe.model_keys
    missing = [k for k in keys if k not in paths]
    if missing:
        raise MergeError(f"no path given for model(s) {missing}; pass one path per model of the recipe")
    target = Path(out_dir).expanduser().resolve()
    for key in keys:
        if Path(paths[key]).expanduser().resolve() == target:
            raise MergeError(f"output directory {str(out_dir)!r} is the input model {key!r}; choose another OUT_DIR")
    candidates = load_candidates([Path(paths[k]) for k in keys], names=keys)
    readers = {k: candidates.reader(k) for k in keys}
    config_key = recipe.base_model or recipe.models[0].model
    config = dict(readers[config_key].config)
    out_name = recipe.out_dtype or recipe.dtype
    if out_name:
        config["dtype"] = out_name
        if "torch_dtype" in config:
            config["torch_dtype"] = out_name
    extra = {"README.md": model_card(recipe)}
    extra.update(_tokenizer_files(recipe, paths, candidates.tokenizer_dir))
    if recipe.method.whole_model:
        for reader in readers.values():
            reader.close()
        return _merge_whole_models(recipe, out_dir, {k: Path(paths[k]) for k in keys}, list(candidates.tensor_infos),
                                   config=config, extra=extra, max_file_bytes=max_file_bytes,
                                   allow_nonfinite=allow_nonfinite, device=device)
    plan = recipe.plan(config.get("num_hidden_layers"))
    names = list(candidates.tensor_infos)
    plan.check(names, allow_negative=allow_negative)

    first_key = plan.keys[0] if plan.keys else plan.base_key
    specs = []
    for name in names:
        in_dtype = readers[first_key].info(name).dtype
        dtype = torch_dtype(in_dtype)
        if dtype.is_floating_point:
            in_dtype = st_dtype(output_dtype(recipe, dtype))
        specs.append(TensorSpec(name, tuple(candidates.tensor_infos[name].shape), in_dtype))
    files = file_layout(specs, max_file_bytes)
    merger = _Merger(plan, {k: _Source(r) for k, r in readers.items()}, first_key,
                     check=not allow_nonfinite, device=device)

    def tensors() -> Iterator[tuple[str, torch.Tensor | Iterator[torch.Tensor]]]:
        for spec in _track([s for part in files for s in part], progress):
            yield spec.name, merger.merge(spec)

    threads = torch.get_num_threads()
    torch.set_num_threads(MERGE_THREADS)
    try:
        return write_streamed_checkpoint(out_dir, files, tensors(), config=config, extra_files=extra,
                                         metadata={"soup_search_recipe": recipe.fingerprint()})
    finally:
        torch.set_num_threads(threads)
        merger.close()
        for reader in readers.values():
            reader.close()


def _merge_whole_models(recipe: MergeRecipe, out_dir: str | Path, paths: Mapping[str, Path], names: list[str], *,
                        config: dict, extra: dict, max_file_bytes: int, allow_nonfinite: bool, device: str) -> Path:
    """A whole-model method (fda): the merged state dict from :meth:`MergeMethod.merge_checkpoints`,
    on the CPU and :data:`MERGE_THREADS` torch threads, checked and cast to the output dtype."""
    if device != "cpu":
        raise MergeError(f"{recipe.merge_method} runs on the CPU here; leave out --device {device}")
    threads = torch.get_num_threads()
    torch.set_num_threads(MERGE_THREADS)
    try:
        state = recipe.method.merge_checkpoints(recipe, paths)
    finally:
        torch.set_num_threads(threads)
    with CheckpointReader(paths[recipe.base_model]) as base:
        tensors = []
        for name in names:
            dtype = torch_dtype(base.info(name).dtype)
            if not dtype.is_floating_point:
                tensors.append((name, base.get(name)))
                continue
            merged = state[name]
            if not allow_nonfinite and not _all_finite(merged):
                raise MergeError(f"{recipe.merge_method}: merged tensor {name!r} holds NaN or Inf values; "
                                 "check the inputs, or lower the method's learning rates")
            tensors.append((name, merged.to(output_dtype(recipe, dtype))))
    return write_checkpoint(out_dir, tensors, config=config, max_file_bytes=max_file_bytes, extra_files=extra,
                            metadata={"soup_search_recipe": recipe.fingerprint()})


class _Source:
    """One input checkpoint, read with ``pread`` into one reused buffer (grown to the largest read)."""

    def __init__(self, reader: CheckpointReader):
        self.reader = reader
        self._fds: dict[Path, int] = {}
        self._buffer = self._view = None

    def _fd(self, file: Path) -> int:
        fd = self._fds.get(file)
        if fd is None:
            try:
                fd = self._fds[file] = os.open(file, os.O_RDONLY)
            except OSError as err:
                raise CandidateError(f"{file}: cannot open ({err.strerror or err}); "
                                     "check the path and permissions") from None
            if os.fstat(fd).st_size != self.reader.file_size(file):
                os.close(fd)
                del self._fds[file]
                raise CandidateError(f"{file}: changed since it was opened; re-download or re-save the checkpoint")
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return fd

    def read(self, name: str, start: int = 0, count: int | None = None) -> torch.Tensor:
        """Elements ``[start, start + count)`` of tensor ``name`` (flat; the whole tensor, shaped, by
        default) as a view of this source's buffer: valid until the next read."""
        info = self.reader.info(name)
        dtype = torch_dtype(info.dtype)
        size = dtype.itemsize
        nbytes = info.nbytes if count is None else count * size
        if self._buffer is None or self._buffer.numel() < nbytes:
            self._buffer = torch.empty(nbytes, dtype=torch.uint8)
            self._view = memoryview(self._buffer.numpy())
        fd, offset, done = self._fd(info.file), info.offset + start * size, 0
        while done < nbytes:
            n = os.preadv(fd, [self._view[done:nbytes]], offset + done)
            if n <= 0:
                raise CandidateError(f"{info.file}: ends inside tensor {name!r} (changed since it was opened); "
                                     "re-download or re-save the checkpoint")
            done += n
        flat = self._buffer[:nbytes].view(dtype)
        return flat.view(info.shape) if count is None else flat

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._buffer = self._view = None


class _Merger:
    """Merges one tensor at a time into reused buffers, exactly as :meth:`MergePlan.merge` would."""

    def __init__(self, plan: MergePlan, sources: Mapping[str, _Source], first_key: str, *, check: bool, device: str):
        self.plan, self.sources, self.first_key = plan, sources, first_key
        self.check, self.device = check, device
        self._buffers: dict = {}  # torch dtype -> flat buffer of CHUNK elements

    def merge(self, spec: TensorSpec) -> torch.Tensor | Iterator[torch.Tensor]:
        """Output tensor ``spec``: whole, or as flat chunks (views of reused buffers: write each
        before asking for the next)."""
        name, out_dtype = spec.name, torch_dtype(spec.dtype)
        numel = math.prod(spec.shape)
        if not out_dtype.is_floating_point:  # integer buffers: copied from the first model
            source = self.sources[self.first_key]
            return (source.read(name, i, min(CHUNK, numel - i)) for i in range(0, numel, CHUNK))
        form = self.plan.linear_form(name) if self.device == "cpu" else None
        if form is not None:
            return self._weighted_sum(name, numel, out_dtype, *form)
        merged = self._general(name)
        return merged if merged.dtype == out_dtype else merged.to(out_dtype)

    def _buffer(self, dtype, count: int) -> torch.Tensor:
        buf = self._buffers.get(dtype)
        if buf is None:
            buf = self._buffers[dtype] = torch.empty(CHUNK, dtype=dtype)
        return buf[:count]

    def _weighted_sum(self, name: str, numel: int, out_dtype, coeffs, base_coeff) -> Iterator[torch.Tensor]:
        """:func:`soup_search.merge.method.weighted_sum`, chunk by chunk (elementwise ops: same bits)."""
        terms = [(k, c) for k, c in zip(self.plan.keys, coeffs) if c != 0]
        if self.plan.base_key is not None and base_coeff != 0:
            terms.append((self.plan.base_key, base_coeff))
        for start in range(0, numel, CHUNK):
            count = min(CHUNK, numel - start)
            out = self._buffer(torch.float32, count)
            if not terms:
                out.zero_()
            read = []
            for i, (key, c) in enumerate(terms):
                t = self.sources[key].read(name, start, count)
                read.append((key, t))
                if i:
                    out.add_(t, alpha=c)  # a bf16/f16 t is upcast elementwise into the float32 buffer
                elif t.dtype == torch.float32:
                    torch.mul(t, c, out=out)
                else:
                    out.copy_(t).mul_(c)
            if self.check and not _all_finite(out):  # a non-finite input always shows here; name it
                for key, t in read:
                    if not bool(torch.isfinite(t).all()):
                        raise _nonfinite(key, name)
            yield out if out_dtype == torch.float32 else self._buffer(out_dtype, count).copy_(out)

    def _general(self, name: str) -> torch.Tensor:
        """Any method (ties, a GPU device): inputs checked one by one, then ``plan.merge``."""
        plan = self.plan
        inputs = {k: self.sources[k].read(name) for k in plan.keys}
        base = self.sources[plan.base_key].read(name) if plan.base_key else None
        if self.check:
            for key, t in (*inputs.items(), *(((plan.base_key, base),) if base is not None else ())):
                if not _all_finite(t):
                    raise _nonfinite(key, name)
        if self.device != "cpu":
            inputs = {k: t.to(self.device) for k, t in inputs.items()}
            base = base.to(self.device) if base is not None else None
        return plan.merge(name, inputs, base).cpu()

    def close(self) -> None:
        self._buffers.clear()
        for source in self.sources.values():
            source.close()


def _all_finite(t: torch.Tensor) -> bool:
    """Whether ``t`` holds no NaN/Inf: a finite sum proves it in one pass with no allocation."""
    if t.dtype in (torch.float32, torch.float64):
        if math.isfinite(t.sum()):
            return True
    elif t.dtype in (torch.float16, torch.bfloat16) and math.isfinite(t.sum(dtype=torch.float32)):
        return True
    return bool(torch.isfinite(t).all())  # a sum that overflowed, or another dtype


def _nonfinite(key: str, name: str) -> MergeError:
    return MergeError(f"model {key!r}: tensor {name!r} holds NaN or Inf values; "
                      "fix that checkpoint or pass --allow-nonfinite")


# -- helpers -----------------------------------------------------------------------------------
def _tokenizer_files(recipe: MergeRecipe, paths: Mapping[str, str | Path], fallback: Path | None) -> dict[str, bytes]:
    """The tokenizer files of ``tokenizer_source`` (``base`` = the base model), else the first model's."""
    if recipe.tokenizer_source == "base":
        src = Path(paths[recipe.base_model])
    elif recipe.tokenizer_source:
        src = Path(paths.get(recipe.tokenizer_source, recipe.tokenizer_source))
        if not src.is_dir():
            raise CandidateError(f"tokenizer_source {recipe.tokenizer_source!r} ({src}) is not a directory; "
                                 "give a model directory holding tokenizer files")
    else:
        src = Path(paths[recipe.models[0].model])
        if not any((src / f).is_file() for f in TOKENIZER_FILES) and fallback is not None:
            src = fallback
    return {f: (src / f).read_bytes() for f in TOKENIZER_FILES if (src / f).is_file()}


def _track(specs: list[TensorSpec], enabled: bool) -> Iterator[TensorSpec]:
    if not enabled:
        yield from specs
        return
    columns = (TextColumn("merging"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("", total=len(specs))
        for spec in specs:
            bar.update(task, description=spec.name)
            yield spec
            bar.advance(task)
