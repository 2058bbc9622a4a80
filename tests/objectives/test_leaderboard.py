"""The leaderboard objective: scores straight from a CSV, found through the registry."""

from __future__ import annotations

import pytest

from objectives import get_objective
from soup_search.errors import AnalysisError, ObjectiveError

BOARD = """Rank,Overall Acc,Model,Cost ($ Per 1k Function Calls),Live Acc,Multi Turn Acc,License
1,78.45%,alpha,N/A,72.95%,75.00%,MIT
2,76.43%,beta,8.39,74.23%,67.12%,MIT
3,73.57%,gamma,N/A,77.74%,58.87%,MIT
"""


@pytest.fixture
def board(tmp_path):
    path = tmp_path / "board.csv"
    path.write_text(BOARD)
    return path


def test_registry_builds_leaderboard_with_scores(board):
    objective = get_objective("leaderboard", path=board)
    assert objective.name == "leaderboard"
    assert objective.categories == ("Live Acc", "Multi Turn Acc")
    scores = objective.scores()
    assert list(scores.index) == ["alpha", "beta", "gamma"]
    assert scores.at["gamma", "Multi Turn Acc"] == pytest.approx(58.87)
    scores.iloc[0, 0] = -1.0  # a copy: the objective is unchanged
    assert objective.scores().iat[0, 0] == pytest.approx(72.95)


def test_categories_exclude_and_name(board):
    from objectives.leaderboard import LeaderboardObjective

    objective = LeaderboardObjective(board, categories=["Overall Acc", "Live Acc"], name="bfcl")
    assert objective.name == "bfcl" and objective.categories == ("Overall Acc", "Live Acc")
    assert get_objective("leaderboard", path=board, exclude=["Live Acc"]).categories == ("Multi Turn Acc",)


def test_no_examples_and_bad_input(board):
    objective = get_objective("leaderboard", path=board)
    with pytest.raises(ObjectiveError, match="gives scores directly; it has no examples"):
        objective.examples("dev")
    with pytest.raises(AnalysisError, match="unknown category 'Live'"):
        get_objective("leaderboard", path=board, categories=["Live"])
    with pytest.raises(AnalysisError, match="non-numeric score 'N/A' for model 'alpha'"):
        get_objective("leaderboard", path=board, categories=["Cost ($ Per 1k Function Calls)"])
