"""Progress output: plain timestamped stage lines (with heartbeats) when not a terminal, a live
rich display when one is, and both wired into build, train and push."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubtool.cli.main import cli
from hubtool.runtime.progress import Progress, format_count
from tests.conftest import run_hubtool
from tests.hub_fixtures import hf_home, hub, models, run_cli  # noqa: F401 - fixtures

LINE = re.compile(r"^(\d\d):(\d\d):(\d\d) (?P<name>[^:]+): (?P<stage>.+?) (?P<what>started|done in [\d.]+ s|"
                  r"failed after [\d.]+ s|interrupted after [\d.]+ s|still running, \d+ s(, .*)?)$")


def stage_lines(text: str) -> list[tuple[str, str, str]]:
    """(model, stage, what) of every progress line; what is the verb without its numbers."""
    found = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            found.append((m["name"], m["stage"], re.sub(r"[\d.]+ s.*", "", m["what"]).strip(" ,")))
    return found


def wait_for(stream: io.StringIO, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in stream.getvalue():
        assert time.monotonic() < deadline, f"{text!r} never appeared in {stream.getvalue()!r}"
        time.sleep(0.02)


def test_plain_mode_prints_started_heartbeat_and_done() -> None:
    out = io.StringIO()  # not a terminal
    progress = Progress(stream=out)
    assert progress.live is False
    progress.heartbeat_s = 0.2
    with progress:
        with progress.stage("gpt2-25m", "train", total=40, unit="steps") as stage:
            stage.advance(12)
            stage.update(detail="loss 3.2100")
            wait_for(out, "still running")
        progress.line("gpt2-25m: a message")
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert stage_lines(text)[0] == ("gpt2-25m", "train", "started")
    assert stage_lines(text)[-1] == ("gpt2-25m", "train", "done in")
    beats = [line for line in lines if "still running" in line]
    assert beats and all(re.search(r"still running, \d+ s, 12/40 steps, loss 3\.2100$", b) for b in beats)
    assert re.match(r"^\d\d:\d\d:\d\d gpt2-25m: train done in \d+\.\d s$", lines[-2])
    assert re.match(r"^\d\d:\d\d:\d\d gpt2-25m: a message$", lines[-1])
    now = time.localtime()
    hh, mm = (int(x) for x in lines[0][:5].split(":"))
    assert abs((now.tm_hour * 60 + now.tm_min) - (hh * 60 + mm)) <= 1  # local wall-clock time


def test_plain_mode_heartbeat_is_every_15_s_by_default() -> None:
    assert Progress.heartbeat_s == 15.0
    out = io.StringIO()
    with Progress(stream=out) as progress, progress.stage("tiny-gpt2", "build"):
        time.sleep(0.3)
    assert "still running" not in out.getvalue()
    assert [w for _, _, w in stage_lines(out.getvalue())] == ["started", "done in"]


def test_failed_and_interrupted_stages_say_so() -> None:
    out = io.StringIO()
    with Progress(stream=out) as progress:
        with pytest.raises(ValueError), progress.stage("m", "compile"):
            raise ValueError("boom")
        with pytest.raises(KeyboardInterrupt), progress.stage("m", "upload"):
            raise KeyboardInterrupt
        open_stage = progress.stage("m", "left open")  # closed by the Progress
    assert open_stage.closed
    assert stage_lines(out.getvalue()) == [
        ("m", "compile", "started"), ("m", "compile", "failed after"),
        ("m", "upload", "started"), ("m", "upload", "interrupted after"),
        ("m", "left open", "started"), ("m", "left open", "done in"),
    ]


def test_forced_live_mode_draws_the_model_and_stage() -> None:
    out = io.StringIO()
    with Progress(stream=out, live=True) as progress:
        with progress.stage("gpt2-50m", "compile", total=10, unit="steps") as stage:
            stage.advance(3)
            stage.update(detail="graph 2 of 4")
            time.sleep(0.6)  # rich redraws 4 times a second
        progress.line("a [bracketed] plain message")
    text = out.getvalue()
    assert "\x1b[" in text  # drawn for a terminal
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert "gpt2-50m" in plain and "compile" in plain and "3/10 steps" in plain and "graph 2 of 4" in plain
    assert re.search(r"0:00:0\d", plain)  # elapsed time
    assert re.search(r"✓ gpt2-50m: compile done in \d+\.\d s", plain)
    assert "a [bracketed] plain message" in plain  # user text is not rich markup


def test_live_is_chosen_by_the_stream() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert Progress(stream=Terminal()).live is True
    assert Progress(stream=io.StringIO()).live is False


def test_counts() -> None:
    assert format_count(12, 40, "steps") == "12/40 steps"
    assert format_count(0, None, "files") == ""
    assert format_count(3, None, "files") == "3 files"
    assert format_count(12_300_000, 384_363_352, "B") == "12.3 MB/384.4 MB"
    assert format_count(999, None, "B") == "999 B"


def test_build_command_prints_plain_stage_lines(tmp_path: Path) -> None:
    done = run_hubtool("build", "tiny-gpt2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr + done.stdout and "\r" not in done.stderr
    assert stage_lines(done.stderr) == [("tiny-gpt2", "build", "started"), ("tiny-gpt2", "build", "done in")]
    assert done.stdout.startswith("tiny-gpt2: built in ")
    again = run_hubtool("build", "tiny-gpt2", "--out", str(tmp_path))
    assert again.stderr == "" and "up to date" in again.stdout  # nothing to do, no stage


def test_train_command_shows_steps(tiny_copy: Path) -> None:
    result = CliRunner().invoke(cli, ["train", str(tiny_copy), "--steps", "4", "--seq-len", "16", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stderr
    assert stage_lines(result.stderr) == [("tiny-gpt2", "train", "started"), ("tiny-gpt2", "train", "done in")]
    steps = re.findall(r"tiny-gpt2: step (\d)/4  loss \d+\.\d{4}", result.stderr)
    assert steps == ["1", "2", "3", "4"]


def test_push_command_shows_its_stage_and_no_hub_bars(models: Path, hub) -> None:
    """A real process: huggingface_hub's own tqdm upload bars (seen here before) are switched off."""
    args = ["push", "tiny-gpt2", "--out", str(models), "--repo-id", "org/tiny", "--force", "--endpoint", hub.url]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "\r" not in done.stderr and "model.safetensors" not in done.stderr
    assert stage_lines(done.stderr) == [("tiny-gpt2", "push", "started"), ("tiny-gpt2", "push", "done in")]
    assert "verified 10 remote files" in done.stdout
    # nothing to upload the second time: still one stage, and the per-file lines
    again = run_cli(*args)
    assert "is up to date" in again.stdout and "  unchanged   model.safetensors" in again.stdout
    assert [w for _, _, w in stage_lines(again.stderr)] == ["started", "done in"]


