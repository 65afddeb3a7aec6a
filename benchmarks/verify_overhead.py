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
    """The same loads, forwards and checks as verify, in this one process, with no isolation or report.

    The reference run (eager float32 and float64, the probe, weights regenerated from the spec)
    and each backend's comparison, called directly.
    """
    from hubtool.backends import registry
    from hubtool.evidence.provenance import read_provenance
    from hubtool.verify import parity

    prov = read_provenance(Path(folder))
    regenerate = {"config": prov.spec.config, "seed": prov.seed, "dtype": prov.spec.dtype}
    with tempfile.TemporaryDirectory(prefix="bare-verify-") as work:
        parity.reference_worker(folder=folder, work_dir=work, new_tokens=8, regenerate=regenerate,
                                spec_config=prov.spec.config, spec_dtype=prov.spec.dtype)
        for name in ("sdpa", "compile"):
            parity.transformers_worker(backend=registry.get(name).to_dict(), folder=folder, work_dir=work)


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
                      str(tmp_path / "artifacts"), "--backend", "eager,sdpa,compile", "--output", str(tmp_path / "r.json")]
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
