"""A checkpoint's files, before any tensor data: where its weight files are, what their
safetensors headers say, and its small files (config.json, tokenizer files).

A checkpoint is a Hugging Face model directory holding either ``model.safetensors`` or
``model.safetensors.index.json`` plus its weight files (``model.safetensors`` wins when both
are present, as in ``from_pretrained``), a single ``.safetensors`` file or an index file; local
or an fsspec URL (read by ranged requests, :mod:`soup_search.io.remote`). Every problem is a
:class:`~soup_search.errors.CandidateError` naming the file and the fix.
:class:`~soup_search.io.checkpoint.CheckpointReader` is built on these.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from soup_search.errors import CandidateError
from soup_search.io import remote
from soup_search.io.dtypes import DTYPE_BYTES
from soup_search.io.remote import is_url
from soup_search.io.safetensors_format import CONFIG_FILE, INDEX_FILE, SINGLE_FILE

MAX_HEADER_BYTES = 100 * 2**20  # the limit safetensors itself enforces
FIX = "re-download or re-save the checkpoint"


@dataclass(frozen=True)
class TensorInfo:
    """What a safetensors header says about one tensor (no data)."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # safetensors dtype string, e.g. "F32", "BF16", "F16"
    nbytes: int
    file: Path | str  # the .safetensors file holding it (a str for a URL)
    offset: int  # byte offset of its data in ``file`` (from the start of the file)


@dataclass(frozen=True)
class Header:
    raw: bytes  # the JSON header as stored
    data_start: int  # file offset of the data section (8 + header length)
    entries: dict  # name -> {"dtype", "shape", "data_offsets"}


def read_header(file: str | Path, size: int | None = None) -> Header:
    """Parse and validate one .safetensors header; reads no tensor data.

    ``file`` is a local path or a URL (two ranged reads: the 8-byte length, then the header;
    ``size``, when the caller knows it, saves a request). Raises CandidateError on a bad
    header length, invalid JSON, malformed entries, or data_offsets that do not fit the
    file (a truncated download).
    """
    size, n, raw = _remote_header_bytes(file, size) if is_url(file) else _local_header_bytes(Path(file))
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CandidateError(f"{file}: corrupt safetensors header (invalid JSON: {err}); {FIX}") from None
    if not isinstance(header, dict):
        raise CandidateError(f"{file}: corrupt safetensors header (not a JSON object); {FIX}")
    data_size = size - 8 - n
    entries, end = {}, 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, stop) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            if not (isinstance(begin, int) and isinstance(stop, int) and 0 <= begin <= stop):
                raise ValueError
            if not all(isinstance(d, int) and d >= 0 for d in shape):
                raise ValueError
        except (TypeError, KeyError, ValueError):
            raise CandidateError(
                f"{file}: corrupt safetensors header (bad entry for tensor {name!r}); {FIX}") from None
        if stop > data_size:
            raise CandidateError(
                f"{file}: truncated safetensors file (tensor {name!r} ends at byte {stop} "
                f"of a {data_size}-byte data section); {FIX}")
        numel = 1
        for d in shape:
            numel *= d
        if dtype in DTYPE_BYTES and numel * DTYPE_BYTES[dtype] != stop - begin:
            raise CandidateError(
                f"{file}: corrupt safetensors header (tensor {name!r} of shape {shape} and dtype "
                f"{dtype} spans {stop - begin} bytes); {FIX}")
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": (begin, stop)}
        end = max(end, stop)
    if end != data_size:
        raise CandidateError(
            f"{file}: corrupt safetensors file ({data_size - end} bytes after the last tensor); {FIX}")
    return Header(raw=raw, data_start=8 + n, entries=entries)


def _check_length(file, size: int, head: bytes) -> int:
    if len(head) < 8:
        raise CandidateError(f"{file}: truncated safetensors file ({size} bytes, no header); {FIX}")
    (n,) = struct.unpack("<Q", head)
    if n > MAX_HEADER_BYTES or 8 + n > size:
        raise CandidateError(
            f"{file}: corrupt or truncated safetensors file (header length {n} "
            f"does not fit in {size} bytes); {FIX}")
    return n


def _local_header_bytes(file: Path) -> tuple[int, int, bytes]:
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            n = _check_length(file, size, fh.read(8))
            return size, n, fh.read(n)
    except OSError as err:
        raise CandidateError(
            f"{file}: cannot read ({err.strerror or err}); check the path and permissions") from None


