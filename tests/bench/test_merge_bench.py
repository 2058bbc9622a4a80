"""``soup-search bench merge``: runs end to end on tiny models and reports every figure."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from soup_search.bench.merge import llama_layout, parse_params
from soup_search.cli import app, main

KEYS = {"models", "dtype", "repeats", "disk_to_disk", "rows", "load_avg", "cpus"}
ROW_KEYS = {"params", "shards", "memory", "model_bytes", "tensors", "load_s", "merge_s", "merge_median_s", "gbps",
            "actor_merge_s", "cpu_s", "cpu_gbps", "copy_gbps", "copy_cpu_gbps", "ratio", "object_store_bytes",
            "resident_bytes_per_shard"}


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
    result = CliRunner().invoke(app, ["bench", "merge", "--params", "1M", "--models", "2", "--shards", "2",
                                      "--memory", "resident", "--repeats", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # rich wraps lines at the terminal's width
    for text in ("disk-to-disk", "in-memory merge", "memory-copy GB/s", "in-memory / copy", "object store"):
        assert text in printed
    data = json.loads(out.read_text())
    assert set(data) == KEYS and data["models"] == 2
    [disk], [row] = data["disk_to_disk"], data["rows"]
    assert set(row) == ROW_KEYS
    assert (row["params"], row["shards"], row["memory"]) == (1_000_000, 2, "resident")
    assert row["model_bytes"] == disk["model_bytes"] > 3_000_000  # ~1M float32 params
    for key in ("load_s", "merge_s", "gbps", "copy_gbps", "ratio"):
        assert row[key] > 0, key
    assert disk["seconds"] > 0 and disk["gbps"] > 0
    assert row["ratio"] == pytest.approx(row["gbps"] / row["copy_gbps"])


def test_bench_merge_lists_give_one_row_per_size_shards_and_memory(ray_session, tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "merge", "--params", "100K,300K", "--models", "3", "--shards", "1,2",
                                      "--memory", "resident,mmap", "--dtype", "bfloat16", "--repeats", "1",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert [(r["params"], r["shards"], r["memory"]) for r in rows] == [
        (p, n, m) for p in (100_000, 300_000) for n in (1, 2) for m in ("resident", "mmap")]
    disk = {d["params"]: d["model_bytes"] for d in data["disk_to_disk"]}
    assert disk[300_000] > 2 * disk[100_000]
    for r in rows:
        model_bytes = disk[r["params"]]
        assert r["model_bytes"] == model_bytes
        assert r["object_store_bytes"] == model_bytes  # one bfloat16 soup per merge, all shards together
        if r["memory"] == "mmap":
            assert r["resident_bytes_per_shard"] == 0
        else:  # the largest shard holds its share of all 3 candidates: at least a 1/n share
            assert 3 * model_bytes / r["shards"] <= r["resident_bytes_per_shard"] <= 3 * model_bytes
        assert r["merge_s"] > 0 and r["gbps"] > 0 and r["load_s"] > 0
        assert r["gbps"] == pytest.approx((3 + 1) * model_bytes / r["merge_s"] / 1e9)


def test_bench_merge_bad_options_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "merge", "--models", "1", "--dtype", "int8", "--params", "lots"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--params" in err
    with pytest.raises(SystemExit) as exc:
        main(["bench", "merge", "--shards", "1,0,x", "--memory", "resident,swap"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--shards 0" in err and "--shards x" in err and "--memory" in err
