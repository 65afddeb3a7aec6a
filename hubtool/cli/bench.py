"""``hubtool bench``: phase-separated latency per backend -> NAME/benchmark.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hubtool.bench.harness import BACKENDS, QUICK, BenchSettings, bench_models, default_backends
from hubtool.spec.catalog import artifacts_root, model_dir, resolve_targets
from hubtool.cli.options import all_option, names_argument, out_option
from hubtool.errors import UsageError, display_path


def _progress_line(index: int, total: int, name: str, backend: str, cell: dict[str, Any]) -> None:
    phases = cell["phases"]
    if cell["status"] == "ok":
        detail = "  ".join(
            f"{phase} {phases[phase]['median']:.3f} {phases[phase]['unit']}" for phase in ("prefill", "decode", "e2e")
        )
    else:
        detail = cell["reason"] or ""
    click.echo(f"[{index}/{total}] {name} {backend}: {cell['status']}  {detail}", err=True)


def _verify_line(name: str, backend: str, verdict: dict[str, Any]) -> None:
    reason = f"  {verdict['reason']}" if verdict.get("reason") else ""
    click.echo(f"{name}: parity {backend}: {verdict.get('status')}{reason}", err=True)


@click.command("bench")
@names_argument
@all_option
@click.option("--backend", "backend_list", default=None, metavar="LIST",
              help=f"Comma-separated backends out of {', '.join(BACKENDS)} (default: all that apply; "
                   "--quick: eager,sdpa,compile).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--prompt-len", type=int, default=None, help="Prompt tokens (default 32).")
@click.option("--new-tokens", type=int, default=None, help="Tokens to generate (default 64; --quick 16).")
@click.option("--batch-size", type=int, default=1, show_default=True)
@click.option("--warmup", type=int, default=None, help="Untimed full-length passes per phase (default 3; --quick 1).")
@click.option("--repeats", type=int, default=None, help="Timed samples per phase (default 30; --quick 5).")
@click.option("--seed", type=int, default=0, show_default=True, help="Prompt tokens and cell order.")
@click.option("--threads", type=int, default=None,
              help="CPU threads per worker (default: every usable core; --quick 1).")
@click.option("--quick", is_flag=True,
              help="Few short repeats on one thread, eager/sdpa/compile only: a smoke run, not a result.")
@out_option
def bench_cmd(
    names: tuple[str, ...], all_: bool, backend_list: str | None, device: str, prompt_len: int | None,
    new_tokens: int | None, batch_size: int, warmup: int | None, repeats: int | None, seed: int,
    threads: int | None, quick: bool, out: Path | None,
) -> None:
    """Benchmark built models: prefill, decode and end-to-end latency per backend.

    Every backend runs in its own process, in a seeded random order, and only after
    its parity passed (verify runs first when the folder has no fresh verdict).
    Raw samples, median with a bootstrap 95% CI, outliers, crash rates, compile time
    and decode memory-bandwidth use go to OUT/NAME/benchmark.json. vLLM is left out of
    --quick (its engine takes about a minute per model to start); name it with
    --backend to include it.

    \b
    Examples:
      hubtool bench gpt2-25m --backend eager,compile --repeats 50
      hubtool bench --all --quick
      hubtool bench --all --device cuda
    """
    specs = resolve_targets(names, all_=all_)
    backends = (
        [b.strip() for b in backend_list.split(",") if b.strip()] if backend_list
        else list(default_backends(device, quick=quick))
    )
    if not backends:
        raise UsageError("--backend: give at least one backend")
    base = {**BenchSettings().__dict__, **(QUICK if quick else {})}
    given = {"prompt_len": prompt_len, "new_tokens": new_tokens, "warmup": warmup, "repeats": repeats,
             "threads": threads}
    settings = BenchSettings(**{
        **base, **{k: v for k, v in given.items() if v is not None},
        "device": device, "batch_size": batch_size, "seed": seed,
    })
    root = artifacts_root(out)
    written = bench_models(
        [(spec.name, model_dir(spec.name, out)) for spec in specs], backends=backends, settings=settings,
        cache_dir=root / ".cache", on_cell=_progress_line, on_verify=_verify_line,
    )
    for name, path in written.items():
        click.echo(f"{name}: {display_path(path)}")
