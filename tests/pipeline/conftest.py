"""Pipeline fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def private_scores(cache_dir, tiny_zoo, tmp_path, monkeypatch):
    """A score cache of this test's own (the zoo is shared): nothing is cached before it."""
    private = tmp_path / "cache"
    private.mkdir()
    (private / "zoo").symlink_to(cache_dir / "zoo", target_is_directory=True)
    monkeypatch.setenv("SOUP_SEARCH_CACHE_DIR", str(private))
    return private / "scores"
