"""Tiny real checkpoints shared by the merge tests (built once per session)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import make_checkpoint, make_candidates


@pytest.fixture(scope="session")
def candidates_dir(tmp_path_factory):
    """m0..m3: four compatible tiny Llama checkpoints (float32, single file)."""
    root = tmp_path_factory.mktemp("merge-candidates")
    make_candidates(root, n=4)
    return root


@pytest.fixture(scope="session")
def state_dicts(candidates_dir):
    return {f"m{i}": load_file(candidates_dir / f"m{i}" / "model.safetensors") for i in range(4)}


@pytest.fixture(scope="session")
def deep_pool(tmp_path_factory):
    """Three checkpoints with 3 layers, so gradients have a midpoint (t = 0, 0.5, 1)."""
    root = tmp_path_factory.mktemp("merge-deep")
    for i in range(3):
        make_checkpoint(root / f"d{i}", seed=10 + i, num_hidden_layers=3)
    return root


@pytest.fixture(scope="session")
def bf16_pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge-bf16")
    make_candidates(root, n=2, dtype=torch.bfloat16)
    return root


@pytest.fixture(scope="session")
def sharded_pool(tmp_path_factory):
    """Two checkpoints saved in ~20KB shards with an index."""
    root = tmp_path_factory.mktemp("merge-sharded")
    make_candidates(root, n=2, max_shard_size="20KB")
    return root
