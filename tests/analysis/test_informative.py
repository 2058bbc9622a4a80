"""Which categories the analysis may use."""

from __future__ import annotations

import pandas as pd
import pytest

from soup_search.analysis.informative import informative_categories
from soup_search.errors import AnalysisError

FRAME = pd.DataFrame({"add": [0.1, 0.5, 0.9], "sort": [0.8, 0.2, 0.4], "max": [1.0, 1.0, 1.0]},
                     index=["a", "b", "c"])


def test_constant_categories_are_set_aside():
    cats = informative_categories(FRAME)
    assert cats.kept == ["add", "sort"] and cats.constant == ["max"]


def test_wanted_categories_keep_their_order():
    assert informative_categories(FRAME, ["sort", "add"]).kept == ["sort", "add"]


def test_unknown_category_is_named():
    with pytest.raises(AnalysisError, match=r"unknown categories \['nope'\]"):
        informative_categories(FRAME, ["add", "nope"])


def test_fewer_than_two_informative_categories_names_the_constant_ones():
    with pytest.raises(AnalysisError, match=r"only 1 of 2 categories separate the candidates.*\['max'\]") as exc:
        informative_categories(FRAME, ["add", "max"])
    assert "\n" not in str(exc.value)
