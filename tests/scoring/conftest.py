"""Fixtures of the scoring tests: the vLLM stand-in (``tests/fake_vllm``) importable as ``vllm``."""

from __future__ import annotations

import sys

import pytest

from tests.helpers import FAKE_VLLM


@pytest.fixture()
def fake_vllm(monkeypatch):
    """The stand-in importable as ``vllm``, under vLLM's default environment."""
    monkeypatch.syspath_prepend(str(FAKE_VLLM))
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    for name in ("vllm", "vllm.inputs"):
        sys.modules.pop(name, None)
    import vllm

    yield vllm
    for name in ("vllm", "vllm.inputs"):
        sys.modules.pop(name, None)
