"""read_score_table: percent parsing, model column, default categories, bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from soup_search.analysis import parse_cell, read_score_table
from soup_search.errors import AnalysisError

LEADERBOARD = """Rank,Overall Acc,Model,Model Link,Cost ($ Per 1k Function Calls),Latency Mean (s),Live Acc,Multi Turn Acc,Organization,License
1,78.45%,alpha (FC),https://x/a,N/A,80.75,72.95%,75.00%,Org A,MIT
2,76.43%,beta,https://x/b,8.39,31.36,74.23%,67.12%,Org B,Apache-2.0
3,73.57%,gamma (Prompt),https://x/c,N/A,3.41,77.74%,58.87%,Org C,Proprietary
"""


def write(tmp_path, text, name="scores.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parse_cell_percent_and_plain_numbers():
    assert parse_cell("78.45%") == pytest.approx(78.45)
    assert parse_cell(" 5 % ") == pytest.approx(5.0)
    assert parse_cell("0.25") == pytest.approx(0.25)
    assert parse_cell(3) == 3.0
    for bad in ("N/A", "", "abc", "nan", "inf", "1.2.3%"):
        assert parse_cell(bad) is None


def test_leaderboard_percent_kept_on_its_scale_and_non_categories_ignored(tmp_path):
    table = read_score_table(write(tmp_path, LEADERBOARD))
    # Rank, Overall Acc, cost, latency (numeric here!), link, organization, license are not categories
    assert list(table.columns) == ["Live Acc", "Multi Turn Acc"]
    assert list(table.index) == ["alpha (FC)", "beta", "gamma (Prompt)"]
    assert table.at["beta", "Live Acc"] == pytest.approx(74.23)
    assert table.dtypes.eq(float).all()


def test_explicit_categories_select_even_overall(tmp_path):
    table = read_score_table(write(tmp_path, LEADERBOARD), categories=["Overall Acc", "Live Acc"])
    assert list(table.columns) == ["Overall Acc", "Live Acc"]
    assert table.at["gamma (Prompt)", "Overall Acc"] == pytest.approx(73.57)


def test_scores_csv_format_and_model_column_option(tmp_path):
    path = write(tmp_path, "model,add,sub\nm0,0.5,0.25\nm1,1.0,0.75\nm2,0.0,0.5\n")
    table = read_score_table(path)  # "Model" falls back to the case-insensitive "model"
    assert table.loc["m1"].tolist() == [1.0, 0.75]
    other = write(tmp_path, "name,add,sub\nm0,1,2\nm1,3,4\nm2,5,7\n", "other.csv")
    assert read_score_table(other, model_column="name").loc["m2"].tolist() == [5.0, 7.0]


def test_unknown_category_names_near_matches(tmp_path):
    with pytest.raises(AnalysisError, match=r"unknown category 'Live acc' \(did you mean 'Live Acc'"):
        read_score_table(write(tmp_path, LEADERBOARD), categories=["Live acc"])


def test_non_numeric_cell_names_model_and_column(tmp_path):
    text = LEADERBOARD.replace("74.23%", "oops")
    with pytest.raises(AnalysisError, match=r"'oops' for model 'beta' in category 'Live Acc'"):
        read_score_table(write(tmp_path, text), categories=["Live Acc", "Multi Turn Acc"])
    # by default such a column is simply not a category
    assert list(read_score_table(write(tmp_path, text)).columns) == ["Multi Turn Acc"]


def test_missing_cells_error_or_dropped(tmp_path):
    text = LEADERBOARD.replace("67.12%", "N/A")
    path = write(tmp_path, text)
    with pytest.raises(AnalysisError, match=r"'N/A' for model 'beta'.*--drop-missing"):
        read_score_table(path, categories=["Live Acc", "Multi Turn Acc"])
    table = read_score_table(path, categories=["Live Acc", "Multi Turn Acc"], drop_missing=True)
    assert list(table.index) == ["alpha (FC)", "gamma (Prompt)"]
    assert table.attrs["dropped_models"] == ["beta"]


def test_duplicate_models_and_missing_model_column(tmp_path):
    dup = write(tmp_path, "model,a,b\nm0,1,2\nm0,3,4\nm1,5,6\n")
    with pytest.raises(AnalysisError, match=r"duplicate model names \['m0'\]"):
        read_score_table(dup)
    with pytest.raises(AnalysisError, match=r"no model column 'Name'; columns are \['model', 'a', 'b'\]"):
        read_score_table(dup, model_column="Name")
    with pytest.raises(AnalysisError, match="does not exist"):
        read_score_table(tmp_path / "absent.csv")


def test_exclude_drops_default_categories(tmp_path):
    table = read_score_table(write(tmp_path, LEADERBOARD), exclude=["Multi Turn Acc"])
    assert list(table.columns) == ["Live Acc"]
    assert isinstance(table, pd.DataFrame)
