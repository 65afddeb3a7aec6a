"""The family report: does depth or width drive latency, on each machine?

Reads every model's ``benchmarks/<machine>.json`` (never re-measures), keeps only results
measured on the folder's current bytes (smoke runs and stale files are listed, not used),
and groups them by machine: a CPU and a GPU can rank the same models differently, and the
research this family comes from is about exactly that. Per machine and backend it
tabulates medians with their intervals, plots decode ms/token against depth and against
parameters, and gives Spearman's rho of decode latency with each, with n and a
permutation p-value. It also states how confounded the family's own design is: when depth
ranks follow parameter ranks, no latency data can tell the two apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hubtool.bench.harness import load_benchmarks
from hubtool.errors import ArtifactError, display_path
from hubtool.folder.hashing import folder_identity, identity_changes
from hubtool.folder.io import write_json, write_text
from hubtool.report.design import design_confounding, spearman_test
from hubtool.spec.model import ModelSpec

REPORT_DIR = "report"
PHASES = ("prefill", "decode", "e2e")


@dataclass(frozen=True)
class FamilyReport:
    data: dict[str, Any]
    paths: dict[str, Path]


def design(specs: list[ModelSpec]) -> dict[str, Any]:
    """How confounded depth and parameter count are across the family's models (``hubtool.report.design``)."""
    return design_confounding(
        {"name": s.name, "n_layer": s.config["n_layer"], "parameters": s.parameters} for s in specs).to_dict()


def collect(specs: list[ModelSpec], *, root: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(rows from current results, runs used or skipped with why, models without results)."""
    rows, runs, missing = [], [], []
    for spec in specs:
        folder = root / spec.name
        if not folder.is_dir():
            missing.append(spec.name)
            continue
        identity = folder_identity(folder)
        found = False
        for bench in load_benchmarks(folder):
            changes = identity_changes(bench.subject, identity)
            run = {"model": spec.name, "machine": bench.machine.name, "machine_id": bench.machine.id,
                   "created": bench.created, "quality": bench.quality, "busy": bench.busy,
                   "bandwidth_gbps": bench.bandwidth.get("peak_gbps"), "settings": bench.settings,
                   "used": not changes and bench.quality == "result",
                   "why_not": "measured on other bytes" if changes
                   else ("smoke run" if bench.quality == "smoke" else None)}
            runs.append(run)
            if not run["used"]:
                continue
            found = True
            for cell in bench.cells:
                row = {"model": spec.name, "parameters": spec.parameters, "n_layer": spec.config["n_layer"],
                       "n_embd": spec.config["n_embd"], "machine": bench.machine.name,
                       "machine_id": bench.machine.id, "device": bench.machine.device, "backend": cell.backend,
                       "batch_size": cell.batch_size, "status": cell.status, "reason": cell.reason,
                       "decode_vs_stream": cell.decode_vs_stream}
                for phase in PHASES:
                    stats = cell.phases.get(phase) if cell.publishable else None
                    row[phase] = None if stats is None else {"median": stats.median, "ci95": list(stats.ci95),
                                                             "n": stats.n, "processes": stats.processes}
                rows.append(row)
        if not found:
            missing.append(spec.name)
    return rows, runs, missing


RHO_DRAWS = 2000


def rho_interval(x: list[float], rows: list[dict[str, Any]], *, seed: int = 0) -> list[float] | None:
    """95% range of Spearman's rho when each model's decode median moves within its own interval.

    Each draw takes every median from a normal distribution matching its 95% interval (sigma =
    width / 3.92) and ranks again: an interval that spans 0 says the measurement noise alone
    could reverse the correlation. (The permutation p-value answers a different question: how
    often any ordering of n models correlates this strongly.)
    """
    import numpy as np

    from hubtool.report.design import spearman

    if len(rows) < 3:
        return None
    rng = np.random.default_rng(seed)
    medians = np.array([r["decode"]["median"] for r in rows])
    sigma = np.array([(r["decode"]["ci95"][1] - r["decode"]["ci95"][0]) / 3.92 for r in rows])
    draws = []
    for _ in range(RHO_DRAWS):
        value = spearman(x, list(rng.normal(medians, sigma)))
        if value is not None:
            draws.append(value)
    if not draws:
        return None
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return [float(lo), float(hi)]


def correlations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per machine, backend and batch: Spearman of decode latency with depth and with parameters."""
    out = []
    keys = sorted({(r["machine"], r["backend"], r["batch_size"]) for r in rows})
    for machine, backend, batch in keys:
        ok = [r for r in rows
              if (r["machine"], r["backend"], r["batch_size"]) == (machine, backend, batch) and r["decode"]]
        medians = [r["decode"]["median"] for r in ok]
        entry: dict[str, Any] = {"machine": machine, "backend": backend, "batch_size": batch,
                                 "models": [r["model"] for r in ok]}
        for key in ("n_layer", "parameters"):
            x = [r[key] for r in ok]
            entry[key] = {**spearman_test(x, medians), "interval": rho_interval(x, ok)}
        out.append(entry)
    return out


def _plot(rows: list[dict[str, Any]], machine: str, x_key: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    mine = [r for r in rows if r["machine"] == machine and r["decode"] and r["batch_size"] == 1]
    backends = sorted({r["backend"] for r in mine})
    for i, backend in enumerate(backends):
        ok = sorted((r for r in mine if r["backend"] == backend), key=lambda r: r[x_key])
        nudge = 1 + 0.03 * (i - (len(backends) - 1) / 2)  # backends share x values: nudge them apart
        xs = [r[x_key] * nudge for r in ok]
        ys = [r["decode"]["median"] for r in ok]
        err = [[y - r["decode"]["ci95"][0] for y, r in zip(ys, ok, strict=True)],
               [r["decode"]["ci95"][1] - y for y, r in zip(ys, ok, strict=True)]]
        # Models can share a depth: a line through them would suggest a trend that is not there.
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=backend,
                    linestyle="-" if x_key == "parameters" else "none")
        if i == 0:
            for x, y, r in zip(xs, ys, ok, strict=True):
                ax.annotate(r["model"], (x, y), textcoords="offset points", xytext=(-10, 8), fontsize=7, ha="right")
    if x_key == "parameters":
        ax.set_xscale("log")
    ax.set_xlabel("parameters" if x_key == "parameters" else "n_layer (depth)")
    ax.set_ylabel("decode latency, ms/token (median, 95% CI)")
    ax.set_title(f"{machine}: decode latency vs {'parameters' if x_key == 'parameters' else 'depth'}", fontsize=9)
    if backends:
        ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, path)


