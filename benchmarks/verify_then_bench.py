"""Compile once: `verify X` then `bench X --quick` against `verify X` alone (gpt2-25m, eager + compile).

bench's compiled cell should load the kernels verify compiled from the shared cache root, so
the pair costs little more than verify alone. Each round runs, in a fresh cache root:
  alone: hubtool verify gpt2-25m --backend eager,compile
  pair:  hubtool verify gpt2-25m --backend eager,compile && hubtool bench gpt2-25m --quick --backend eager,compile
alternating which goes first. Prints the median ratio pair/alone. Target: at most 1.3.

    .venv/bin/python benchmarks/verify_then_bench.py [--rounds 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import timed

HUBTOOL = [sys.executable, "-m", "hubtool"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="gpt2-25m")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from hubtool.build.folder import build_model
    from hubtool.spec.catalog import artifacts_root, resolve_spec

    root = artifacts_root(args.out).resolve()
    build_model(resolve_spec(args.model), root=root)
    verify = [*HUBTOOL, "verify", args.model, "--backend", "eager,compile", "--out", str(root)]
    bench = [*HUBTOOL, "bench", args.model, "--quick", "--backend", "eager,compile", "--out", str(root)]
    alone, pair = [], []
    for r in range(args.rounds):
        for kind in (("alone", "pair") if r % 2 == 0 else ("pair", "alone")):
            cache = Path(tempfile.mkdtemp(prefix="hubtool-bench-cache-"))
            env = {**os.environ, "HUBTOOL_CACHE": str(cache)}
            try:
                seconds = timed(verify, env)
                if kind == "pair":
                    bench_s = timed(bench, env)
                    pair.append(seconds + bench_s)
                    print(f"round {r + 1}: verify {seconds:.0f} s + bench --quick {bench_s:.0f} s", flush=True)
                else:
                    alone.append(seconds)
                    print(f"round {r + 1}: verify alone {seconds:.0f} s", flush=True)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    ratio = statistics.median(pair) / statistics.median(alone)
    print(f"{args.model}, eager + compile, cold cache each round: verify alone {statistics.median(alone):.0f} s, "
          f"verify then bench --quick {statistics.median(pair):.0f} s; ratio {ratio:.2f} (target at most 1.3)")
    return 0 if ratio <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
