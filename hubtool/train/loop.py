"""Train a built model folder on text: reproducible, resumable, and able to scale out.

The loop runs under Hugging Face ``accelerate``: run plainly it uses one process; under
``accelerate launch`` every process takes an equal slice of each global batch and the
gradients are averaged, which is the same mathematics as one process on the whole batch.
(On CPUs: ``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N``;
accelerate's ``--cpu`` flag alone starts a single process.)

Reproducibility comes from construction, not luck: the batch order is a function of
(seed, step) and the random state (dropout) is reseeded every step from
(seed, step, process), so a run resumed from a checkpoint replays exactly what an
uninterrupted run does. Byte-identical weights need the same torch thread count too
(CPU kernels split sums by thread), which provenance records. Training starts from the folder's
current weights; a second ``hubtool train`` continues the first, and provenance counts steps
and tokens across runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from hubtool.errors import ArtifactError, TrainError, UsageError, display_path
from hubtool.evidence.provenance import FileRecord, TensorRecord, TrainingRecord, TrainingRun, read_provenance
from hubtool.folder.hashing import sha256_file
from hubtool.folder.io import apply_umask
from hubtool.folder.names import CONFIG_FILE, LOSS_JSON, LOSS_PNG, PROVENANCE_FILE, WEIGHTS_FILE
from hubtool.folder.safetensors import read_header, set_metadata, tensor_digests
from hubtool.train.corpus import PackedCorpus, load_corpus, pack

CHECKPOINT_DIR = ".train-checkpoint"
CHECKPOINT_FILE = "state.pt"
OPTIMIZER = "AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0, constant learning rate)"


@dataclass(frozen=True)
class TrainSettings:
    """What defines a run; a resumed run must have the same."""

    steps: int = 100
    seq_len: int = 128
    batch_size: int = 8
    lr: float = 6e-4
    seed: int = 0
    checkpoint_every: int = 50
    corpus: tuple[str, ...] = ()  # sources as given; empty: the default corpus


DEFAULTS = TrainSettings()


@dataclass(frozen=True)
class TrainProgress:
    step: int  # steps done in this run, 1-based
    steps: int
    loss: float
    tokens_per_s: float


@dataclass(frozen=True)
class TrainResult:
    path: Path
    steps: int  # this run
    total_steps: int  # every run on this folder
    tokens: int  # this run
    first_loss: float
    final_loss: float
    tokens_per_s: float
    seconds: float
    resumed_from: int  # 0 unless --resume
    processes: int
    corpus: dict[str, Any]
    main_process: bool  # only the main process writes files and should print


def step_seed(seed: int, step: int, rank: int) -> int:
    """The random seed for one step of one process: independent of what ran before."""
    digest = hashlib.sha256(f"{seed}:{step}:{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


@lru_cache(maxsize=4)
def _epoch_order(rows: int, seed: int, epoch: int):
    import torch

    return torch.randperm(rows, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def batch_rows(step: int, *, batch_size: int, rows: int, seed: int) -> list[int]:
    """Row indices of the global batch at ``step``: a fresh shuffle per pass over the corpus."""
    positions = range(step * batch_size, (step + 1) * batch_size)
    return [int(_epoch_order(rows, seed, pos // rows)[pos % rows]) for pos in positions]


def _settings(folder: Path, given: dict[str, Any], checkpoint: dict[str, Any] | None) -> TrainSettings:
    """Options given, else the checkpoint's (when resuming), else the defaults; validated."""
    base = (TrainSettings(**{**checkpoint["settings"], "corpus": tuple(checkpoint["settings"]["corpus"])})
            if checkpoint else DEFAULTS)
    given = {k: v for k, v in given.items() if v is not None and v != ()}
    if checkpoint:
        for key, value in given.items():
            if key != "checkpoint_every" and value != getattr(base, key):
                raise TrainError(
                    f"{display_path(folder / CHECKPOINT_DIR)}: the interrupted run used "
                    f"{key}={getattr(base, key)!r}, not {value!r}; "
                    "resume with the same options or start over without --resume"
                )
    settings = replace(base, **given)
    config = json.loads((folder / CONFIG_FILE).read_text())
    limit = config.get("n_positions") or config.get("max_position_embeddings")
    for key in ("steps", "seq_len", "batch_size", "checkpoint_every"):
        if getattr(settings, key) < 1:
            raise UsageError(f"{key.replace('_', '-')} must be at least 1, not {getattr(settings, key)}")
    if settings.seq_len < 2:
        raise UsageError("seq-len must be at least 2 (a token and its successor)")
    if limit and settings.seq_len > limit:
        raise UsageError(f"seq-len {settings.seq_len} exceeds the model's {limit} positions")
    if not settings.lr > 0:
        raise UsageError(f"lr must be positive, not {settings.lr}")
    return settings


