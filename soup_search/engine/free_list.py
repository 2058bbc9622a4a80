"""The scorers' free list: trials borrow a scorer actor from a shared Ray queue and give it back.

Light on purpose: a trial process imports it, and never the scorer's own libraries (transformers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def borrowed_scorer(free) -> Iterator:
    """A scorer actor taken from the free list (a ``ray.util.queue.Queue``) for a while (a trial
    scoring chunk by chunk), given back however the block ends (a pruned trial's thread exits inside it)."""
    actor = free.get(block=True)
    try:
        yield actor
    finally:
        free.put(actor)
