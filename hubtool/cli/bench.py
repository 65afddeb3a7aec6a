"""``hubtool bench``: phase-separated latency per backend -> NAME/benchmarks/<machine>.json."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from hubtool.cli.options import CACHE_HELP, all_option, echo_json, json_option, names_argument, out_option
from hubtool.errors import UsageError, display_path


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--batch-size: '{text}' is not a comma-separated list of whole numbers") from None
    if not sizes:
        raise UsageError("--batch-size: give at least one size")
    return sizes


class _BenchDisplay:
    """bench's progress events as stages: the machine probe, verify's backends, each worker process."""

    def __init__(self, display: Any) -> None:
        self.display = display
        self.open: dict[Any, Any] = {}

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "machine":
            bw = data["bandwidth"]["peak_gbps"]
            self.display.line(f"machine: {data['machine'].name} ({data['machine'].id}), copy bandwidth {bw:.1f} GB/s")
        elif event == "verify":
            verdict = data["verdict"]
            reason = f"  {verdict.reason}" if verdict.reason else ""
            self.display.line(f"{data['model']}: parity {data['backend']}: {verdict.status}{reason}")
        elif event == "start":
            key = (data["model"], data["backend"], data["batch"], data["round"])
            self.open[key] = self.display.stage(
                data["model"], f"bench {data['backend']} batch {data['batch']}, "
                f"process {data['round']}/{data['rounds']} [{data['index']}/{data['total']}]")
            _follow(self.open[key], data["progress_path"])
        elif event == "done":
            run = data["run"]
            stage = self.open.pop((data["model"], data["backend"], data["batch"], data["round"]), None)
            if stage is not None:
                stage.close("done" if run.status in ("ok", "unsupported") else "failed")
            decode = run.phases.get("decode")
            detail = (f"decode {sum(decode.samples) / len(decode.samples):.3f} ms/token over {len(decode.samples)}"
                      if run.status == "ok" and decode and decode.samples else (run.reason or ""))
            busy = "  (busy machine)" if run.busy else ""
            self.display.line(f"{data['model']} {data['backend']} batch {data['batch']} process {data['round']}: "
                              f"{run.status} in {run.seconds:.1f}s  {detail}{busy}")


def _follow(stage: Any, progress_path: Path) -> None:
    """Show the phase the worker is in (it writes it to its progress file) as the stage's detail."""
    import json
    import threading

    def watch() -> None:
        last = None
        while not stage.closed:
            try:
                running = json.loads(progress_path.read_text()).get("running")
            except (OSError, ValueError):
                running = None
            if running and running != last:
                stage.update(detail="loading (compiling or starting the engine)" if running == "loading" else running)
                last = running
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True, name="hubtool-bench-follow").start()


@click.command("bench", epilog=CACHE_HELP)
@names_argument
@all_option
@click.option("--backend", "backend_list", default=None, metavar="LIST",
              help="Comma-separated backends (default: every backend bench runs on the device; "
                   "--quick: the quick ones).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--prompt-len", type=int, default=None, help="Prompt tokens (default 32).")
@click.option("--new-tokens", type=int, default=None, help="Tokens to generate (default 64; --quick 16).")
@click.option("--batch-size", "batch_sizes", default="1", show_default=True, metavar="LIST",
              help="Batch sizes to measure, e.g. 1,8: each is a cell of its own.")
@click.option("--processes", type=int, default=None,
              help="Worker processes per cell, run interleaved with the other cells (default 3; --quick 1). "
                   "Fewer than 3 is a smoke run.")
@click.option("--warmup", type=int, default=None, help="Untimed full-length passes per phase (default 3; --quick 1).")
@click.option("--repeats", type=int, default=None,
              help="A fixed number of timed attempts per phase and process (default: the stopping rule; --quick 5).")
@click.option("--target", type=float, default=0.05, show_default=True,
              help="Stopping rule: stop once the median's 95%% interval is this narrow (relative).")
@click.option("--max-seconds", type=float, default=30.0, show_default=True,
              help="Stopping rule: time cap per phase and process.")
@click.option("--seed", type=int, default=0, show_default=True, help="Prompt tokens and cell order.")
@click.option("--threads", type=int, default=None,
              help="CPU threads per worker (default: every usable core, as verify uses).")
@click.option("--allow-graph-breaks", "graph_breaks", type=click.IntRange(min=0), default=0, show_default=True,
              help="Graph breaks a compiled backend may have and still be timed (labelled partial).")
@click.option("--quick", is_flag=True,
              help="Few short repeats, one process, no vLLM: a smoke run, never shown as a result.")
@click.option("--import", "import_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Add a benchmark JSON measured on another machine (refused unless measured on these exact files).")
@json_option
@out_option
def bench_cmd(
    names: tuple[str, ...], all_: bool, backend_list: str | None, device: str, prompt_len: int | None,
    new_tokens: int | None, batch_sizes: str, processes: int | None, warmup: int | None, repeats: int | None,
    target: float, max_seconds: float, seed: int, threads: int | None, graph_breaks: int, quick: bool,
    import_file: Path | None, as_json: bool, out: Path | None,
) -> None:
    """Benchmark built models: prefill, decode, end-to-end, time to first token and inter-token latency.

    Every backend runs in its own worker processes, several per cell, interleaved
    with the other cells in a seeded random order, and only after its parity passed
    on these exact files (verify runs first when there is no such verdict). Raw
    samples, medians with 95% intervals that include the variance between processes,
    tokens/s, peak memory, distance to the machine's memory-bandwidth limit, and
    the machine's load go to OUT/NAME/benchmarks/<machine>.json: one file per
    machine configuration, so results from other machines stay beside it.

    \b
    Examples:
      hubtool bench gpt2-25m --backend eager,compile
      hubtool bench --all --quick
      hubtool bench gpt2-50m --batch-size 1,8 --repeats 30
      hubtool bench gpt2-25m --import results/h100/gpt2-25m.json
    """
    from hubtool.backends import registry
    from hubtool.bench.harness import QUICK, BenchSettings, bench_models, default_backends, import_benchmark
    from hubtool.spec.catalog import model_dir, resolve_targets

    specs = resolve_targets(names, all_=all_)
    if import_file is not None:
        if len(specs) != 1:
            raise UsageError("--import takes exactly one model")
        path = import_benchmark(model_dir(specs[0].name, out), import_file)
        click.echo(f"{specs[0].name}: imported {display_path(import_file)} -> {display_path(path)}")
        return
    backends = registry.parse(backend_list, default=default_backends(device, quick=quick))
    base: dict[str, Any] = {**(QUICK if quick else {})}
    given = {"prompt_len": prompt_len, "new_tokens": new_tokens, "warmup": warmup, "repeats": repeats,
             "threads": threads, "processes": processes}
    settings = BenchSettings(**{
        **base, **{k: v for k, v in given.items() if v is not None}, "device": device,
        "batch_sizes": _sizes(batch_sizes), "seed": seed, "target": target, "max_seconds": max_seconds,
        "graph_breaks_allowed": graph_breaks,
    })
    from hubtool.runtime.progress import Progress

    with Progress() as display:
        written = bench_models([(spec.name, model_dir(spec.name, out)) for spec in specs], backends=backends,
                               settings=settings, progress=_BenchDisplay(display))
    if settings.quality == "smoke":
        click.echo("smoke run: too small to be a result (cards will not show it as one)", err=True)
    if as_json:
        echo_json({name: str(path) for name, path in written.items()})
    else:
        for name, path in written.items():
            click.echo(f"{name}: {display_path(path)}")
