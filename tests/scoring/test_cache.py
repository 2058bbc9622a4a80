"""The persistent score cache and the run store."""

from __future__ import annotations

from soup_search.scoring.protocol import ObjectiveSpec, ScoreResult
from soup_search.scoring.cache import ScoreCache
from soup_search.engine.run_store import RunStore


def test_cache_persists_across_instances(tmp_path):
    r = ScoreResult({"add": 0.5, "sort": 1.0}, {"add": 4, "sort": 2}, 1.5, {"add": "0101", "sort": "11"},
                    {"add": [2, 3, 2, 1], "sort": [5, 5]})
    c = ScoreCache(tmp_path / "s.sqlite")
    assert c.get("w", "o", "dev") is None
    c.put("w", "o", "dev", r)
    c.close()
    c2 = ScoreCache(tmp_path / "s.sqlite")
    assert c2.get("w", "o", "dev") == r
    assert c2.get("w", "o", "test") is None and c2.get("w2", "o", "dev") is None
    assert len(c2) == 1 and c2.hits == 1 and c2.misses == 2
    assert r.n == 6 and r.mean == 0.75 and r.mean_tokens == 3.0


def test_objective_spec_fingerprint_is_order_independent():
    a = ObjectiveSpec("toy", {"seed": 0, "n_dev": 10})
    b = ObjectiveSpec("toy", {"n_dev": 10, "seed": 0})
    assert a.fingerprint() == b.fingerprint() != ObjectiveSpec("toy", {"seed": 1, "n_dev": 10}).fingerprint()
    assert a.build().categories == b.build().categories


def test_run_store_log(tmp_path):
    s = RunStore(tmp_path / "run.sqlite", tmp_path / "cache.sqlite")
    r = ScoreResult({"add": 1.0}, {"add": 3}, 0.1, {"add": "111"}, {"add": [2, 2, 3]})
    s.remember("w", "o", "dev", r)
    s.record("search", {"w.add": 0.5}, {"models": []}, {"all": {"e": 1.0}}, "dev", r, 1.0, {"wall_s": 1}, False)
    s.record("grid", {}, {}, {}, "dev", r, 0.5, {}, True)
    assert s.lookup("w", "o", "dev") == r
    rows = s.evaluations("search")
    assert len(rows) == 1 and rows[0]["params"] == {"w.add": 0.5} and rows[0]["value"] == 1.0
    assert len(s.evaluations()) == 2
    assert s.stats()["scored"] == 1


def test_run_store_record_remembers_and_keeps_each_stages_best_complete_value(tmp_path):
    r = ScoreResult({"add": 1.0}, {"add": 3}, 0.1, {"add": "111"}, {"add": [2, 2, 3]})
    s = RunStore(tmp_path / "run.sqlite", tmp_path / "cache.sqlite")
    assert s.best_complete("search") is None
    s.record("search", {}, {}, {}, "dev", r, 0.4, {"pruned": False}, False, ("w", "o", "dev"))
    s.record("search", {}, {}, {}, "dev", r, 0.9, {"pruned": True}, False)  # a running value: not complete
    s.record("search", {}, {}, {}, "dev", r, 0.6, {}, True)
    s.record("grid", {}, {}, {}, "dev", r, 0.8, {}, False)
    assert s.lookup("w", "o", "dev") == r and s.stats()["scored"] == 1  # remembered in the same call
    assert s.best_complete("search") == 0.6 and s.best_complete("grid") == 0.8
    # what a trial asks before it scores, in one call: its cached result and its pruning bar
    assert s.before_trial("search", "w", "o", "dev") == (r, 0.6)
    assert s.before_trial("grid", "other", "o", "dev") == (None, 0.8)
    # a new store (a resumed run) reads the best back from the log
    assert RunStore(tmp_path / "run.sqlite", tmp_path / "cache.sqlite").best_complete("search") == 0.6


def test_an_entry_without_per_example_bits_is_a_miss(tmp_path):
    """Entries written before per-example correctness existed are scored again, not trusted."""
    cache = ScoreCache(tmp_path / "c.sqlite")
    cache.put("w", "o", "test", ScoreResult({"add": 1.0}, {"add": 3}, 0.1))
    assert cache.get("w", "o", "test") is None and cache.misses == 1


def test_an_entry_without_token_counts_is_a_miss_and_old_json_still_reads(tmp_path):
    """Entries written before token counts existed read back (results files stay readable), but the
    cache scores them again once, so that every cached result carries its token counts."""
    old = {"per_category": {"add": 1.0}, "counts": {"add": 3}, "seconds": 0.1, "correct": {"add": "111"}}
    assert ScoreResult.from_json(old) == ScoreResult({"add": 1.0}, {"add": 3}, 0.1, {"add": "111"})
    assert ScoreResult.from_json(old).mean_tokens is None
    cache = ScoreCache(tmp_path / "c.sqlite")
    cache.put("w", "o", "dev", ScoreResult.from_json(old))
    assert cache.get("w", "o", "dev") is None and cache.misses == 1
    new = ScoreResult.from_json({**old, "generated_tokens": {"add": [1, 2, 3]}})
    cache.put("w", "o", "dev", new)
    assert cache.get("w", "o", "dev") == new and new.mean_tokens == 2.0
