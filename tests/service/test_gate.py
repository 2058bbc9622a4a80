"""The promotion gate on run folders written as a run writes them: results.json and
per_example.json with each test example's correctness."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soup_search.service.gate import decide


def run_folder(path, per_category: dict[str, list[int]], objective_revision: str = "obj-1", held_out=()):
    path.mkdir(parents=True)
    test = {c: float(np.mean(bits)) for c, bits in per_category.items()}
    mean = float(np.mean([v for c, v in test.items() if c not in held_out]))
    results = {"objective_revision": objective_revision,
               "config": {"objective": {"held_out_categories": list(held_out)}},
               "best": {"test_mean": mean, "test_per_category": test}}
    (path / "results.json").write_text(json.dumps(results))
    (path / "per_example.json").write_text(json.dumps(
        {"rows": {"best soup": {c: "".join(map(str, bits)) for c, bits in per_category.items()}}}))
    return path


def bits(n: int, ones: int, seed: int) -> list[int]:
    out = np.zeros(n, dtype=int)
    out[np.random.default_rng(seed).choice(n, ones, replace=False)] = 1
    return out.tolist()


def test_the_first_search_becomes_champion(tmp_path):
    new = run_folder(tmp_path / "new", {"a": [1, 0], "b": [0, 1]})
    d = decide(new, None)
    assert d["promoted"] and "no champion yet" in d["reasons"][0]


def test_a_clear_win_is_promoted_with_its_numbers(tmp_path):
    old = run_folder(tmp_path / "old", {"a": bits(200, 100, 0), "b": bits(200, 100, 1)})
    # the challenger answers 40 more examples right in each category
    new_a, new_b = json.loads((old / "per_example.json").read_text())["rows"]["best soup"].values()
    new_a = [1 if (ch == "1" or i < 80 and ch == "0" and i % 2 == 0) else 0 for i, ch in enumerate(new_a)]
    new_b = [1 if (ch == "1" or i < 80 and ch == "0" and i % 2 == 0) else 0 for i, ch in enumerate(new_b)]
    new = run_folder(tmp_path / "new", {"a": new_a, "b": new_b})
    d = decide(new, old, margin=0.0, tolerance=0.02)
    assert d["promoted"] and d["ci_low"] > 0 and d["delta"] == pytest.approx(d["challenger_test_mean"] - d["champion_test_mean"])
    assert d["n"] == 400 and d["worst_drop"] <= 0
    # the same soups under a margin above the CI's lower end: kept, and the reason says so
    high = decide(new, old, margin=d["ci_low"] + 0.01)
    assert not high["promoted"] and "is not above the margin" in high["reasons"][0]


def test_noise_and_a_regressing_category_are_kept(tmp_path):
    old = run_folder(tmp_path / "old", {"a": bits(100, 50, 0), "b": bits(100, 50, 1)})
    same = run_folder(tmp_path / "same", {"a": bits(100, 51, 0), "b": bits(100, 50, 1)})
    d = decide(same, old)
    assert not d["promoted"] and d["ci_low"] <= 0 < d["ci_high"]
    # a big win on a and a 5-point loss on b: the CI may clear, the tolerance does not
    trade = run_folder(tmp_path / "trade", {"a": [1] * 100, "b": [b if i >= 10 else 0 for i, b in enumerate(bits(100, 50, 1))]})
    d = decide(trade, old, tolerance=0.02)
    assert not d["promoted"] and d["worst_category"] == "b" and d["category_drop"]["b"] > 0.02
    assert any("regress beyond the tolerance" in r for r in d["reasons"])


def test_another_objective_revision_is_never_compared(tmp_path):
    old = run_folder(tmp_path / "old", {"a": [0] * 50, "b": [0] * 50}, objective_revision="obj-1")
    new = run_folder(tmp_path / "new", {"a": [1] * 50, "b": [1] * 50}, objective_revision="obj-2")
    d = decide(new, old)
    assert not d["promoted"] and "not comparable" in d["reasons"][0] and "delta" not in d


def test_held_out_categories_do_not_count(tmp_path):
    old = run_folder(tmp_path / "old", {"a": [0] * 60, "b": [0] * 60, "h": [1] * 60}, held_out=("h",))
    new = run_folder(tmp_path / "new", {"a": [1] * 60, "b": [1] * 60, "h": [0] * 60}, held_out=("h",))
    d = decide(new, old)
    assert d["promoted"] and "h" not in d["category_drop"] and d["n"] == 120
