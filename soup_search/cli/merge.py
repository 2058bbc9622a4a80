"""CLI commands: ``merge`` (a mergekit YAML into a checkpoint) and ``export`` (a soup as mergekit YAML)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import typer

from soup_search.errors import ConfigError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([KMGT]?I?B?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in ``"5GB"`` (10^9), ``"5GiB"`` (2^30), ``"500MB"``, ``"20KB"`` or a plain number, as in transformers."""
    match = _SIZE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError("--max-shard-size", [f"{text!r} is not a size; use e.g. 5GB, 500MB or 2GiB"])
    unit = match.group(2).upper().rstrip("B")
    binary = unit.endswith("I")
    power = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}[unit.rstrip("I")]
    return int(float(match.group(1)) * ((2**10 if binary else 10**3) ** power))


def parse_weights(text: str) -> dict[str, float]:
    """``"m0=0.5,m1=0.3"`` -> ``{"m0": 0.5, "m1": 0.3}``; all problems reported together."""
    weights, problems = {}, []
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.rpartition("=")
        try:
            if not sep or not key:
                raise ValueError
            weights[key.strip()] = float(value)
        except ValueError:
            problems.append(f"{item!r} is not NAME=NUMBER")
    if not weights and not problems:
        problems.append("no weights given; use NAME=NUMBER,NAME=NUMBER")
    if problems:
        raise ConfigError("--weights", problems)
    return weights


def _parse_params(items: list[str]) -> dict:
    import yaml

    params, problems = {}, []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"{item!r} is not KEY=VALUE")
            continue
        params[key.strip()] = yaml.safe_load(value)
    if problems:
        raise ConfigError("--param", problems)
    return params


def check_device(device: str) -> None:
    """Refuse a torch device this machine does not have (``cuda`` with no GPU, ``cuda:7`` with two)."""
    import torch

    try:
        torch.empty(1, device=torch.device(device))
    except (RuntimeError, AssertionError) as err:  # torch asserts when built without CUDA
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError("--device", [f"{device!r} cannot be used here ({detail}); use --device cpu "
                                       "or a device this machine has"]) from None


def merge(
    config: Path = typer.Argument(..., help="mergekit YAML recipe (model paths relative to its folder, or absolute)."),
    out_dir: Path = typer.Argument(..., help="Output model directory (written atomically; never an existing file "
                                             "or a folder soup-search did not write)."),
    max_shard_size: str = typer.Option("5GB", help="Largest safetensors shard, e.g. 5GB, 500MB, 2GiB."),
    allow_negative: bool = typer.Option(False, "--allow-negative", help="Accept negative linear weights."),
    allow_nonfinite: bool = typer.Option(False, "--allow-nonfinite", help="Merge tensors holding NaN/Inf."),
    device: str = typer.Option("cpu", help="Device for the arithmetic (cpu, cuda, cuda:1, ...)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    force: bool = typer.Option(False, "--force", help="Replace OUT_DIR if an earlier soup-search merge wrote it."),
) -> None:
    """Merge checkpoints by a mergekit YAML recipe, streaming tensor by tensor, into OUT_DIR."""
    from rich.console import Console

    from soup_search.io.atomic import check_target
    from soup_search.merge import MergeRecipe
    from soup_search.merge.stream import merge_to_disk, resolve_model_paths

    check_target(out_dir, overwrite=force)
    shard_bytes = parse_size(max_shard_size)
    check_device(device)
    recipe = MergeRecipe.from_yaml(config)
    console = Console(stderr=True)
    for note in recipe.notes():
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    paths = resolve_model_paths(recipe, config.parent)
    out = merge_to_disk(recipe, out_dir, paths, max_file_bytes=shard_bytes, allow_negative=allow_negative,
                        allow_nonfinite=allow_nonfinite, device=device, progress=not quiet)
    typer.echo(f"merged {len(recipe.models)} models ({recipe.merge_method}) into {out}")


def export(
    results: Optional[Path] = typer.Argument(None, help="results.json of a search; its best.recipe is exported."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the mergekit YAML."),
    weights: Optional[str] = typer.Option(None, help="Soup weights NAME=W,... (names may be model paths)."),
    method: str = typer.Option("linear", help="Merge method for --weights."),
    base: Optional[str] = typer.Option(None, help="Base model path (task_arithmetic, ties, tsv, wudi)."),
    param: list[str] = typer.Option([], "--param", help="Top-level parameter KEY=VALUE (repeatable), e.g. density=0.5."),
    force: bool = typer.Option(False, "--force", help="Replace the file at --out if there is one."),
) -> None:
    """Write a soup as mergekit YAML, from --weights or from a search's results.json."""
    from soup_search.io.atomic import atomic_file
    from soup_search.merge import MergeRecipe

    if (results is None) == (weights is None):
        raise ConfigError("export", ["give either RESULTS_JSON or --weights (exactly one)"])
    if out.is_dir():
        raise ConfigError("--out", [f"{out} is a folder; give the path of the YAML file to write, e.g. {out / 'soup.yaml'}"])
    if out.exists() and not force:
        raise ConfigError("--out", [f"{out} exists; pass --force to replace it or choose another file"])
    if results is not None:
        recipe = _recipe_from_results(results)
    else:
        recipe = MergeRecipe.model_validate(
            {"models": [{"model": k, "parameters": {"weight": w}} for k, w in parse_weights(weights).items()],
             "merge_method": method, "base_model": base, "parameters": _parse_params(param)},
            context={"source": "export"})
    with atomic_file(out) as fh:
        fh.write(recipe.to_yaml())
    typer.echo(f"wrote {out} ({recipe.merge_method}, {len(recipe.models)} models, fingerprint {recipe.fingerprint()})")


def _recipe_from_results(path: Path):
    from soup_search.merge import MergeRecipe

    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise ConfigError(str(path), [f"cannot read ({err.strerror or err})"]) from None
    except json.JSONDecodeError as err:
        raise ConfigError(str(path), [f"invalid JSON ({err})"]) from None
    recipe = data.get("best", {}).get("recipe") if isinstance(data, dict) and isinstance(data.get("best"), dict) else None
    if not isinstance(recipe, dict):
        raise ConfigError(str(path), ["no best.recipe mapping; pass the results.json written by a finished search"])
    return MergeRecipe.model_validate(recipe, context={"source": f"{path} best.recipe"})


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("merge")(merge)
    app.command("export")(export)
