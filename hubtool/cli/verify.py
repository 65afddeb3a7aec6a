"""``hubtool verify``: file checks, output parity across backends, and the card audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hubtool.card.audit import contradiction_lines
from hubtool.cli.options import (
    CACHE_HELP,
    all_option,
    echo_json,
    format_table,
    json_option,
    out_option,
    output_option,
)
from hubtool.errors import UsageError, display_path

_AUDIT_WORDS = {
    "passed": "audit passed: {checked} claims checked, none contradicted",
    "failed": "audit failed: {contradictions} of {checked} checked claims contradict the files",
    "no-claims": "audit: README.md makes no claim that can be checked",
    "no-card": "audit: no README.md to audit",
}
EXIT = {"passed": 0, "failed": 1, "crashed": 3}

COLUMNS = [
    ("target", "target"),
    ("backend", "backend"),
    ("status", "status"),
    ("max_diff", "max |diff|"),
    ("rmse_ratio", "rmse/eager"),
    ("probe_ratio", "probe rmse/eager"),
    ("top1", "top-1"),
    ("flips", "flips"),
    ("seconds", "seconds"),
    ("reason", "reason"),
]


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def summary_row(target: str, backend: str, verdict: Any) -> dict[str, Any]:
    """One table row; vLLM's errors are on log-probabilities, the others' on logits."""
    groups = verdict.metrics.get("groups", {})
    main = groups.get("logits") or groups.get("prompt_logprobs") or {}
    probe = groups.get("probe") or groups.get("probe_logprobs") or {}
    return {
        "target": target,
        "backend": backend,
        "status": verdict.status,
        "max_diff": _num(main.get("max_abs_diff"), ".2e"),
        "rmse_ratio": _num(main.get("rmse_ratio"), ".2f"),
        "probe_ratio": _num(probe.get("rmse_ratio"), ".2f"),
        "top1": _num(verdict.metrics.get("top1_agreement"), ".3f"),
        "flips": _num(verdict.metrics.get("greedy_flips"), "d"),
        "seconds": f"{verdict.seconds:.1f}",
        "reason": (verdict.reason or "")[:100],
    }


def _source_line(report: Any) -> str | None:
    src = report.source
    if src.kind != "hub":
        return None
    if src.hub_reached:
        return f"{src.repo_id}: commit {src.commit} from {src.endpoint}"
    return f"{src.repo_id}: cached copy at commit {src.commit}, hub not contacted (offline)"


@click.command("verify", epilog=CACHE_HELP)
@click.argument("targets", nargs=-1, metavar="TARGET...")
@all_option
@click.option("--backend", "backends", default=None, metavar="LIST",
              help="Comma-separated backends (default: every backend that verify runs; see `hubtool list --backends`).")
@click.option("--new-tokens", type=click.IntRange(min=1), default=8, show_default=True,
              help="Greedy tokens generated per prompt and compared.")
@click.option("--endpoint", default=None, metavar="URL",
              help="Hub endpoint for ORG/NAME targets (default: HF_ENDPOINT).")
@click.option("--offline", is_flag=True, default=None,
              help="Verify a repo's cached copy without contacting the hub (also: HF_HUB_OFFLINE=1).")
@click.option("--allow-graph-breaks", "graph_breaks", type=click.IntRange(min=0), default=0, show_default=True,
              help="Graph breaks a compiled backend may have and still pass (it is then 'partial').")
@click.option("--allow-pickle", is_flag=True, help="Load .bin/.pt/.pkl/.pth weights (they can run code).")
@click.option("--claims-only", is_flag=True,
              help="Only audit the card against config.json and the safetensors headers (range reads); "
                   "no weights are downloaded or run.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Targets verified at once. One verification keeps about 2 cores busy (the reference's "
                   "threads, Inductor's parallel kernel builds), so this pays where there are more: on 2 cores "
                   "--jobs 2 was no faster. Reports do not depend on it.")
@json_option
@output_option
@out_option
def verify_cmd(targets: tuple[str, ...], all_: bool, backends: str | None, new_tokens: int, endpoint: str | None,
               offline: bool | None, graph_breaks: int, allow_pickle: bool, claims_only: bool, jobs: int,
               as_json: bool, output: Path | None, out: Path | None) -> None:
    """Check a model's files and compare its outputs across backends.

    TARGET is a spec name (its built folder), a local model folder, or a Hub
    repo id ORG/NAME[@REV]. Every file must match its provenance, the weights must
    be well-formed, tied as declared and (for an untrained build) equal to a fresh
    initialisation from the spec's seed; the tokenizer must agree with the config.
    Eager float32 is the output reference, judged against float64; SDPA,
    torch.compile (Inductor) and vLLM each run in their own process on the model
    and on a sharp-attention probe, and must stay within a small multiple of eager's
    own float32 error. The folder's README.md is then audited against the files and
    these results. The report, bound to the sha256 of the files it checked, goes to
    the folder's verification.json (pulled repos: OUT/pulled/ORG--NAME/).

    \b
    Examples:
      hubtool verify gpt2-25m
      hubtool verify tiny-gpt2 --backend eager,compile --new-tokens 16
      hubtool verify --all --jobs 2
      hubtool verify Crusadersk/gpt2-25m --endpoint http://127.0.0.1:8000
      hubtool verify Crusadersk/gpt2-100m --claims-only
    """
    from hubtool.spec.catalog import spec_names
    from hubtool.verify.run import verify_targets

    if all_ and targets:
        raise UsageError("give targets or --all, not both")
    names = list(spec_names()) if all_ else list(targets)
    if not names:
        raise UsageError("give at least one TARGET, or --all")
    if output and len(names) > 1:
        raise UsageError("--output takes a single TARGET")
    if claims_only:
        _claims_only(names, endpoint=endpoint, output=output, out=out, as_json=as_json)
        return

    from hubtool.runtime.progress import Progress

    rows: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    worst = 0
    with Progress() as display:
        for target, report, path in verify_targets(
                names, jobs=jobs, progress_for=lambda target: _stages(display, target), backends=backends,
                new_tokens=new_tokens, endpoint=endpoint, offline=offline, allow_pickle=allow_pickle, output=output,
                out=out, graph_breaks_allowed=graph_breaks):
            worst = max(worst, _report_lines(target, report, path, rows))
            reports.append(report.to_dict())
    if as_json:
        echo_json(reports[0] if len(reports) == 1 else reports)
    else:
        click.echo(format_table(rows, COLUMNS))
    if worst:
        raise click.exceptions.Exit(worst)


def _stages(display: Any, target: str):
    """verify's progress events as one stage per backend (the reference run is eager's)."""
    open_stages: dict[str, Any] = {}

    def progress(event: str, backend: str, data: Any) -> None:
        if event == "fetch":  # a repo id's download, before any backend runs
            if backend not in open_stages:
                open_stages[backend] = display.stage(target, "fetch files", unit="B")
            open_stages[backend].update(done=data["done"], total=data["total"])
        elif event == "fetched":
            open_stages.pop(backend).close("done")
        elif event == "start":
            what = "reference (eager, float64, probe)" if backend == "eager" else backend
            open_stages[backend] = display.stage(target, f"verify {what}")
        elif event == "done":
            stage = open_stages.pop(backend, None)
            row = summary_row(target, backend, data)
            if stage is not None:
                stage.close("done" if data.status in ("passed", "partial", "unsupported", "unavailable") else "failed")
            reason = f"  {row['reason']}" if row["reason"] else ""
            display.line(f"{target}: {backend:<8} {row['status']:<11} {row['seconds']:>6}s  "
                         f"max|diff| {row['max_diff']}{reason}")

    return progress


def _report_lines(target: str, report: Any, path: Path, rows: list[dict[str, Any]]) -> int:
    """What a reader needs after the run (stderr), the table rows, and the exit code."""
    source = _source_line(report)
    if source:
        click.echo(f"{target}: {source}", err=True)
    for check in report.checks:
        if check.status == "failed":
            click.echo(f"{target}: files: {check.name}: {check.detail}", err=True)
    for note in report.unverified:
        click.echo(f"{target}: unverified: {note}", err=True)
    for item in report.coverage:
        if not item.visible:
            click.echo(f"{target}: blind spot: {item.bug_class}: {item.how}", err=True)
    audit = report.card_audit or {"status": "no-card"}
    for line in contradiction_lines(audit):
        click.echo(f"{target}: card: {line}", err=True)
    click.echo(f"{target}: card {_AUDIT_WORDS[audit['status']].format(**audit)}", err=True)
    for name, verdict in report.backends.items():
        if verdict.status == "unavailable" and name == "vllm":
            from hubtool.backends.vllm import INSTALL_HINT

            click.echo(f"{target}: vllm is not installed here ({INSTALL_HINT})", err=True)
    rows.extend(summary_row(target, b, v) for b, v in report.backends.items())
    click.echo(f"{target}: files {report.files_status}, overall {report.status} -> {display_path(path)}",
               err=True)
    return EXIT[report.status]


# -- --claims-only: the card against config.json and the weight headers; nothing downloaded or run --
def _claims_only(names: list[str], *, endpoint: str | None, output: Path | None, out: Path | None,
                 as_json: bool) -> None:
    from hubtool.verify.claims import check_claims

    failed, reports = False, []
    for target in names:
        report = check_claims(target, endpoint=endpoint, out_json=output, out=out)
        reports.append(report)
        where = f"{report['repo']}@{report['commit'][:12]}" if report["repo"] else target
        audit = report["claims"]
        for line in contradiction_lines(audit):
            click.echo(f"{where}: card: {line}", err=True)
        for problem in report["header_problems"]:
            click.echo(f"{where}: header: {problem}", err=True)
        click.echo(f"{where}: card {_AUDIT_WORDS[audit['status']].format(**audit)}; "
                   f"{len(report['files_read'])} files read, no weights downloaded ({report['seconds']:.1f}s) "
                   f"-> {display_path(report['report_path'])}", err=as_json)
        failed |= report["status"] == "failed"
    if as_json:
        echo_json(reports[0] if len(reports) == 1 else reports)
    if failed:
        raise click.exceptions.Exit(1)
