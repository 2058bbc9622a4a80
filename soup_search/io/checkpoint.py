"""Safetensors checkpoints: header-first reading, memory-mapped tensors, streaming atomic writes.

What a checkpoint is, where its files are and how a header is validated live in
:mod:`soup_search.io.checkpoint_files`. :class:`CheckpointReader` parses and validates only
the JSON headers when it is built, so a candidate set of large checkpoints is checked in
milliseconds; it is the one place headers are parsed for a checkpoint (each tensor's file and
byte offset are public in :class:`TensorInfo`). Tensor data is read on demand through ``safetensors.safe_open``
(memory-mapped). A checkpoint may also be an fsspec URL (``s3://``, ``gs://``, ``https://``):
then headers and tensors are read by ranged requests (:mod:`soup_search.io.remote`), only
the bytes asked for, optionally cached on local disk by content key. :func:`write_checkpoint` writes ``(name, tensor)`` pairs through the
streaming writer of :mod:`soup_search.io.safetensors_format` (no copy of a file in memory),
atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import safe_open

from soup_search.errors import CandidateError
from soup_search.io import remote
from soup_search.io.checkpoint_files import (
    FIX, TensorInfo, file_name, join, model_file, read_config, read_header, remote_weight_files, weight_files,
)
from soup_search.io.dtypes import st_dtype, torch_dtype
from soup_search.io.remote import is_url
from soup_search.io.safetensors_format import (
    DEFAULT_FILE_BYTES, INDEX_FILE, TensorSpec, file_layout, write_streamed_checkpoint,
)

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "tokenizer.model", "spm.model", "sentencepiece.bpe.model", "vocab.json", "vocab.txt",
    "merges.txt", "chat_template.jinja", "chat_template.json", "generation_config.json",
)


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
        self.dir, files, file_map = (remote_weight_files if self.is_remote else weight_files)(self.path)
        self.has_config, self.config = read_config(self.dir)
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
                        f"{join(self.dir, INDEX_FILE)}: tensor {name!r} is listed in file "
                        f"{file_name(file)!r} but the file does not hold it; {FIX}")
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
        digest.update(f"{file_name(file)}\0{reader.file_size(file)}\0".encode())
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
