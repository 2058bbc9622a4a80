"""Scoring functions: exact match and GSM8K/MGSM-style numeric extraction."""

from __future__ import annotations

import pytest

from soup_search.objectives.matching import MATCHERS, exact_match, extract_number, get_matcher, normalize_text, numeric_match
from soup_search.errors import ObjectiveError


@pytest.mark.parametrize("pred,ref,want", [
    ("46", "46", 1.0),
    ("  46\n", "46", 1.0),
    ("hello   world", " hello world ", 1.0),
    ("hello\tworld\n", "hello world", 1.0),
    ("helloworld", "hello world", 0.0),
    ("Even", "even", 0.0),  # case matters
    ("46 ", "460", 0.0),
    ("", "", 1.0),
])
def test_exact_match_normalises_white_space(pred, ref, want):
    assert exact_match(pred, ref) == want


def test_normalize_text():
    assert normalize_text("  a \n b\t\tc  ") == "a b c"


@pytest.mark.parametrize("text,want", [
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", 72.0),
    ("#### 1,234", 1234.0),
    ("The answer is 1,234,567.", 1234567.0),
    ("it is -5", -5.0),
    ("#### -17", -17.0),
    ("pi is about 3.14", 3.14),
    ("costs 12.50 dollars", 12.5),
    ("first 3 then 7 finally 11", 11.0),  # the last number wins
    ("step 1: 20 apples #### 18 and then 99", 99.0),  # last number after the last ####
    ("#### 5 #### 6", 6.0),
    ("42.", 42.0),
])
def test_extract_number(text, want):
    assert extract_number(text) == pytest.approx(want)


@pytest.mark.parametrize("text", ["", "no number here", "####", "minus - sign"])
def test_extract_number_none(text):
    assert extract_number(text) is None


@pytest.mark.parametrize("pred,ref,want", [
    ("so she has #### 1,234", "1234", 1.0),
    ("The answer is 72", "#### 72", 1.0),
    ("72.0", "72", 1.0),
    ("-3", "3", 0.0),
    ("I get 71", "72", 0.0),
    ("no idea", "72", 0.0),
    ("72", "no number", 0.0),
    ("", "", 0.0),
])
def test_numeric_match(pred, ref, want):
    assert numeric_match(pred, ref) == want


def test_scorers_by_name():
    assert get_matcher("exact_match") is exact_match
    assert get_matcher("numeric") is numeric_match
    assert set(MATCHERS) >= {"exact_match", "numeric"}
    with pytest.raises(ObjectiveError) as exc:
        get_matcher("bleu")
    assert "bleu" in str(exc.value) and "exact_match" in str(exc.value) and "numeric" in str(exc.value)
