"""`make demo`'s pipeline on tiny-gpt2 alone: every stage runs for real and leaves its output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# The whole pipeline. vLLM's own engine tests live in test_verify and test_bench_real: here the verify
# stages run the torch backends (each vLLM engine start costs about a minute), with the run's compile cache.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def test_demo_pipeline_on_tiny_gpt2(tmp_path: Path, verify_cache: Path) -> None:
    out = tmp_path / "artifacts"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUBTOOL_"))}
    env["HUBTOOL_CACHE"] = str(verify_cache)
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--models", "tiny-gpt2", "--out", str(out),
         "--verify-backends", "eager,sdpa,compile", "--repeats", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    stages = ("list", "build", "verify", "bench", "card", "report", "push", "verify pulled")
    for stage in stages:
        assert f"--- {stage}: exit 0" in log, stage
    # the ending: each stage's wall time, then where things are and what to open first
    table = done.stdout.split("wall time per stage:\n")[1].split("\n\n")[0].splitlines()
    assert [re.match(r"^  (.+?) +\d+\.\d s$", line)[1] for line in table] == list(stages)
    opened = re.search(r"^Open first: (\S+) ", done.stdout, re.M)[1]
    assert opened == str(out / "report" / "report.md") and Path(opened).is_file()

    folder = out / "tiny-gpt2"
    verification = json.loads((folder / "verification.json").read_text())
    statuses = {b: c["status"] for b, c in verification["backends"].items()}
    assert statuses == {"eager": "passed", "sdpa": "passed", "compile": "passed"}

    (result,) = list((folder / "benchmarks").glob("*.json"))
    bench = json.loads(result.read_text())
    assert bench["quality"] == "result" and bench["settings"]["processes"] == 3
    assert {c["backend"]: c["status"] for c in bench["cells"]} == {"eager": "ok", "sdpa": "ok", "compile": "ok"}
    decode = next(c for c in bench["cells"] if c["backend"] == "eager")["phases"]["decode"]
    assert decode["median"] > 0 and decode["ci95"][0] <= decode["median"] <= decode["ci95"][1]

    card = (folder / "README.md").read_text()
    assert "| Parameters | 102,714 (102.7K) |" in card
    assert "| vLLM | Not tested | not run by this verification |" in card
    assert "| transformers (eager attention) | 1 | " in card.split("## Latency")[1]
    measurements = json.loads((folder / "measurements.json").read_text())
    assert measurements["facts"]["parameters"] == 102_714

    report = json.loads((out / "report" / "report.json").read_text())
    assert "tiny-gpt2" in json.dumps(report)
    for png in ("decode_vs_layers", "decode_vs_params"):
        (plot,) = list((out / "report").glob(f"{png}-*.png"))
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    pulled = json.loads((out / "pulled" / "Crusadersk--tiny-gpt2" / "verification.json").read_text())
    assert pulled["status"] == "passed" and pulled["source"]["repo_id"] == "Crusadersk/tiny-gpt2"
    assert pulled["source"]["hub_reached"] is True
    assert pulled["card_audit"]["status"] == "passed" and pulled["card_audit"]["recheck"]["rerendered"] is True
    assert {c["name"]: c["status"] for c in pulled["checks"]}["bit-identical to build"] == "passed"

    row = [line for line in done.stdout.splitlines() if line.startswith("tiny-gpt2 ")][-1]  # the summary
    commit = re.search(r"/commit/([0-9a-f]{40})", log).group(1)
    interval = f"{decode['median']:.3f} [{decode['ci95'][0]:.3f}, {decode['ci95'][1]:.3f}]"
    assert row.split() == ["tiny-gpt2", "102,714", "passed", "passed", "passed", "-",
                           *interval.split(), commit[:12]]
    assert pulled["source"]["commit"] == commit