def _fmt(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "-"
    lo, hi = stats["ci95"]
    return f"{stats['median']:.3g} [{lo:.3g}, {hi:.3g}]"


def _rho(test: dict[str, Any]) -> str:
    if test["rho"] is None:
        return "-"
    interval = f", [{test['interval'][0]:+.2f}, {test['interval'][1]:+.2f}]" if test.get("interval") else ""
    return f"{test['rho']:+.2f} (n {test['n']}, p {test['p_value']:.2f}{interval})"


def render_markdown(data: dict[str, Any]) -> str:
    d = data["design"]
    lines = [
        "# Family latency report",
        "",
        f"Generated {data['created']} from each model's `benchmarks/<machine>.json`, results measured on the "
        "models' current files only. Medians with 95% intervals that include the variance between worker "
        "processes.",
        "",
        "## The family's design",
        "",
        d["sentence"],
        "",
    ]
    for machine in data["machines"]:
        lines += [f"## {machine}", "",
                  "| model | parameters | n_layer | n_embd | backend | batch | status | prefill ms | decode ms/token | "
                  "e2e ms | decode vs memory limit |",
                  "|---|---:|---:|---:|---|---:|---|---:|---:|---:|---:|"]
        for r in (r for r in data["rows"] if r["machine"] == machine):
            limit = f"{r['decode_vs_stream']:.1f}x" if r["decode_vs_stream"] else "-"
            lines.append(f"| {r['model']} | {r['parameters']:,} | {r['n_layer']} | {r['n_embd']} | {r['backend']} | "
                         f"{r['batch_size']} | {r['status']} | {_fmt(r['prefill'])} | {_fmt(r['decode'])} | "
                         f"{_fmt(r['e2e'])} | {limit} |")
        lines += ["", "Spearman's rho of decode latency (n, permutation p-value, and the 95% range of rho when "
                  "each median moves within its own interval):", "",
                  "| backend | batch | models | with n_layer | with parameters |", "|---|---:|---:|---|---|"]
        for c in (c for c in data["spearman"] if c["machine"] == machine):
            lines.append(f"| {c['backend']} | {c['batch_size']} | {len(c['models'])} | {_rho(c['n_layer'])} | "
                         f"{_rho(c['parameters'])} |")
        slug = data["plots"][machine]
        lines += ["", f"![decode ms/token vs depth]({slug['n_layer']})",
                  f"![decode ms/token vs parameters]({slug['parameters']})", ""]
    if data["missing"]:
        lines += [f"No current result for: {', '.join(data['missing'])} (run `hubtool bench`).", ""]
    skipped = [r for r in data["runs"] if not r["used"]]
    if skipped:
        lines += ["Not used:", ""] + [f"- {r['model']} on {r['machine']} ({r['created']}): {r['why_not']}"
                                      for r in skipped]
    return "\n".join(lines) + "\n"


def _slug(machine_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in machine_id)


def family_report(specs: list[ModelSpec], *, root: Path, out_dir: Path | None = None) -> FamilyReport:
    """Per-machine tables, Spearman tests and decode plots for ``specs``: Markdown, JSON and PNG."""
    rows, runs, missing = collect(specs, root=root)
    if not rows:
        raise ArtifactError(
            f"no current benchmark result under {display_path(root)} for {', '.join(s.name for s in specs)}; "
            "run 'hubtool bench' (smoke runs from --quick are not results)"
        )
    out_dir = out_dir or root / REPORT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    machines = sorted({r["machine"] for r in rows})
    ids = {r["machine"]: r["machine_id"] for r in rows}
    plots = {m: {key: f"decode_vs_{'layers' if key == 'n_layer' else 'params'}-{_slug(ids[m])}.png"
                 for key in ("n_layer", "parameters")} for m in machines}
    data = {
        "schema": "hubtool.report/2",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "design": design(specs), "machines": machines, "rows": rows, "spearman": correlations(rows),
        "missing": missing, "runs": runs, "plots": plots,
    }
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    for machine in machines:
        for key, name in plots[machine].items():
            paths[f"{key}:{machine}"] = out_dir / name
            _plot(rows, machine, key, out_dir / name)
    write_json(paths["json"], data)
    write_text(paths["markdown"], render_markdown(data))
    return FamilyReport(data=data, paths=paths)
