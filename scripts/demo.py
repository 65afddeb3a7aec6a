"""The whole job on the bundled specs, as a user would run it (`make demo`).

build -> verify (several models at once) -> bench -> card -> report -> staging hub -> push -> verify pulled
repos -> summary. Every step is a real `hubtool` command in its own process; the staging
hub runs on 127.0.0.1 for the duration and is stopped at the end, whatever happens. The
demo ends with each stage's wall time, a summary table, where its outputs are, and what
to open first. The stages are data: see ``stages()``.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PULLED = ("tiny-gpt2", "gpt2-25m")
DEMO_BENCH = ("--backend", "eager,sdpa,compile", "--processes", "3", "--warmup", "1", "--new-tokens", "16")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Stage:
    """One demo stage: a hubtool command (``{endpoint}`` in its arguments becomes the staging
    hub's URL). A failing stage stops the demo at once when ``check``; otherwise the demo goes
    on, and ends with a failure if the stage was ``required``. ``needs_hub`` stages run while
    the staging hub is up (it starts before the first of them)."""

    title: str
    args: tuple[str, ...]
    check: bool = True
    required: bool = True
    needs_hub: bool = False


def stages(names: list[str], targets: list[str], pulled: list[str], *, verify_backends: str | None = None,
           repeats: int = 5) -> list[Stage]:
    """The demo, in order. Add, drop or reorder stages here; the runner needs nothing else.

    ``verify_backends`` (e.g. ``"eager,sdpa,compile"``) narrows the verify stages (default: every installed one).
    """
    verify_with = ("--backend", verify_backends) if verify_backends else ()
    return [
        Stage("list", ("list",)),
        Stage("build", ("build", *targets)),
        # A model whose verify fails still gets benchmarked, carded and pushed: its card says so.
        # Several models at once where there are cores to spare (see verify_jobs).
        Stage("verify", ("verify", *targets, *verify_with, "--jobs", str(verify_jobs(len(names)))), check=False,
              required=False),
        # A short result, not a smoke run: 3 interleaved processes per cell, so the cards can show it.
        # vLLM is verified but not benchmarked here (about a minute of engine start per process).
        Stage("bench", ("bench", *targets, *DEMO_BENCH, "--repeats", str(repeats))),
        Stage("card", ("card", *targets)),
        Stage("report", ("report", *targets)),
        Stage("push", ("push", *targets, "--endpoint", "{endpoint}"), needs_hub=True),
        *([Stage("verify pulled", ("verify", *[f"Crusadersk/{name}" for name in pulled], "--endpoint", "{endpoint}",
                                   *verify_with, "--jobs", str(verify_jobs(len(pulled)))), check=False,
                 needs_hub=True)] if pulled else []),
    ]


def verify_jobs(models: int) -> int:
    """Models verified at once: one per 2 cores (what one verification keeps busy), at most 4.

    On 2 cores that is 1: measured, --jobs 2 verified the five models no faster (427 s against
    423 s), because the two verifications slowed each other down almost twofold.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(models, cores // 2, 4))


def step(title: str, *args: str, env: dict[str, str]) -> tuple[int, float]:
    """Run one hubtool command, streaming its output: (exit code, wall seconds)."""
    print(f"\n=== {title}: hubtool {' '.join(args)}", flush=True)
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "hubtool", *args], env=env)
    seconds = time.perf_counter() - start
    print(f"--- {title}: exit {code} in {seconds:.1f} s", flush=True)
    return code, seconds


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


