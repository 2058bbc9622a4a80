"""The experts really are category experts: they differ per category and none is best everywhere."""

from __future__ import annotations

import pytest

from soup_search.objectives.toy import ToyObjective
from soup_search.zoo.scores import score_zoo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dev_scores(tiny_zoo):
    toy = ToyObjective(seed=0)
    return toy.categories, score_zoo(tiny_zoo, toy, "dev", soup=True)


def test_every_model_is_scored_on_every_category(dev_scores, tiny_zoo):
    cats, table = dev_scores
    assert list(table) == [*tiny_zoo.models(), "uniform_soup"]
    assert all(set(row) == set(cats) and all(0 <= v <= 1 for v in row.values()) for row in table.values())


def test_no_single_expert_is_best_on_every_category(dev_scores, tiny_zoo):
    cats, table = dev_scores
    experts = {name: table[name] for name in tiny_zoo.experts}
    for name, row in experts.items():
        others = [r for n, r in experts.items() if n != name]
        assert any(max(o[c] for o in others) > row[c] for c in cats), f"{name} is best on every category"


def test_experts_differ_measurably_per_category(dev_scores, tiny_zoo):
    cats, table = dev_scores
    experts = [table[name] for name in tiny_zoo.experts]
    spread = {c: max(r[c] for r in experts) - min(r[c] for r in experts) for c in cats}
    assert sum(s >= 0.05 for s in spread.values()) >= 3, spread
    leaders = {max(tiny_zoo.experts, key=lambda n: table[n][c]) for c in cats}
    assert len(leaders) >= 3, leaders  # several experts lead some category


def test_models_are_neither_blank_nor_perfect(dev_scores):
    _, table = dev_scores
    means = {name: sum(row.values()) / len(row) for name, row in table.items()}
    assert all(0.05 < m < 0.98 for m in means.values()), means
