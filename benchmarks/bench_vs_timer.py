"""Benchmark of the benchmark: does hubtool's decode timing agree with torch's own Timer?

1. gpt2-25m, eager, CPU: hubtool's decode median (ms/token, the figure in benchmark.json)
   against ``torch.utils.benchmark.Timer`` timing the same single-token forward at the
   middle cache length of hubtool's decode pass, in the same process. Target: within 5%.
2. Harness overhead: hubtool's timed-call loop around a no-op, as a fraction of
   tiny-gpt2's decode step. Target: under 1%.

Both use the same thread count (default 1: steadiest on a shared machine), and the two
measurements alternate in rounds (hubtool, Timer, hubtool, Timer, ...) so that a change in
the machine's load hits both alike; the figures compared are the medians over rounds.

    .venv/bin/python benchmarks/bench_vs_timer.py [--threads N] [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path


def hubtool_decode(model, *, prompt_len: int, new_tokens: int, warmup: int, repeats: int) -> dict:
    from hubtool.bench.phases import measure_phase
    from hubtool.bench.timing import CpuClock
    from hubtool.bench.torch_runner import TorchRunner
    from hubtool.bench.stats import summarize

    runner = TorchRunner(model, prompt_len=prompt_len, new_tokens=new_tokens, batch_size=1, seed=0)
    record = measure_phase(runner, "decode", warmup=warmup, repeats=repeats, clock=CpuClock())
    assert not record["failures"], record["errors"]
    return {**summarize(record["samples"], unit="ms/token"), "step_samples": record["step_samples"]}


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
            model(input_ids=token, past_key_values=cache, use_cache=True)
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
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from hubtool.backends import eager
    from hubtool.build.folder import build_model
    from hubtool.spec.catalog import artifacts_root, resolve_spec

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    root = artifacts_root(args.out)
    models = {}
    for name in ("gpt2-25m", "tiny-gpt2"):
        folder = build_model(resolve_spec(name), root=root).path
        models[name] = eager.load(folder).model

    # Decode steps run at cache lengths prompt_len .. prompt_len + new_tokens - 1; the Timer
    # measures the middle one.
    mid = args.prompt_len + args.new_tokens // 2
    ours_rounds, timer_rounds, mid_rounds = [], [], []
    for _ in range(args.rounds):
        ours = hubtool_decode(models["gpt2-25m"], prompt_len=args.prompt_len, new_tokens=args.new_tokens,
                              warmup=2, repeats=args.repeats)
        ours_rounds.append(ours["median"])
        mid_rounds.append(statistics.median(steps[args.new_tokens // 2] for steps in ours["step_samples"]))
        timer_rounds.append(timer_step(models["gpt2-25m"], cache_len=mid, threads=args.threads, min_run_time=1.5))
    ours_ms, timer_ms, at_mid = (statistics.median(x) for x in (ours_rounds, timer_rounds, mid_rounds))
    diff = ours_ms / timer_ms - 1
    print(f"gpt2-25m eager decode, {args.threads} thread(s), CPU, {args.rounds} alternating rounds")
    print(f"  hubtool median       {ours_ms:.4f} ms/token  (per round: {', '.join(f'{x:.3f}' for x in ours_rounds)};"
          f" {args.repeats} passes x {args.new_tokens} steps each)")
    print(f"  hubtool step @ {mid:<4d} {at_mid:.4f} ms")
    print(f"  Timer step @ {mid:<6d} {timer_ms:.4f} ms  (blocked_autorange medians: "
          f"{', '.join(f'{x:.3f}' for x in timer_rounds)})")
    print(f"  ratio hubtool/Timer  {ours_ms / timer_ms:.4f}  ({diff:+.2%}; target within 5%)")

    tiny = hubtool_decode(models["tiny-gpt2"], prompt_len=args.prompt_len, new_tokens=args.new_tokens,
                          warmup=3, repeats=args.repeats)
    overhead = harness_overhead_ms()
    share = overhead / tiny["median"]
    print(f"harness overhead per timed call {overhead * 1e3:.3f} us; tiny-gpt2 decode step {tiny['median']:.4f} ms;"
          f" overhead {share:.3%} of a step (target under 1%)")
    ok = abs(diff) <= 0.05 and share < 0.01
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
