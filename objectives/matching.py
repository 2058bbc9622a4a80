"""Answer matching: (prediction, reference) -> 1.0 or 0.0, found by name (an objective's ``scoring`` parameter)."""

from __future__ import annotations

import re
from collections.abc import Callable

from soup_search.errors import ObjectiveError

MatchFn = Callable[[str, str], float]

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalize_text(text: str) -> str:
    """Strip surrounding space and collapse inner runs of white space."""
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the prediction equals the reference after white-space normalisation."""
    return float(normalize_text(prediction) == normalize_text(reference))


def extract_number(text: str) -> float | None:
    """The answer number of a completion, GSM8K/MGSM style.

    Takes the number after the last ``####`` when present, otherwise the last number
    in the text; thousands separators are dropped. ``None`` when there is no number.
    """
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def numeric_match(prediction: str, reference: str) -> float:
    """1.0 when the extracted numbers of prediction and reference are equal."""
    pred, ref = extract_number(prediction), extract_number(reference)
    return float(pred is not None and ref is not None and abs(pred - ref) < 1e-6)


MATCHERS: dict[str, MatchFn] = {"exact_match": exact_match, "numeric": numeric_match}


def get_matcher(name: str) -> MatchFn:
    if name not in MATCHERS:
        raise ObjectiveError(f"unknown answer matching {name!r}; use one of: {', '.join(MATCHERS)}")
    return MATCHERS[name]
