"""One torch thread for every recur test: the models are tiny, and on shared cores a second thread
only spin-waits (the zoo trains on one thread for the same reason)."""

from __future__ import annotations

import pytest

from soup_search.zoo.build import single_thread


@pytest.fixture(autouse=True)
def one_torch_thread():
    with single_thread():
        yield
