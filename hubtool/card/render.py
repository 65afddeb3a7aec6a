"""Model cards rendered only from measurements.

``hubtool.card.measure`` gathers every number a card shows from evidence about the
folder's exact bytes; the record is written beside the card as measurements.json, and the
card is a pure function of that record and the template, so anyone holding both can
re-render it. The template renders in a sandbox with StrictUndefined: a missing value is
an error naming it, never an empty cell.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubtool.card.measure import card_measurements, stale_warnings
from hubtool.errors import ArtifactError, CardError, TemplateError, display_path
from hubtool.evidence.card import CardMeasurements
from hubtool.folder.hashing import sha256_bytes
from hubtool.folder.io import write_json, write_text
from hubtool.folder.names import CARD_FILE, CONFIG_FILE, MEASUREMENTS_FILE
from hubtool.spec.catalog import templates_dir
from hubtool.spec.family import Family
from hubtool.spec.model import ModelSpec

DEFAULT_TEMPLATE = "model_card.md.j2"


def default_template() -> Path:
    return templates_dir() / DEFAULT_TEMPLATE


def _card_data(m: CardMeasurements):
    from huggingface_hub import ModelCardData

    family = m.prose["family"]
    tags = list(m.prose.get("tags") or [])
    tags.append("trained" if m.facts["trained"] else "random-weights")
    extra: dict[str, Any] = {}
    if m.training:
        sources = m.training["corpus"].get("sources") or []
        hub = [s.removeprefix("hf://datasets/") for s in sources if s.startswith("hf://datasets/")]
        if hub:
            extra["datasets"] = hub
    return ModelCardData(
        language=m.prose.get("language") or None,
        license=family["license"],
        library_name=m.prose.get("library_name") or "transformers",
        pipeline_tag=m.prose.get("pipeline_tag") or "text-generation",
        tags=tags,
        **extra,
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
    """Three significant figures (whole numbers from 1,000): the precision the audit checks."""
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


FILTERS = {"cell": _fmt_cell, "commas": _fmt_int, "mb": _fmt_mb, "params": _fmt_params, "ms": _fmt_ms}


def render_body(template: Path, m: CardMeasurements) -> str:
    from jinja2 import StrictUndefined, UndefinedError
    from jinja2 import TemplateError as JinjaError
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
                               lstrip_blocks=True, autoescape=False)
    env.filters.update(FILTERS)
    try:
        source = template.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{display_path(template)}: cannot read the template ({exc.strerror or exc})") from None
    try:
        return env.from_string(source).render(m=m.model_dump(mode="json", by_alias=True))
    except UndefinedError as exc:
        line = next((f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__)) if f.filename == "<template>"),
                    None)
        where = f" (line {line})" if line else ""
        raise TemplateError(f"{display_path(template)}{where}: missing value: {exc.message}") from None
    except JinjaError as exc:
        lineno = getattr(exc, "lineno", None)  # TemplateSyntaxError has one; other Jinja errors do not
        where = f" (line {lineno})" if lineno else ""
        raise TemplateError(f"{display_path(template)}{where}: {exc.message}") from None


def render_text(template: Path, m: CardMeasurements) -> str:
    """README.md text for ``m``: front matter, then the body. Deterministic."""
    from huggingface_hub import ModelCard

    data = _card_data(m)
    body = render_body(template, m)
    text = f"---\n{data.to_yaml()}\n---\n\n{body.lstrip()}"
    parsed = ModelCard(text).data.to_dict()
    if parsed != data.to_dict():
        raise CardError(f"{m.model}: front matter does not round-trip ({parsed} != {data.to_dict()})")
    return text


@dataclass(frozen=True)
class RenderedCard:
    text: str
    measurements: CardMeasurements
    warnings: list[str] = field(default_factory=list)


def render_card(folder: Path, spec: ModelSpec, family: Family, *, artifacts: Path, template: Path | None = None,
                namespace: str | None = None) -> RenderedCard:
    """README.md text and its measurements for one model folder."""
    if not (folder / CONFIG_FILE).is_file():
        raise CardError(f"{display_path(folder)} is not built; run `hubtool build {spec.name}` first")
    template = template or default_template()
    reproduce, why_not = _reproduce(folder, spec)
    m = card_measurements(folder, spec, family, artifacts=artifacts, template=template, namespace=namespace,
                          reproduce=reproduce)
    text = render_text(template, m)
    m = m.model_copy(update={"card_sha256": sha256_bytes(text.encode("utf-8"))})
    warnings = stale_warnings(m) + ([f"{spec.name}: Reproduce not shown: {why_not}"] if why_not else [])
    return RenderedCard(text=text, measurements=m, warnings=warnings)


def _reproduce(folder: Path, spec: ModelSpec) -> tuple[dict[str, Any] | None, str | None]:
    """The Reproduce section's data, or why it cannot be given (a folder built from another spec)."""
    from hubtool.build.reproduce import reproduction

    try:
        return reproduction(folder, spec=spec).to_dict(), None
    except ArtifactError as exc:
        return None, str(exc)


def write_card(folder: Path, card: RenderedCard) -> None:
    """measurements.json first, then README.md, each atomically."""
    write_json(folder / MEASUREMENTS_FILE, card.measurements.to_dict())
    write_text(folder / CARD_FILE, card.text)


def card_is_current(folder: Path, card: RenderedCard) -> bool:
    """True when README.md and measurements.json on disk are exactly what would be rendered now."""
    from hubtool.folder.io import read_json

    try:
        return (folder / CARD_FILE).read_text(encoding="utf-8") == card.text and read_json(
            folder / MEASUREMENTS_FILE) == card.measurements.to_dict()
    except (OSError, ArtifactError):  # missing or unreadable: simply not current
        return False


@dataclass(frozen=True)
class CardResult:
    name: str
    path: Path
    status: str  # "written" | "unchanged" | "current" | "stale"
    warnings: list[str]


def card_command(spec: ModelSpec, *, root: Path, template: Path | None = None, check: bool = False,
                 namespace: str | None = None) -> CardResult:
    """Render ``spec``'s card; write it, or with ``check`` only compare it with the one on disk."""
    from hubtool.spec.catalog import family_for

    folder = root / spec.name
    card = render_card(folder, spec, family_for(spec), artifacts=root, template=template, namespace=namespace)
    current = card_is_current(folder, card)
    if check:
        return CardResult(spec.name, folder / CARD_FILE, "current" if current else "stale", card.warnings)
    if not current:
        write_card(folder, card)
    return CardResult(spec.name, folder / CARD_FILE, "unchanged" if current else "written", card.warnings)