@pytest.mark.slow
def test_verify_and_bench_show_a_stage_per_worker(tiny_copy: Path, tmp_path: Path, verify_cache: Path) -> None:
    """Not a terminal: one started/done pair per backend process, no control codes."""
    env = {"HUBTOOL_CACHE": str(verify_cache)}
    verified = run_hubtool("verify", "tiny-gpt2", "--out", str(tiny_copy.parent), "--backend", "eager,sdpa", env=env)
    assert verified.returncode == 0, verified.stderr
    assert "\x1b" not in verified.stderr and "\r" not in verified.stderr
    assert stage_lines(verified.stderr) == [
        ("tiny-gpt2", "verify reference (eager, float64, probe)", "started"),
        ("tiny-gpt2", "verify reference (eager, float64, probe)", "done in"),
        ("tiny-gpt2", "verify sdpa", "started"), ("tiny-gpt2", "verify sdpa", "done in")]
    root = tiny_copy.parent
    benched = run_hubtool("bench", "tiny-gpt2", "--backend", "eager", "--quick", "--out", str(root), env=env)
    assert benched.returncode == 0, benched.stderr
    assert "\x1b" not in benched.stderr
    assert stage_lines(benched.stderr) == [("tiny-gpt2", "bench eager batch 1, process 1/1 [1/1]", "started"),
                                           ("tiny-gpt2", "bench eager batch 1, process 1/1 [1/1]", "done in")]
    assert re.search(r"^\d\d:\d\d:\d\d machine: .+, copy bandwidth [\d.]+ GB/s$", benched.stderr, re.M)
