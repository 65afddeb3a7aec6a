"""A warm `hubtool bench --quick` against the bare work it wraps (gpt2-25m, eager + sdpa + compile).

Warm means verify already ran on these bytes and the compile cache holds the kernels: what
a user's second quick run finds. The bare work is the same three cells measured by
hubtool's own phase loop, called one after another in a single fresh process (no machine
probe, no gate, no worker processes, no report). Both are timed as whole subprocesses,
alternating. Prints the median ratio. Target: at most 1.2.

    .venv/bin/python benchmarks/quick_bench_overhead.py [--rounds 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import timed

BACKENDS = ("eager", "sdpa", "compile")


def bare(folder: str) -> None:
    """The three cells' measurements in this one process, with bench's quick settings."""
    from dataclasses import asdict

    from hubtool.backends import registry
    from hubtool.bench.cell import run_cell
    from hubtool.bench.harness import QUICK, BenchSettings

    settings = BenchSettings(**QUICK)
    with tempfile.TemporaryDirectory() as tmp:
        for name in BACKENDS:
            run_cell(backend=registry.get(name).to_dict(), model_dir=folder, device="cpu",
                     prompt_len=settings.prompt_len, new_tokens=settings.new_tokens, batch_size=1,
                     warmup=settings.warmup, rule=asdict(settings.rule), seed=0,
                     progress_path=str(Path(tmp) / f"{name}.json"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="gpt2-25m")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--bare", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare(args.bare)
        return 0

    from hubtool.build.folder import build_model
    from hubtool.runtime.cache import cache_root, compile_cache
    from hubtool.spec.catalog import artifacts_root, resolve_spec

    root = artifacts_root(args.out).resolve()
    folder = build_model(resolve_spec(args.model), root=root).path
    cache = cache_root()
    threads = str(len(os.sched_getaffinity(0)))
    hubtool = [sys.executable, "-m", "hubtool"]
    timed([*hubtool, "verify", args.model, "--backend", ",".join(BACKENDS), "--out", str(root)])  # warm it all
    bench = [*hubtool, "bench", args.model, "--quick", "--backend", ",".join(BACKENDS), "--out", str(root)]
    timed(bench)
    bare_env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(compile_cache(cache) / "inductor"),
                "OMP_NUM_THREADS": threads, "HUBTOOL_THREADS": threads}
    bare_cmd = [sys.executable, str(Path(__file__).resolve()), "--bare", str(folder)]
    ours, theirs = [], []
    for r in range(args.rounds):
        for kind in (("bench", "bare") if r % 2 == 0 else ("bare", "bench")):
            (ours if kind == "bench" else theirs).append(timed(bench) if kind == "bench" else timed(bare_cmd, bare_env))
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"{args.model}, {', '.join(BACKENDS)}, warm: bench --quick {statistics.median(ours):.1f} s "
          f"(rounds {', '.join(f'{x:.1f}' for x in ours)}), bare {statistics.median(theirs):.1f} s "
          f"(rounds {', '.join(f'{x:.1f}' for x in theirs)}); ratio {ratio:.2f} (target at most 1.2)")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