def _remote_header_bytes(url: str, size: int | None) -> tuple[int, int, bytes]:
    if size is None:
        size, _ = remote.stat(url)
    n = _check_length(url, size, remote.read_range(url, 0, min(8, size)))
    return size, n, remote.read_range(url, 8, 8 + n)


def weight_files(path: Path) -> tuple[Path, list[Path], dict[str, Path] | None]:
    """(model dir, safetensors files, weight_map or None) for a dir, a .safetensors file or an index file."""
    if not path.exists():
        raise CandidateError(
            f"checkpoint {str(path)!r} does not exist; pass a model directory saved with save_pretrained")
    if path.is_file() and path.name.endswith(".index.json"):
        index = path
    elif path.is_file():
        return path.parent, [path], None
    elif (path / SINGLE_FILE).is_file():
        return path, [path / SINGLE_FILE], None
    elif (path / INDEX_FILE).is_file():
        index = path / INDEX_FILE
    elif any(path.glob("*.bin")) or any(path.glob("*.pt")):
        raise CandidateError(
            f"{path}: has only PyTorch .bin/.pt weights; re-save it with "
            f"save_pretrained(..., safe_serialization=True) to get {SINGLE_FILE}")
    else:
        raise CandidateError(
            f"{path}: no {SINGLE_FILE} or {INDEX_FILE}; pass a model directory saved with save_pretrained")
    try:
        text = index.read_text()
    except (OSError, UnicodeDecodeError):
        text = ""
    file_map = {name: index.parent / file for name, file in _weight_map(index, text).items()}
    files = sorted(set(file_map.values()))
    for file in files:
        if not file.is_file():
            raise CandidateError(f"{index}: lists file {file.name!r}, which is missing; {FIX}")
    return index.parent, files, file_map


def remote_weight_files(url: str) -> tuple[str, list[str], dict[str, str] | None]:
    """:func:`weight_files` for a URL: a model folder, a .safetensors object or an index object."""
    if url.endswith(".safetensors"):
        remote.stat(url)  # a missing object fails here, naming its URL
        return url.rsplit("/", 1)[0], [url], None
    if url.endswith(".index.json"):
        index = url
    elif remote.is_file(remote.join(url, SINGLE_FILE)):
        return url, [remote.join(url, SINGLE_FILE)], None
    elif remote.is_file(remote.join(url, INDEX_FILE)):
        index = remote.join(url, INDEX_FILE)
    else:
        raise CandidateError(f"{url}: no {SINGLE_FILE} or {INDEX_FILE} there; pass the URL of a model "
                             "folder saved with save_pretrained (safetensors)")
    folder = index.rsplit("/", 1)[0]
    try:
        text = remote.read_bytes(index).decode()
    except UnicodeDecodeError:
        text = ""
    file_map = {name: remote.join(folder, file) for name, file in _weight_map(index, text).items()}
    files = sorted(set(file_map.values()))
    for file in files:
        if not remote.is_file(file):
            raise CandidateError(f"{index}: lists file {remote.basename(file)!r}, which is missing; {FIX}")
    return folder, files, file_map


def _weight_map(index, text: str) -> dict[str, str]:
    try:
        weight_map = json.loads(text)["weight_map"]
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise TypeError
    except (json.JSONDecodeError, KeyError, TypeError):
        raise CandidateError(
            f"{index}: corrupt index (needs a JSON object with a 'weight_map'); {FIX}") from None
    return weight_map


def join(folder: Path | str, name: str) -> Path | str:
    return remote.join(folder, name) if is_url(folder) else Path(folder) / name


def file_name(file: Path | str) -> str:
    return remote.basename(file) if is_url(file) else Path(file).name


def model_file(folder: Path | str, name: str) -> bytes | None:
    """The bytes of the small file ``name`` (config.json, a tokenizer file) in a local or URL model folder; None if absent."""
    file = join(folder, name)
    if is_url(file):
        return remote.read_bytes(file) if remote.is_file(file) else None
    try:
        return file.read_bytes() if file.is_file() else None
    except OSError as err:
        raise CandidateError(f"{file}: cannot read ({err.strerror or err}); check the path and permissions") from None


def read_config(model_dir: Path | str) -> tuple[bool, dict]:
    """(whether config.json exists, its content or {})."""
    file = join(model_dir, CONFIG_FILE)
    raw = model_file(model_dir, CONFIG_FILE)
    if raw is None:
        return False, {}
    try:
        config = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CandidateError(f"{file}: invalid JSON ({err}); fix or re-save the config") from None
    if not isinstance(config, dict):
        raise CandidateError(f"{file}: not a JSON object; fix or re-save the config")
    return True, config
