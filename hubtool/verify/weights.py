"""File-level checks of a model folder's weights, before anything loads them.

A checkpoint can be wrong in ways a loader hides: a truncated file whose header still
parses, a header that lies about a tensor's shape or dtype, a weight changed after the
build, an lm_head that no longer equals the embedding it is tied to. Each check reads
the safetensors bytes directly (no torch) and its message names the file and tensor.
Pickle files are refused unless allowed: loading one can run arbitrary code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubtool.errors import ArtifactError
from hubtool.evidence.provenance import read_provenance
from hubtool.evidence.verification import Check
from hubtool.folder import safetensors
from hubtool.folder.io import read_json_object
from hubtool.folder.names import CONFIG_FILE, PROVENANCE_FILE, WEIGHT_SUFFIX
from hubtool.spec.model import gpt2_tensor_shapes

PICKLE_SUFFIXES = (".bin", ".pt", ".pkl", ".pth")
# Non-persistent attention buffers that old GPT-2 checkpoints carry: not weights.
BUFFER_SUFFIXES = (".attn.bias", ".attn.masked_bias")
_LIST_LIMIT = 5


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    return shown + (f" (+{len(items) - _LIST_LIMIT} more)" if len(items) > _LIST_LIMIT else "")


def read_config(folder: Path) -> dict[str, Any] | None:
    try:
        return read_json_object(folder / CONFIG_FILE)
    except ArtifactError:
        return None


def expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor a GPT2LMHeadModel with this config.json has, with its shape."""
    return gpt2_tensor_shapes(config)


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
            code = safetensors.dtype_code(str(tensor.dtype).removeprefix("torch."))
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
        checks.append(Check(name="pickle files", status="failed", detail=
                            f"refusing pickle weight file(s) {_names(pickles)}: loading them can run code "
                            "(allow them explicitly to load anyway)"))
    elif pickles:
        checks.append(Check(name="pickle files", status="passed", detail=f"allowed on request: {_names(pickles)}"))
    else:
        checks.append(Check(name="pickle files", status="passed", detail="none; weights are safetensors"))

    config = read_config(folder)
    remote = sorted(p.name for p in folder.glob("*.py"))
    if config and config.get("auto_map"):
        remote.insert(0, "config.json auto_map")
    checks.append(Check(name="remote code", status="passed", detail=
                        f"never trusted: {_names(remote)} ignored, built-in GPT-2 class used" if remote
                        else "none in the folder; never trusted"))
    if config is None:
        checks.append(Check(name="config", status="failed", detail=f"{CONFIG_FILE}: missing or not a JSON object"))
        return checks, {}

    checks.append(_config_check(config, spec_config=spec_config, spec_dtype=spec_dtype))
    digests = _read_tensors(folder, checks, pickles if allow_pickle else [])
    if digests is None:
        return checks, {}
    try:
        shapes = expected_shapes(config)
    except (KeyError, TypeError, ValueError) as exc:
        checks.append(Check(name="tensor names", status="failed",
                            detail=f"{CONFIG_FILE}: cannot derive GPT-2 tensors: {exc}"))
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
            return Check(name="config matches spec", status="failed", detail=f"{CONFIG_FILE}: " + "; ".join(problems))
        return Check(name="config matches spec", status="skipped",
                     detail="no spec: the folder has no hubtool provenance")
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
        return Check(name="config matches spec", status="failed", detail=f"{CONFIG_FILE}: " + "; ".join(problems))
    return Check(name="config matches spec", status="passed",
                 detail=f"{len(spec_config)} architecture keys and dtype agree")


def _read_tensors(folder: Path, checks: list[Check], pickles: list[str]) -> dict[str, dict[str, Any]] | None:
    files = sorted(folder.glob(f"*{WEIGHT_SUFFIX}"))
    if not files and not pickles:
        checks.append(Check(name="safetensors file", status="failed",
                            detail="no *.safetensors weights file in the folder"))
        return None
    digests: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for path in files:
        _header, found = safetensors.inspect(path)
        problems.extend(found)
        if not found:
            digests.update(safetensors.tensor_digests(path))
    if problems:
        checks.append(Check(name="safetensors file", status="failed", detail="; ".join(problems[:_LIST_LIMIT])))
        return None
    if pickles:
        digests.update(pickle_digests([folder / p for p in pickles]))
    names = ", ".join(p.name for p in files) or "pickle only"
    checks.append(Check(name="safetensors file", status="passed", detail=f"{names}: header consistent with the data"))
    return digests


