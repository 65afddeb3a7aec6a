"""Benchmark of the benchmark: do hubtool's prefill and decode agree with torch's own Timer?

1. gpt2-25m, eager, CPU: hubtool's prefill median against ``torch.utils.benchmark.Timer``
   timing the bare forward that ``generate()`` runs for a prompt (``use_cache=True``,
   ``logits_to_keep=1``), and hubtool's decode median (ms/token) against Timer timing the same
   single-token KV-cache forward at the middle cache length of hubtool's decode pass, in the
   same process. Target: each within 5%.
2. Harness overhead: hubtool's timed-call loop around a no-op, as a fraction of
   tiny-gpt2's decode step. Target: under 1%.

Both use the same thread count (default 1: steadiest on a shared machine), and the two
measurements alternate in rounds (hubtool, Timer, hubtool, Timer, ...) so that a change in
the machine's load hits both alike; the figures compared are the medians over rounds. On a
shared 2-core machine single rounds of prefill swing by 20% on both sides: 5 rounds gave
+6.6% once, 11 rounds -0.8% (decode: +0.0% and -1.1%), hence 11 by default.

    .venv/bin/python benchmarks/bench_vs_timer.py [--threads N] [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path


def hubtool_phase(model, phase: str, *, prompt_len: int, new_tokens: int, warmup: int, repeats: int) -> float:
    """hubtool's median for ``phase`` (ms, or ms/token for decode), measured by its own loop."""
    from hubtool.bench.phases import StopRule, measure_phase
    from hubtool.bench.runners import TorchRunner
    from hubtool.bench.timing import CpuClock

    runner = TorchRunner(model, prompt_len=prompt_len, new_tokens=new_tokens, batch_size=1, seed=0)
    record = measure_phase(runner, phase, warmup=warmup, rule=StopRule(repeats=repeats), clock=CpuClock())
    assert not record["failures"], record["errors"]
    return statistics.median(record["samples"])


def timer_prefill(model, *, prompt_len: int, threads: int, min_run_time: float) -> float:
    """Median ms of the bare prompt forward generate() runs, by torch.utils.benchmark.Timer."""
    import torch
    from torch.utils.benchmark import Timer

    ids = torch.randint(0, model.config.vocab_size, (1, prompt_len), generator=torch.Generator().manual_seed(0))

    def forward():
        with torch.inference_mode():
            model(input_ids=ids, use_cache=True, logits_to_keep=1)

    timer = Timer(stmt="forward()", globals={"forward": forward}, num_threads=threads)
    timer.timeit(5)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def timer_step(model, *, cache_len: int, threads: int, min_run_time: float) -> float:
    """Median ms of one single-token forward at ``cache_len``, by torch.utils.benchmark.Timer.

    The cache is cropped back after each call (a slice per layer, a few microseconds) so
    every call sees the same cache length.
    """
    import torch
    from torch.utils.benchmark import Timer

    ids = torch.randint(0, model.config.vocab_size, (1, cache_len), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
    cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)

    def step():
        with torch.inference_mode():
            model(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache.crop(-1)  # drop the token just appended

    timer = Timer(stmt="step()", globals={"step": step}, num_threads=threads)
    timer.timeit(5)  # warm
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def harness_overhead_ms(calls: int = 20000) -> float:
    from hubtool.bench.timing import CpuClock, time_calls

    samples, _ = time_calls(lambda: None, calls=calls, clock=CpuClock())
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="artifacts root (models are built there if needed)")
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from hubtool.backends import attention
    from hubtool.build.folder import build_model
    from hubtool.spec.catalog import artifacts_root, resolve_spec

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    root = artifacts_root(args.out)
    models = {}
    for name in ("gpt2-25m", "tiny-gpt2"):
        folder = build_model(resolve_spec(name), root=root).path
        models[name] = attention.load(folder, attn_implementation="eager").model

    # Decode steps run at cache lengths prompt_len .. prompt_len + new_tokens - 1; the Timer
    # measures the middle one. The two sides alternate, round after round.
    mid = args.prompt_len + args.new_tokens // 2
    model = models["gpt2-25m"]
    rounds: dict[str, list[float]] = {"prefill": [], "prefill_timer": [], "decode": [], "decode_timer": []}
    for _ in range(args.rounds):
        rounds["prefill"].append(hubtool_phase(model, "prefill", prompt_len=args.prompt_len,
                                               new_tokens=args.new_tokens, warmup=2, repeats=args.repeats * 3))
        rounds["prefill_timer"].append(timer_prefill(model, prompt_len=args.prompt_len, threads=args.threads,
                                                     min_run_time=1.5))
        rounds["decode"].append(hubtool_phase(model, "decode", prompt_len=args.prompt_len,
                                              new_tokens=args.new_tokens, warmup=2, repeats=args.repeats))
        rounds["decode_timer"].append(timer_step(model, cache_len=mid, threads=args.threads, min_run_time=1.5))
    med = {k: statistics.median(v) for k, v in rounds.items()}
    print(f"gpt2-25m eager, {args.threads} thread(s), CPU, {args.rounds} alternating rounds")
    ok = True
    for phase, unit in (("prefill", "ms"), ("decode", "ms/token")):
        ratio = med[phase] / med[f"{phase}_timer"]
        ok &= abs(ratio - 1) <= 0.05
        print(f"  {phase:8} hubtool {med[phase]:.4f} {unit}  Timer {med[f'{phase}_timer']:.4f}  "
              f"ratio {ratio:.4f} ({ratio - 1:+.2%}; target within 5%)  "
              f"rounds: {', '.join(f'{a:.3f}/{b:.3f}' for a, b in zip(rounds[phase], rounds[f'{phase}_timer'], strict=True))}")

    tiny = hubtool_phase(models["tiny-gpt2"], "decode", prompt_len=args.prompt_len, new_tokens=args.new_tokens,
                         warmup=3, repeats=args.repeats)
    overhead = harness_overhead_ms()
    share = overhead / tiny
    print(f"harness overhead per timed call {overhead * 1e3:.3f} us; tiny-gpt2 decode step {tiny:.4f} ms;"
          f" overhead {share:.3%} of a step (target under 1%)")
    ok &= share < 0.01
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
