"""Safetensors checkpoints: header-first reading, memory-mapped tensors, streaming atomic writes.

A checkpoint is a Hugging Face model directory holding either ``model.safetensors`` or
``model.safetensors.index.json`` plus its weight files (``model.safetensors`` wins when both
are present, as in ``from_pretrained``). :class:`CheckpointReader` parses and validates only
the JSON headers when it is built, so a candidate set of large checkpoints is checked in
milliseconds; it is the one place headers are parsed (each tensor's file and byte offset are
public in :class:`TensorInfo`). Tensor data is read on demand through ``safetensors.safe_open``
(memory-mapped). A checkpoint may also be an fsspec URL (``s3://``, ``gs://``, ``https://``):
then headers and tensors are read by ranged requests (:mod:`soup_search.io.remote`), only
the bytes asked for, optionally cached on local disk by content key. :func:`write_checkpoint` writes ``(name, tensor)`` pairs through the
streaming writer of :mod:`soup_search.io.safetensors_format` (no copy of a file in memory),
atomically.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from soup_search.errors import CandidateError
from soup_search.io import remote
from soup_search.io.dtypes import DTYPE_BYTES, st_dtype, torch_dtype
from soup_search.io.remote import is_url
from soup_search.io.safetensors_format import (
    CONFIG_FILE, DEFAULT_FILE_BYTES, INDEX_FILE, SINGLE_FILE, TensorSpec, file_layout, write_streamed_checkpoint,
)

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "tokenizer.model", "spm.model", "sentencepiece.bpe.model", "vocab.json", "vocab.txt",
    "merges.txt", "chat_template.jinja", "chat_template.json", "generation_config.json",
)
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
class _Header:
    raw: bytes  # the JSON header as stored
    data_start: int  # file offset of the data section (8 + header length)
    entries: dict  # name -> {"dtype", "shape", "data_offsets"}


def read_header(file: str | Path, size: int | None = None) -> _Header:
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
    return _Header(raw=raw, data_start=8 + n, entries=entries)


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


def _weight_files(path: Path) -> tuple[Path, list[Path], dict[str, Path] | None]:
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


def _remote_weight_files(url: str) -> tuple[str, list[str], dict[str, str] | None]:
    """:func:`_weight_files` for a URL: a model folder, a .safetensors object or an index object."""
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


class CheckpointReader:
    """Header-validated view of a safetensors checkpoint; tensors are read on demand.

    ``path`` is a model directory (one weight file or several), a single ``.safetensors`` file
    or a ``*.index.json`` file, local or an fsspec URL. Construction reads only headers and
    config.json. Local file handles are opened lazily, one per file, and kept until
    :meth:`close`; a URL's tensors are fetched by one ranged read each, kept in ``cache_dir``
    (per node, keyed by the object's content key) when one is given. A reader can be
    pickled (e.g. sent to a Ray actor); the handles are reopened on the other side.
    """

    def __init__(self, path: str | Path, cache_dir: str | Path | None = None):
        self.is_remote = is_url(path)
        self.path = str(path).rstrip("/") if self.is_remote else Path(path).expanduser()
        self.cache_dir = cache_dir
        self.dir, files, file_map = (_remote_weight_files if self.is_remote else _weight_files)(self.path)
        self.has_config, self.config = _read_config(self.dir)
        self._infos: dict[str, TensorInfo] = {}
        self._sizes: dict[Path | str, int] = {}
        self._raw_headers: dict[Path | str, bytes] = {}
        self._keys: dict[str, str | None] = {}  # URL -> content key (cache), when cached
        for file in files:
            if self.is_remote:
                size, checksum = remote.stat(file)
                header = read_header(file, size)
                self._keys[file] = remote.content_key(size, checksum, header.raw) if cache_dir else None
            else:
                header = read_header(file)
            self._raw_headers[file] = header.raw
            self._sizes[file] = header.data_start + max(
                (e["data_offsets"][1] for e in header.entries.values()), default=0)
            wanted = header.entries if file_map is None else [n for n, f in file_map.items() if f == file]
            for name in wanted:
                entry = header.entries.get(name)
                if entry is None:
                    raise CandidateError(
                        f"{_join(self.dir, INDEX_FILE)}: tensor {name!r} is listed in file "
                        f"{_name(file)!r} but the file does not hold it; {FIX}")
                begin, stop = entry["data_offsets"]
                self._infos[name] = TensorInfo(name, entry["shape"], entry["dtype"], stop - begin, file,
                                               header.data_start + begin)
        self.tensor_names: list[str] = sorted(self._infos)
        self._handles: dict[Path, object] = {}

    # -- metadata ---------------------------------------------------------------------
    def info(self, name: str) -> TensorInfo:
        try:
            return self._infos[name]
        except KeyError:
            raise KeyError(f"{self.path}: no tensor named {name!r}") from None

    def infos(self) -> dict[str, TensorInfo]:
        return {name: self._infos[name] for name in self.tensor_names}

    @property
    def files(self) -> list[Path]:
        return sorted(self._sizes)

    def file_size(self, file: Path) -> int:
        """The size ``file`` had when its header was read (a different size means it changed)."""
        return self._sizes[file]

    def raw_header(self, file: Path) -> bytes:
        """The JSON header of ``file`` as stored (names, dtypes, shapes, offsets, metadata)."""
        return self._raw_headers[file]

    @property
    def total_bytes(self) -> int:
        return sum(info.nbytes for info in self._infos.values())

    # -- data -------------------------------------------------------------------------
    def _handle(self, file: Path):
        handle = self._handles.get(file)
        if handle is None:
            size = file.stat().st_size if file.exists() else -1
            if size != self._sizes[file]:
                raise CandidateError(
                    f"{file}: changed since it was opened ({size} bytes, "
                    f"expected {self._sizes[file]}); {FIX}")
            try:
                handle = safe_open(str(file), framework="pt", device="cpu")
            except Exception as err:  # safetensors raises its own SafetensorError / OSError
                raise CandidateError(f"{file}: cannot open ({err}); {FIX}") from None
            self._handles[file] = handle
        return handle

    def get(self, name: str, device: str = "cpu") -> torch.Tensor:
        """The tensor ``name`` (memory-mapped read, or one ranged read of a URL), moved to ``device`` if not "cpu"."""
        info = self.info(name)
        if self.is_remote:
            tensor = _tensor_from_bytes(self.read_range(info.file, info.offset, info.offset + info.nbytes), info)
        else:
            tensor = self._handle(info.file).get_tensor(name)
        return tensor if device == "cpu" else tensor.to(device)

    def read_range(self, file: Path | str, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of one of this checkpoint's files (from the cache dir where it has them)."""
        if not self.is_remote:
            with open(file, "rb") as fh:
                fh.seek(start)
                return fh.read(stop - start)
        key = self._keys.get(file)
        if key is not None:
            return remote.cached_range(file, key, start, stop, self.cache_dir)
        return remote.read_range(file, start, stop)

    def read_ranges(self, file: Path | str, ranges: list[tuple[int, int]]) -> list[bytes]:
        """Several ``(start, stop)`` ranges of one file (concurrent requests for a URL; not cached)."""
        if self.is_remote:
            return remote.read_ranges(file, [a for a, _ in ranges], [b for _, b in ranges])
        with open(file, "rb") as fh:
            out = []
            for start, stop in ranges:
                fh.seek(start)
                out.append(fh.read(stop - start))
            return out

    def close(self) -> None:
        self._handles.clear()

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}}

    def __repr__(self) -> str:
        return f"CheckpointReader({str(self.path)!r}, {len(self._infos)} tensors, {self.total_bytes} bytes)"


