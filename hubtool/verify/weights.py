"""File-level checks of a model folder's weights, before anything loads them.

A checkpoint can be wrong in ways a loader hides: a truncated file whose header still
parses, a header that lies about a tensor's shape or dtype, a weight changed after the
build, an lm_head that no longer equals the embedding it is tied to. Each check reads
the safetensors bytes directly (no torch) and its message names the file and tensor.
Pickle files are refused unless allowed: loading one can run arbitrary code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubtool.build.folder import safetensors_digests
from hubtool.folder.names import PROVENANCE_FILE
from hubtool.spec.model import ModelSpec

PICKLE_SUFFIXES = (".bin", ".pt", ".pkl", ".pth")
SAFETENSORS_ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}
DTYPE_CODE = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64"}
CONFIG_FILE = "config.json"
# Non-persistent attention buffers that old GPT-2 checkpoints carry: not weights.
BUFFER_SUFFIXES = (".attn.bias", ".attn.masked_bias")
_LIST_LIMIT = 5


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "passed" | "failed" | "skipped"
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    return shown + (f" (+{len(items) - _LIST_LIMIT} more)" if len(items) > _LIST_LIMIT else "")


def read_config(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor a GPT2LMHeadModel with this config.json has, with its shape."""
    keys = ("n_embd", "n_layer", "n_head", "n_positions", "vocab_size")
    arch = {k: int(config[k]) for k in keys}
    arch["n_inner"] = int(config.get("n_inner") or 4 * arch["n_embd"])
    arch["tie_word_embeddings"] = bool(config.get("tie_word_embeddings", True))
    return ModelSpec(name="config", path=Path(CONFIG_FILE), config=arch).tensor_shapes()


