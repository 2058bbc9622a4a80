"""Watch sources: a leaderboard CSV served over real HTTP on loopback (with and without an ETag)
or read from disk, and a folder of real tiny checkpoints; their revisions, notes and diffs."""

from __future__ import annotations

import shutil

import pytest

from soup_search.service.sources import SourceError, diff, read_folder, read_leaderboard
from tests.helpers import LoopbackHTTP, make_candidates, make_checkpoint


def Board(text: str, etag: str | None = '"v1"') -> LoopbackHTTP:
    """A leaderboard CSV on a loopback HTTP server; ``etag`` None sends none. Its CSV is at ``url``."""
    server = LoopbackHTTP(text, etag)
    server.url += "/board.csv"
    return server


def csv(rows: dict[str, list[str]], categories: list[str]) -> str:
    return "\n".join([",".join(["Rank", "Model", *categories])] +
                     [",".join([str(i), name, *values]) for i, (name, values) in enumerate(rows.items(), 1)]) + "\n"


@pytest.fixture
def models(tmp_path):
    root = tmp_path / "models"
    make_candidates(root, n=2)
    return root


def test_a_leaderboard_over_http_is_revised_by_its_etag_and_maps_rows_to_folders(models):
    board = Board(csv({"m0": ["50%", "40%"], "m1": ["45%", "60%"], "ghost": ["10%", "10%"]}, ["math", "code"]))
    try:
        first = read_leaderboard(board.url, checkpoint_root=str(models))
        assert first.id == 'etag:"v1"' and sorted(first.candidates) == ["m0", "m1"]
        assert first.categories == ("math", "code") and first.notes == ("row 'ghost' has no checkpoint; skipped",)
        assert diff(first, read_leaderboard(board.url, checkpoint_root=str(models)))["changed"] is False
        # a new checkpoint and its row: a new revision, one candidate added
        make_checkpoint(models / "m2", seed=2)
        board.text = csv({"m0": ["50%", "40%"], "m1": ["45%", "60%"], "m2": ["70%", "20%"]}, ["math", "code"])
        board.etag = '"v2"'
        second = read_leaderboard(board.url, checkpoint_root=str(models))
        change = diff(first, second)
        assert change["changed"] and change["candidates_added"] == ["m2"] and change["candidates_removed"] == []
        assert not change["schema_changed"] and second.notes == ()
        # a category column appears (a schema change, as BFCL v3 → v4)
        board.text = csv({"m0": ["50%", "40%", "1%"], "m1": ["45%", "60%", "2%"]}, ["math", "code", "agents"])
        board.etag = '"v3"'
        third = read_leaderboard(board.url, checkpoint_root=str(models))
        change = diff(second, third)
        assert change["schema_changed"] and change["categories_added"] == ["agents"]
        assert change["candidates_removed"] == ["m2"]
    finally:
        board.close()


def test_without_an_etag_the_content_is_the_revision(models, tmp_path):
    board = Board(csv({"m0": ["50%"], "m1": ["40%"]}, ["math"]), etag=None)
    try:
        a = read_leaderboard(board.url, checkpoints={"m0": str(models / "m0"), "m1": str(models / "m1")})
        b = read_leaderboard(board.url, checkpoints={"m0": str(models / "m0"), "m1": str(models / "m1")})
        assert a.id.startswith("sha256:") and a.id == b.id and board.gets == 2
        board.text = csv({"m0": ["51%"], "m1": ["40%"]}, ["math"])
        assert read_leaderboard(board.url, checkpoint_root=str(models)).id != a.id
    finally:
        board.close()
    local = tmp_path / "board.csv"
    local.write_text(csv({"m0": ["50%"], "m1": ["40%"]}, ["math"]))
    assert read_leaderboard(str(local), checkpoint_root=str(models)).id == a.id  # same bytes, same revision


def test_a_folder_skips_an_incompatible_checkpoint_and_sees_new_content(models):
    make_checkpoint(models / "wide", seed=5, hidden_size=64, intermediate_size=128)
    first = read_folder(str(models))
    assert sorted(first.candidates) == ["m0", "m1"] and first.id.startswith("set:")
    assert len(first.notes) == 1 and "'wide' is incompatible" in first.notes[0] and "skipped" in first.notes[0]
    assert read_folder(str(models)).id == first.id
    make_checkpoint(models / "m2", seed=2)
    shutil.rmtree(models / "m1")
    make_checkpoint(models / "m1", seed=9)  # retrained in place: same name, new content
    change = diff(first, read_folder(str(models)))
    assert change["candidates_added"] == ["m2"] and change["candidates_updated"] == ["m1"]
    assert sorted(read_folder(str(models / "m*")).candidates) == ["m0", "m1", "m2"]  # a glob


def test_a_source_that_cannot_be_read_is_one_line(tmp_path, models):
    with pytest.raises(SourceError, match="does not exist"):
        read_leaderboard(str(tmp_path / "nope.csv"))
    with pytest.raises(SourceError, match="does not exist"):
        read_folder(str(tmp_path / "no-folder"))
    board = Board("Model,math\nm0,abc\n")
    try:
        with pytest.raises(SourceError, match="leaderboard") as bad:
            read_leaderboard(board.url, checkpoint_root=str(models))
        assert "\n" not in str(bad.value)
    finally:
        board.close()
    with pytest.raises(SourceError, match="unreachable"):
        read_leaderboard("http://127.0.0.1:9/board.csv")