def _tensor_from_bytes(data: bytes, info: TensorInfo) -> torch.Tensor:
    dtype = torch_dtype(info.dtype)
    if not data:
        return torch.empty(info.shape, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=dtype).reshape(info.shape)


def _join(folder: Path | str, name: str) -> Path | str:
    return remote.join(folder, name) if is_url(folder) else Path(folder) / name


def _name(file: Path | str) -> str:
    return remote.basename(file) if is_url(file) else Path(file).name


def model_file(folder: Path | str, name: str) -> bytes | None:
    """The bytes of the small file ``name`` (config.json, a tokenizer file) in a local or URL model folder; None if absent."""
    file = _join(folder, name)
    if is_url(file):
        return remote.read_bytes(file) if remote.is_file(file) else None
    try:
        return file.read_bytes() if file.is_file() else None
    except OSError as err:
        raise CandidateError(f"{file}: cannot read ({err.strerror or err}); check the path and permissions") from None


def _read_config(model_dir: Path | str) -> tuple[bool, dict]:
    """(whether config.json exists, its content or {})."""
    file = _join(model_dir, CONFIG_FILE)
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


def write_checkpoint(
    out_dir: str | Path,
    tensors: Iterable[tuple[str, torch.Tensor]],
    *,
    config: dict | None = None,
    max_file_bytes: int = DEFAULT_FILE_BYTES,
    metadata: dict[str, str] | None = None,
    extra_files: dict[str, str | bytes] | None = None,
) -> Path:
    """Write ``(name, tensor)`` pairs as a Hugging Face safetensors checkpoint at ``out_dir``.

    The pairs are collected first (references: callers hold the tensors already), laid out by
    :func:`file_layout` (tensors fill a file until the next one would pass
    ``max_file_bytes``; a tensor larger than that gets a file of its own) and written by
    :func:`write_streamed_checkpoint`, one tensor's bytes at a time (tied or shared storages
    are fine). One file is saved as ``model.safetensors``; several as
    ``model-0000i-of-0000N.safetensors`` plus ``model.safetensors.index.json``. Everything
    is written into a temp dir next to ``out_dir`` and renamed at the end; on an exception
    nothing is left behind (an existing ``out_dir`` is untouched).
    """
    if max_file_bytes <= 0:
        raise ValueError(f"max_file_bytes must be positive, got {max_file_bytes}")
    by_name: dict[str, torch.Tensor] = {}
    for name, tensor in tensors:
        if name in by_name:
            raise ValueError(f"tensor {name!r} was given twice")
        by_name[name] = tensor
    specs = [TensorSpec(name, tuple(t.shape), st_dtype(t.dtype)) for name, t in by_name.items()]
    files = file_layout(specs, max_file_bytes)
    ordered = ((s.name, by_name[s.name]) for part in files for s in part)
    return write_streamed_checkpoint(out_dir, files, ordered, config=config, metadata=metadata,
                                     extra_files=extra_files)


