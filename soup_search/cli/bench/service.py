"""``soup-search bench service``."""

from __future__ import annotations

from pathlib import Path

import typer

from soup_search.cli.bench.app import bench_app


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
