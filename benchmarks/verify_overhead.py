"""Overhead of `hubtool verify` (one process per backend) over the bare work in one process.

Times `hubtool verify gpt2-25m --backend eager,sdpa,compile` against one process that
does the same loads and forwards (tokenize; eager float32 and float64 reference; sdpa;
torch.compile with Inductor; the same prompts, padded batch and greedy continuations),
each as a fresh subprocess measured by wall clock. Cold runs start from empty compile
caches; warm runs reuse them. Prints both ratios; the target is at most 1.5.

    .venv/bin/python benchmarks/verify_overhead.py [--model gpt2-25m] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from timing import timed  # benchmarks/timing.py (scripts run with benchmarks/ on sys.path)

TARGET_RATIO = 1.5


def bare(folder: str) -> None:
    """The same loads and forwards as verify, in this one process, with no isolation or checks."""
    import torch

    from hubtool.verify import parity
    from hubtool.backends import compile as compiled
    from hubtool.backends import eager, sdpa

    prompts = parity._tokenize(folder)
    ref = eager.load(Path(folder))
    eos = ref.model.config.eos_token_id
    greedy = [parity._greedy(ref.model, p, 8, eos) for p in prompts]
    seqs = [p + g for p, g in zip(prompts, greedy)]
    lens = [len(p) for p in prompts]
    batch = parity._padded_batch(seqs, eos)
    parity._run_all(ref.model, seqs, lens, batch, 8, eos, greedy=greedy)
    fp64 = eager.load(Path(folder), dtype="float64")
    for s in seqs:
        parity._forward(fp64.model, torch.tensor([s]))
    parity._forward(fp64.model, *batch)
    del fp64
    for backend in (sdpa, compiled):
        loaded = backend.load(Path(folder))
        parity._run_all(loaded.model, seqs, lens, batch, 8, eos)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2-25m")
    parser.add_argument("--repeats", type=int, default=1, help="warm repetitions of each")
    parser.add_argument("--bare", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare(args.bare)
        return

    from hubtool.build.folder import build_model
    from hubtool.spec.catalog import resolve_spec

    with tempfile.TemporaryDirectory(prefix="verify-overhead-") as tmp:
        tmp_path = Path(tmp)
        folder = build_model(resolve_spec(args.model), root=tmp_path / "artifacts").path
        threads = str(len(os.sched_getaffinity(0)))
        verify_env = {**os.environ, "HUBTOOL_CACHE": str(tmp_path / "verify-cache")}
        bare_cache = tmp_path / "bare-cache"
        (bare_cache / "tmp").mkdir(parents=True)
        bare_env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(bare_cache / "inductor"),
                    "TMPDIR": str(bare_cache / "tmp"), "OMP_NUM_THREADS": threads}
        verify_cmd = [sys.executable, "-m", "hubtool.cli.main", "verify", args.model, "--out",
                      str(tmp_path / "artifacts"), "--backend", "eager,sdpa,compile", "--json", str(tmp_path / "r.json")]
        bare_cmd = [sys.executable, str(Path(__file__).resolve()), "--bare", str(folder)]
        results = {}
        for phase, runs in (("cold", 1), ("warm", args.repeats)):
            v = [timed(verify_cmd, verify_env) for _ in range(runs)]
            b = [timed(bare_cmd, bare_env) for _ in range(runs)]
            results[phase] = (min(v), min(b))
        print(f"model {args.model}, {threads} threads, backends eager,sdpa,compile")
        for phase, (v, b) in results.items():
            print(f"{phase}: verify {v:.1f}s  bare {b:.1f}s  ratio {v / b:.2f}")
        worst = max(v / b for v, b in results.values())
        print(f"ratio {worst:.2f} (target <= {TARGET_RATIO}) -> {'OK' if worst <= TARGET_RATIO else 'OVER'}")


if __name__ == "__main__":
    main()
