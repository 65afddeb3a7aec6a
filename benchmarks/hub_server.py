"""The staging hub's own speed, before and after a change: latency of `model_info` on a
kept-alive connection (p50/p99) and the throughput of 100 concurrent `hf_hub_download`s of a
1 MB file, against this tree's server and a git revision's (default: the http.server one,
c0962e6). Each server runs as `hubtool hub serve` in its own process, on a fresh root;
rounds alternate between the two.

Usage: .venv/bin/python benchmarks/hub_server.py [--old c0962e6] [--rounds 2] [--calls 500]
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
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FILE_BYTES = 1 << 20
CONCURRENT = 100


def checkout(revision: str, into: Path) -> Path:
    """The ``hubtool`` package of ``revision``, extracted (no worktree, no checkout change)."""
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", revision, "hubtool"], capture_output=True,
                             check=True).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def start_hub(code: Path, root: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "hubtool", "hub", "serve", "--root", str(root), "--port", "0"],
                            env={**env, "PYTHONPATH": str(code)}, cwd=root.parent, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    banner = proc.stderr.readline()
    if not banner.startswith("Staging hub at "):
        proc.kill()
        sys.exit(f"the staging hub did not start: {banner}{proc.stderr.read()[-2000:]}")
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # drain the request log
    return proc, banner.split()[3]


def measure(url: str, work: Path, *, calls: int) -> dict[str, float]:
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi(endpoint=url, token="bench")
    api.create_repo("bench/m", exist_ok=True)
    api.upload_file(path_or_fileobj=os.urandom(FILE_BYTES).hex().encode()[:FILE_BYTES], path_in_repo="one-mb.txt",
                    repo_id="bench/m")
    for _ in range(20):  # warm-up, and the connection is opened here
        api.model_info("bench/m")
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        api.model_info("bench/m")
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()

    def download(i: int) -> int:
        path = hf_hub_download("bench/m", "one-mb.txt", endpoint=url, cache_dir=work / f"cache-{i}", token="bench")
        return Path(path).stat().st_size

    with ThreadPoolExecutor(CONCURRENT) as pool:
        start = time.perf_counter()
        sizes = list(pool.map(download, range(CONCURRENT)))
        seconds = time.perf_counter() - start
    assert sizes == [FILE_BYTES] * CONCURRENT, "a download came back short"
    return {"p50": statistics.median(samples), "p99": samples[int(len(samples) * 0.99) - 1],
            "downloads_per_s": CONCURRENT / seconds, "mb_per_s": CONCURRENT * FILE_BYTES / seconds / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="c0962e6", help="git revision of the server to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=500, help="model_info calls per round")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hubtool-hub-bench-"))
    env = {**os.environ, "HF_HOME": str(work / "hf-home"), "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    os.environ.update({k: env[k] for k in ("HF_HOME", "HF_HUB_DISABLE_XET", "HF_HUB_DISABLE_PROGRESS_BARS")})
    servers = {f"old ({args.old})": checkout(args.old, work / "old-code"), "new (this tree)": REPO_ROOT}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    try:
        for r in range(args.rounds):
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            for name in order:
                root = work / f"root-{r}-{name.split()[0]}"
                proc, url = start_hub(servers[name], root, env)
                try:
                    got = measure(url, work / f"dl-{r}-{name.split()[0]}", calls=args.calls)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                results[name].append(got)
                print(f"round {r + 1} {name:<16} model_info p50 {got['p50']:6.2f} ms  p99 {got['p99']:6.2f} ms  "
                      f"{CONCURRENT} x 1 MB downloads: {got['downloads_per_s']:6.1f}/s ({got['mb_per_s']:.0f} MB/s)",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmedians over {args.rounds} rounds, {args.calls} model_info calls each, one kept-alive connection; "
          f"{os.cpu_count()} CPUs")
    for name, rows in results.items():
        med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
        print(f"  {name:<16} model_info p50 {med['p50']:6.2f} ms  p99 {med['p99']:6.2f} ms   "
              f"downloads {med['downloads_per_s']:6.1f}/s ({med['mb_per_s']:.0f} MB/s)")


if __name__ == "__main__":
    main()
