"""Spec -> a Hub-ready model folder: config, deterministic weights, tokenizer, provenance.

Everything is written into a temporary folder beside the target and renamed into place
only when complete, so a crash or Ctrl-C never leaves a half-built model.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hubtool.build.tokenizer import write_tokenizer
from hubtool.errors import ArtifactError, BuildError, display_path
from hubtool.evidence.provenance import Provenance, read_provenance
from hubtool.folder.hashing import sha256_file
from hubtool.folder.io import apply_umask
from hubtool.folder.names import PROVENANCE_FILE, WEIGHTS_FILE
from hubtool.folder.safetensors import set_metadata, tensor_digests
from hubtool.runtime import interrupt
from hubtool.runtime.environment import hubtool_identity, library_versions
from hubtool.spec.model import BUILD_FORMAT, ModelSpec


@dataclass(frozen=True)
class BuildResult:
    spec: ModelSpec
    path: Path
    status: str  # "built" | "rebuilt" | "up-to-date"
    seconds: float


def is_up_to_date(spec: ModelSpec, folder: Path) -> bool:
    """Built from this exact spec, with every recorded file present at its recorded size."""
    try:
        prov = read_provenance(folder)
    except ArtifactError:
        return False
    if prov is None or prov.spec.sha256 != spec.spec_hash:
        return False
    return bool(prov.files) and all(
        (folder / name).is_file() and (folder / name).stat().st_size == meta.size
        for name, meta in prov.files.items()
    )


def _init_weights(spec: ModelSpec):
    """GPT2LMHeadModel with seeded weights. The same spec and seed give the same bytes."""
    import torch
    from transformers import GPT2LMHeadModel

    torch.manual_seed(spec.seed)
    model = GPT2LMHeadModel(spec.to_gpt2_config())
    dtype = getattr(torch, spec.dtype)
    if dtype != torch.float32:
        model = model.to(dtype)
    return model.eval()


def _write_model(spec: ModelSpec, folder: Path) -> None:
    from transformers.utils import logging as hf_logging

    model = _init_weights(spec)
    hf_logging.disable_progress_bar()
    model.save_pretrained(folder, safe_serialization=True)
    # transformers writes only {"format": "pt"}; record what made these bytes.
    set_metadata(folder / WEIGHTS_FILE, spec.weights_metadata)
    write_tokenizer(
        spec.tokenizer, folder, base_dir=spec.path.parent, vocab_size=spec.config["vocab_size"],
        model_max_length=spec.config["n_positions"],
    )


def _provenance(spec: ModelSpec, folder: Path) -> Provenance:
    files = {
        p.name: {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(folder.iterdir())
        if p.is_file()
    }
    return Provenance.model_validate({
        "schema": Provenance.SCHEMA,
        "hubtool": hubtool_identity(),
        "spec": {
            "name": spec.name,
            "file": spec.path.name,
            "sha256": spec.spec_hash,
            "format": BUILD_FORMAT,
            "config": spec.config,
            "dtype": spec.dtype,
            "tokenizer": spec.tokenizer,
        },
        "seed": spec.seed,
        "parameters": spec.parameters,
        "libraries": library_versions(),
        "files": files,
        "tensors": tensor_digests(folder / WEIGHTS_FILE),
        "training": None,
    })


def _remove_stale_temps(root: Path, name: str) -> None:
    """Temp folders of builds that were killed (SIGKILL leaves no chance to clean up)."""
    for tmp in root.glob(f".{name}.tmp-*"):
        match = re.match(rf"\.{re.escape(name)}\.tmp-(\d+)-", tmp.name)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:  # alive, owned by someone else
            continue


def check_output_root(root: Path) -> None:
    """Fail early, creating nothing, when ``root`` cannot become a writable folder."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise BuildError(f"cannot write to {display_path(root)}: {display_path(existing)} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BuildError(f"cannot write to {display_path(root)}: permission denied on {display_path(existing)}")


def _prepare_root(root: Path) -> bool:
    """Make sure the artifacts root is a writable folder. Returns True if it was created."""
    check_output_root(root)
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=root, prefix=".hubtool-probe-").close()
    except OSError as exc:
        raise BuildError(f"cannot write to {display_path(root)}: {exc.strerror or exc}") from None
    return created


def needs_build(spec: ModelSpec, *, root: Path, force: bool = False) -> bool:
    target = root / spec.name
    return force or not (target.is_dir() and is_up_to_date(spec, target))


def build_model(spec: ModelSpec, *, root: Path, force: bool = False) -> BuildResult:
    """Build ``spec`` into ``root/<name>``; a no-op when that folder is already up to date."""
    start = time.perf_counter()
    target = root / spec.name
    if not needs_build(spec, root=root, force=force):
        return BuildResult(spec, target, "up-to-date", time.perf_counter() - start)

    created_root = _prepare_root(root)
    _remove_stale_temps(root, spec.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-{os.getpid()}-", dir=root))
    try:
        _write_model(spec, tmp)
        _provenance(spec, tmp).write(tmp / PROVENANCE_FILE)
        apply_umask(tmp)
        interrupt.check()  # a Ctrl-C swallowed by a library import must still stop the build here
        existed = target.exists()
        if existed:
            old = Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-{os.getpid()}-old-", dir=root))
            os.replace(target, old / spec.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created_root and not any(root.iterdir()):
            root.rmdir()
        raise
    status = "rebuilt" if existed else "built"
    return BuildResult(spec, target, status, time.perf_counter() - start)

