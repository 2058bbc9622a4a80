"""Atomic output: the target is either untouched or fully replaced, and no temp is left behind."""

from __future__ import annotations

import os
import stat

import pytest

from soup_search.errors import SoupSearchError
from soup_search.io.atomic import MARKER, atomic_dir, atomic_file, check_target


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
    assert (target / MARKER).is_file()
    assert leftovers(target.parent, "out") == []


def test_dir_replaces_what_it_wrote(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").read_text() == "old"  # old still intact during the write
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]
    assert leftovers(tmp_path, "out") == []


def test_dir_replaces_an_empty_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with atomic_dir(target, overwrite=False) as tmp:
        (tmp / "new.txt").write_text("new")
    assert (target / "new.txt").read_text() == "new"


def test_dir_never_replaces_an_unmarked_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("user data")
    ran = []
    with pytest.raises(SoupSearchError, match="did not write.*never replaced, even with --force"):
        with atomic_dir(target, overwrite=True):
            ran.append(True)
    assert ran == []  # refused before any work
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"]
    assert leftovers(tmp_path, "out") == []


def test_dir_never_replaces_a_file(tmp_path):
    target = tmp_path / "out"
    target.write_text("user file")
    with pytest.raises(SoupSearchError, match="exists and is not a folder"):
        with atomic_dir(target):
            pass
    assert target.read_text() == "user file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_dir_never_replaces_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with atomic_dir("x"):
        pass
    (tmp_path / MARKER).write_text("")  # even a marked current folder, or its parent
    for target in (".", ".."):
        with pytest.raises(SoupSearchError, match="current folder"):
            check_target(target, overwrite=True)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_outputs_follow_the_umask(tmp_path, mask, file_mode, dir_mode):
    old = os.umask(mask)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "a.txt").write_text("A")
        with atomic_file(tmp_path / "f.txt") as fh:
            fh.write("F")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == file_mode


def test_unwritable_target_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    for target in ("/proc/soup/out", tmp_path / "afile" / "x"):
        with pytest.raises(SoupSearchError, match=r"cannot write .*choose an output path in a writable folder"):
            with atomic_dir(target):
                pass
        with pytest.raises(SoupSearchError, match=r"cannot write .*writable folder"):
            with atomic_file(target):
                pass


def test_file_target_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(SoupSearchError, match="is a folder; give the path of a file"):
        with atomic_file(tmp_path):
            pass


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
    with atomic_dir(target) as tmp:
        (tmp / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "old.txt"]
    assert leftovers(tmp_path, "out") == []


def test_dir_no_overwrite(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "old.txt").write_text("old")
    with pytest.raises(SoupSearchError, match="pass --force to replace it"):
        with atomic_dir(target, overwrite=False) as tmp:
            (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "old.txt"]
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
