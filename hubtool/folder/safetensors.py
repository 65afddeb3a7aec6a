"""The safetensors format, read without torch: one validating header reader, one dtype table.

Layout: an 8-byte little-endian header length, a JSON header (``__metadata__`` and one
entry per tensor: dtype, shape, data offsets), then the raw tensor data. ``inspect``
parses a file and lists every way its header disagrees with its bytes (truncation,
spans that do not match the shape, overlaps), each naming the file and tensor;
``read_header`` is the same for callers that only want a valid header or an error.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import shutil
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from hubtool.errors import ArtifactError, display_path


@dataclass(frozen=True)
class DType:
    name: str  # torch's name
    code: str  # safetensors' name
    itemsize: int


_DTYPES = (
    DType("float64", "F64", 8), DType("float32", "F32", 4), DType("float16", "F16", 2),
    DType("bfloat16", "BF16", 2), DType("int64", "I64", 8), DType("int32", "I32", 4),
    DType("int16", "I16", 2), DType("int8", "I8", 1), DType("uint8", "U8", 1), DType("bool", "BOOL", 1),
)
BY_NAME = {d.name: d for d in _DTYPES}
BY_CODE = {d.code: d for d in _DTYPES}
FLOAT_NAMES = ("float32", "float16", "bfloat16", "float64")


def dtype_name(code: str) -> str:
    """safetensors code -> torch name ("F32" -> "float32"); unknown codes come back unchanged."""
    return BY_CODE[code].name if code in BY_CODE else code


def dtype_code(name: str) -> str:
    """torch name -> safetensors code ("float32" -> "F32"); unknown names come back unchanged."""
    return BY_NAME[name].code if name in BY_NAME else name


@dataclass(frozen=True)
class TensorMeta:
    dtype: str  # safetensors code
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Header:
    path: Path
    header_len: int
    file_size: int
    tensors: dict[str, TensorMeta]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def data_start(self) -> int:
        return 8 + self.header_len


def parse_header_bytes(raw: bytes, *, name: str) -> tuple[dict[str, Any], dict[str, str]] | str:
    """JSON header bytes -> (tensor entries, metadata), or a problem string."""
    try:
        header = json.loads(raw)
    except ValueError as exc:
        return f"{name}: unreadable header: {exc}"
    if not isinstance(header, dict):
        return f"{name}: header is not a mapping"
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        return f"{name}: __metadata__ is not a mapping"
    return header, {str(k): str(v) for k, v in metadata.items()}


def inspect(path: Path) -> tuple[Header | None, list[str]]:
    """Parse ``path`` and check its header against its bytes: (header or None, problems)."""
    name = path.name
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return None, [f"{name}: truncated: {size} bytes, not even a header length"]
            header_len = int.from_bytes(head, "little")
            if header_len <= 0 or 8 + header_len > size:
                return None, [f"{name}: truncated: header needs {header_len:,} bytes, file has {size - 8:,}"]
            parsed = parse_header_bytes(fh.read(header_len), name=name)
    except OSError as exc:
        return None, [f"{name}: cannot read ({exc.strerror or exc})"]
    if isinstance(parsed, str):
        return None, [parsed]
    entries, metadata = parsed
    tensors, problems = entries_to_tensors(entries, name=name, data_len=size - 8 - header_len)
    header = Header(path=path, header_len=header_len, file_size=size, tensors=tensors, metadata=metadata)
    return header, problems


def entries_to_tensors(entries: dict[str, Any], *, name: str,
                       data_len: int | None) -> tuple[dict[str, TensorMeta], list[str]]:
    """Header entries -> TensorMeta, with every inconsistency named (``data_len`` None: not checked)."""
    tensors: dict[str, TensorMeta] = {}
    problems: list[str] = []
    for tname, meta in sorted(entries.items()):
        try:
            dtype, shape, (start, end) = meta["dtype"], tuple(int(d) for d in meta["shape"]), meta["data_offsets"]
            start, end = int(start), int(end)
        except (KeyError, TypeError, ValueError):
            problems.append(f"{name}: tensor {tname}: malformed header entry")
            continue
        item = BY_CODE.get(dtype)
        if item is None:
            problems.append(f"{name}: tensor {tname}: unknown dtype {dtype}")
            continue
        want = math.prod(shape) * item.itemsize
        if end - start != want:
            problems.append(
                f"{name}: tensor {tname}: header says {dtype} {list(shape)} ({want:,} bytes) "
                f"but its data spans {end - start:,} bytes"
            )
        if data_len is not None and end > data_len:
            problems.append(f"{name}: truncated: tensor {tname} ends at byte {end:,} of data, file has {data_len:,}")
        tensors[tname] = TensorMeta(dtype=dtype, shape=shape, start=start, end=end)
    spans = sorted((t.start, t.end, n) for n, t in tensors.items())
    for (_s1, e1, n1), (s2, _e2, n2) in pairwise(spans):
        if s2 < e1:
            problems.append(f"{name}: tensors {n1} and {n2} overlap")
    return tensors, problems


def read_header(path: Path) -> Header:
    """A valid header, or an ArtifactError naming the file and its first problem."""
    header, problems = inspect(path)
    if header is None or problems:
        raise ArtifactError(f"{display_path(path.parent)}/{problems[0]}")
    return header


def tensor_digests(path: Path) -> dict[str, dict[str, Any]]:
    """sha256 of every tensor's raw bytes, read straight from the file (one mmap, no torch)."""
    header = read_header(path)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            base = header.data_start
            return {
                name: {
                    "dtype": t.dtype,
                    "shape": list(t.shape),
                    "sha256": hashlib.sha256(view[base + t.start : base + t.end]).hexdigest(),
                }
                for name, t in sorted(header.tensors.items())
            }
        finally:
            view.release()


def file_size(shapes: dict[str, tuple[int, ...]], dtype: str, *, metadata: dict[str, str] | None = None) -> int:
    """The exact size of the file the ``safetensors`` library writes for these tensors.

    Compact JSON header (``__metadata__`` first, then tensors sorted by name, data in that
    order), padded with spaces to a multiple of 8, then the raw data.
    """
    item = BY_NAME[dtype]
    header: dict[str, Any] = {"__metadata__": metadata if metadata is not None else {"format": "pt"}}
    offset = 0
    for name in sorted(shapes):
        nbytes = math.prod(shapes[name]) * item.itemsize
        header[name] = {"dtype": item.code, "shape": list(shapes[name]), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header_len = len(json.dumps(header, separators=(",", ":")).encode())
    header_len += -header_len % 8
    return 8 + header_len + offset


def _header_bytes(entries: dict[str, Any]) -> bytes:
    """Compact JSON header, padded with spaces to a multiple of 8 as the safetensors library does."""
    raw = json.dumps(entries, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)


def set_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Rewrite ``path`` with ``metadata`` as its ``__metadata__``; tensors and data stay as they are.

    The safetensors library writes metadata keys in hash order, so the same metadata would
    give different bytes on every run; here the keys are sorted, and the header takes
    exactly the length ``file_size`` predicts. Atomic: a temporary file, then a rename.
    """
    header = read_header(path)
    entries: dict[str, Any] = {"__metadata__": {str(k): str(v) for k, v in sorted(metadata.items())}}
    for name, t in sorted(header.tensors.items(), key=lambda item: (item[1].start, item[0])):
        entries[name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [t.start, t.end]}
    raw = _header_bytes(entries)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            dst.write(len(raw).to_bytes(8, "little") + raw)
            src.seek(header.data_start)
            shutil.copyfileobj(src, dst, 1 << 22)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
