"""Writing Hugging Face safetensors checkpoints: headers first, tensor bytes streamed to disk.

The layout of a checkpoint (which tensor goes in which file, in which order) is computed
up front from names, shapes and dtypes (:class:`TensorSpec`, :func:`file_layout`), so each
file's header is written before its data and every tensor's bytes go straight to the file:
nothing the size of a file is held in memory. :func:`write_streamed_checkpoint` writes one
``model.safetensors`` or ``model-0000i-of-0000N.safetensors`` files plus
``model.safetensors.index.json``, with config.json and any extra files, atomically.
(mergekit and transformers call these file parts "shards"; here "shard" is a shard actor's
slice of the tensors, see :mod:`soup_search.engine.shard`.)
Both :func:`soup_search.io.checkpoint.write_checkpoint` (tensors in memory) and
:func:`soup_search.merge.stream.merge_to_disk` (tensors merged chunk by chunk) use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
import torch

from soup_search.io.atomic import atomic_dir
from soup_search.io.dtypes import DTYPE_BYTES, st_dtype

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
CONFIG_FILE = "config.json"
DEFAULT_FILE_BYTES = 5 * 2**30  # largest weight file (mergekit's and transformers' default "5GB" shard)
# the order of dtypes within a file written by safetensors 0.8 itself (checked with save_file)
_FILE_ORDER = {st: i for i, st in enumerate((
    "U64", "I64", "F64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16",
    "F8_E4M3", "F8_E5M2", "I8", "U8", "BOOL"))}


@dataclass(frozen=True)
class TensorSpec:
    """An output tensor known before its data: name, shape, safetensors dtype string."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_BYTES[self.dtype]


def file_layout(specs: Sequence[TensorSpec], max_file_bytes: int) -> list[list[TensorSpec]]:
    """Split ``specs`` into weight files, each ordered as safetensors orders a file.

    Tensors fill a file until the next one would pass ``max_file_bytes`` (a larger tensor
    gets a file of its own); within a file, by element size (largest first), then as
    safetensors orders dtypes of one size, then by name. No specs give one empty file.
    """
    if max_file_bytes <= 0:
        raise ValueError(f"max_file_bytes must be positive, got {max_file_bytes}")
    files: list[list[TensorSpec]] = []
    current: list[TensorSpec] = []
    size = 0
    for spec in specs:
        if current and size + spec.nbytes > max_file_bytes:
            files.append(current)
            current, size = [], 0
        current.append(spec)
        size += spec.nbytes
    files.append(current)
    return [sorted(part, key=lambda s: (-DTYPE_BYTES[s.dtype], _FILE_ORDER.get(s.dtype, 0), s.name))
            for part in files]


def write_streamed_checkpoint(
    out_dir: str | Path,
    files: Sequence[Sequence[TensorSpec]],
    tensors: Iterable[tuple[str, torch.Tensor]],
    *,
    config: dict | None = None,
    metadata: dict[str, str] | None = None,
    extra_files: dict[str, str | bytes] | None = None,
) -> Path:
    """Write a Hugging Face safetensors checkpoint whose layout (``files``) is known up front.

    ``tensors`` yields ``(name, data)`` in layout order (``[s for part in files for s in
    part]``), ``data`` being the tensor or an iterable of flat chunks of it (row-major); the
    bytes of each go straight to the file before the next is requested (so the producer may
    reuse its buffers). Each file's header is written first, computed from
    the specs; nothing the size of a file is held in memory. One file is saved as
    ``model.safetensors``; several as ``model-0000i-of-0000N.safetensors`` plus
    ``model.safetensors.index.json``. Written into a temp dir next to ``out_dir`` and
    renamed at the end; on an exception nothing is left behind.
    """
    file_metadata = {"format": "pt", **(metadata or {})}
    if not all(isinstance(v, str) for v in file_metadata.values()):
        raise ValueError(f"safetensors metadata values must be strings, got {file_metadata}")
    n = len(files)
    names = [SINGLE_FILE] if n == 1 else [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    stream = iter(tensors)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for fname, part in zip(names, files):
            _write_file(tmp / fname, part, stream, file_metadata)
        extra = next(stream, None)
        if extra is not None:
            raise ValueError(f"tensor {extra[0]!r} is not in the layout")
        if n > 1:
            specs = [s for part in files for s in part]
            weight_map = {s.name: f for f, part in zip(names, files) for s in part}
            index = {"metadata": {"total_size": sum(s.nbytes for s in specs),
                                  "total_parameters": sum(math.prod(s.shape) for s in specs)},
                     "weight_map": dict(sorted(weight_map.items()))}
            (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
        if config is not None:
            config = config.to_dict() if hasattr(config, "to_dict") else config
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        for fname, content in (extra_files or {}).items():
            target = tmp / fname
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
    return out_dir


def _write_file(path: Path, specs: Sequence[TensorSpec], stream: Iterator, metadata: dict[str, str]) -> None:
    """One .safetensors file: 8-byte header length, JSON header padded to 8 bytes, raw tensor data."""
    header: dict = {"__metadata__": metadata}
    offset = 0
    for spec in specs:
        header[spec.name] = {"dtype": spec.dtype, "shape": list(spec.shape),
                             "data_offsets": [offset, offset + spec.nbytes]}
        offset += spec.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # as safetensors pads it: data starts 8-byte aligned
    with open(path, "wb") as fh:
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        for spec in specs:
            name, data = next(stream, (None, None))
            if name != spec.name:
                raise ValueError(f"expected tensor {spec.name!r} next, got {name!r}")
            whole = isinstance(data, torch.Tensor)
            if whole and tuple(data.shape) != spec.shape:
                raise ValueError(f"tensor {name!r}: shape {tuple(data.shape)}, expected {spec.shape}")
            written = 0
            for part in (data,) if whole else data:
                if st_dtype(part.dtype) != spec.dtype:
                    raise ValueError(f"tensor {name!r}: dtype {part.dtype}, expected {spec.dtype}")
                fh.write(part.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
                written += part.numel() * part.element_size()
            if written != spec.nbytes:
                raise ValueError(f"tensor {name!r}: {written} bytes given, expected {spec.nbytes}")
        if fh.tell() != 8 + len(raw) + offset:
            raise OSError(f"{path}: wrote {fh.tell()} bytes, expected {8 + len(raw) + offset}")
