"""The console tables: what they show, and that they fit the console."""

import io


def test_a_curve_table_leaves_out_the_categories_that_do_not_fit_and_says_where_they_are():
    from rich.console import Console

    from soup_search.cli.tables import curve_table

    cats = ["add", "sub", "sort", "reverse", "max", "copy", "count", "parity"]
    points = [{"lambda": lam, "per_category": {c: 0.5 for c in cats}, "mean": 0.4 + lam / 10,
               "mean_ci": [0.35, 0.45], "mean_tokens": 3.0 + lam} for lam in (0.0, 0.5, 1.0)]
    data = {"kind": "sweep", "axes": ["lambda"], "points": points}

    def printed(width):
        console = Console(width=width, record=True, file=io.StringIO())
        console.print(curve_table(data, width))
        return console.export_text()

    wide, narrow = printed(120), printed(80)
    assert "reverse" in wide and "…" not in wide and "per-category" not in wide
    assert "reverse" not in narrow and "…" not in narrow and "per-category accuracy: the .csv" in " ".join(narrow.split())
    assert "0.450" in narrow and "4.00" in narrow  # the best mean and its tokens, whole
