"""CLI: ``sweep`` (interpolation between two models, over λ or λ_attn × λ_mlp) and ``transfer``
(a reasoning vector added to a target, over α). Both score every merge on the dev split through
shard and scorer actors and write ``<stem>.json``, ``<stem>.csv`` and ``<stem>.png`` to ``--out``."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Optional

import typer

from soup_search.errors import ConfigError

#: the most points one --lambdas / --alphas may give
MAX_POINTS = 1001
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*:\s*({_NUMBER})\s*:\s*({_NUMBER})\s*$")

#: how each role is named to the user
LABELS = {"a": "A", "b": "B", "target": "--target", "plus": "--plus", "minus": "--minus"}
VALUES_HELP = "START:STOP:STEP (STOP included) or a comma list"
MODEL_HELP = "a checkpoint folder, or a model of the config's zoo (base, expert_...)"
CONFIG_HELP = ("search config YAML: its objective and resources, and candidates.zoo for zoo model names "
               "(default: the toy objective and the default zoo on a local Ray)")


def parse_values(text: str, option: str) -> list[float]:
    """``START:STOP:STEP`` (STOP included when the steps reach it) or ``V1,V2,...``, as sorted
    distinct numbers; a ConfigError naming ``option`` otherwise."""
    fix = "use START:STOP:STEP (e.g. 0:1:0.1) or a comma list (e.g. 0,0.5,1)"
    match = _RANGE.match(text)
    if match:
        start, stop, step = (float(g) for g in match.groups())
        if step <= 0 or stop < start:
            raise ConfigError(option, [f"{text!r} needs STEP > 0 and STOP >= START; {fix}"])
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > MAX_POINTS:
            raise ConfigError(option, [f"{text!r} gives {count} points, more than {MAX_POINTS}; use a larger STEP"])
        values = [start + i * step for i in range(count)]
    else:
        try:
            values = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values or ":" in text:
            raise ConfigError(option, [f"{text!r} is not a range or a list of numbers; {fix}"])
        if len(values) > MAX_POINTS:
            raise ConfigError(option, [f"{text!r} gives {len(values)} points, more than {MAX_POINTS}"])
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(option, [f"{text!r} holds a number that is not finite; {fix}"])
    return sorted({float(f"{v:.12g}") + 0.0 for v in values})


def curve_config(path: Path | None):
    """The config a curve takes its objective and resources from (the default one without ``path``)."""
    from soup_search.config import load_config, parse_config

    if path is not None:
        return load_config(path)
    return parse_config({"name": "curve", "candidates": {"zoo": "default"}}, source="the default curve config")


def sweep(
    a: str = typer.Argument(..., metavar="A", help=f"the model at λ = 1: {MODEL_HELP}"),
    b: str = typer.Argument(..., metavar="B", help=f"the model at λ = 0: {MODEL_HELP}"),
    lambdas: str = typer.Option("0:1:0.1", "--lambdas", help=f"λ values: {VALUES_HELP}"),
    per_module: bool = typer.Option(False, "--per-module", help="a 2-D grid of λ_attn × λ_mlp over the λ values "
                                    "(embeddings, norms and lm_head take their mean), with a heatmap"),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    out: Path = typer.Option(..., "--out", help="output folder"),
) -> None:
    """Score λ·A + (1 − λ)·B on the dev split for every λ: accuracy, generated tokens, regimes."""
    from soup_search.errors import CandidateError
    from soup_search.pipeline.curve_family import module_grid_family, sweep_family
    from soup_search.pipeline.curve_inputs import SAME_BASE_MAX, base_distance

    values = parse_values(lambdas, "--lambdas")
    if per_module and len(values) ** 2 > MAX_POINTS:
        raise ConfigError("--lambdas", [f"{lambdas!r} makes a {len(values)} × {len(values)} grid with --per-module, "
                                        f"more than {MAX_POINTS} merges; use a larger STEP"])
    cfg = curve_config(config)
    candidates, models, names = _inputs(cfg, {"a": a, "b": b})
    if names["a"] == names["b"]:
        raise CandidateError(f"A and B are the same checkpoint ({models['a']}); give two models to interpolate")
    distance = base_distance(models["a"], models["b"], candidates.cache_dir)
    note = f"base distance of A and B: {distance:.3f}" + (
        f" (above {SAME_BASE_MAX}: fine-tunes of different bases, whose interpolation is rarely meaningful)"
        if distance > SAME_BASE_MAX else "")
    family = (module_grid_family if per_module else sweep_family)(names, values)
    _score_and_show(cfg, candidates, models, family, out, notes=(note,))


def transfer(
    target: str = typer.Option(..., "--target", help=f"the model the vector is added to: {MODEL_HELP}"),
    plus: str = typer.Option(..., "--plus", help=f"θ_a of the vector θ_a − θ_b: {MODEL_HELP}"),
    minus: str = typer.Option(..., "--minus", help=f"θ_b of the vector (a fine-tune of θ_a's base): {MODEL_HELP}"),
    alphas: str = typer.Option("-1:2:0.25", "--alphas", help=f"α values: {VALUES_HELP}"),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    out: Path = typer.Option(..., "--out", help="output folder"),
) -> None:
    """Score θ_target + α·(θ_plus − θ_minus) on the dev split for every α (α < 0: the ablation)."""
    from soup_search.pipeline.curve_family import transfer_family
    from soup_search.pipeline.curve_inputs import SAME_BASE_MAX, check_same_base

    values = parse_values(alphas, "--alphas")
    cfg = curve_config(config)
    candidates, models, names = _inputs(cfg, {"target": target, "plus": plus, "minus": minus})
    distance = check_same_base(candidates, names["plus"], names["minus"])
    note = f"base distance of plus and minus: {distance:.3f} (at most {SAME_BASE_MAX}: one base)"
    _score_and_show(cfg, candidates, models, transfer_family(names, values), out, notes=(note,))


def _inputs(cfg, specs: dict[str, str]):
    """The candidate set of the curve's models, each role's location and candidate name (no Ray yet)."""
    from soup_search.pipeline.curve_inputs import curve_candidates, resolve_model

    models = {role: resolve_model(cfg, LABELS[role], spec) for role, spec in specs.items()}
    candidates, names = curve_candidates(cfg, models)
    return candidates, models, names


def _score_and_show(cfg, candidates, models: dict, family, out: Path, notes: tuple[str, ...] = ()) -> None:
    from rich.console import Console
    from rich.markup import escape

    from soup_search.cli.tables import curve_table
    from soup_search.cli.ui import RichProgress
    from soup_search.engine.session import open_session
    from soup_search.io.atomic import ensure_dir
    from soup_search.pipeline.curve import score_family, write_curve

    start = time.perf_counter()
    out = ensure_dir(out)
    console = Console()
    with open_session(cfg, candidates, out / "state") as session:
        curve = score_family(session, family, models, RichProgress(console), notes)
    data = curve.to_json()
    paths = write_curve(data, out)
    console.print(curve_table(data, console.width))
    for regime in data["regimes"]:
        shown = ["accuracy", "tokens", *(c for c in regime["changes"] if c not in ("accuracy", "tokens"))]
        values = ", ".join(f"{k} {a:.3g} → {b:.3g}" for k, (a, b) in regime["values"].items() if k in shown)
        kind = regime["kind"] + (f" in {', '.join(regime['changes'])}" if regime["changes"] else "")
        console.print(f"regime {family.axes[0]} {regime['start']:g} … {regime['end']:g}: [bold]{escape(kind)}[/] "
                      f"({escape(values)})")
    for note in notes:
        console.print(note)
    console.print(f"{len(family.points)} merges scored in {curve.seconds:.0f} s ({time.perf_counter() - start:.0f} s "
                  f"with starting the actors); wrote {', '.join(str(p) for p in paths.values())}")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
    app.command("transfer")(transfer)
