"""The family report: does depth or width drive latency?

Reads each model's ``benchmark.json`` (never re-measures), tabulates median and 95% CI per
phase and backend beside the spec's own parameter count and shape, plots decode ms/token
against n_layer and against parameters with CI bars, and gives Spearman rank correlations
of latency with each. Only cells whose status is ok (parity passed, nothing crashed)
count; the others are listed with their status.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hubtool.bench.harness import REPORT_FILE, SCHEMA
from hubtool.bench.phases import PHASES
from hubtool.folder.io import write_json, write_text
from hubtool.errors import ArtifactError, display_path
from hubtool.spec.model import ModelSpec
from hubtool.bench.stats import spearman

REPORT_DIR = "report"
PLOTS = {"n_layer": "decode_vs_layers.png", "parameters": "decode_vs_params.png"}


@dataclass(frozen=True)
class FamilyReport:
    data: dict[str, Any]
    paths: dict[str, Path]


def _load(spec: ModelSpec, root: Path) -> dict[str, Any] | None:
    path = root / spec.name / REPORT_FILE
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{display_path(path)}: unreadable benchmark report ({exc})") from None
    if report.get("schema") != SCHEMA:
        raise ArtifactError(f"{display_path(path)}: schema {report.get('schema')!r} is not {SCHEMA}")
    return report


def collect_rows(specs: list[ModelSpec], *, root: Path) -> tuple[list[dict[str, Any]], list[str], list[dict]]:
    """One row per (model, backend); models without a report are returned by name."""
    rows, missing, runs = [], [], []
    for spec in specs:
        report = _load(spec, root)
        if report is None:
            missing.append(spec.name)
            continue
        runs.append({"model": spec.name, "created": report["created"], "device": report["device"],
                     "settings": report["settings"], "memory_bandwidth_gbps": report["memory_bandwidth_gbps"]})
        for backend, cell in sorted(report["cells"].items()):
            row = {
                "model": spec.name, "parameters": spec.parameters, "n_layer": spec.config["n_layer"],
                "n_embd": spec.config["n_embd"], "backend": backend, "device": report["device"],
                "status": cell["status"], "reason": cell.get("reason"),
            }
            for phase in PHASES:
                stats = (cell.get("phases") or {}).get(phase) if cell["status"] == "ok" else None
                row[phase] = None if stats is None else {
                    "unit": stats["unit"], "median": stats["median"], "ci95": stats["ci95"], "n": stats["n"],
                }
            rows.append(row)
    return rows, missing, runs


def correlations(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """backend -> phase -> Spearman of the median with n_layer and with parameters."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for backend in sorted({r["backend"] for r in rows}):
        for phase in PHASES:
            ok = [r for r in rows if r["backend"] == backend and r[phase]]
            medians = [r[phase]["median"] for r in ok]
            out.setdefault(backend, {})[phase] = {
                "n_models": len(ok),
                "n_layer": spearman([r["n_layer"] for r in ok], medians),
                "parameters": spearman([r["parameters"] for r in ok], medians),
            }
    return out


def _plot(rows: list[dict[str, Any]], x_key: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    backends = sorted({r["backend"] for r in rows if r["decode"]})
    for i, backend in enumerate(backends):
        ok = sorted((r for r in rows if r["backend"] == backend and r["decode"]), key=lambda r: r[x_key])
        # Backends share x values (and models can share a depth): nudge them apart slightly.
        nudge = 1 + 0.03 * (i - (len(backends) - 1) / 2)
        xs = [r[x_key] * nudge for r in ok]
        ys = [r["decode"]["median"] for r in ok]
        err = [[y - r["decode"]["ci95"][0] for y, r in zip(ys, ok)], [r["decode"]["ci95"][1] - y for y, r in zip(ys, ok)]]
        # Models can share a depth: a line through them would suggest a trend that is not there.
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=backend,
                    linestyle="-" if x_key == "parameters" else "none")
        if i == 0:  # one label per model is enough
            for x, y, r in zip(xs, ys, ok):
                ax.annotate(r["model"], (x, y), textcoords="offset points", xytext=(-10, 8), fontsize=7,
                            ha="right")
    if x_key == "parameters":
        ax.set_xscale("log")
    ax.set_xlabel("parameters" if x_key == "parameters" else "n_layer (depth)")
    ax.set_ylabel("decode latency, ms/token (median, 95% CI)")
    ax.set_title(f"Decode latency vs {'parameters' if x_key == 'parameters' else 'depth'}")
    if backends:
        ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def _fmt(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "-"
    lo, hi = stats["ci95"]
    return f"{stats['median']:.3f} [{lo:.3f}, {hi:.3f}]"


def _rho(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Family latency report",
        "",
        f"Generated {data['created']} from each model's `{REPORT_FILE}`. Medians with bootstrap 95% confidence "
        "intervals; only cells with status ok (parity passed, no crash) have numbers.",
        "",
        "| model | parameters | n_layer | n_embd | backend | status | prefill ms | decode ms/token | e2e ms |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['model']} | {r['parameters']:,} | {r['n_layer']} | {r['n_embd']} | {r['backend']} | {r['status']} | "
            f"{_fmt(r['prefill'])} | {_fmt(r['decode'])} | {_fmt(r['e2e'])} |"
        )
    lines += ["", "## Spearman rank correlation of latency", "",
              "| backend | phase | models | with n_layer | with parameters |", "|---|---|---:|---:|---:|"]
    for backend, phases in data["spearman"].items():
        for phase, c in phases.items():
            lines.append(f"| {backend} | {phase} | {c['n_models']} | {_rho(c['n_layer'])} | {_rho(c['parameters'])} |")
    lines += ["", "## Decode latency", ""]
    lines += [f"![decode ms/token vs {key}]({name})" for key, name in PLOTS.items()]
    if data["missing"]:
        lines += ["", f"No benchmark report yet for: {', '.join(data['missing'])} (run `hubtool bench`)."]
    runs = data["runs"]
    devices = sorted({r["device"] for r in runs})
    lines += ["", "## Runs", "", f"Devices: {', '.join(devices)}.", ""]
    for run in runs:
        s = run["settings"]
        lines.append(
            f"- {run['model']}: {run['created']}, prompt {s['prompt_len']}, {s['new_tokens']} new tokens, "
            f"batch {s['batch_size']}, {s['repeats']} repeats, {s['threads']} threads, "
            f"memory bandwidth {run['memory_bandwidth_gbps']:.1f} GB/s"
        )
    return "\n".join(lines) + "\n"


def family_report(specs: list[ModelSpec], *, root: Path, out_dir: Path | None = None) -> FamilyReport:
    """Table, Spearman correlations and decode plots for ``specs``: Markdown, JSON and PNG."""
    rows, missing, runs = collect_rows(specs, root=root)
    if not rows:
        raise ArtifactError(
            f"no {REPORT_FILE} under {display_path(root)} for {', '.join(s.name for s in specs)}; run 'hubtool bench' first"
        )
    out_dir = out_dir or root / REPORT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "schema": "hubtool.report/1",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "rows": rows, "spearman": correlations(rows), "missing": missing, "runs": runs,
        "plots": dict(PLOTS),
    }
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    for key, name in PLOTS.items():
        paths[key] = out_dir / name
        _plot(rows, key, paths[key])
    write_json(paths["json"], data)
    write_text(paths["markdown"], render_markdown(data))
    return FamilyReport(data=data, paths=paths)
