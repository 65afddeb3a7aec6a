"""The whole job on the bundled specs, as a user would run it (`make demo`).

build -> verify -> bench --quick -> card -> report -> staging hub -> push -> verify pulled
repos -> summary. Every step is a real `hubtool` command in its own process; the staging
hub runs on 127.0.0.1 for the duration and is stopped at the end, whatever happens.

    .venv/bin/python scripts/demo.py [--models tiny-gpt2 gpt2-25m] [--out artifacts]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_PULLED = ("tiny-gpt2", "gpt2-25m")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def step(title: str, *args: str, env: dict[str, str], check: bool = True) -> int:
    """Run one hubtool command, streaming its output; a failing step stops the demo."""
    print(f"\n=== {title}: hubtool {' '.join(args)}", flush=True)
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "hubtool", *args], env=env)
    print(f"--- {title}: exit {code} in {time.perf_counter() - start:.0f} s", flush=True)
    if check and code != 0:
        raise SystemExit(f"demo stopped: `hubtool {' '.join(args)}` exited {code}")
    return code


def wait_for_hub(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("demo stopped: the staging hub exited at start-up")
        try:
            urllib.request.urlopen(f"{url}/api/models/none/none", timeout=2)  # noqa: S310 - loopback
            return
        except OSError as exc:
            if getattr(exc, "code", None):  # any HTTP answer means it is up
                return
            time.sleep(0.2)
    raise SystemExit("demo stopped: the staging hub did not start in time")


def read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def summary(models: list[str], root: Path, commits: dict[str, str]) -> str:
    backends = ("eager", "sdpa", "compile", "vllm")
    header = ["model", "parameters", *backends, "decode ms/token (eager)", "pushed commit"]
    rows = []
    for name in models:
        prov = read(root / name / "provenance.json")
        ver = read(root / name / "verification.json").get("backends", {})
        cells = read(root / name / "benchmark.json").get("cells", {})
        decode = ((cells.get("eager") or {}).get("phases") or {}).get("decode")
        rows.append([
            name,
            f"{prov.get('parameters', 0):,}",
            *[(ver.get(b) or {}).get("status", "-") for b in backends],
            f"{decode['median']:.3f}" if decode else "-",
            commits.get(name, "-")[:12],
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="default: every spec")
    parser.add_argument("--out", default="artifacts", help="artifacts root (default: artifacts)")
    parser.add_argument("--pull", nargs="*", default=None, help=f"repos to verify back (default: {', '.join(DEFAULT_PULLED)})")
    args = parser.parse_args()

    root = Path(args.out).resolve()
    hub_root = root / "staging-hub"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # A throwaway token for this run only, passed in the environment and never written down.
    env = {**os.environ, "HUBTOOL_ARTIFACTS": str(root), "HF_TOKEN": f"hf_demo_{secrets.token_hex(16)}",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(root / "hf-home")}
    env.pop("HF_ENDPOINT", None)
    names = args.models or []
    targets = names or ["--all"]
    pulled = args.pull if args.pull is not None else [n for n in DEFAULT_PULLED if not names or n in names]
    started = time.perf_counter()

    step("list", "list", env=env)
    step("build", "build", *targets, env=env)
    for name in names or _all_names(env):
        step(f"verify {name}", "verify", name, env=env, check=False)
    step("bench", "bench", *targets, "--quick", env=env)
    step("card", "card", *targets, env=env)
    step("report", "report", *targets, env=env)

    print(f"\n=== staging hub: hubtool hub serve --root {hub_root} --port {port}", flush=True)
    hub = subprocess.Popen([sys.executable, "-m", "hubtool", "hub", "serve", "--root", str(hub_root),
                            "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    commits: dict[str, str] = {}
    try:
        wait_for_hub(endpoint, hub)
        step("push", "push", *targets, "--endpoint", endpoint, env=env)
        commits = _pushed_commits(names or _all_names(env), endpoint, env)
        failures = 0
        for name in pulled:
            repo = f"Crusadersk/{name}"
            code = step(f"verify {repo}", "verify", repo, "--endpoint", endpoint, env=env, check=False)
            failures += code != 0
    finally:
        hub.terminate()
        hub.wait(timeout=30)

    print(f"\n=== done in {time.perf_counter() - started:.0f} s")
    print(f"models, reports and cards: {root}/NAME/  (README.md, verification.json, benchmark.json)")
    print(f"family report: {root}/report/   staging hub data: {hub_root}")
    print(f"verification of the repos pulled back from the hub: {root}/pulled/")
    print()
    print(summary(names or _all_names(env), root, commits))
    if failures:
        raise SystemExit(f"{failures} pulled repo(s) failed verification")


def _all_names(env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "hubtool", "list", "--json"], env=env, capture_output=True,
                         text=True, check=True).stdout
    return [row["name"] for row in json.loads(out)]


def _pushed_commits(names: list[str], endpoint: str, env: dict[str, str]) -> dict[str, str]:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=env["HF_TOKEN"])
    return {name: api.model_info(f"Crusadersk/{name}").sha or "" for name in names}


if __name__ == "__main__":
    main()