def _load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    if not path.is_file():
        raise TrainError(f"{display_path(path.parent.parent)}: no interrupted run to resume (no {CHECKPOINT_DIR}/)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for truncated or foreign files
        raise TrainError(f"{display_path(path)}: unreadable checkpoint ({exc.__class__.__name__})") from None


def _check_resumable(folder: Path, checkpoint: dict[str, Any], *, corpus_sha256: str,
                     weights_before: str, processes: int) -> None:
    """A checkpoint continues only the run it came from: same text, same start, same split."""
    where = display_path(folder)
    if checkpoint["corpus_sha256"] != corpus_sha256:
        raise TrainError(f"{where}: the corpus changed since the interrupted run; start over without --resume")
    if checkpoint["weights_before"] != weights_before:
        raise TrainError(f"{where}: {WEIGHTS_FILE} changed since the interrupted run; start over without --resume")
    if checkpoint["processes"] != processes:
        raise TrainError(f"{where}: the interrupted run used {checkpoint['processes']} processes, not {processes}")


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    import torch

    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _plot(points: list[tuple[int, float]], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([s for s, _ in points], [loss for _, loss in points], linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy, nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def _previous_curve(folder: Path, previous: TrainingRecord | None) -> list[tuple[int, float]]:
    if not previous:
        return []
    try:
        data = json.loads((folder / LOSS_JSON).read_text())
        return [(int(s), float(v)) for s, v in zip(data["step"], data["loss"], strict=True)]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _write_outputs(
    folder: Path,
    model: Any,
    *,
    settings: TrainSettings,
    packed: PackedCorpus,
    losses: list[float],
    processes: int,
    weights_before: str,
    threads: int,
) -> int:
    """Weights, loss curve and provenance, each written to a temp file and renamed in. Returns total steps."""
    prov = read_provenance(folder)
    if prov is None:
        raise ArtifactError(f"{display_path(folder)}: no {PROVENANCE_FILE}; "
                            "only folders built by hubtool can be trained")
    previous = prov.training
    done = previous.steps if previous else 0
    tokens = settings.steps * settings.batch_size * settings.seq_len
    curve = _previous_curve(folder, previous) + [(done + i + 1, loss) for i, loss in enumerate(losses)]

    staging = Path(tempfile.mkdtemp(prefix=".train-out-", dir=folder))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        # transformers writes only {"format": "pt"}: keep the build's record (version, spec sha256, seed).
        set_metadata(staging / WEIGHTS_FILE, read_header(folder / WEIGHTS_FILE).metadata)
        _plot(curve, staging / LOSS_PNG, title=f"{folder.name}: training loss")
        (staging / LOSS_JSON).write_text(
            json.dumps({"step": [s for s, _ in curve], "loss": [v for _, v in curve]}) + "\n"
        )
        apply_umask(staging)
        files = dict(prov.files)
        for name in (WEIGHTS_FILE, LOSS_PNG, LOSS_JSON):
            files[name] = FileRecord(sha256=sha256_file(staging / name), size=(staging / name).stat().st_size)
        corpus = packed.record()
        run = TrainingRun(
            steps=settings.steps, tokens=tokens, seq_len=settings.seq_len, batch_size=settings.batch_size,
            lr=settings.lr, seed=settings.seed, processes=processes, torch_threads=threads,
            corpus_sha256=corpus["sha256"], first_loss=losses[0], final_loss=losses[-1],
            weights_before=weights_before, weights_after=files[WEIGHTS_FILE].sha256,
        )
        training = TrainingRecord(
            steps=done + settings.steps,
            tokens=(previous.tokens if previous else 0) + tokens,
            seq_len=settings.seq_len,
            batch_size=settings.batch_size,
            lr=settings.lr,
            seed=settings.seed,
            processes=processes,
            optimizer=OPTIMIZER,
            corpus=corpus,
            final_loss=losses[-1],
            loss_curve=LOSS_JSON,
            runs=[*(previous.runs if previous else []), run],
        )
        updated = prov.model_copy(update={
            "files": files,
            "tensors": {k: TensorRecord(**v) for k, v in tensor_digests(staging / WEIGHTS_FILE).items()},
            "training": training,
        })
        for name in (WEIGHTS_FILE, LOSS_PNG, LOSS_JSON):
            os.replace(staging / name, folder / name)
        updated.write(folder / PROVENANCE_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return done + settings.steps


def train_model(
    folder: Path | str,
    *,
    corpus: list[str] | tuple[str, ...] | None = None,
    steps: int | None = None,
    seq_len: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Train the model in ``folder`` and write the new weights, loss curve and provenance there.

    Options left as None take their defaults, or, with ``resume``, the interrupted run's.
    Nothing in the folder changes unless the run completes.
    """
    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        raise ArtifactError(f"{display_path(folder)}: not a built model folder (no {WEIGHTS_FILE} or config.json)")
    checkpoint_path = folder / CHECKPOINT_DIR / CHECKPOINT_FILE
    checkpoint = _load_checkpoint(checkpoint_path) if resume else None
    given = {
        "steps": steps, "seq_len": seq_len, "batch_size": batch_size, "lr": lr, "seed": seed,
        "checkpoint_every": checkpoint_every, "corpus": tuple(corpus or ()),
    }
    settings = _settings(folder, given, checkpoint)
    text = load_corpus(settings.corpus)  # bad text fails here, before anything heavy runs

    import torch
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    accelerator = Accelerator()
    processes, rank = accelerator.num_processes, accelerator.process_index
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != processes:
        # accelerate falls back to independent single processes (e.g. --multi_gpu with no GPU):
        # they would each train alone and race to write the same folder.
        raise TrainError(
            f"started as one of {launched} processes but accelerate set up {processes}; "
            "without GPUs, launch with ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N"
        )
    if settings.batch_size % processes:
        raise UsageError(f"batch-size {settings.batch_size} is not divisible by the {processes} processes")
    per_process = settings.batch_size // processes

    packed = pack(text, AutoTokenizer.from_pretrained(str(folder)), seq_len=settings.seq_len)
    weights_before = sha256_file(folder / WEIGHTS_FILE)
    if checkpoint:
        _check_resumable(folder, checkpoint, corpus_sha256=packed.corpus.sha256,
                         weights_before=weights_before, processes=processes)

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype="auto")
    if getattr(model, "loss_type", None) is None:
        model.loss_type = "ForCausalLM"  # GPT2LMHeadModel's name maps to no loss; this is the one it falls back to
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0)
    model, optimizer = accelerator.prepare(model, optimizer)
    start, losses = 0, []
    if not checkpoint and accelerator.is_main_process:
        shutil.rmtree(folder / CHECKPOINT_DIR, ignore_errors=True)  # a fresh run replaces an interrupted one
    if checkpoint:
        accelerator.unwrap_model(model).load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        start, losses = checkpoint["step"], list(checkpoint["losses"])

    rows = packed.sequences.shape[0]
    tokens_per_step = settings.batch_size * settings.seq_len
    began = time.perf_counter()
    for step in range(start, settings.steps):
        batch_ids = batch_rows(step, batch_size=settings.batch_size, rows=rows, seed=settings.seed)
        mine = batch_ids[rank * per_process : (rank + 1) * per_process]
        batch = packed.sequences[mine].to(accelerator.device)
        torch.manual_seed(step_seed(settings.seed, step, rank))
        loss = model(input_ids=batch, labels=batch).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(accelerator.reduce(loss.detach(), reduction="mean").item())
        done = step + 1
        rate = (done - start) * tokens_per_step / (time.perf_counter() - began)
        if progress and accelerator.is_main_process:
            progress(TrainProgress(done, settings.steps, losses[-1], rate))
        if done % settings.checkpoint_every == 0 and done < settings.steps and accelerator.is_main_process:
            _save_checkpoint(checkpoint_path, {
                "settings": {**asdict(settings), "corpus": list(settings.corpus)},
                "corpus_sha256": packed.corpus.sha256,
                "weights_before": weights_before,
                "processes": processes,
                "step": done,
                "samples": done * settings.batch_size,
                "losses": losses,
                "model": accelerator.unwrap_model(model).state_dict(),
                "optimizer": optimizer.state_dict(),
            })
    seconds = time.perf_counter() - began
    ran = settings.steps - start
    total_steps = settings.steps
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        total_steps = _write_outputs(
            folder, accelerator.unwrap_model(model), settings=settings, packed=packed, losses=losses,
            processes=processes, weights_before=weights_before, threads=torch.get_num_threads(),
        )
        shutil.rmtree(folder / CHECKPOINT_DIR, ignore_errors=True)
    accelerator.end_training()
    return TrainResult(
        path=folder,
        steps=settings.steps,
        total_steps=total_steps,
        tokens=settings.steps * tokens_per_step,
        first_loss=losses[0],
        final_loss=losses[-1],
        tokens_per_s=ran * tokens_per_step / seconds if seconds > 0 else 0.0,
        seconds=seconds,
        resumed_from=start,
        processes=processes,
        corpus=packed.record(),
        main_process=accelerator.is_main_process,
    )
