"""GPU tests: they need CUDA and the real vLLM, and skip cleanly (one reason each) without them.

Run them on a GPU machine with ``pytest -m gpu tests/gpu -n 0 -s`` (``-s`` prints the FIGURE lines).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from tests.helpers import FAKE_VLLM


@pytest.fixture(scope="session")
def real_vllm():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (GPU tests run on a GPU machine)")
    # found, not imported: the adapter sets vLLM's environment before the first import
    spec = importlib.util.find_spec("vllm")
    if spec is None:
        pytest.skip("vLLM is not installed (pip install 'soup-search[vllm]')")
    if str(FAKE_VLLM) in str(spec.origin):
        pytest.skip("the vLLM stand-in is on the path, not vLLM")
