"""Disk-to-disk merging: stream tensor by tensor from safetensors inputs into a new checkpoint.

Peak memory is about one tensor per input (memory-mapped reads), its float32 merge, and
the output shard being filled; whole models are never loaded. The pool is validated first
(same architecture, config, tensor names and shapes, vocabulary: :func:`load_pool`), and every
tensor's parameters are resolved and checked before anything is written. The output is a
Hugging Face checkpoint (config.json with the new dtype, safetensors shards and index,
tokenizer files, README.md card), written atomically: on any error nothing is left behind.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from soup_search.checkpoint import TOKENIZER_FILES, write_checkpoint
from soup_search.errors import CandidateError, MergeError
from soup_search.merge import output_dtype
from soup_search.merge.card import model_card
from soup_search.merge.recipe import MergeRecipe

if TYPE_CHECKING:
    import torch

DEFAULT_SHARD_BYTES = 5 * 2**30


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
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    allow_negative: bool = False,
    allow_nonfinite: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Merge the checkpoints at ``paths`` (model key -> directory) by ``recipe`` into ``out_dir``."""
    from soup_search.candidates import load_pool

    keys = recipe.model_keys
    missing = [k for k in keys if k not in paths]
    if missing:
        raise MergeError(f"no path given for model(s) {missing}; pass one path per model of the recipe")
    target = Path(out_dir).expanduser().resolve()
    for key in keys:
        if Path(paths[key]).expanduser().resolve() == target:
            raise MergeError(f"output directory {str(out_dir)!r} is the input model {key!r}; choose another OUT_DIR")
    pool = load_pool([Path(paths[k]) for k in keys], names=keys)
    readers = {k: pool.reader(k) for k in keys}
    config_key = recipe.base_model or recipe.models[0].model
    config = dict(readers[config_key].config)
    plan = recipe.plan(config.get("num_hidden_layers"))
    names = list(pool.tensor_infos)
    plan.check(names, allow_negative=allow_negative)

    out_name = recipe.out_dtype or recipe.dtype
    if out_name:
        config["dtype"] = out_name
        if "torch_dtype" in config:
            config["torch_dtype"] = out_name
    extra = {"README.md": model_card(recipe)}
    extra.update(_tokenizer_files(recipe, paths, pool.tokenizer_dir))

    def tensors() -> Iterator[tuple[str, torch.Tensor]]:
        for name in _track(names, progress):
            inputs = {k: readers[k].get(name, device) for k in plan.keys}
            base = readers[plan.base_key].get(name, device) if plan.base_key else None
            first = next(iter(inputs.values()), base)
            if not first.is_floating_point():  # integer buffers: copied from the first model
                yield name, first.cpu()
                continue
            if not allow_nonfinite:
                _check_finite(name, {**inputs, **({plan.base_key: base} if base is not None else {})})
            merged = plan.merge(name, inputs, base)
            yield name, merged.to(output_dtype(recipe, first.dtype))

    try:
        return write_checkpoint(out_dir, tensors(), config=config, max_shard_bytes=max_shard_bytes,
                                metadata={"soup_search_recipe": recipe.fingerprint()}, extra_files=extra)
    finally:
        for reader in readers.values():
            reader.close()


def _check_finite(name: str, tensors: Mapping[str, torch.Tensor]) -> None:
    import torch

    for key, t in tensors.items():
        if not bool(torch.isfinite(t).all()):
            raise MergeError(f"model {key!r}: tensor {name!r} holds NaN or Inf values; "
                             "fix that checkpoint or pass --allow-nonfinite")


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


def _track(names: list[str], enabled: bool) -> Iterator[str]:
    if not enabled:
        yield from names
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("merging"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("", total=len(names))
        for name in names:
            bar.update(task, description=name)
            yield name
            bar.advance(task)
