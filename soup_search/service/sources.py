"""What a watch watches, and what "changed" means: a leaderboard CSV or a folder of checkpoints.

Each source reads itself into a :class:`Revision`: an id (a leaderboard's ETag or
Last-Modified when its server sends one, else a hash of the content; a folder's set of
compatible checkpoints with their content fingerprints), the candidates it offers (name →
checkpoint folder and fingerprint), the categories it scores, its column set, and notes on what
it skipped (a leaderboard row without a checkpoint, an incompatible checkpoint). Nothing here
needs Ray. :func:`diff` says what changed between two revisions, for the watch's history.
"""

from __future__ import annotations

import glob
import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from soup_search.analysis.table import read_score_table
from soup_search.candidates import load_candidates
from soup_search.errors import SoupSearchError
from soup_search.io.checkpoint import fingerprint_of

#: seconds a leaderboard URL has to answer
FETCH_TIMEOUT_S = 30.0


#: the model column of :attr:`Revision.score_table`
SCORE_TABLE_MODEL_COLUMN = "model"


class SourceError(SoupSearchError):
    """A source cannot be read now (missing, unreachable, malformed); a watch records it and tries again."""


@dataclass(frozen=True)
class Revision:
    id: str
    candidates: dict[str, tuple[str, str]]  # name → (checkpoint folder, content fingerprint)
    categories: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: a leaderboard's score table as the run reads it (CSV: the rows with a checkpoint, the
    #: chosen categories, as numbers; column ``model``); not stored with the revision
    score_table: bytes = field(default=b"", repr=False, compare=False)

    def to_json(self) -> dict:
        return {"id": self.id, "candidates": {n: list(v) for n, v in self.candidates.items()},
                "categories": list(self.categories), "columns": list(self.columns), "notes": list(self.notes)}

    @classmethod
    def from_json(cls, data: dict) -> Revision:
        return cls(id=data["id"], candidates={n: tuple(v) for n, v in data["candidates"].items()},
                   categories=tuple(data.get("categories", ())), columns=tuple(data.get("columns", ())),
                   notes=tuple(data.get("notes", ())))


def _fetch(location: str) -> tuple[bytes, str | None]:
    """The bytes at a path or http(s) URL, and the server's ETag or Last-Modified if it sent one."""
    if location.startswith(("http://", "https://")):
        try:
            r = httpx.get(location, timeout=FETCH_TIMEOUT_S, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise SourceError(f"leaderboard {location} is unreachable ({type(exc).__name__}); check the URL") from None
        if r.status_code != 200:
            raise SourceError(f"leaderboard {location} answered {r.status_code}; check the URL")
        tag = r.headers.get("etag") or r.headers.get("last-modified")
        return r.content, (f"etag:{tag}" if r.headers.get("etag") else f"modified:{tag}") if tag else None
    path = Path(location).expanduser()
    if not path.is_file():
        raise SourceError(f"leaderboard {path} does not exist; give the path or URL of a CSV")
    return path.read_bytes(), None


def _fingerprint(path: Path) -> str:
    try:
        return fingerprint_of(path)
    except (OSError, SoupSearchError, ValueError) as exc:
        raise SourceError(f"checkpoint {path} is unreadable ({exc})") from None


def read_leaderboard(location: str, model_column: str = "Model", checkpoints: Mapping[str, str] | None = None,
                     checkpoint_root: str | None = None, categories: list[str] | None = None) -> Revision:
    """A leaderboard's revision. Rows map to checkpoints by ``checkpoints`` (row name → folder), or
    by ``checkpoint_root`` (a folder whose sub-folders are named like the rows)."""
    content, tag = _fetch(location)
    with tempfile.NamedTemporaryFile(suffix=".csv") as tmp:
        tmp.write(content)
        tmp.flush()
        try:
            table = read_score_table(tmp.name, model_column=model_column, categories=categories, drop_missing=True)
        except SoupSearchError as exc:
            raise SourceError(f"leaderboard {location}: {str(exc).replace(tmp.name, 'the CSV')}") from None
        header = content.splitlines()[0].decode("utf-8", errors="replace") if content else ""
    found, notes = {}, []
    for model in table.index:
        folder = (checkpoints or {}).get(model)
        if folder is None and checkpoint_root is not None:
            folder = str(Path(checkpoint_root) / model)
        if folder is None or not (Path(folder) / "config.json").is_file():
            notes.append(f"row {model!r} has no checkpoint; skipped")
            continue
        found[model] = (str(Path(folder).resolve()), _fingerprint(Path(folder)))
    revision = tag or "sha256:" + hashlib.sha256(content).hexdigest()[:16]
    kept = table.loc[list(found)]
    return Revision(id=revision, candidates=found, categories=tuple(table.columns),
                    columns=tuple(c.strip() for c in header.split(",")), notes=tuple(notes),
                    score_table=kept.to_csv(index_label=SCORE_TABLE_MODEL_COLUMN).encode())


def read_folder(pattern: str) -> Revision:
    """A folder's (or glob's) revision: its checkpoints compatible with the first one (in name
    order), with their fingerprints; an incompatible one is noted and skipped, never fatal."""
    root = Path(pattern).expanduser()
    if root.is_dir():
        dirs = sorted(p for p in root.iterdir() if (p / "config.json").is_file())
    elif any(ch in pattern for ch in "*?["):
        dirs = sorted(Path(p) for p in glob.glob(str(root)) if (Path(p) / "config.json").is_file())
    else:
        raise SourceError(f"folder {root} does not exist; give a directory of checkpoints or a glob")
    found, notes = {}, []
    reference: Path | None = None
    for d in dirs:
        if reference is not None:
            try:
                load_candidates([reference, d])
            except SoupSearchError as exc:
                notes.append(f"checkpoint {d.name!r} is incompatible ({exc}); skipped")
                continue
        reference = reference or d
        found[d.name] = (str(d.resolve()), _fingerprint(d))
    digest = hashlib.sha256("\n".join(f"{n}={fp}" for n, (_, fp) in sorted(found.items())).encode()).hexdigest()
    return Revision(id="set:" + digest[:16], candidates=found, notes=tuple(notes))


def read_source(source: dict) -> Revision:
    """The revision of a watch's source spec (``kind`` leaderboard or folder)."""
    if source["kind"] == "leaderboard":
        return read_leaderboard(source["location"], model_column=source.get("model_column", "Model"),
                                checkpoints=source.get("checkpoints") or None,
                                checkpoint_root=source.get("checkpoint_root"), categories=source.get("categories"))
    return read_folder(source["path"])


def diff(old: Revision | None, new: Revision) -> dict:
    """What changed from ``old`` to ``new``: candidates (new names, or new content under a known
    name) added and removed, categories added and removed, and whether the column set changed."""
    before = old.candidates if old else {}
    changed = [n for n in new.candidates if n in before and before[n][1] != new.candidates[n][1]]
    return {
        "changed": old is None or old.id != new.id,
        "candidates_added": sorted(set(new.candidates) - set(before)),
        "candidates_removed": sorted(set(before) - set(new.candidates)),
        "candidates_updated": sorted(changed),
        "categories_added": sorted(set(new.categories) - set(old.categories if old else ())),
        "categories_removed": sorted(set(old.categories if old else ()) - set(new.categories)),
        "schema_changed": old is not None and bool(old.columns) and set(old.columns) != set(new.columns),
    }