def fingerprint_of(path: str | Path, samples_per_tensor: int = 3, sample_bytes: int = 64) -> str:
    """A cheap, stable hash of a checkpoint's content, for cache keys (16 hex chars).

    Hashes each weight file's name, size and raw header (names, dtypes, shapes, offsets),
    ``samples_per_tensor`` slices of ``sample_bytes`` from every tensor's data (start, middle,
    end: fine-tuning changes every element of a tensor it touches, so two checkpoints of
    one architecture still differ), config.json without ``_name_or_path`` and the tokenizer
    files. Independent of the location and mtimes; reads a few KB per tensor at most.
    """
    reader = CheckpointReader(path)
    digest = hashlib.sha256()
    for file in reader.files:
        digest.update(f"{_name(file)}\0{reader.file_size(file)}\0".encode())
        digest.update(reader.raw_header(file))
        ranges = []
        for name in reader.tensor_names:
            info = reader.info(name)
            if info.file != file:
                continue
            begin, span = info.offset, info.nbytes
            for k in range(samples_per_tensor):
                at = max(begin + (span - sample_bytes) * k // max(samples_per_tensor - 1, 1), begin)
                ranges.append((at, at + min(sample_bytes, span)))
        for part in reader.read_ranges(file, ranges):
            digest.update(part)
    config = {k: v for k, v in reader.config.items() if k != "_name_or_path"}
    digest.update(json.dumps(config, sort_keys=True).encode())
    for fname in TOKENIZER_FILES:
        raw = model_file(reader.dir, fname)
        if raw is not None:
            digest.update(fname.encode() + b"\0" + raw)
    return digest.hexdigest()[:16]
