"""The one dtype table between safetensors and torch, and zero-copy array → tensor views.

Every module that turns a safetensors dtype string ("F32", "BF16", ...) into a torch dtype,
or back, goes through :func:`torch_dtype` and :func:`st_dtype`.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from soup_search.errors import MergeError

#: safetensors dtype string -> torch dtype
TORCH_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "U16": torch.uint16, "U32": torch.uint32, "U64": torch.uint64, "BOOL": torch.bool,
}
#: bytes per element of each safetensors dtype; sub-byte dtypes (F4, F6_*) are not size-checked
DTYPE_BYTES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8, "C64": 8,
}
_ST_DTYPES = {t: st for st, t in TORCH_DTYPES.items()}


def torch_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A safetensors dtype string ("F32", "BF16", ...) or a torch dtype, as a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return TORCH_DTYPES[dtype.upper()]
    except KeyError:
        raise MergeError(f"tensor dtype {dtype} is not supported by soup-search; convert the checkpoint "
                         "to float32, bfloat16 or float16") from None


def st_dtype(dtype: torch.dtype) -> str:
    """The safetensors dtype string of a torch dtype."""
    try:
        return _ST_DTYPES[dtype]
    except KeyError:
        name = str(dtype).removeprefix("torch.")
        raise MergeError(f"dtype {name} cannot be written to safetensors by soup-search; "
                         "pick float32, bfloat16 or float16") from None


def array_to_torch(array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An array as a tensor, zero-copy; ``dtype=torch.bfloat16`` reinterprets uint16 bits.

    Arrays from Ray's object store are read-only; torch warns about that but shares the memory.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t = torch.from_numpy(array)
    if dtype is torch.bfloat16 and t.dtype == torch.uint16:
        t = t.view(torch.bfloat16)
    return t
