"""``soup-search bench merge``: runs end to end on tiny models and reports every figure."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from soup_search.bench.merge import llama_layout, parse_params
from soup_search.cli import app, main

KEYS = {"models", "params", "shards", "dtype", "repeats", "model_bytes", "tensors",
        "disk_to_disk_s", "disk_to_disk_gbps", "in_memory_s", "in_memory_median_s", "in_memory_gbps",
        "copy_gbps", "ratio", "actor_merge_s", "in_memory_cpu_s", "in_memory_cpu_gbps",
        "copy_cpu_gbps", "ratio_cpu", "load_avg", "cpus"}


def test_parse_params_and_layout_size():
    assert parse_params("100M") == 100_000_000
    assert parse_params("2.5m") == 2_500_000
    assert parse_params("500000") == 500_000
    for target in (1_000_000, 100_000_000):
        _, shapes = llama_layout(target)
        total = sum(math.prod(s) for _, s in shapes)
        assert 0.75 * target < total < 1.3 * target


def test_bench_merge_prints_figures_and_writes_json(ray_session, tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "merge", "--params", "1M", "--models", "2",
                                      "--repeats", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    for text in ("disk-to-disk", "in-memory merge", "memory copy", "in-memory / copy"):
        assert text in result.output
    data = json.loads(out.read_text())
    assert set(data) == KEYS
    assert data["models"] == 2 and data["params"] == 1_000_000
    assert data["model_bytes"] > 3_000_000  # ~1M float32 params
    for key in ("disk_to_disk_s", "in_memory_s", "in_memory_gbps", "copy_gbps", "ratio"):
        assert data[key] > 0, key
    assert data["ratio"] == pytest.approx(data["in_memory_gbps"] / data["copy_gbps"])


def test_bench_merge_bad_options_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "merge", "--models", "1", "--dtype", "int8", "--params", "lots"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--params" in err
