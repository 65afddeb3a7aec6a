"""``hubtool train``: train a built model on text, reproducibly and resumably."""

from __future__ import annotations

from pathlib import Path

import click

from hubtool.cli.options import EXIT_CODES_HELP, echo_json, json_option, out_option
from hubtool.errors import display_path
from hubtool.runtime.progress import Progress
from hubtool.spec.catalog import built_folder
from hubtool.train.loop import DEFAULTS, TrainProgress, train_model


def _reporter(progress: Progress, name: str):
    """Steps done/total with the loss on the progress display; in plain (log) mode also a line
    every tenth of the run, so a log keeps the loss curve. The stage opens at the first step,
    so a bad corpus fails with its one-line error alone."""
    stage = None

    def report(p: TrainProgress) -> None:
        nonlocal stage
        status = f"loss {p.loss:.4f}  {p.tokens_per_s:,.0f} tok/s"
        if stage is None:
            stage = progress.stage(name, "train", total=p.steps, unit="steps")
        stage.update(done=p.step, detail=status)
        if not progress.live and (p.step % max(1, p.steps // 10) == 0 or p.step == p.steps):
            progress.line(f"{name}: step {p.step}/{p.steps}  {status}")

    return report


@click.command("train", epilog=EXIT_CODES_HELP)
@click.argument("name")
@click.option("--corpus", "corpus", multiple=True, metavar="PATH",
              help="Text file, glob, .jsonl (a \"text\" per line) or hf://datasets/ORG/NAME; repeatable. "
                   "Default: docstrings of the installed Python standard library (offline).")
@click.option("--steps", type=int, default=None, help=f"Optimizer steps  [default: {DEFAULTS.steps}]")
@click.option("--seq-len", type=int, default=None, help=f"Tokens per sequence  [default: {DEFAULTS.seq_len}]")
@click.option("--batch-size", type=int, default=None,
              help=f"Sequences per step, over all processes  [default: {DEFAULTS.batch_size}]")
@click.option("--lr", type=float, default=None, help=f"AdamW learning rate, constant  [default: {DEFAULTS.lr}]")
@click.option("--seed", type=int, default=None, help=f"Batch order and dropout seed  [default: {DEFAULTS.seed}]")
@click.option("--checkpoint-every", type=int, default=None,
              help=f"Steps between resumable checkpoints  [default: {DEFAULTS.checkpoint_every}]")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@json_option
@out_option
def train_cmd(name: str, corpus: tuple[str, ...], steps: int | None, seq_len: int | None,
              batch_size: int | None, lr: float | None, seed: int | None,
              checkpoint_every: int | None, resume: bool, as_json: bool, out: Path | None) -> None:
    """Train a built model on text; write its new weights, loss curve and provenance.

    NAME is a spec name (its folder under OUT) or a model folder. Training starts
    from the folder's current weights, so a second run continues the first. Text is
    packed into full sequences separated by end-of-text tokens (never padding). The
    same seed, corpus and steps give byte-identical weights on CPU. An interrupted
    run continues with --resume (its options are kept) and ends with the weights an
    uninterrupted run gives. Run under `accelerate launch` to spread each batch over
    processes, GPUs or nodes (on CPUs set ACCELERATE_USE_CPU=1, as below).

    \b
    Examples:
      hubtool train tiny-gpt2 --steps 50 --lr 1e-2
      hubtool train gpt2-25m --corpus 'notes/*.txt' --seq-len 256
      hubtool train gpt2-25m --resume
      accelerate launch --num_processes 2 -m hubtool.cli.main train gpt2-25m
      ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 \\
        -m hubtool.cli.main train gpt2-25m
    """
    folder = built_folder(name, out)
    with Progress() as progress:
        result = train_model(
            folder, corpus=corpus, steps=steps, seq_len=seq_len, batch_size=batch_size, lr=lr,
            seed=seed, checkpoint_every=checkpoint_every, resume=resume, progress=_reporter(progress, folder.name),
        )
    if not result.main_process:
        return
    if as_json:
        echo_json({"model": folder.name, "path": str(result.path), "steps": result.steps,
                   "total_steps": result.total_steps, "tokens": result.tokens, "first_loss": result.first_loss,
                   "final_loss": result.final_loss, "tokens_per_s": result.tokens_per_s,
                   "resumed_from": result.resumed_from, "corpus": result.corpus})
        return
    resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from else ""
    click.echo(
        f"{folder.name}: trained {result.steps} steps{resumed}, {result.tokens:,} tokens, "
        f"loss {result.first_loss:.4f} -> {result.final_loss:.4f}, {result.tokens_per_s:,.0f} tok/s; "
        f"{result.total_steps} steps in all; corpus {result.corpus['tokens']:,} tokens "
        f"sha256 {result.corpus['sha256'][:12]} -> {display_path(result.path)}"
    )
    click.echo(f"{folder.name}: new weights: earlier verification and benchmarks describe the old ones; run "
               f"`hubtool verify {name}`, `hubtool bench {name}`, then `hubtool card {name}`", err=True)
