"""`hubtool push` against `hf upload` of the same gpt2-100m folder (about 384 MB) to one
staging hub, alternated in one run, a fresh repo for every upload. Both run as the
commands a user types (wall time of the whole process). Prints the ratio of medians
(target <= 1.0) and the time of an unchanged re-push (target < 2 s).

Usage: .venv/bin/python benchmarks/push_vs_hf_upload.py [--rounds 3] [--model gpt2-100m]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from timing import timed  # benchmarks/timing.py (scripts run with benchmarks/ on sys.path)

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent



def start_hub(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([str(BIN / "hubtool"), "hub", "serve", "--root", str(root), "--port", "0"],
                            env=env, cwd=REPO_ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    banner = proc.stderr.readline()
    if not banner.startswith("Staging hub at "):
        proc.kill()
        sys.exit(f"the staging hub did not start: {banner}")
    # keep draining the per-request log so the server never blocks on a full pipe
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc, banner.split()[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="gpt2-100m")
    args = parser.parse_args()

    from hubtool.build.folder import build_model
    from hubtool.runtime.fingerprint import fingerprint
    from hubtool.spec.catalog import resolve_spec

    work = Path(tempfile.mkdtemp(prefix="hubtool-bench-"))
    try:
        print(f"building {args.model} ...", flush=True)
        folder = build_model(resolve_spec(args.model), root=work / "artifacts").path
        (folder / "README.md").write_text(f"---\nlicense: mit\n---\n# {args.model}\n")
        size = sum(p.stat().st_size for p in folder.iterdir())
        env = {**os.environ, "HF_HOME": str(work / "hf-home"), "HF_HUB_DISABLE_XET": "1",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
        env.pop("HF_TOKEN", None)
        hub, url = start_hub(work / "hub", env)
        env["HF_ENDPOINT"] = url
        try:
            times: dict[str, list[float]] = {"hubtool push": [], "hf upload": []}
            for r in range(args.rounds):
                order = ["hubtool push", "hf upload"] if r % 2 == 0 else ["hf upload", "hubtool push"]
                for tool in order:
                    repo = f"bench/{tool.split()[0]}-{r}"
                    if tool == "hf upload":
                        cmd = [str(BIN / "hf"), "upload", repo, str(folder), ".", "--commit-message", "bench"]
                    else:
                        cmd = [str(BIN / "hubtool"), "push", args.model, "--out", str(work / "artifacts"),
                               "--repo-id", repo]
                    times[tool].append(timed(cmd, env))
                    print(f"round {r + 1}: {tool:<12} {times[tool][-1]:6.2f} s", flush=True)
            repush = [timed([str(BIN / "hubtool"), "push", args.model, "--out", str(work / "artifacts"),
                             "--repo-id", "bench/hubtool-0"], env) for _ in range(3)]
        finally:
            hub.terminate()
            hub.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    fp = fingerprint()
    push_med, hf_med = statistics.median(times["hubtool push"]), statistics.median(times["hf upload"])
    print()
    print(f"{args.model}: {size:,} bytes, {args.rounds} alternated rounds, fresh repo each upload, "
          f"huggingface_hub {fp.get('libraries', {}).get('huggingface_hub', '?')}")
    for tool, samples in times.items():
        print(f"  {tool:<12} median {statistics.median(samples):6.2f} s  samples "
              + ", ".join(f"{s:.2f}" for s in samples))
    print(f"ratio hubtool push / hf upload (medians): {push_med / hf_med:.3f}  (target <= 1.0)")
    print(f"unchanged re-push: median {statistics.median(repush):.2f} s  samples "
          + ", ".join(f"{s:.2f}" for s in repush) + "  (target < 2 s)")
    print(f"cpu: {fp['cpu']['model']}, {fp['cpu']['affinity_cores']} cores; hubtool {fp['hubtool']}")


if __name__ == "__main__":
    main()
