"""The pipeline stages on one shared session: the held-out firewall, the test-split guard, actor crashes."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers import write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spy_session(tiny_zoo, ray_session, tmp_path_factory):
    """One session for the in-process tests below, its objective a spy that logs every split asked for."""
    from soup_search.config import load_config
    from soup_search.engine.session import open_session
    from soup_search.objectives import register_objective
    from soup_search.pipeline.candidate_set import load_config_candidates
    from tests.helpers import SpyObjective

    register_objective("spy", SpyObjective)
    root = tmp_path_factory.mktemp("spy")
    log = root / "splits.log"
    path = write_config(root, "spy", seed=106, objective="spy", objective_params={"log": str(log)},
                        n_trials=4, categories=["sort", "reverse", "count"], tau=0.999)
    data = yaml.safe_load(path.read_text())
    data["objective"]["held_out_categories"] = ["add"]
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    candidates = load_config_candidates(cfg, progress=False)
    with open_session(cfg, candidates, root / "state", score_cache=root / "scores.sqlite") as session:
        yield cfg, session, root, log


def test_search_sees_no_test_example_and_no_held_out_category_before_the_final_report(spy_session):
    """The spy records every split any scorer process asks for, and the categories it handed out:
    the search asks only for dev, never sees the held-out category, and the final report scores it."""
    from soup_search.pipeline.final_eval import best_trial, comparison_specs, evaluate_comparison, trial_records
    from soup_search.pipeline.run import profile_and_analyze, search
    from tests.helpers import spy_calls

    cfg, session, root, log = spy_session
    _, analysis, space, _ = profile_and_analyze(cfg, session, root)
    search(cfg, session, space, root)
    asked = spy_calls(log)
    assert asked and {(split, held) for split, held, _ in asked} == {("dev", False)}
    assert all("add" not in cats for _, _, cats in asked) and "add" not in analysis.categories

    trials = trial_records(session.evaluations("search"))
    specs = comparison_specs(session.candidates.names, space, analysis, best_trial(trials), None)
    rows = evaluate_comparison(session, specs)
    final = spy_calls(log)[len(asked):]
    tests = [(held, cats) for split, held, cats in final if split == "test"]
    assert tests and all(held and "add" in cats for held, cats in tests)
    assert all(not held and "add" not in cats for split, held, cats in final if split == "dev")
    # the held-out category is scored, kept out of the objective, and reported as transfer
    soup = rows[0]
    assert "add" in soup.test_per_category and soup.transfer_mean == soup.test_per_category["add"]
    assert rows[1].transfer_vs_best is not None and rows[1].vs_best.n == 24 * 7


def test_the_search_cannot_score_the_test_split(spy_session):
    from soup_search.errors import ObjectiveError
    from soup_search.pipeline.category_scores import single_recipe
    from soup_search.search.trial import TrialContext, evaluate_recipe

    _, session, _, _ = spy_session
    with pytest.raises(ObjectiveError, match="refuses to score the test split"):
        evaluate_recipe(single_recipe(session.candidates.names[0]), TrialContext.of(session, stage="test"), "test")


def test_crashed_actors_are_restarted_and_the_call_retried(spy_session):
    """Runs last in this module: it kills every scorer and shard actor of the shared session."""
    import ray

    from soup_search.pipeline.category_scores import single_recipe
    from soup_search.search.trial import TrialContext, evaluate_recipe

    _, session, _, _ = spy_session
    ctx = TrialContext.of(session, stage="crash")
    names = session.candidates.names
    first, _, _ = evaluate_recipe(single_recipe(names[0]), ctx, "dev")
    calls = sum(s["calls"] for s in ray.get([a.stats.remote() for a in session.scorers.actors]))
    for actor in session.scorers.actors:
        ray.kill(actor, no_restart=False)  # a crash: Ray restarts the actor (max_restarts)
    for actor in session.shards.actors:
        ray.kill(actor, no_restart=False)
    fresh = {"all": {names[0]: 0.5, names[1]: 0.5}}  # weights never scored before
    from soup_search.search.trial import soup_recipe

    again, _, cached = evaluate_recipe(soup_recipe(fresh), ctx, "dev")
    assert not cached and again.n == first.n
    # the restarted actors start counting from zero: exactly one call since the crash
    assert sum(s["calls"] for s in ray.get([a.stats.remote() for a in session.scorers.actors])) == 1
    assert calls >= 1
