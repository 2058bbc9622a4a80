"""Scoring merged weights on an objective's split: one interface, transformers or vLLM behind it.

Weights arrive as ``(name, tensor)`` streams, straight from the shard actors (no disk).
"""

from soup_search.scoring.protocol import ScoreResult, Scorer, ObjectiveSpec

__all__ = ["ObjectiveSpec", "ScoreResult", "Scorer"]
