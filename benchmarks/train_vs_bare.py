"""Training throughput: `hubtool train` against a bare PyTorch loop on the same data.

Both arms train gpt2-25m on the same packed default corpus with the same batch shape
(--batch-size x --seq-len), the same AdamW settings and the same torch thread count,
in one process, alternating which goes first each round. Each arm is timed from
outside: a stamp after every step, the first --warmup steps of each round excluded.
tokens/s = tokens per step / the median step time over all rounds; the median resists
the bursts of other work on a shared machine (the mean-based rate is printed too).
Start-up (corpus, model load) and the final writes of `hubtool train`
(weights, loss curve, provenance) are outside the timed window: they are per-run costs,
not per-token ones. Prints each round and the ratio of median tokens/s (hubtool / bare);
the target is at least 0.9.

    .venv/bin/python benchmarks/train_vs_bare.py [--rounds 4] [--steps 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from hubtool.build.folder import build_model
from hubtool.runtime.fingerprint import fingerprint
from hubtool.spec.catalog import resolve_spec
from hubtool.train.corpus import load_corpus, pack
from hubtool.train.loop import DEFAULTS, train_model


def step_times(stamps: list[float], *, warmup: int) -> list[float]:
    """Durations of the steps after the warmup ones (stamps[i] = end of step i+1)."""
    return [b - a for a, b in pairwise(stamps[warmup - 1 :])]


def hubtool_arm(folder: Path, *, steps: int, batch_size: int, seq_len: int, lr: float) -> list[float]:
    stamps: list[float] = []
    train_model(folder, steps=steps, batch_size=batch_size, seq_len=seq_len, lr=lr,
                progress=lambda _: stamps.append(time.perf_counter()))
    return stamps


def bare_arm(folder: Path, sequences: torch.Tensor, *, steps: int, batch_size: int, lr: float) -> list[float]:
    """The minimal loop: forward with labels, backward, step, zero_grad."""
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype="auto")
    model.loss_type = "ForCausalLM"
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    stamps = []
    for step in range(steps):
        start = (step * batch_size) % (sequences.shape[0] - batch_size)
        batch = sequences[start : start + batch_size]
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        stamps.append(time.perf_counter())
    return stamps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2-25m")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--seq-len", type=int, default=DEFAULTS.seq_len)
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr)
    parser.add_argument("--json", type=Path, help="Also write the raw results here.")
    args = parser.parse_args()
    tokens_per_step = args.batch_size * args.seq_len
    hf_logging.disable_progress_bar()

    with tempfile.TemporaryDirectory(prefix="hubtool-train-bench-") as tmp:
        folder = build_model(resolve_spec(args.model), root=Path(tmp)).path
        sequences = pack(load_corpus(), AutoTokenizer.from_pretrained(str(folder)), seq_len=args.seq_len).sequences
        times: dict[str, list[float]] = {"hubtool": [], "bare": []}
        for round_ in range(args.rounds):
            order = ("hubtool", "bare") if round_ % 2 == 0 else ("bare", "hubtool")
            for arm in order:
                if arm == "hubtool":
                    stamps = hubtool_arm(folder, steps=args.steps, batch_size=args.batch_size,
                                         seq_len=args.seq_len, lr=args.lr)
                else:
                    stamps = bare_arm(folder, sequences, steps=args.steps, batch_size=args.batch_size, lr=args.lr)
                steps = step_times(stamps, warmup=args.warmup)
                times[arm].extend(steps)
                print(f"round {round_ + 1} {arm:8s} median step {statistics.median(steps):.4f}s "
                      f"= {tokens_per_step / statistics.median(steps):10,.0f} tok/s", flush=True)

    median = {arm: tokens_per_step / statistics.median(t) for arm, t in times.items()}
    mean = {arm: tokens_per_step * len(t) / sum(t) for arm, t in times.items()}
    ratio = median["hubtool"] / median["bare"]
    print(f"{args.model}: batch {args.batch_size} x seq {args.seq_len}, {args.steps - args.warmup} timed steps "
          f"x {args.rounds} rounds per arm, torch threads {torch.get_num_threads()}")
    print(f"tokens/s from the median step: hubtool train {median['hubtool']:,.0f}, bare loop {median['bare']:,.0f}")
    print(f"tokens/s from the mean step:   hubtool train {mean['hubtool']:,.0f}, bare loop {mean['bare']:,.0f} "
          f"(ratio {mean['hubtool'] / mean['bare']:.3f})")
    print(f"ratio (hubtool / bare): {ratio:.3f}  (target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})")
    if args.json:
        args.json.write_text(json.dumps({"step_seconds": times, "tokens_per_step": tokens_per_step, "ratio": ratio,
                                         "args": {**vars(args), "json": str(args.json)},
                                         "fingerprint": fingerprint()}, indent=2))
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
