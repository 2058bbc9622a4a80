"""The example watches in configs/watches/ are valid as written, on the real BFCL snapshots: rows
map onto checkpoints, a newer snapshot is a new revision that adds a candidate, and the child
config reads the snapshot's scores under the checkpoints' names."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from soup_search.pipeline.category_scores import leaderboard_frame
from soup_search.service import intake
from soup_search.service.sources import diff, read_source
from soup_search.service.watch_spec import child_config, take_watch
from tests.helpers import make_checkpoint

ROOT = Path(__file__).resolve().parents[2]
BFCL = ROOT.parent / "shared" / "data" / "bfcl"


def test_the_bfcl_watch_maps_rows_and_sees_a_new_snapshot(tmp_path):
    spec_text = (ROOT / "configs" / "watches" / "bfcl.yaml").read_text()
    folders = yaml.safe_load(spec_text)["source"]["checkpoints"].values()
    for i, folder in enumerate(folders):
        make_checkpoint(tmp_path / folder, seed=i)
    (tmp_path / "bfcl").mkdir()
    shutil.copy(BFCL / "bfcl_v3_2025-04-25.csv", tmp_path / "bfcl" / "leaderboard.csv")
    spec, first = take_watch(spec_text.encode(), "text/yaml", (tmp_path,))
    assert len(first.candidates) == 5 and first.id.startswith("sha256:")
    assert "DM-Cito-8B (Prompt)" not in first.candidates  # not on the April board yet
    shutil.copy(BFCL / "bfcl_v3_2025-06-14.csv", tmp_path / "bfcl" / "leaderboard.csv")
    second = read_source(spec.source.model_dump())
    change = diff(first, second)
    assert change["candidates_added"] == ["DM-Cito-8B (Prompt)"] and not change["schema_changed"]
    snapshot = tmp_path / "snapshot.csv"
    snapshot.write_bytes(second.score_table)
    data = child_config(spec.template, spec.source.model_dump(), second, snapshot, None, spec.policy.model_dump())
    cfg = intake.take(yaml.safe_dump(data).encode(), "text/yaml", (tmp_path,)).config
    assert len(cfg.candidates.paths) == 6 and cfg.scores.csv == str(snapshot)
    assert cfg.scores.rename["DM-Cito-8B (Prompt)"] == "expert_sub_reverse_parity"
    assert cfg.analysis.categories == spec.source.categories
    # the run reads the score table: the six mapped rows, as numbers, under the checkpoints' names
    frame = leaderboard_frame(cfg)
    assert sorted(frame.index) == sorted(Path(p).name for p in cfg.candidates.paths)
    assert list(frame.columns) == spec.source.categories and frame.notna().all().all()
    # the April board has N/A scores in rows without a checkpoint: they never reach the run
    april = (BFCL / "bfcl_v3_2025-04-25.csv").read_text()
    assert "N/A%" in april or ",N/A," in april
    assert b"N/A" not in first.score_table and len(first.score_table.decode().splitlines()) == 1 + 5


def test_the_folder_watch_is_valid(tmp_path):
    for i in range(3):
        make_checkpoint(tmp_path / "models" / f"m{i}", seed=i)
    spec, revision = take_watch((ROOT / "configs" / "watches" / "folder.yaml").read_bytes(), "text/yaml", (tmp_path,))
    assert spec.schedule == {"interval_s": 3600} and sorted(revision.candidates) == ["m0", "m1", "m2"]
