"""Checkpoints behind fsspec URLs (``s3://``, ``gs://``, ``https://``): ranged reads only.

A URL candidate is never downloaded whole: :class:`~soup_search.io.checkpoint.CheckpointReader`
reads each safetensors header with two ranged reads (the 8-byte length, then the JSON
header) and each tensor it is asked for with one ranged read of exactly its bytes.
:func:`fetched_bytes` counts, per process and per URL, every byte fetched (a shard actor's
``stats()`` reports it). With a cache dir, tensor byte ranges are kept on local disk under
the object's content key (its store checksum: S3 ETag, GCS md5/crc32c, HTTP ETag), so a
changed object gets a new key; an object whose store gives no checksum is not cached.

Where the store is: fsspec's own settings. For S3 (s3fs): ``AWS_ENDPOINT_URL`` (botocore)
or ``FSSPEC_S3_ENDPOINT_URL`` (fsspec) for an S3-compatible endpoint, and the usual
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_DEFAULT_REGION`` or profile.
s3fs and gcsfs are optional: ``pip install 'soup-search[s3]'`` (or gcsfs for ``gs://``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from soup_search.errors import CandidateError
from soup_search.io.paths import cache_dir as default_cache_dir

#: info() keys that hold a content checksum, by store (s3fs, gcsfs, HTTP)
_CHECKSUM_KEYS = ("ETag", "etag", "md5Hash", "crc32c", "ETAG")
_INSTALL = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
_fetched: Counter = Counter()


def is_url(location: str | Path) -> bool:
    """True for an fsspec URL (``scheme://...``) other than ``file://``; local paths are Paths or plain strings."""
    return isinstance(location, str) and "://" in location and not location.startswith("file://")


def join(url: str, name: str) -> str:
    return f"{url.rstrip('/')}/{name}"


def basename(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def model_folder(url: str) -> str:
    """The model folder of a URL: the URL itself, or the folder of a .safetensors / index object."""
    url = url.rstrip("/")
    return url.rsplit("/", 1)[0] if url.endswith((".safetensors", ".index.json")) else url


@contextlib.contextmanager
def _errors(url: str) -> Iterator[None]:
    """Every failure of a store as one CandidateError naming the URL and the fix."""
    try:
        yield
    except CandidateError:
        raise
    except FileNotFoundError:
        raise CandidateError(f"{url}: no such object; check the URL (bucket, key, file name)") from None
    except PermissionError:
        raise CandidateError(f"{url}: access denied; set credentials that can read it "
                             "(e.g. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile)") from None
    except ImportError as err:
        package = _INSTALL.get(url.split("://", 1)[0], "the fsspec backend of this scheme")
        raise CandidateError(f"{url}: cannot read it, {package} is not installed ({err}); "
                             f"pip install {package} (or soup-search[s3])") from None
    except Exception as err:  # stores raise their own types (botocore, aiohttp, ...)
        msg = (str(err).splitlines() or [type(err).__name__])[0]
        raise CandidateError(f"{url}: cannot read it ({type(err).__name__}: {msg}); check the URL, "
                             "the endpoint (AWS_ENDPOINT_URL for S3-compatible stores) and credentials") from None


def _fs(url: str):
    import fsspec  # only URL candidates need it (100 ms to import): kept off the CLI's start

    with _errors(url):
        return fsspec.core.url_to_fs(url)


def stat(url: str) -> tuple[int, str | None]:
    """(size in bytes, content checksum or None) of the object at ``url``; raises CandidateError."""
    fs, path = _fs(url)
    with _errors(url):
        info = fs.info(path)
    if info.get("type") == "directory":
        raise CandidateError(f"{url}: is a folder, not a file; pass the URL of the model folder or its weight file")
    checksum = next((str(info[k]) for k in _CHECKSUM_KEYS if info.get(k)), None)
    return int(info["size"]), checksum


def is_file(url: str) -> bool:
    """Whether an object exists at ``url`` (a missing one is False; a failing store raises)."""
    fs, path = _fs(url)
    with _errors(url):
        try:
            return fs.info(path).get("type") != "directory"
        except FileNotFoundError:
            return False


def read_range(url: str, start: int, stop: int) -> bytes:
    """Bytes ``[start, stop)`` of the object at ``url`` (one ranged request), counted in :func:`fetched_bytes`."""
    if stop <= start:
        return b""
    fs, path = _fs(url)
    with _errors(url):
        data = fs.cat_file(path, start=start, end=stop)
    _fetched[url] += len(data)
    if len(data) != stop - start:
        raise CandidateError(f"{url}: returned {len(data)} bytes for range [{start}, {stop}) "
                             "(changed while being read?); check that it is not being rewritten")
    return data


def read_ranges(url: str, starts: Sequence[int], stops: Sequence[int]) -> list[bytes]:
    """Several ranges of one object at once (concurrent requests where the store allows)."""
    fs, path = _fs(url)
    with _errors(url):
        parts = fs.cat_ranges([path] * len(starts), list(starts), list(stops), on_error="raise")
    _fetched[url] += sum(len(p) for p in parts)
    return list(parts)


def read_bytes(url: str) -> bytes:
    """The whole object (for small files: config.json, tokenizer files), counted."""
    fs, path = _fs(url)
    with _errors(url):
        data = fs.cat_file(path)
    _fetched[url] += len(data)
    return data


def fetched_bytes() -> dict[str, int]:
    """URL -> bytes this process fetched from it so far (what a shard actor reports in ``stats()``)."""
    return dict(_fetched)


def fetched_total() -> int:
    """All bytes this process fetched from URLs so far."""
    return sum(_fetched.values())


def cached_range(url: str, key: str, start: int, stop: int, cache_dir: str | Path) -> bytes:
    """:func:`read_range`, kept in ``cache_dir/ranges/<key>/<start>-<stop>`` (``key``: the object's
    content key, see :func:`content_key`); a range already there is read from disk, not fetched."""
    file = Path(cache_dir).expanduser() / "ranges" / key / f"{start}-{stop}"
    with contextlib.suppress(FileNotFoundError):
        data = file.read_bytes()
        if len(data) == stop - start:
            return data
    data = read_range(url, start, stop)
    _write_atomic(file, data)
    return data


def content_key(size: int, checksum: str | None, header: bytes) -> str | None:
    """The cache key of an object: its size, store checksum and safetensors header (None without a checksum)."""
    if checksum is None:
        return None
    digest = hashlib.sha256(f"{size}\0{checksum}\0".encode())
    digest.update(header)
    return digest.hexdigest()[:32]


def local_files(url: str, names: Sequence[str], cache_dir: str | Path | None = None) -> Path:
    """A local folder holding those of ``names`` (config.json, tokenizer files) that exist under ``url``.

    Fetched again on every call (small files; a changed object is never stale), into
    ``cache_dir/files/<hash of url>`` (default: the user cache dir), each file written atomically.
    """
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    folder = root / "files" / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = join(url, name)
        if is_file(target):
            _write_atomic(folder / name, read_bytes(target))
        else:
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
    return folder


def _write_atomic(file: Path, data: bytes) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, file)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