def _eager_decode(folder: Path) -> str:
    """This machine's eager decode median with its interval, from the newest result file."""
    results = sorted((folder / "benchmarks").glob("*.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(results):
        for cell in read(path).get("cells", []):
            stats = (cell.get("phases") or {}).get("decode") if cell.get("backend") == "eager" else None
            if stats:
                return f"{stats['median']:.3f} [{stats['ci95'][0]:.3f}, {stats['ci95'][1]:.3f}]"
    return "-"


def summary(models: list[str], root: Path, commits: dict[str, str]) -> str:
    backends = ("eager", "sdpa", "compile", "vllm")
    header = ["model", "parameters", *backends, "decode ms/token (eager, 95% CI)", "pushed commit"]
    rows = []
    for name in models:
        prov = read(root / name / "provenance.json")
        ver = read(root / name / "verification.json").get("backends", {})
        rows.append([
            name,
            f"{prov.get('parameters', 0):,}",
            *[(ver.get(b) or {}).get("status", "-") for b in backends],
            _eager_decode(root / name),
            commits.get(name, "-")[:12],
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="default: every spec")
    parser.add_argument("--out", default="artifacts", help="artifacts root (default: artifacts)")
    parser.add_argument("--pull", nargs="*", default=None,
                        help=f"repos to verify back (default: {', '.join(DEFAULT_PULLED)})")
    parser.add_argument("--verify-backends", default=None, metavar="LIST",
                        help="backends the verify stages run (default: every installed one)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per phase and process in bench")
    args = parser.parse_args()

    root = Path(args.out).resolve()
    hub_root = root / "staging-hub"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # A throwaway token for this run only, passed in the environment and never written down.
    env = {**os.environ, "HUBTOOL_ARTIFACTS": str(root), "HF_TOKEN": f"hf_demo_{secrets.token_hex(16)}",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(root / "hf-home")}
    env.pop("HF_ENDPOINT", None)
    names = args.models or _all_names(env)
    targets = args.models or ["--all"]
    pulled = args.pull if args.pull is not None else [n for n in DEFAULT_PULLED if n in names]
    started = time.perf_counter()

    timings: list[tuple[str, int, float]] = []
    failures = 0
    hub: subprocess.Popen | None = None
    commits: dict[str, str] = {}
    try:
        for stage in stages(names, targets, pulled, verify_backends=args.verify_backends, repeats=args.repeats):
            if stage.needs_hub and hub is None:
                hub = start_hub(hub_root, port, endpoint, env)
            command = [a.format(endpoint=endpoint) for a in stage.args]
            code, seconds = step(stage.title, *command, env=env)
            timings.append((stage.title, code, seconds))
            if stage.check and code != 0:
                raise SystemExit(f"demo stopped: `hubtool {' '.join(command)}` exited {code}")
            failures += code != 0 and stage.required
        if hub is not None:
            commits = _pushed_commits(names, endpoint, env)
    finally:
        if hub is not None:
            hub.terminate()
            hub.wait(timeout=30)
        print(f"\n=== {len(timings)} stage(s) in {time.perf_counter() - started:.0f} s; wall time per stage:")
        width = max((len(title) for title, _, _ in timings), default=0)
        for title, code, seconds in timings:
            print(f"  {title:<{width}}  {seconds:7.1f} s{'' if code == 0 else f'  (exit {code})'}", flush=True)

    print()
    print(summary(names, root, commits))
    print(where(root, names, hub_root, pulled))
    if failures:
        raise SystemExit(f"{failures} stage(s) failed; see their output above")


def start_hub(hub_root: Path, port: int, endpoint: str, env: dict[str, str]) -> subprocess.Popen:
    print(f"\n=== staging hub: hubtool hub serve --root {hub_root} --port {port}", flush=True)
    hub = subprocess.Popen([sys.executable, "-m", "hubtool", "hub", "serve", "--root", str(hub_root),
                            "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for_hub(endpoint, hub)
    except BaseException:
        hub.terminate()
        raise
    return hub


def where(root: Path, names: list[str], hub_root: Path, pulled: list[str]) -> str:
    """Where the demo's outputs are, and what to open first."""
    first = names[1] if len(names) > 1 else names[0]
    lines = [
        "",
        f"Outputs (under {root}):",
        "  model cards          NAME/README.md (rendered from the measurements beside them)",
        "  measurements (JSON)  NAME/verification.json, NAME/benchmarks/<machine>.json, NAME/measurements.json",
        "  family report        report/report.md, report/report.json",
        "  plots                report/decode_vs_layers-<machine>.png, report/decode_vs_params-<machine>.png",
    ]
    if pulled:
        lines.append("  pulled-back checks   pulled/Crusadersk--NAME/verification.json")
    lines += [
        f"  staging hub data     {hub_root}",
        "",
        f"Open first: {root / 'report' / 'report.md'} (the family table), then the card of one model,",
        f"            {root / first / 'README.md'}, and the decode-vs-depth plot in {root / 'report'}.",
        "make clean removes all of it and hubtool's compile cache.",
    ]
    return "\n".join(lines)


def _all_names(env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "hubtool", "list", "--json"], env=env, capture_output=True,
                         text=True, check=True).stdout
    return [row["name"] for row in json.loads(out)]


def _pushed_commits(names: list[str], endpoint: str, env: dict[str, str]) -> dict[str, str]:
    """Each model's head commit on the staging hub ("" when it was not pushed)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint, token=env["HF_TOKEN"])
    commits = {}
    for name in names:
        try:
            commits[name] = api.model_info(f"Crusadersk/{name}").sha or ""
        except HfHubHTTPError:
            commits[name] = ""
    return commits


if __name__ == "__main__":
    main()
