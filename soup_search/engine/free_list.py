"""The scorers' free list: trials borrow a scorer actor from a shared Ray queue and give it back.

Light on purpose: a trial process imports it, and never the scorer's own libraries (transformers).
"""

from __future__ import annotations

import ray


class ScorerLoan:
    """A scorer actor borrowed from the free list (a ``ray.util.queue.Queue``).

    Creating the loan asks the queue for a scorer without waiting, so that the trial can start
    its merge and its cache lookup meanwhile; :meth:`scorer` waits for the answer. ``with`` the
    loan gives the actor back however the block ends (an actor asked for and never used too).

    A block that ends normally gives it back without waiting (the round trip to the queue's actor
    is off the trial's path); :meth:`settle` waits for that before the trial ends. A block left by
    an exception (a failed or pruned trial, whose thread may end right after) waits at once.
    """

    def __init__(self, free):
        self.free = free
        self._asked = free.actor.get.remote(None)
        self._actor = None
        self._returned = None

    def scorer(self):
        """The borrowed actor; waits while every scorer is busy."""
        if self._actor is None:
            self._actor = ray.get(self._asked)
        return self._actor

    def __enter__(self) -> ScorerLoan:
        return self

    def __exit__(self, kind, *_):
        actor = self.scorer()
        if kind is None:
            self._returned = self.free.actor.put_nowait.remote(actor)
        else:
            self.free.put(actor)

    def settle(self) -> None:
        """Wait until the actor is back on the free list."""
        if self._returned is not None:
            ray.get(self._returned)
            self._returned = None
