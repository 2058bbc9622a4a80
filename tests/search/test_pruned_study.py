"""Pruning in a real study (Ray Tune, Optuna storage, the tiny zoo and a random-weights candidate):
a clearly bad soup is stopped after one chunk, the best is never stopped, and a partial score
never reaches the score cache."""

from __future__ import annotations

import pytest
import ray
from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

from soup_search.search.space import SearchSpace
from soup_search.search.trial import TrialContext, soup_recipe, weights_fingerprint
from soup_search.search.storage import open_storage
from soup_search.search.tuner import run_study
from tests.helpers import write_config

pytestmark = pytest.mark.slow

CHUNKS = 4


def random_checkpoint(template, path):
    """The template's architecture with random weights: a candidate that answers nothing right."""
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(AutoConfig.from_pretrained(template)).save_pretrained(path)
    AutoTokenizer.from_pretrained(template).save_pretrained(path)
    return path


def test_a_clearly_bad_soup_is_stopped_early_and_the_best_never(tiny_zoo, ray_session, tmp_path):
    import optuna
    import yaml

    from soup_search.config import load_config
    from soup_search.engine.session import open_session
    from soup_search.pipeline.candidate_set import load_config_candidates

    bad = random_checkpoint(tiny_zoo.base, tmp_path / "random")
    path = write_config(tmp_path, "prune", seed=113)
    data = yaml.safe_load(path.read_text())
    data["candidates"] = {"paths": [str(tiny_zoo.base), str(bad)]}
    data["resources"]["scorers"] = 1  # one trial scores at a time: the order below is the order of scoring
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    candidates = load_config_candidates(cfg, progress=False)
    good_name, bad_name = candidates.names
    space = SearchSpace(("good", "bad"), {"good": (good_name,), "bad": (bad_name,)})
    points = [space.params_for([0.0, 1.0]),   # random weights alone: complete, nothing to compare with yet
              space.params_for([1.0, 0.0]),   # the trained model alone: the best, never stopped
              space.params_for([0.1, 0.9])]   # mostly random weights: clearly worse, stopped after a chunk
    # one trial per Tune run, so the order of scoring is the order above (no race for the scorer)
    url = f"sqlite:///{tmp_path / 'optuna.sqlite'}"
    with open_session(cfg, candidates, tmp_path / "state", score_cache=tmp_path / "scores.sqlite") as session:
        ctx = TrialContext.of(session, space, "prune", chunks=CHUNKS)
        ran = [run_study(ctx, storage_url=url, study_name="prune", n_trials=n, sampler="tpe", seed=0,
                         points=[point], concurrency=1, tune_dir=tmp_path / "tune", prune=True)
               for n, point in enumerate(points, 1)]
        rows = {round(r["weights"]["all"][good_name], 6): r for r in session.evaluations("prune")}
        random_alone, trained_alone, mostly_random = rows[0.0], rows[1.0], rows[0.1]
        full = trained_alone["timings"]["examples_scored"]
        assert ran == [1, 1, 1] and len(rows) == 3 and full == sum(trained_alone["counts"].values()) > 0
        # the best is never stopped (though a complete, worse trial exists); the clearly bad mix
        # is stopped after its first chunk
        assert not random_alone["timings"]["pruned"] and not trained_alone["timings"]["pruned"]
        assert mostly_random["timings"]["pruned"] and mostly_random["timings"]["chunks_scored"] == 1
        # a chunk goes to Tune only when the scheduler could stop the trial: none of the first (no
        # complete trial yet) nor of the best, the one chunk of the clearly bad mix
        assert [r["timings"]["reports"] for r in (random_alone, trained_alone, mostly_random)] == [0, 0, 1]
        assert mostly_random["timings"]["examples_scored"] == sum(mostly_random["counts"].values()) == full // CHUNKS
        assert trained_alone["value"] > max(random_alone["value"], mostly_random["value"]) + 0.2
        TS = optuna.trial.TrialState
        study = optuna.load_study(study_name="prune", storage=open_storage(url))
        assert sorted(str(t.state) for t in study.trials) == sorted(
            str(TS.PRUNED if r["timings"]["pruned"] else TS.COMPLETE) for r in rows.values())
        # the partial score is not in the cache as a full result; the complete ones are
        fp = lambda p: weights_fingerprint(soup_recipe(space.soup(p)), session.candidate_fps)  # noqa: E731
        lookup = lambda p: ray.get(session.store.lookup.remote(fp(p), session.spec.fingerprint(), "dev"))  # noqa: E731
        assert lookup(points[2]) is None and lookup(points[1]).n == full
        # the pruned trial counts in the budget: nothing is left to run
        assert run_study(ctx, storage_url=url, study_name="prune", n_trials=3, sampler="tpe", seed=0,
                         points=points, concurrency=1, tune_dir=tmp_path / "tune", prune=True) == 0


def test_a_search_whose_trials_fail_says_why_in_one_line(tiny_zoo, ray_session, tmp_path):
    """Trials that fail even when retried end the stage with a one-line error, never a silent,
    partial search (a space naming a model the shards do not hold fails in every trial)."""
    from soup_search.config import load_config
    from soup_search.engine.session import open_session
    from soup_search.errors import SearchError
    from soup_search.pipeline.candidate_set import load_config_candidates

    cfg = load_config(write_config(tmp_path, "fails", seed=5))
    candidates = load_config_candidates(cfg, progress=False)
    space = SearchSpace(("a", "b"), {"a": (candidates.names[0],), "b": ("not-a-candidate",)})
    url = f"sqlite:///{tmp_path / 'optuna.sqlite'}"
    with open_session(cfg, candidates, tmp_path / "state", score_cache=tmp_path / "scores.sqlite") as session:
        ctx = TrialContext.of(session, space, "fails", chunks=CHUNKS)
        with pytest.raises(SearchError) as failed:
            run_study(ctx, storage_url=url, study_name="fails", n_trials=2, sampler="tpe", seed=0,
                      points=[space.params_for([0.5, 0.5])], concurrency=1, tune_dir=tmp_path / "tune")
    message = str(failed.value)
    assert "\n" not in message and message.startswith("search 'fails': 2 of 2 trials failed")
    assert "the first with: KeyError: 'not-a-candidate'; fix that and run again" in message
    tracebacks = list((tmp_path / "tune").rglob("error.txt"))
    assert message.endswith(f"under {tracebacks[0].parent.parent})") and "not-a-candidate" in tracebacks[0].read_text()
