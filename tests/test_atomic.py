"""Atomic output: the target is either untouched or fully replaced, and no temp is left behind."""

from __future__ import annotations

import pytest

from soup_search.io.atomic import atomic_dir, atomic_file


def leftovers(parent, name):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


# ---------------------------------------------------------------- atomic_dir


def test_dir_success(tmp_path):
    target = tmp_path / "sub" / "out"
    with atomic_dir(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        (tmp / "a.txt").write_text("A")
        (tmp / "nested").mkdir()
        (tmp / "nested" / "b.txt").write_text("B")
        assert not target.exists()  # nothing visible before the block ends
    assert (target / "a.txt").read_text() == "A"
    assert (target / "nested" / "b.txt").read_text() == "B"
    assert leftovers(target.parent, "out") == []


def test_dir_replaces_existing(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").read_text() == "old"  # old still intact during the write
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert leftovers(tmp_path, "out") == []


def test_dir_exception_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_dir(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_dir_exception_keeps_the_old_target(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert leftovers(tmp_path, "out") == []


def test_dir_no_overwrite(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(FileExistsError):
        with atomic_dir(target, overwrite=False) as tmp:
            (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert leftovers(tmp_path, "out") == []


# ---------------------------------------------------------------- atomic_file


def test_file_success(tmp_path):
    target = tmp_path / "deep" / "r.json"
    with atomic_file(target) as fh:
        fh.write("{}")
        assert not target.exists()
    assert target.read_text() == "{}"
    assert leftovers(target.parent, "r.json") == []


def test_file_replaces_existing_and_binary_mode(tmp_path):
    target = tmp_path / "r.bin"
    target.write_bytes(b"old")
    with atomic_file(target, "wb") as fh:
        fh.write(b"\x00new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"\x00new"
    assert leftovers(tmp_path, "r.bin") == []


def test_file_exception_leaves_nothing(tmp_path):
    target = tmp_path / "r.csv"
    with pytest.raises(ValueError, match="bad"):
        with atomic_file(target) as fh:
            fh.write("a,b\n")
            raise ValueError("bad")
    assert list(tmp_path.iterdir()) == []


def test_file_exception_keeps_the_old_content(tmp_path):
    target = tmp_path / "r.csv"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_file(target) as fh:
            fh.write("new")
            raise ValueError("bad")
    assert target.read_text() == "old"
    assert leftovers(tmp_path, "r.csv") == []
