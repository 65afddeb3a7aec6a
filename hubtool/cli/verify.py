"""``hubtool verify``: weight checks and output parity across backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hubtool.card.audit import contradiction_lines
from hubtool.backends import BACKENDS
from hubtool.spec.catalog import spec_names
from hubtool.cli.options import all_option, format_table, out_option
from hubtool.errors import UsageError, display_path
from hubtool.verify.run import DEFAULT_NEW_TOKENS, verify_target

_AUDIT_WORDS = {
    "passed": "audit passed: {checked} claims checked, none contradicted",
    "failed": "audit failed: {contradictions} of {checked} checked claims contradict the files",
    "no-claims": "audit: README.md makes no claim that can be checked",
    "no-card": "audit: no README.md to audit",
}

COLUMNS = [
    ("target", "target"),
    ("backend", "backend"),
    ("status", "status"),
    ("max_diff", "max |diff|"),
    ("rmse_ratio", "rmse/eager"),
    ("top1", "top-1"),
    ("flips", "flips"),
    ("seconds", "seconds"),
    ("reason", "reason"),
]


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def summary_row(target: str, backend: str, cell: dict[str, Any]) -> dict[str, Any]:
    """One table row; vLLM's numbers are on log-probabilities, the others' on logits."""
    m = cell["metrics"]
    prefix = "prompt_logprob_" if backend == "vllm" else ""
    return {
        "target": target,
        "backend": backend,
        "status": cell["status"],
        "max_diff": _num(m.get(f"{prefix}max_abs_diff"), ".2e"),
        "rmse_ratio": _num(m.get(f"{prefix}rmse_ratio"), ".3f"),
        "top1": _num(m.get("top1_agreement"), ".3f"),
        "flips": _num(m.get("greedy_flips"), "d"),
        "seconds": f"{cell['seconds']:.1f}",
        "reason": (cell["reason"] or "")[:100],
    }


@click.command("verify")
@click.argument("targets", nargs=-1, metavar="TARGET...")
@all_option
@click.option("--backend", "backends", default=",".join(BACKENDS), show_default=True,
              help="Comma-separated backends to run.")
@click.option("--new-tokens", type=click.IntRange(min=1), default=DEFAULT_NEW_TOKENS, show_default=True,
              help="Greedy tokens generated per prompt and compared.")
@click.option("--endpoint", default=None, metavar="URL", help="Hub endpoint for ORG/NAME targets.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report here instead of TARGET/verification.json (one TARGET only).")
@click.option("--allow-pickle", is_flag=True, help="Load .bin/.pt/.pkl/.pth weights (they can run code).")
@click.option("--claims-only", is_flag=True,
              help="Only audit the card against config.json and the safetensors headers (range reads); "
                   "no weights are downloaded or run.")
@out_option
def verify_cmd(targets: tuple[str, ...], all_: bool, backends: str, new_tokens: int, endpoint: str | None,
               json_path: Path | None, allow_pickle: bool, claims_only: bool, out: Path | None) -> None:
    """Check a model's weights and compare its outputs across backends.

    TARGET is a spec name (its built folder), a local model folder, or a Hub
    repo id ORG/NAME[@REV]. Weights must be bit-identical to the build and
    tied as declared; eager float32 is the output reference, judged against
    float64; sdpa, torch.compile (Inductor) and vLLM each run in their own
    process and are compared with it. The folder's README.md is then audited:
    each claim it makes (parameters, shape, size, precision, backend support,
    trained or not) is checked against the files and these results. Exit 1
    when any check fails, a backend crashes or the card contradicts the files;
    unsupported or unavailable backends do not fail.

    \b
    Examples:
      hubtool verify gpt2-25m
      hubtool verify tiny-gpt2 --backend eager,compile --new-tokens 16
      hubtool verify Crusadersk/gpt2-25m --endpoint http://127.0.0.1:8080
      hubtool verify Crusadersk/gpt2-100m --claims-only
    """
    if all_ and targets:
        raise UsageError("give targets or --all, not both")
    names = list(spec_names()) if all_ else list(targets)
    if not names:
        raise UsageError("give at least one TARGET, or --all")
    if json_path and len(names) > 1:
        raise UsageError("--json takes a single TARGET")
    if claims_only:
        return _claims_only(names, endpoint=endpoint, json_path=json_path, out=out)

    rows, failed = [], False
    for target in names:
        def progress(event: str, backend: str, cell: dict | None, target: str = target) -> None:
            if event == "done":
                row = summary_row(target, backend, cell)
                reason = f"  {row['reason']}" if row["reason"] else ""
                click.echo(f"{target}: {backend:<8} {row['status']:<11} {row['seconds']:>6}s  "
                           f"max|diff| {row['max_diff']}{reason}", err=True)

        report = verify_target(target, backends=backends, new_tokens=new_tokens, endpoint=endpoint,
                               allow_pickle=allow_pickle, out_json=json_path, out=out, progress=progress)
        weights = report["weights"]
        if weights["status"] != "passed":
            for check in weights["checks"]:
                if check["status"] == "failed":
                    click.echo(f"{target}: weights: {check['name']}: {check['detail']}", err=True)
        audit = report["card_audit"]
        for line in contradiction_lines(audit):
            click.echo(f"{target}: card: {line}", err=True)
        click.echo(f"{target}: card {_AUDIT_WORDS[audit['status']].format(**audit)}", err=True)
        rows.extend(summary_row(target, b, c) for b, c in report["backends"].items())
        failed |= report["status"] != "passed"
        click.echo(f"{target}: weights {weights['status']}, overall {report['status']} "
                   f"-> {display_path(report['report_path'])}", err=True)
    click.echo(format_table(rows, COLUMNS))
    if failed:
        raise click.exceptions.Exit(1)


# -- --claims-only: the card against config.json and the weight headers; nothing downloaded or run --
def _claims_only(names: list[str], *, endpoint: str | None, json_path: Path | None, out: Path | None) -> None:
    from hubtool.verify.claims import check_claims

    failed = False
    for target in names:
        report = check_claims(target, endpoint=endpoint, out_json=json_path, out=out)
        where = f"{report['repo']}@{report['commit'][:12]}" if report["repo"] else target
        audit = report["claims"]
        for line in contradiction_lines(audit):
            click.echo(f"{where}: card: {line}", err=True)
        for problem in report["header_problems"]:
            click.echo(f"{where}: header: {problem}", err=True)
        click.echo(f"{where}: card {_AUDIT_WORDS[audit['status']].format(**audit)}; "
                   f"{len(report['files_read'])} files read, no weights downloaded ({report['seconds']:.1f}s) "
                   f"-> {display_path(report['report_path'])}")
        failed |= report["status"] == "failed"
    if failed:
        raise click.exceptions.Exit(1)