def _tensor_checks(
    digests: dict[str, dict[str, Any]], shapes: dict[str, tuple[int, ...]], config: dict[str, Any],
    spec_dtype: str | None,
) -> list[Check]:
    checks = []
    have = {n for n in digests if not n.endswith(BUFFER_SUFFIXES)}
    tied = bool(config.get("tie_word_embeddings", True))
    missing = sorted(set(shapes) - have)
    unexpected = sorted(have - set(shapes) - ({"lm_head.weight"} if tied else set()))
    if missing or unexpected:
        parts = ([f"missing tensor(s) {_names(missing)}"] if missing else []) + (
            [f"unexpected tensor(s) {_names(unexpected)}"] if unexpected else [])
        checks.append(Check(name="tensor names", status="failed", detail="; ".join(parts)))
    else:
        checks.append(Check(name="tensor names", status="passed",
                            detail=f"all {len(shapes)} expected tensors, nothing else"))

    wrong_shape = [f"{n} is {digests[n]['shape']}, config implies {list(s)}"
                   for n, s in sorted(shapes.items()) if n in digests and list(digests[n]["shape"]) != list(s)]
    checks.append(Check(name="tensor shapes", status="failed", detail="; ".join(wrong_shape[:_LIST_LIMIT]))
                  if wrong_shape
                  else Check(name="tensor shapes", status="passed", detail="every shape matches config.json"))

    declared = spec_dtype or config.get("dtype") or config.get("torch_dtype") or "float32"
    code = safetensors.dtype_code(declared)
    wrong_dtype = sorted(n for n in have if digests[n]["dtype"] != code)
    checks.append(Check(name="dtype", status="failed", detail=f"declared {declared} ({code}); " + ", ".join(
        f"{n} is {digests[n]['dtype']}" for n in wrong_dtype[:_LIST_LIMIT])) if wrong_dtype
                  else Check(name="dtype", status="passed", detail=f"every tensor is {code} as declared ({declared})"))

    if not tied:
        checks.append(Check(name="tied weights", status="passed",
                            detail="config does not tie lm_head to wte; lm_head stored"))
    elif "lm_head.weight" not in digests:
        checks.append(Check(name="tied weights", status="passed",
                            detail="lm_head.weight is tied to transformer.wte.weight (not stored)"))
    elif digests["lm_head.weight"]["sha256"] == digests.get("transformer.wte.weight", {}).get("sha256"):
        checks.append(Check(name="tied weights", status="passed",
                            detail="stored lm_head.weight equals transformer.wte.weight"))
    else:
        checks.append(Check(name="tied weights", status="failed", detail=
                            "lm_head.weight differs from transformer.wte.weight although config.json ties them"))
    return checks


def _provenance_check(folder: Path, digests: dict[str, dict[str, Any]]) -> Check:
    try:
        prov = read_provenance(folder)
    except ArtifactError as exc:
        return Check(name="bit-identical to build", status="failed", detail=str(exc))
    recorded = {name: t.model_dump() for name, t in prov.tensors.items()} if prov else None
    if not recorded:
        return Check(name="bit-identical to build", status="skipped",
                     detail=f"no {PROVENANCE_FILE} with tensor digests")
    changed = sorted(n for n, meta in recorded.items() if n in digests and digests[n]["sha256"] != meta.get("sha256"))
    gone = sorted(set(recorded) - set(digests))
    if changed or gone:
        parts = ([f"tensor(s) {_names(changed)} differ from the sha256 recorded at build"] if changed else []) + (
            [f"tensor(s) {_names(gone)} recorded at build are missing"] if gone else [])
        return Check(name="bit-identical to build", status="failed", detail="; ".join(parts))
    return Check(name="bit-identical to build", status="passed",
                 detail=f"{len(recorded)} tensor sha256s match {PROVENANCE_FILE}")
