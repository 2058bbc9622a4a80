"""A split scored in chunks, for pruning: each chunk holds every category's share of the split.

Chunk ``j`` of ``n`` takes, within each category, the examples at positions ``j, j + n, j + 2n, …``
of the split's order: deterministic, stratified (each category's count differs by at most one
between chunks), and the chunks together are the split. :func:`join_chunks` puts the chunks'
per-example bits back in the split's order, so the joined result is the one a whole-split
scoring gives (token counts too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from soup_search.objectives.base import Example
from soup_search.scoring.protocol import ScoreResult


class ChunkStop(Protocol):
    """When a scorer scoring a split chunk by chunk hands the chunks back early (a pruning rule)."""

    def says_stop(self, parts: Sequence[ScoreResult]) -> bool:
        """After a chunk but the last, given every chunk's result so far: stop here."""


def chunk_examples(examples: Sequence[Example], chunk: int, chunks: int) -> list[Example]:
    """The examples of chunk ``chunk`` (0-based) of ``chunks``, in the split's order."""
    if not 0 <= chunk < chunks:
        raise ValueError(f"chunk {chunk} is not in 0..{chunks - 1}")
    seen: dict[str, int] = {}
    out = []
    for ex in examples:
        i = seen.get(ex.category, 0)
        seen[ex.category] = i + 1
        if i % chunks == chunk:
            out.append(ex)
    return out


def join_chunks(parts: Sequence[ScoreResult]) -> ScoreResult:
    """The whole split's result from the results of all its chunks, in chunk order."""
    n = len(parts)
    bits: dict[str, str] = {}
    tokens: dict[str, list[int]] = {}
    with_tokens = all(p.generated_tokens or not p.correct for p in parts)
    for c in dict.fromkeys(c for p in parts for c in p.correct):
        total = sum(len(p.correct.get(c, "")) for p in parts)
        bits[c] = "".join(parts[i % n].correct[c][i // n] for i in range(total))
        if with_tokens:
            tokens[c] = [parts[i % n].generated_tokens[c][i // n] for i in range(total)]
    return ScoreResult(per_category={c: b.count("1") / len(b) for c, b in bits.items()},
                       counts={c: len(b) for c, b in bits.items()},
                       seconds=sum(p.seconds for p in parts), correct=bits, generated_tokens=tokens)


def running_result(parts: Sequence[ScoreResult]) -> ScoreResult:
    """What the chunks scored so far say: per-category accuracy over the examples they hold."""
    bits: dict[str, str] = {}
    tokens: dict[str, list[int]] = {}
    for p in parts:
        for c, b in p.correct.items():
            bits[c] = bits.get(c, "") + b
        for c, t in p.generated_tokens.items():
            tokens[c] = tokens.get(c, []) + list(t)
    return ScoreResult(per_category={c: b.count("1") / len(b) for c, b in bits.items()},
                       counts={c: len(b) for c, b in bits.items()},
                       seconds=sum(p.seconds for p in parts), correct=bits, generated_tokens=tokens)
