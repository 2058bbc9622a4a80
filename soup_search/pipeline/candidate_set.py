"""Stage 2 of the recipe: the config's candidates (toy zoo models and/or checkpoint dirs), validated."""

from __future__ import annotations

from soup_search.candidates import CandidateSet, load_candidates
from soup_search.config import RunConfig, candidate_location, candidate_name, candidates_cache_dir
from soup_search.zoo import build_zoo


def candidate_specs(cfg: RunConfig, progress: bool = True) -> list[tuple[str, str]]:
    """(name, path) of every candidate: the zoo's (and its base if asked), then explicit paths."""
    specs: list[tuple[str, str]] = []
    if cfg.candidates.zoo:
        zoo = build_zoo(size=cfg.candidates.zoo, seed=cfg.candidates.zoo_seed, progress=progress)
        if cfg.candidates.include_base:
            specs.append(("base", str(zoo.base)))
        specs += [(name, str(path)) for name, path in zoo.candidates().items()]
    for p in cfg.candidates.paths:
        location = candidate_location(cfg, p)
        specs.append((candidate_name(location), location))
    return specs


def load_config_candidates(cfg: RunConfig, progress: bool = True) -> CandidateSet:
    """Resolve and validate the candidates (same architecture, tensors and vocabulary)."""
    specs = candidate_specs(cfg, progress=progress)
    return load_candidates([path for _, path in specs], names=[name for name, _ in specs],
                           cache_dir=candidates_cache_dir(cfg))