def safetensors_problems(path: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Parse a safetensors header and check it against the file: (header tensors, problems)."""
    name = path.name
    size = path.stat().st_size
    if size < 8:
        return {}, [f"{name}: truncated: {size} bytes, not even a header length"]
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        if 8 + header_len > size:
            return {}, [f"{name}: truncated: header needs {header_len:,} bytes, file has {size - 8:,}"]
        try:
            header = json.loads(fh.read(header_len))
        except ValueError as exc:
            return {}, [f"{name}: unreadable header: {exc}"]
    if not isinstance(header, dict):
        return {}, [f"{name}: header is not a mapping"]
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    problems = []
    data_len = size - 8 - header_len
    spans = []
    for tname, meta in sorted(tensors.items()):
        try:
            dtype, shape, (start, end) = meta["dtype"], list(meta["shape"]), meta["data_offsets"]
        except (KeyError, TypeError, ValueError):
            problems.append(f"{name}: tensor {tname}: malformed header entry")
            continue
        item = SAFETENSORS_ITEMSIZE.get(dtype)
        if item is None:
            problems.append(f"{name}: tensor {tname}: unknown dtype {dtype}")
            continue
        want = math.prod(shape) * item
        if end - start != want:
            problems.append(
                f"{name}: tensor {tname}: header says {dtype} {shape} ({want:,} bytes) "
                f"but its data spans {end - start:,} bytes"
            )
        if end > data_len:
            problems.append(f"{name}: truncated: tensor {tname} ends at byte {end:,} of data, file has {data_len:,}")
        spans.append((start, end, tname))
    spans.sort()
    for (s1, e1, n1), (s2, _e2, n2) in zip(spans, spans[1:]):
        if s2 < e1:
            problems.append(f"{name}: tensors {n1} and {n2} overlap")
    return tensors, problems


def _pickle_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def pickle_digests(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Tensor digests from allowed pickle checkpoints (loaded with weights_only=True)."""
    import hashlib

    import torch

    out = {}
    for path in paths:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for name, tensor in state.items():
            code = DTYPE_CODE.get(str(tensor.dtype).removeprefix("torch."), str(tensor.dtype))
            data = tensor.contiguous().view(torch.uint8).numpy().tobytes()
            out[name] = {"dtype": code, "shape": list(tensor.shape), "sha256": hashlib.sha256(data).hexdigest()}
    return out


def check_weights(
    folder: Path, *, spec_config: dict[str, Any] | None, spec_dtype: str | None, allow_pickle: bool = False
) -> tuple[list[Check], dict[str, dict[str, Any]]]:
    """Run every file-level check. Returns the checks and the tensor digests read from the files."""
    checks: list[Check] = []
    pickles = _pickle_files(folder)
    if pickles and not allow_pickle:
        checks.append(Check("pickle files", "failed",
                            f"refusing pickle weight file(s) {_names(pickles)}: loading them can run code "
                            "(allow them explicitly to load anyway)"))
    elif pickles:
        checks.append(Check("pickle files", "passed", f"allowed on request: {_names(pickles)}"))
    else:
        checks.append(Check("pickle files", "passed", "none; weights are safetensors"))

    config = read_config(folder)
    remote = sorted(p.name for p in folder.glob("*.py"))
    if config and config.get("auto_map"):
        remote.insert(0, "config.json auto_map")
    checks.append(Check("remote code", "passed",
                        f"never trusted: {_names(remote)} ignored, built-in GPT-2 class used" if remote
                        else "none in the folder; never trusted"))
    if config is None:
        checks.append(Check("config", "failed", f"{CONFIG_FILE}: missing or not a JSON object"))
        return checks, {}

    checks.append(_config_check(config, spec_config=spec_config, spec_dtype=spec_dtype))
    digests = _read_tensors(folder, checks, pickles if allow_pickle else [])
    if digests is None:
        return checks, {}
    try:
        shapes = expected_shapes(config)
    except (KeyError, TypeError, ValueError) as exc:
        checks.append(Check("tensor names", "failed", f"{CONFIG_FILE}: cannot derive GPT-2 tensors: {exc}"))
        return checks, digests
    checks.extend(_tensor_checks(digests, shapes, config, spec_dtype))
    checks.append(_provenance_check(folder, digests))
    return checks, digests


def _config_check(config: dict[str, Any], *, spec_config: dict[str, Any] | None, spec_dtype: str | None) -> Check:
    problems = []
    if config.get("model_type") != "gpt2":
        problems.append(f"model_type is {config.get('model_type')!r}, not 'gpt2'")
    if spec_config is None:
        if problems:
            return Check("config matches spec", "failed", f"{CONFIG_FILE}: " + "; ".join(problems))
        return Check("config matches spec", "skipped", "no spec: the folder has no hubtool provenance")
    for key, want in sorted(spec_config.items()):
        have = config.get(key, None)
        if key == "n_inner" and have is None:
            have = 4 * config.get("n_embd", 0)
        if have != want:
            problems.append(f"{key} is {have!r}, spec says {want!r}")
    declared = config.get("dtype", config.get("torch_dtype"))
    if spec_dtype and declared != spec_dtype:
        problems.append(f"dtype is {declared!r}, spec says {spec_dtype!r}")
    if problems:
        return Check("config matches spec", "failed", f"{CONFIG_FILE}: " + "; ".join(problems))
    return Check("config matches spec", "passed", f"{len(spec_config)} architecture keys and dtype agree")


def _read_tensors(folder: Path, checks: list[Check], pickles: list[str]) -> dict[str, dict[str, Any]] | None:
    files = sorted(folder.glob("*.safetensors"))
    if not files and not pickles:
        checks.append(Check("safetensors file", "failed", "no *.safetensors weights file in the folder"))
        return None
    digests: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for path in files:
        _header, found = safetensors_problems(path)
        problems.extend(found)
        if not found:
            digests.update(safetensors_digests(path))
    if problems:
        checks.append(Check("safetensors file", "failed", "; ".join(problems[:_LIST_LIMIT])))
        return None
    if pickles:
        digests.update(pickle_digests([folder / p for p in pickles]))
    names = ", ".join(p.name for p in files) or "pickle only"
    checks.append(Check("safetensors file", "passed", f"{names}: header consistent with the data"))
    return digests


def _tensor_checks(
    digests: dict[str, dict[str, Any]], shapes: dict[str, tuple[int, ...]], config: dict[str, Any], spec_dtype: str | None
) -> list[Check]:
    checks = []
    have = {n for n in digests if not n.endswith(BUFFER_SUFFIXES)}
    tied = bool(config.get("tie_word_embeddings", True))
    missing = sorted(set(shapes) - have)
    unexpected = sorted(have - set(shapes) - ({"lm_head.weight"} if tied else set()))
    if missing or unexpected:
        parts = ([f"missing tensor(s) {_names(missing)}"] if missing else []) + (
            [f"unexpected tensor(s) {_names(unexpected)}"] if unexpected else [])
        checks.append(Check("tensor names", "failed", "; ".join(parts)))
    else:
        checks.append(Check("tensor names", "passed", f"all {len(shapes)} expected tensors, nothing else"))

    wrong_shape = [f"{n} is {digests[n]['shape']}, config implies {list(s)}"
                   for n, s in sorted(shapes.items()) if n in digests and list(digests[n]["shape"]) != list(s)]
    checks.append(Check("tensor shapes", "failed", "; ".join(wrong_shape[:_LIST_LIMIT])) if wrong_shape
                  else Check("tensor shapes", "passed", "every shape matches config.json"))

    declared = spec_dtype or config.get("dtype") or config.get("torch_dtype") or "float32"
    code = DTYPE_CODE.get(declared, declared)
    wrong_dtype = sorted(n for n in have if digests[n]["dtype"] != code)
    checks.append(Check("dtype", "failed", f"declared {declared} ({code}); " + ", ".join(
        f"{n} is {digests[n]['dtype']}" for n in wrong_dtype[:_LIST_LIMIT])) if wrong_dtype
                  else Check("dtype", "passed", f"every tensor is {code} as declared ({declared})"))

    if not tied:
        checks.append(Check("tied weights", "passed", "config does not tie lm_head to wte; lm_head stored"))
    elif "lm_head.weight" not in digests:
        checks.append(Check("tied weights", "passed", "lm_head.weight is tied to transformer.wte.weight (not stored)"))
    elif digests["lm_head.weight"]["sha256"] == digests.get("transformer.wte.weight", {}).get("sha256"):
        checks.append(Check("tied weights", "passed", "stored lm_head.weight equals transformer.wte.weight"))
    else:
        checks.append(Check("tied weights", "failed",
                            "lm_head.weight differs from transformer.wte.weight although config.json ties them"))
    return checks


def _provenance_check(folder: Path, digests: dict[str, dict[str, Any]]) -> Check:
    try:
        recorded = json.loads((folder / PROVENANCE_FILE).read_text()).get("tensors")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if not recorded:
        return Check("bit-identical to build", "skipped", f"no {PROVENANCE_FILE} with tensor digests")
    changed = sorted(n for n, meta in recorded.items() if n in digests and digests[n]["sha256"] != meta.get("sha256"))
    gone = sorted(set(recorded) - set(digests))
    if changed or gone:
        parts = ([f"tensor(s) {_names(changed)} differ from the sha256 recorded at build"] if changed else []) + (
            [f"tensor(s) {_names(gone)} recorded at build are missing"] if gone else [])
        return Check("bit-identical to build", "failed", "; ".join(parts))
    return Check("bit-identical to build", "passed", f"{len(recorded)} tensor sha256s match {PROVENANCE_FILE}")
