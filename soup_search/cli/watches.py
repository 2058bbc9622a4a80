"""``soup-search remote watch``: create, list, trigger and delete watches; their history, champion
and webhook deliveries. Server and token as for ``soup-search remote``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soup_search.cli.remote import Server, Token, _client, _console, _when

watch_app = typer.Typer(help="Watches: re-run the search when a leaderboard or a model folder changes.",
                        no_args_is_help=True)

WatchId = Annotated[int, typer.Argument(metavar="WATCH", help="the watch's id")]
OUTCOME_STYLE = {"promoted": "green", "kept": "yellow", "no_change": "dim", "source_error": "red",
                 "search_failed": "red", "config_error": "red", "error": "red", "deleted": "magenta"}


@watch_app.command("create")
def create(spec: Annotated[Path, typer.Argument(metavar="WATCH.yaml", help="the watch: name, source, template, "
                                                "schedule, policy, webhooks (see the README)")],
           server: Server = None, token: Token = None) -> None:
    """Create a watch; print its id (stdout) and, once, its webhook secret (stderr)."""
    with _client(server, token) as client:
        watch = client.create_watch(spec)
    typer.echo(watch["id"])
    err = _console(stderr=True)
    err.print(f"watch {watch['id']} ({watch['name']}) created; next tick {_when(watch['next_run_at'])}; "
              f"trigger it now with soup-search remote watch trigger {watch['id']}")
    if watch.get("webhooks"):
        err.print(f"webhook secret (shown only now): {watch['secret']}")


@watch_app.command("list")
def list_watches(server: Server = None, token: Token = None) -> None:
    """List the watches."""
    from rich.markup import escape
    from rich.table import Table

    with _client(server, token) as client:
        watches = client.watches()
    table = Table("id", "name", "owner", "source", "schedule", "next tick", "champion")
    for w in watches:
        source = w["source"].get("location") or w["source"].get("path")
        when = w["schedule"].get("cron") or (f"every {w['schedule']['interval_s']} s" if w["schedule"] else "manual")
        table.add_row(str(w["id"]), escape(w["name"]), escape(w["owner"]), escape(f"{w['source']['kind']}: {source}"),
                      escape(str(when)), _when(w["next_run_at"]), escape(w["champion_search"] or "–"))
    _console().print(table if watches else "no watches")


@watch_app.command("trigger")
def trigger(watch_id: WatchId, server: Server = None, token: Token = None) -> None:
    """Tick a watch now (refused while one of its ticks is open)."""
    with _client(server, token) as client:
        tick = client.trigger(watch_id)
    _console().print(f"watch {watch_id}: tick {tick['id']} started; see soup-search remote watch history {watch_id}")


@watch_app.command("delete")
def delete(watch_id: WatchId, server: Server = None, token: Token = None) -> None:
    """Stop a watch (its open tick's search is cancelled; history and champion stay)."""
    with _client(server, token) as client:
        watch = client.delete_watch(watch_id)
    _console().print(f"watch {watch['id']} ({watch['name']}) deleted")


def _lineage(tick: dict) -> str:
    lin = tick.get("lineage") or {}
    if not lin:
        return "–"
    return f"{lin.get('carried', 0)} carried, {lin.get('seeded', 0)} seeded, {lin.get('fresh', 0)} fresh"


def _gate(tick: dict) -> str:
    d = tick.get("decision") or {}
    if not d:
        return "–"
    if "delta" in d:
        return f"Δ {d['delta']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] p={d['p_value']:.3g}"
    return (d.get("reasons") or ["–"])[0]


def _changes(tick: dict) -> str:
    d = tick.get("diff") or {}
    parts = [f"+{', +'.join(d['candidates_added'])}" if d.get("candidates_added") else "",
             f"−{', −'.join(d['candidates_removed'])}" if d.get("candidates_removed") else "",
             "schema changed" if d.get("schema_changed") else ""]
    return " ".join(p for p in parts if p) or "–"


@watch_app.command("history")
def history(watch_id: WatchId, server: Server = None, token: Token = None) -> None:
    """A watch's ticks, newest first: the change seen, the search (and its parent), the trials
    carried over and run, and the gate's decision with its numbers."""
    from rich.markup import escape
    from rich.table import Table

    with _client(server, token) as client:
        ticks = client.history(watch_id)
    table = Table("tick", "when", "outcome", "change", "search ← parent", "trials", "gate (Δ vs champion, 95% CI)")
    for t in ticks:
        style = OUTCOME_STYLE.get(t["outcome"] or "", "cyan")
        search = f"{t['search']} ← {t['parent_search']}" if t["parent_search"] else (t["search"] or "–")
        table.add_row(f"{t['id']} ({t['kind']})", _when(t["created_at"]),
                      f"[{style}]{escape(t['outcome'] or t['state'])}[/]", escape(_changes(t)), escape(search),
                      _lineage(t), escape(_gate(t)))
    console = _console()
    console.print(table if ticks else "no ticks yet")
    for t in ticks[:1]:
        for note in t["notes"]:
            console.print(f"  tick {t['id']}: {escape(note)}")


@watch_app.command("champion")
def champion(watch_id: WatchId, server: Server = None, token: Token = None) -> None:
    """The watch's champion: its search, lineage, parents and weights, per-category scores."""
    from rich.markup import escape
    from rich.table import Table

    with _client(server, token) as client:
        record = client.champion(watch_id)
    console = _console()
    console.print(f"champion of watch {watch_id}: search {escape(record['search'])} "
                  f"(lineage {escape(' → '.join(record['lineage']))}); source revision "
                  f"{escape(str(record['source_revision']))}; dev {record['dev_mean']:.4f}, test {record['test_mean']:.4f}")
    parents = Table("parent", "weight", "fingerprint")
    for p in record["parents"]:
        parents.add_row(escape(p["name"]), f"{p['weight']:.3f}" if p["weight"] is not None else "–",
                        escape((p["fingerprint"] or "–")[:16]))
    scores = Table("category", "dev", "test")
    for c, v in record["per_category"].items():
        scores.add_row(escape(c), *(f"{v[k]:.4f}" if v[k] is not None else "–" for k in ("dev", "test")))
    console.print(parents, scores)
    console.print(f"artifacts: {escape(record['folder'])}")


@watch_app.command("deliveries")
def deliveries(watch_id: WatchId, server: Server = None, token: Token = None) -> None:
    """The watch's webhook deliveries, newest first."""
    from rich.markup import escape
    from rich.table import Table

    with _client(server, token) as client:
        rows = client.deliveries(watch_id)
    table = Table("id", "event", "url", "state", "attempts", "last status / error", "created")
    for d in rows:
        table.add_row(str(d["id"]), d["event"], escape(d["url"]), d["state"], str(d["attempts"]),
                      escape(str(d["last_status"] or d["last_error"] or "–")), _when(d["created_at"]))
    _console().print(table if rows else "no deliveries")


def register(app: typer.Typer) -> None:
    from soup_search.cli.remote import remote_app

    remote_app.add_typer(watch_app, name="watch")
