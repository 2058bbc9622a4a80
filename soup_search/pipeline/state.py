"""A run folder's state: the folder, the marker binding it to one config, the Optuna study's place.

Light on purpose (no Ray, no torch): the service reads a search's progress through it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from soup_search.config import RunConfig
from soup_search.errors import ConfigError

STATE = "state"
MARKER = "config.json"


def config_fingerprint(cfg: RunConfig) -> str:
    data = cfg.model_dump(mode="json", exclude={"root", "resources"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def prepare_state(cfg: RunConfig, out: Path, resume: bool, fresh: bool) -> Path:
    """The state folder: new, or the one of an earlier run of the same config (to continue)."""
    state = out / STATE
    marker = state / MARKER
    if fresh and state.exists():
        shutil.rmtree(state)
    if marker.is_file():
        stored = json.loads(marker.read_text())
        if stored.get("fingerprint") != config_fingerprint(cfg):
            raise ConfigError(str(out), [
                "this run folder holds a study of a different config; pass --fresh to start over "
                "or --out to use another folder"])
    elif resume:
        raise ConfigError(str(out), [f"nothing to resume: no earlier search in {out}; drop --resume"])
    state.mkdir(parents=True, exist_ok=True)
    return state


def mark_state(cfg: RunConfig, state: Path) -> None:
    """Bind the state folder to this config (done once the search is about to start)."""
    marker = state / MARKER
    if not marker.is_file():
        marker.write_text(json.dumps({"fingerprint": config_fingerprint(cfg),
                                      "config": cfg.model_dump(mode="json")}, indent=2))


def default_storage_url(state: Path) -> str:
    """Where a run keeps its Optuna study unless ``search.storage`` says otherwise."""
    return f"sqlite:///{(state / 'optuna.sqlite').resolve()}"


def storage_url(cfg: RunConfig, state: Path) -> str:
    return cfg.search.storage or default_storage_url(state)


def study_name(cfg: RunConfig) -> str:
    return cfg.search.study_name or f"{cfg.name}-{config_fingerprint(cfg)}"
