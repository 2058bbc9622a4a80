"""A submitted watch, checked before it is stored: every problem at once, in one line each.

A watch is a source, a run-config template, a schedule and a promotion policy (plus webhook
URLs). At creation the source must be readable now (under the service's allowed roots), the
schedule a valid cron expression or interval, and the template a valid run config once the
watch fills in its candidates (from the source), its score table and its lineage, which the
template itself may therefore not set.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from soup_search.config import _pydantic_problems
from soup_search.errors import ConfigError
from soup_search.service import intake, schedule
from soup_search.service.sources import SCORE_TABLE_MODEL_COLUMN, Revision, SourceError, read_source

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,47}$")
#: template keys the watch owns
OWNED = ("candidates", "scores", "lineage")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeaderboardSource(_Strict):
    kind: Literal["leaderboard"]
    #: a CSV path (under the allowed roots) or an http(s) URL
    location: str
    model_column: str = "Model"
    #: leaderboard row name → checkpoint folder; or ``checkpoint_root``: sub-folders named like the rows
    checkpoints: dict[str, str] = Field(default_factory=dict)
    checkpoint_root: str | None = None
    categories: list[str] | None = None
    #: the SoCE analysis reads the leaderboard's category scores (else the candidates are profiled)
    use_scores: bool = True


class FolderSource(_Strict):
    kind: Literal["folder"]
    #: a directory of checkpoints or a glob of checkpoint folders
    path: str


class Policy(_Strict):
    #: the challenger's CI lower end must be above this (test objective, 0–1 scale)
    margin: float = 0.0
    #: no category may drop more than this (0.02 = 2 points)
    tolerance: float = Field(0.02, ge=0.0)
    #: keep the merged checkpoint with the champion
    checkpoint: bool = True
    #: carry the parent's trials into the child study, and seed it with the parent's best soups
    carry_over: bool = True
    seed_top_k: int = Field(3, ge=0)


class WatchIn(_Strict):
    name: str
    source: Annotated[LeaderboardSource | FolderSource, Field(discriminator="kind")]
    template: dict[str, Any]
    schedule: dict[str, Any] = Field(default_factory=dict)
    policy: Policy = Field(default_factory=Policy)
    webhooks: list[str] = Field(default_factory=list)


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def confine_source(source: dict, roots: tuple[Path, ...]) -> list[str]:
    """Make the source's paths absolute under an allowed root (in place); the problems of the others."""
    problems = []

    def fix(label: str, value: str) -> str:
        path = Path(value).expanduser()
        path = (path if path.is_absolute() else roots[0] / path).resolve()
        if not any(path == r or path.is_relative_to(r) for r in roots):
            problems.append(f"'{label}': {value} is outside the service's allowed roots "
                            f"({', '.join(map(str, roots))}); put it there or start the service with --allowed-root")
        return str(path)

    if source.get("kind") == "leaderboard":
        if isinstance(source.get("location"), str) and not _is_url(source["location"]):
            source["location"] = fix("source.location", source["location"])
        if isinstance(source.get("checkpoint_root"), str):
            source["checkpoint_root"] = fix("source.checkpoint_root", source["checkpoint_root"])
        for row, folder in list((source.get("checkpoints") or {}).items()):
            if isinstance(folder, str):
                source["checkpoints"][row] = fix(f"source.checkpoints.{row}", folder)
    elif source.get("kind") == "folder" and isinstance(source.get("path"), str):
        source["path"] = fix("source.path", source["path"])
    return problems


def _webhook_problems(urls: list[str]) -> list[str]:
    problems = []
    for i, url in enumerate(urls):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"'webhooks[{i}]': {url!r} is not an http(s) URL")
    return problems


def child_config(template: dict, source: dict, revision: Revision, scores_csv: Path | None,
                 parent_run: Path | None, policy: dict) -> dict:
    """The run config of a search over ``revision``: the template plus the candidates, the score
    table (a leaderboard's snapshot, when its scores are used) and the lineage."""
    data = yaml.safe_load(yaml.safe_dump(template))  # a deep copy of plain data
    data["candidates"] = {"paths": [folder for _, (folder, _) in sorted(revision.candidates.items())]}
    if source["kind"] == "leaderboard" and source.get("use_scores", True) and scores_csv is not None:
        rename = {row: Path(folder).name for row, (folder, _) in revision.candidates.items()
                  if Path(folder).name != row}
        data["scores"] = {"csv": str(scores_csv), "model_column": SCORE_TABLE_MODEL_COLUMN,
                          **({"rename": rename} if rename else {})}
        if source.get("categories") and not (data.get("analysis") or {}).get("categories"):
            data.setdefault("analysis", {})["categories"] = list(source["categories"])
    if parent_run is not None and policy.get("carry_over", True):
        data["lineage"] = {"parent": str(parent_run), "seed_top_k": int(policy.get("seed_top_k", 3))}
    return data


def take_watch(body: bytes, content_type: str | None, roots: tuple[Path, ...]) -> tuple[WatchIn, Revision]:
    """Validate a submitted watch; its source's current revision. One ConfigError lists every problem."""
    data = intake.read_body(body, content_type)
    if not isinstance(data, dict):
        raise ConfigError("watch", ["the top level must be a mapping (name, source, template, schedule, policy, webhooks)"])
    problems = []
    if isinstance(data.get("source"), dict):
        problems += confine_source(data["source"], roots)
    template = data.get("template")
    if isinstance(template, str):  # YAML text is fine too
        try:
            data["template"] = template = yaml.safe_load(template)
        except yaml.YAMLError as exc:
            problems.append(f"'template': not valid YAML ({str(exc).splitlines()[0]})")
    try:
        spec = WatchIn.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("watch", problems + _pydantic_problems(exc)) from None
    if not NAME.match(spec.name):
        problems.append(f"'name': {spec.name!r} is not valid; use 1 to 48 lowercase letters, digits, '.', '_' or '-'")
    problems += schedule.problems(spec.schedule)
    problems += _webhook_problems(spec.webhooks)
    owned = [k for k in OWNED if k in spec.template]
    problems += [f"'template.{k}': the watch fills this in from its source; drop it" for k in owned]
    revision = None
    if not any(p.startswith("'source") for p in problems):
        try:
            revision = read_source(spec.source.model_dump())
        except SourceError as exc:
            problems.append(f"'source': {exc}")
    if revision is not None:
        problems += _template_problems(spec, revision, roots)
    if problems:
        raise ConfigError("watch", problems)
    return spec, revision


def _template_problems(spec: WatchIn, revision: Revision, roots: tuple[Path, ...]) -> list[str]:
    """The template's problems as a run config over the source's current checkpoints."""
    data = child_config(spec.template, spec.source.model_dump(), revision, None, None, {})
    if not revision.candidates:
        data.pop("candidates")
    try:
        intake.take(yaml.safe_dump(data).encode(), "text/yaml", roots)
    except ConfigError as exc:
        return [f"'template': {p}" for p in exc.problems
                if not (not revision.candidates and ("'candidates'" in p or p == "missing key 'candidates'"))]
    return []
