"""Where soup-search keeps caches: ``$SOUP_SEARCH_CACHE_DIR``, else the user cache dir."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_dir(*parts: str) -> Path:
    """The cache root (or a sub-folder of it), created on demand."""
    root = os.environ.get("SOUP_SEARCH_CACHE_DIR") or user_cache_dir("soup-search")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
