"""The scorers' free list: trials borrow a scorer actor from a shared Ray queue and give it back.

Light on purpose: a trial process imports it, and never the scorer's own libraries (transformers).
"""

from __future__ import annotations

import ray


class ScorerLoan:
    """A scorer actor borrowed from the free list (a ``ray.util.queue.Queue``); creating it waits
    for a free one. ``with`` the loan gives the actor back however the block ends.

    A block that ends normally gives it back without waiting (the round trip to the queue's actor
    is off the trial's path); :meth:`settle` waits for that before the trial ends. A block left by
    an exception (a failed or pruned trial, whose thread may end right after) waits at once.
    """

    def __init__(self, free):
        self.free = free
        self.actor = free.get(block=True)
        self._returned = None

    def __enter__(self):
        return self.actor

    def __exit__(self, kind, *_):
        if kind is None:
            self._returned = self.free.actor.put_nowait.remote(self.actor)
        else:
            self.free.put(self.actor)

    def settle(self) -> None:
        """Wait until the actor is back on the free list."""
        if self._returned is not None:
            ray.get(self._returned)
            self._returned = None
