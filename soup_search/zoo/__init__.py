"""The toy zoo: tiny Llama checkpoints trained here on the toy objective (the embedded default candidate set).

>>> from soup_search.zoo import build_zoo
>>> zoo = build_zoo(size="tiny", progress=False)   # doctest: +SKIP
>>> list(zoo.models())[:2]                          # doctest: +SKIP
['base', 'expert_add_sub']
"""

from soup_search.zoo.build import Zoo, build_zoo, expert_mixture, fingerprint
from soup_search.zoo.model import CODE_VERSION, SIZE_ALIASES, SIZES, ZooError, ZooSpec, get_spec

__all__ = [
    "CODE_VERSION",
    "SIZES",
    "SIZE_ALIASES",
    "Zoo",
    "ZooError",
    "ZooSpec",
    "build_zoo",
    "expert_mixture",
    "fingerprint",
    "get_spec",
]
