"""CLI commands: ``bench`` (performance benchmarks: merge, gpu, search, demo, methods, lineage, service)."""

from __future__ import annotations

from pathlib import Path

import typer

bench_app = typer.Typer(help="Benchmarks of the merge and search hot paths.", no_args_is_help=True)


@bench_app.command("merge")
def merge(
    models: int = typer.Option(3, help="Number of generated checkpoints."),
    params: str = typer.Option("100M", help="Parameters per checkpoint, one size or a list (e.g. 25M,100M)."),
    shards: str = typer.Option("1,2,4,8", help="Shard actors for the in-memory merge, one count or a list."),
    memory: str = typer.Option("resident,mmap", help="How shards hold the tensors: resident, mmap or both."),
    dtype: str = typer.Option("float32", help="float32, bfloat16 or float16."),
    repeats: int = typer.Option(3, help="In-memory merges to time (best is reported)."),
    threads: int = typer.Option(1, help="Torch threads per shard actor."),
    keep: Path | None = typer.Option(None, help="Keep the generated checkpoints in this dir."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
    vs_mergekit: bool = typer.Option(False, "--vs-mergekit", help="Instead: time whole `soup-search merge` and "
                                     "`mergekit-yaml` processes on one linear recipe, alternately, --repeats each."),
) -> None:
    """Time disk-to-disk and in-memory merging (per model size, shard count and shard memory mode)
    against this machine's memory-copy bandwidth."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.merge import check_options, run_bench, to_json, versus_mergekit
    from soup_search.engine.cluster import start_ray
    from soup_search.io.atomic import atomic_file

    check_options(models, params, shards, dtype, repeats, memory)  # every problem, before Ray starts
    console = Console()
    if vs_mergekit:
        with console.status("bench merge --vs-mergekit") as status:
            v = versus_mergekit(models=models, params=params, dtype=dtype, repeats=repeats, keep=keep,
                                progress=lambda msg: status.update(msg))
        table = Table(title=f"whole processes: {v.models} × {v.params / 1e6:.1f}M {v.dtype} params "
                            f"({v.model_bytes / 1e9:.3f} GB each), linear, {v.repeats} alternating rounds")
        table.add_column("command")
        table.add_column("median", justify="right")
        table.add_column("runs", justify="right")
        table.add_row("soup-search merge", f"{v.soup_search_median_s:.2f} s", " ".join(f"{s:.2f}" for s in v.soup_search_s))
        table.add_row("mergekit-yaml", f"{v.mergekit_median_s:.2f} s", " ".join(f"{s:.2f}" for s in v.mergekit_s))
        table.add_row("soup-search / mergekit", f"{v.ratio:.2f}×", "")
        console.print(table)
        console.print(f"load average {v.load_avg[0]:.2f} {v.load_avg[1]:.2f} {v.load_avg[2]:.2f} on {v.cpus} CPUs")
        if json_out is not None:
            with atomic_file(json_out) as fh:
                fh.write(to_json(v) + "\n")
        return
    start_ray()
    with console.status("bench merge") as status:
        r = run_bench(models=models, params=params, shards=shards, memory=memory, dtype=dtype,
                      repeats=repeats, keep=keep, num_threads=threads,
                      progress=lambda msg: status.update(msg))
    for d in r.disk_to_disk:
        console.print(f"disk-to-disk merge (merge_to_disk) of {r.models} × {d.params / 1e6:g}M {r.dtype} params "
                      f"({d.model_bytes / 1e9:.3f} GB each): {d.seconds:.3f} s, {d.gbps:.2f} GB/s read+write")
    table = Table(title=f"in-memory merge of one linear soup of {r.models} {r.dtype} models, best of {r.repeats}",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for name in ("params", "shards", "memory", "load s", "merge s", "GB/s", "copy", "% copy", "store", "res."):
        table.add_column(name, justify="left" if name == "memory" else "right", no_wrap=True)
    for row in r.rows:
        table.add_row(f"{row.params / 1e6:g}M", str(row.shards), row.memory, f"{row.load_s:.2f}",
                      f"{row.merge_s:.3f}", f"{row.gbps:.2f}", f"{row.copy_gbps:.2f}", f"{row.ratio:.0%}",
                      f"{row.object_store_bytes / 1e9:.3f}", f"{row.resident_bytes_per_shard / 1e9:.3f}")
    console.print(table)
    console.print("load s: starting the shard actors (copying or mapping their tensors); GB/s: bytes read+written / "
                  "merge s; copy: memory-copy GB/s of the same actors; % copy: in-memory / copy bandwidth; "
                  "store: GB put into the object store per trial (one soup); res.: GB of resident copies in the "
                  "largest shard (0 when mapped). Mapped shards read a warm page cache (the checkpoints were just "
                  "written).")
    console.print(f"load average {r.load_avg[0]:.2f} {r.load_avg[1]:.2f} {r.load_avg[2]:.2f} on {r.cpus} CPUs")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            fh.write(to_json(r) + "\n")


@bench_app.command("gpu")
def gpu(
    size: str = typer.Option("1B", help="Llama body of the candidates: tiny, 1B (Llama-3.2-1B's) or 8B "
                             "(Llama-3-8B's), with the zoo's character tokenizer as vocabulary."),
    candidates: int = typer.Option(3, help="Random candidate checkpoints (one seed each)."),
    soups: int = typer.Option(5, help="Random soups merged, pushed and scored (after one warm-up soup)."),
    examples: int = typer.Option(256, help="Toy dev examples scored per soup (rounded up to a multiple of its "
                                 "8 categories)."),
    dtype: str = typer.Option("bfloat16", help="bfloat16, float16 or float32."),
    shards: int = typer.Option(2, help="Shard actors merging the soups."),
    shard_gpu: float = typer.Option(0.1, "--shard-gpu", help="Share of the GPU each shard actor takes "
                                    "(co-located); the vLLM scorer takes the rest."),
    gpu_memory_utilization: float = typer.Option(0.5, "--gpu-memory-utilization", help="vLLM's share of the "
                                                 "GPU's memory; the shards must fit in what it leaves."),
    shard_memory: str = typer.Option("resident", "--shard-memory", help="How shards hold the candidates: "
                                     "resident (copies on the GPU) or mmap (the soup alone on the GPU)."),
    cpu: bool = typer.Option(False, "--cpu", help="No GPU requested: a smoke run of the same code path (CI, "
                             "with a vLLM that runs on CPU)."),
    keep: Path | None = typer.Option(None, help="Write the candidates into this dir and keep them."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Time, per candidate soup, the merge on GPU shard actors, the weight push into the vLLM scorer and
    the scoring, on one GPU (Ray local).

    Its own single-GPU plan: a search run gives each vLLM scorer a whole GPU, which on one GPU leaves
    the shards none; here the shard actors take --shard-gpu of the GPU each (co-located) and the
    scorer the rest, with vLLM's --gpu-memory-utilization of its memory."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.gpu import (PHASES, GpuBenchOptions, check_machine, check_options, llama_config,
                                       run_bench, tensor_specs, to_json)
    from soup_search.engine.cluster import start_ray
    from soup_search.io.atomic import atomic_file

    opts = GpuBenchOptions(size=size, candidates=candidates, soups=soups, examples=examples, dtype=dtype,
                           shards=shards, shard_gpu=shard_gpu, gpu_memory_utilization=gpu_memory_utilization,
                           shard_memory=shard_memory, cpu=cpu, keep=keep)
    check_options(opts)  # every problem, before Ray starts
    config = llama_config(size, dtype)
    specs = tensor_specs(config, dtype)
    machine = check_machine(opts, sum(s.nbytes for s in specs))
    start_ray()
    console = Console()
    with console.status("bench gpu") as status:
        r = run_bench(opts, machine, config, specs, progress=lambda msg: status.update(msg))
    table = Table(title=f"one candidate soup of {r.candidates} random {r.size} {r.dtype} candidates, "
                        f"seconds over {r.soups} soups (after one warm-up)",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for name in ("phase", "median s", "min s", "max s", "per soup"):
        table.add_column(name, justify="left" if name == "phase" else "right", no_wrap=name != "per soup")
    what = {"merge": "merge (shards → object store)", "push": "push (→ vLLM weights)",
            "score": f"score ({r.examples} examples)"}
    for phase in PHASES:
        s = r.phases[phase]
        table.add_row(what[phase], f"{s.median:.3f}", f"{s.min:.3f}", f"{s.max:.3f}",
                      " ".join(f"{v:.3f}" for v in s.runs))
    console.print(table)
    e, p = r.examples_per_s, r.plan
    console.print(f"scoring: {e.median:.1f} examples/s (min {e.min:.1f}, max {e.max:.1f}), toy dev split, "
                  f"greedy, at most {r.max_new_tokens} new tokens each")
    memory = f" ({r.gpu_bytes / 2**30:.1f} GiB)" if r.gpu_bytes else ""
    console.print(f"model: {r.params / 1e6:,.2f}M params, {r.model_bytes / 1e6:,.1f} MB ({r.tensors} tensors); "
                  f"GPU: {r.gpu}{memory}; vLLM {r.vllm_version}; torch {r.torch_version}")
    console.print(f"plan: {p['shards']} shard actors × {p['shard_gpu']:g} GPU ({p['shard_memory']}, on "
                  f"{p['shard_device']}), scorer {p['scorer_gpu']:g} GPU, vLLM gpu_memory_utilization "
                  f"{p['gpu_memory_utilization']:g}")
    console.print("setup: " + ", ".join(f"{k} {v:.2f} s" for k, v in r.setup_s.items()))
    if json_out is not None:
        with atomic_file(json_out) as fh:
            fh.write(to_json(r) + "\n")


@bench_app.command("search")
def search(
    config: Path = typer.Option(None, "--config", help="search config (default: configs/demo.yaml)"),
    experts: str = typer.Option("3,5", help="Pool sizes: the k groups whose experts score best, e.g. 3,5."),
    samplers: str = typer.Option("tpe,gp,cmaes,random", help="Samplers to compare."),
    prune: bool | None = typer.Option(None, "--prune/--no-prune", help="Only with / without pruning "
                                      "(default: both, as rows)."),
    weights: str = typer.Option("stick", help="Weight maps to compare: stick, normalize or both (stick,normalize)."),
    seeds: int = typer.Option(5, help="Studies per method (seeds 0..N-1)."),
    budget: int = typer.Option(None, help="Trials per study at most (default: the grid's size)."),
    keep: Path | None = typer.Option(None, help="Keep the bench's studies and scores in this dir."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Dev examples each search needs to reach the paper grid's best dev score, and the per-trial overhead."""
    import json

    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.search import run_search_bench, to_json
    from soup_search.cli.run import demo_config_path
    from soup_search.cli.ui import RichProgress
    from soup_search.config import SAMPLERS, load_config
    from soup_search.errors import ConfigError
    from soup_search.io.atomic import atomic_file
    from soup_search.search.space import WEIGHT_MAPS

    sizes = [s.strip() for s in experts.split(",") if s.strip()]
    names = [s.strip() for s in samplers.split(",") if s.strip()]
    maps = [s.strip() for s in weights.split(",") if s.strip()]
    problems = []
    if seeds <= 0 or (budget is not None and budget <= 0):
        problems.append("--seeds and --budget must be > 0")
    if not sizes or not all(s.isdigit() and int(s) >= 2 for s in sizes):
        problems.append(f"--experts {experts!r}: give pool sizes of 2 or more, e.g. 3,5")
    if not names or [n for n in names if n not in SAMPLERS or n == "grid"]:
        problems.append(f"--samplers {samplers!r}: use some of {', '.join(n for n in SAMPLERS if n != 'grid')}")
    if not maps or [m for m in maps if m not in WEIGHT_MAPS]:
        problems.append(f"--weights {weights!r}: use some of {', '.join(WEIGHT_MAPS)}")
    if problems:
        raise ConfigError("bench search", problems)
    cfg = load_config(config or demo_config_path())
    console = Console()
    r = run_search_bench(cfg, RichProgress(console), seeds=range(seeds), experts=[int(s) for s in sizes],
                         samplers=names, prunes=[True, False] if prune is None else [prune], weights=maps,
                         budget=budget, keep=keep)
    pools = {p.experts: p for p in r.pools}
    for p in r.pools:
        console.print(f"{p.experts} experts ({', '.join(p.models)}): paper grid {p.grid_points} points, best dev "
                      f"{p.grid_best:.4f}, {p.grid_examples} dev examples ({p.examples_per_trial} per trial)")

    def cell(n, k):
        return "never" if n is None else f"{n:g} ({n / pools[k].grid_examples:.0%})"

    table = Table(title=f"dev examples (and trials) to first reach the grid's best, seeds 0..{len(r.seeds) - 1}; "
                        f"% of the grid's examples")
    for name in ("experts", "sampler", "weights", "prune", "median examples", "worst examples",
                 "median trials", "worst trials"):
        table.add_column(name, justify="left" if name in ("sampler", "weights") else "right")
    for row in r.rows:
        table.add_row(str(row.experts), row.sampler, row.weights, f"{row.chunks_label(r.chunks)}",
                      cell(row.median_examples, row.experts), cell(row.worst_examples, row.experts),
                      "never" if row.median_trials is None else f"{row.median_trials:g}",
                      "never" if row.worst_trials is None else str(row.worst_trials))
    console.print(table)
    console.print(f"per-trial overhead (trial wall − scoring) over {r.trials_scored} scored trials: "
                  f"{r.overhead_s_mean:.3f} s of {r.trial_s_mean:.3f} s = {r.overhead_fraction:.1%} of trial wall "
                  f"(scoring {r.scoring_s_mean:.3f} s, merge {r.merge_s_mean:.3f} s; {r.concurrency} scorers)")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(to_json(r), fh, indent=2)


@bench_app.command("demo")
def demo(
    zoo_seeds: str = typer.Option("0,1,2", "--zoo-seeds", help="comma-separated zoo seeds (one zoo and one demo run each)"),
    config: Path = typer.Option(None, "--config", help="the config to run per seed (default: configs/demo.yaml)"),
    out: Path = typer.Option(Path("runs/bench-demo"), "--out", help="folder of the runs (one per seed)"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Run the demo once per zoo seed; print the best soup's held-out differences with their CIs."""
    import json

    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.demo import MIN_WIN, run_demo_bench, to_json
    from soup_search.cli.run import demo_config_path
    from soup_search.cli.ui import RichProgress
    from soup_search.config import load_config
    from soup_search.errors import ConfigError
    from soup_search.io.atomic import atomic_file, ensure_dir

    try:
        seeds = [int(s) for s in zoo_seeds.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError("bench demo", [f"--zoo-seeds {zoo_seeds!r} must be distinct non-negative integers, e.g. 0,1,2"])
    cfg = load_config(config or demo_config_path())
    if not cfg.candidates.zoo:
        raise ConfigError("bench demo", ["the config takes no zoo candidates (candidates.zoo), so zoo seeds change nothing"])
    ensure_dir(out)
    console = Console()
    results = run_demo_bench(cfg, seeds, out, RichProgress(console))
    table = Table(title=f"bench demo: best soup − row on the held-out test split, 95% paired CI, p "
                        f"(claim: ≥ +{MIN_WIN} with CI > 0 vs best expert and uniform_all; not worse than grid)")
    table.add_column("zoo", justify="right")
    table.add_column("soup", justify="right")
    for title in ("vs best expert", "vs uniform_all", "vs uniform_experts", "vs grid best"):
        table.add_column(title)
    table.add_column("holds")
    table.add_column("time", justify="right")
    for r in results:
        cells = []
        for key in ("best_expert", "uniform_all", "uniform_experts", "grid_best"):
            v = r.versus.get(key)
            cells.append("—" if v is None else
                         f"{v.vs.delta:+.3f} [{v.vs.ci_low:+.3f}, {v.vs.ci_high:+.3f}] p={v.vs.p_value:.2g}")
        table.add_row(str(r.zoo_seed), f"{r.soup_test_mean:.3f}", *cells, "yes" if r.holds() else "NO",
                      f"{r.seconds:.0f} s")
    console.print(table)
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(to_json(results), fh, indent=2)


@bench_app.command("methods")
def methods(
    config: Path = typer.Option(None, "--config", help="config of the pool (default: configs/demo.yaml); its zoo "
                                "gives the base, its analysis the experts"),
    methods: str = typer.Option("linear,ties,tsv,wudi,fda", "--methods", help="comma-separated merge methods"),
    seeds: str = typer.Option("0", "--seeds", help="seeds of the methods that take one (fda): one row per seed"),
    param: list[str] = typer.Option([], "--param", help="METHOD.KEY=VALUE overriding a default (repeatable), "
                                    "e.g. fda.anchor_steps=200"),
    out: Path | None = typer.Option(None, "--out", help="keep the merged checkpoints in this folder "
                                    "(default: a temp folder)"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Merge the pool's SoCE experts with each method (uniform weights, the method's defaults) and
    compare them on the held-out test split: mean with a 95% CI, paired difference with linear,
    merge seconds and peak memory."""
    import json
    import os
    import tempfile

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from transformers.utils import logging as hf_logging

    from soup_search.bench.methods import parse_methods, parse_params, parse_seeds, run_methods_bench
    from soup_search.cli.run import demo_config_path
    from soup_search.config import load_config
    from soup_search.io.atomic import atomic_file, ensure_dir

    names = parse_methods(methods)
    seed_list = parse_seeds(seeds)
    overrides = parse_params(param, names)
    config = config or demo_config_path()
    cfg = load_config(config)
    console = Console()
    hf_logging.disable_progress_bar()  # the scorer's "Loading weights" bars; the status line says what runs
    with tempfile.TemporaryDirectory(prefix="bench-methods-") as tmp, console.status("bench methods") as status:
        work = ensure_dir(out) if out is not None else Path(tmp)
        b = run_methods_bench(cfg, work, names, seed_list, overrides, progress=lambda msg: status.update(msg))
    experts = ", ".join(dict.fromkeys(b.experts.values()))
    changed = f" but {', '.join(param)}" if param else ""
    table = Table(title=f"bench methods: the SoCE experts of {config} ({experts}), uniform weights, each "
                        f"method's defaults{changed}; held-out test split", box=box.SIMPLE_HEAD, padding=(0, 1),
                  collapse_padding=True, pad_edge=False)
    for name in ("method", "test ±95%", "vs linear [95% CI]", "p", "cpu s", "peak MiB", "+MiB"):
        table.add_column(name, justify="left" if name == "method" else "right", no_wrap=True)
    for r in b.rows:
        vs = r.vs_linear
        table.add_row(r.label, f"{r.test_mean:.3f}±{(r.ci_high - r.ci_low) / 2:.3f}",
                      "—" if vs is None else f"{vs.delta:+.3f} [{vs.ci_low:+.3f},{vs.ci_high:+.3f}]",
                      "" if vs is None else f"{vs.p_value:.2g}", f"{r.merge_cpu_s:.2f}", f"{r.peak_mib:.0f}",
                      f"{r.merge_mib:.0f}")
    console.print(table)
    load = os.getloadavg()
    console.print("test: the search objective on the test split (held-out categories apart: 'transfer' in the "
                  "JSON) ± the half-width of its 95% binomial CI; vs linear: the paired difference, stratified bootstrap CI, permutation "
                  "p; cpu s: CPU seconds of merge_to_disk in a fresh process (one torch thread; its wall time, which other "
                  "load inflates, is in the JSON); peak MiB: that process's peak RSS during the "
                  f"merge; +MiB: the merge's increase. {b.seconds:.0f} s in all; load average {load[0]:.2f} on "
                  f"{os.cpu_count()} CPUs")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(b.to_json() | {"load_avg": load}, fh, indent=2)


@bench_app.command("scoring")
def scoring(
    size: str = typer.Option("tiny", "--size", help="zoo size (trained here on first use)"),
    choices: str = typer.Option("2,4", "--choices", help="comma-separated numbers of choices, one mode each"),
    repeats: int = typer.Option(3, "--repeats", min=1, help="timings per model and mode"),
    n_dev: int = typer.Option(100, "--n-dev", min=1, help="dev examples per toy category"),
    threads: int = typer.Option(1, "--threads", min=1, help="torch threads of the scorer"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Multiple-choice scoring (log-likelihood of each choice) against greedy generation on the zoo's
    dev split: examples per second with 95% CIs, tokens fed per example, and the paired speed-up."""
    import json
    import os

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from transformers.utils import logging as hf_logging

    from soup_search.bench.scoring import run_scoring_bench
    from soup_search.errors import ConfigError
    from soup_search.io.atomic import atomic_file

    try:
        counts = [int(c) for c in choices.split(",") if c.strip()]
    except ValueError:
        counts = []
    if not counts or any(c < 2 for c in counts):
        raise ConfigError("bench scoring", [f"--choices {choices!r}: give comma-separated whole numbers >= 2, e.g. 2,4"])
    console = Console()
    hf_logging.disable_progress_bar()
    with console.status("bench scoring") as status:
        b = run_scoring_bench(size, counts, repeats, n_dev, threads, progress=lambda msg: status.update(msg))
    table = Table(title=f"bench scoring: the {size} zoo's {len(b.models)} models on the toy dev split, "
                        f"{threads} torch thread(s), {repeats} repeats", box=box.SIMPLE_HEAD, padding=(0, 1))
    for name in ("mode", "n", "ex/s [95% CI]", "tok/ex", "acc", "vs generate"):
        table.add_column(name, justify="left" if name == "mode" else "right", no_wrap=True)
    for m in b.modes:
        table.add_row(m.mode, str(m.examples), f"{m.examples_per_s:.0f} [{m.ci_low:.0f},{m.ci_high:.0f}]",
                      f"{m.tokens_fed_per_example:.1f}", f"{m.accuracy:.3f}",
                      "—" if m.speedup is None else f"{m.speedup:.2f}x [{m.speedup_ci[0]:.2f},{m.speedup_ci[1]:.2f}]")
    console.print(table)
    load = os.getloadavg()
    console.print(f"generate: greedy answers; choices N: the answer among N, by summed log-likelihood; n: dev "
                  "examples; tok/ex: tokens the model reads per example; acc: mean accuracy over the models; vs "
                  "generate: the speed-up [95% CI]. CIs: t over "
                  f"the {len(b.models) * repeats} (model, repeat) timings; the speed-up is paired per timing. "
                  f"{b.seconds:.0f} s in all; load average {load[0]:.2f} on {os.cpu_count()} CPUs")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(b.to_json() | {"load_avg": load}, fh, indent=2)


@bench_app.command("lineage")
def lineage(
    config: Path = typer.Option(None, "--config", help="base config with zoo candidates (default: configs/tiny.yaml)"),
    seeds: str = typer.Option("0,1,2", "--seeds", help="comma-separated search seeds (one parent and two children each)"),
    n_trials: int = typer.Option(8, "--n-trials", help="search.n_trials of every run (fresh trials)"),
    out: Path | None = typer.Option(None, "--out", help="keep the runs in this folder (default: a temp folder)"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Fresh trials a child search needs to reach its parent's best dev score, with and without lineage."""
    import json

    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.lineage import run_lineage_bench, to_json
    from soup_search.cli.run import demo_config_path
    from soup_search.cli.ui import RichProgress
    from soup_search.config import load_config
    from soup_search.errors import ConfigError
    from soup_search.io.atomic import atomic_file

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        seed_list = []
    problems = []
    if not seed_list or any(s < 0 for s in seed_list) or len(set(seed_list)) != len(seed_list):
        problems.append(f"--seeds {seeds!r} must be distinct non-negative integers, e.g. 0,1,2")
    if n_trials <= 0:
        problems.append(f"--n-trials must be > 0, got {n_trials}")
    if problems:
        raise ConfigError("bench lineage", problems)
    cfg = load_config(config or demo_config_path().with_name("tiny.yaml"))
    console = Console()
    results = run_lineage_bench(cfg, seed_list, n_trials, out, RichProgress(console))

    def reach(n):
        return "not reached" if n is None else str(n)

    table = Table(title=f"bench lineage: fresh trials until the child reaches the parent's best dev score "
                        f"({n_trials} fresh trials per run; cache hits: fresh trials the score cache answered)")
    for name in ("seed", "newcomer", "parent best", "carried", "seeded", "with: to reach", "with: best",
                 "with: cache hits", "without: to reach", "without: best", "without: cache hits"):
        table.add_column(name, justify="left" if name == "newcomer" else "right")
    for r in results:
        w, wo = r.with_lineage, r.without
        table.add_row(str(r.seed), r.newcomer, f"{r.parent_best:.4f}", f"{w.carried} of {r.parent_trials}",
                      str(w.seeded), reach(w.to_reach), f"{w.best:.4f}", f"{w.cache_hits} of {w.fresh}",
                      reach(wo.to_reach), f"{wo.best:.4f}", f"{wo.cache_hits} of {wo.fresh}")
    console.print(table)
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(to_json(results), fh, indent=2)


@bench_app.command("service")
def service(
    rounds: int = typer.Option(3, help="searches timed from POST to running, and service restarts timed"),
    searches: int = typer.Option(20, help="searches in the database while GET latency is measured"),
    requests: int = typer.Option(2000, help="GET /v1/searches/{id} requests"),
    concurrency: int = typer.Option(50, help="concurrent clients"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Time the service: POST to a running Ray job, GET latency under concurrency, reconcile after a restart."""
    import json
    import os
    import statistics

    from rich.console import Console
    from rich.table import Table

    from soup_search.errors import ConfigError
    from soup_search.io.atomic import atomic_file

    if min(rounds, searches, requests, concurrency) < 1:
        raise ConfigError("bench service", ["--rounds, --searches, --requests and --concurrency must be at least 1"])
    os.environ.setdefault("RAY_AUTH_MODE", "token")  # the job SDK reads the head's token
    from soup_search.bench.service import run_bench, to_dict

    console = Console()
    with console.status("bench service") as status:
        b = run_bench(rounds, searches, requests, concurrency, progress=lambda msg: status.update(msg))
    table = Table(title="bench service (an embedded Ray head on this machine)")
    table.add_column("figure")
    table.add_column("median", justify="right")
    table.add_column("runs", justify="right")

    def row(name: str, values: list[float]) -> None:
        table.add_row(name, f"{statistics.median(values):.2f} s", " ".join(f"{v:.2f}" for v in values))

    row("POST → search running (job submitted)", b.post_to_state_running_s)
    row("POST → Ray job RUNNING", b.post_to_job_running_s)
    row("first reconcile after a SIGKILL restart", b.reconcile_after_restart_s)
    row("restart → /healthz answers", b.restart_to_healthy_s)
    table.add_row(f"GET /v1/searches/{{id}}, {b.searches_in_db} searches, {b.get_concurrency} concurrent",
                  f"p50 {b.get_p50_ms:.1f} ms", f"p99 {b.get_p99_ms:.1f} ms, {b.requests_per_s:.0f} req/s")
    console.print(table)
    load = os.getloadavg()
    console.print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(to_dict(b) | {"load_avg": load}, fh, indent=2)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(bench_app, name="bench")
