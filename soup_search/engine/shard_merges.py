"""What a trial holds of the shard group: the shard actors, to merge a recipe on all at once.

Light on purpose: a trial process unpickles it, and never imports torch (the shard actors do).
:class:`~soup_search.engine.shard_group.ShardGroup` builds the actors and hands this out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from soup_search.errors import MergeError


class ShardMerges:
    """The shard actors of one candidate set, and an LRU of the refs of recipes merged lately
    (keyed by the recipe's fingerprint; each process that holds a copy has its own)."""

    def __init__(self, actors: Sequence, candidate_names: Sequence[str], cache_size: int = 8):
        self.actors = list(actors)
        self.candidate_names = tuple(candidate_names)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, list] = OrderedDict()

    def merge(self, recipe, cache: bool = True) -> list:
        """One ObjectRef per shard, each resolving to ``{name: ndarray}``; merged in parallel.

        A recipe whose fingerprint is in the LRU is not merged again: the same refs come back.
        """
        unknown = [k for k in recipe.model_keys if k not in self.candidate_names]
        if unknown:
            raise MergeError(f"recipe uses models {unknown} that are not in the candidate set "
                             f"{list(self.candidate_names)}; use candidate names as model keys")
        key = recipe.fingerprint() if cache and self.cache_size > 0 else None
        if key is not None and key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        refs = [a.merge.remote(recipe) for a in self.actors]
        if key is not None:
            self._cache[key] = refs
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return refs

    def forget(self, recipe) -> None:
        """Drop ``recipe`` from the LRU (e.g. after its refs failed)."""
        self._cache.pop(recipe.fingerprint(), None)

    def clear(self) -> None:
        self._cache.clear()

    def __getstate__(self) -> dict:
        """A copy in another process starts with an empty LRU of its own."""
        return {**self.__dict__, "_cache": OrderedDict()}
