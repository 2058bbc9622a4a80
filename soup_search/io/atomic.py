"""Atomic output: write into a temp dir next to the target, rename into place at the end.

Nothing is ever left half-written: if the body raises, the temp dir is removed and
the target is untouched. Outputs follow the umask like any other tool's.

Nothing soup-search did not write is ever replaced: every folder written by
:func:`atomic_dir` holds a :data:`MARKER` file, and only a folder holding one (or an
empty folder) may be replaced; a file, a non-empty unmarked folder, or the current
folder never is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from soup_search.errors import SoupSearchError

#: the file inside every folder soup-search writes, which lets ``--force`` replace it
MARKER = ".soup-search"
MARKER_TEXT = "written by soup-search; soup-search may replace this folder when given --force\n"


def umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_target(target: str | os.PathLike, overwrite: bool) -> Path:
    """``target`` as an absolute path, if a new folder may be put there; else a one-line error.

    A missing path or an empty folder is fine; a folder soup-search wrote (it holds
    :data:`MARKER`) only with ``overwrite``; anything else never.
    """
    path = Path(os.path.abspath(Path(target).expanduser()))
    cwd = Path.cwd()
    if path == cwd or path in cwd.parents:
        raise SoupSearchError(f"output {str(target)!r} is the current folder or holds it; "
                              "give a new folder name as the output")
    if not path.exists() and not path.is_symlink():
        return path
    if not path.is_dir() or path.is_symlink():
        raise SoupSearchError(f"output {str(target)!r} exists and is not a folder; "
                              "remove it or choose another output path")
    if not any(path.iterdir()):
        return path
    if not (path / MARKER).is_file():
        raise SoupSearchError(f"output folder {str(target)!r} exists and holds files soup-search did not "
                              "write; choose a new or empty folder (it is never replaced, even with --force)")
    if not overwrite:
        raise SoupSearchError(f"output folder {str(target)!r} exists (an earlier soup-search output); "
                              "pass --force to replace it or choose another folder")
    return path


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create folder ``path`` (and its parents) if needed; a one-line error where that cannot be."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(path, err) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SoupSearchError(f"cannot write into {str(path)!r} (permission denied); choose a writable output folder")
    return path


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temp dir; on success it replaces ``target``, on error it is deleted.

    ``target`` is checked by :func:`check_target` before the body runs and again before
    the rename, so a refused target costs no work and is never touched.
    """
    shown, target = target, check_target(target, overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as err:
        raise _unwritable(Path(shown), err) from None
    try:
        tmp.chmod(0o777 & ~umask())  # mkdtemp makes it private; an output follows the umask
        (tmp / MARKER).write_text(MARKER_TEXT)
        yield tmp
        check_target(target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temp file next to ``target``; rename it over ``target`` when the block succeeds."""
    target = Path(target).expanduser()
    if target.is_dir():
        raise SoupSearchError(f"output {str(target)!r} is a folder; give the path of a file to write")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    except OSError as err:
        raise _unwritable(target, err) from None
    try:
        with os.fdopen(fd, mode) as fh:
            os.fchmod(fh.fileno(), 0o666 & ~umask())  # mkstemp makes it private; follow the umask
            yield fh
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _unwritable(path: Path, err: OSError) -> SoupSearchError:
    return SoupSearchError(f"cannot write {str(path)!r} ({err.strerror or type(err).__name__}); "
                           "choose an output path in a writable folder")
