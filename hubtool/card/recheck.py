"""Re-check a card that carries its measurements: every number it shows, against the evidence.

Two links are checked. measurements.json must be what the folder's evidence gives now
(its model files, verification, benchmarks and training record, recomputed here with the
same code that rendered it), and README.md must be exactly what the template renders from
measurements.json. A latency made ten times faster, a "vLLM: Yes" for a backend the
evidence never ran, a changed head dimension: each is a line that differs, reported with
its line number and the line the evidence gives. Numbers are compared as rendered (three
significant figures for latency, whole numbers with separators for counts), so rounding
is never mistaken for a contradiction.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from hubtool.card.measure import evidence_sections
from hubtool.errors import ArtifactError, CardError
from hubtool.evidence.card import CardMeasurements
from hubtool.folder.hashing import sha256_bytes, sha256_file
from hubtool.folder.names import CARD_FILE, MEASUREMENTS_FILE

# Sections of measurements.json recomputed from the folder's evidence (prose and the family
# table come from the spec and sibling folders, which a published repo does not carry).
RECOMPUTED = ("subject", "facts", "compatibility", "coverage", "verification", "latency", "smoke", "withheld",
              "training")
ROUNDING = "latency as rendered, three significant figures; counts exact"


def _template_for(m: CardMeasurements) -> Path | None:
    """The template the card was rendered with, when this installation has it (same sha256)."""
    from hubtool.card.render import default_template
    from hubtool.spec.catalog import templates_dir

    for candidate in (default_template(), templates_dir() / m.template.name):
        if candidate.is_file() and sha256_file(candidate) == m.template.sha256:
            return candidate
    return None


def _section_differences(recorded: Any, actual: Any, path: str) -> list[str]:
    if isinstance(recorded, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(recorded) | set(actual)):
            out += _section_differences(recorded.get(key), actual.get(key), f"{path}.{key}")
        return out
    if isinstance(recorded, list) and isinstance(actual, list) and len(recorded) == len(actual):
        out = []
        for i, (a, b) in enumerate(zip(recorded, actual, strict=True)):
            out += _section_differences(a, b, f"{path}[{i}]")
        return out
    return [] if recorded == actual else [f"{path} is {recorded!r}, the evidence gives {actual!r}"]


def recheck(folder: Path) -> dict[str, Any] | None:
    """Contradictions between the card, its measurements.json and the evidence (None: no measurements.json)."""
    card = folder / CARD_FILE
    try:
        m = CardMeasurements.load(folder / MEASUREMENTS_FILE)
    except ArtifactError as exc:
        return {"status": "failed", "rounding": ROUNDING, "rerendered": False, "problems": [str(exc)], "lines": []}
    if m is None:
        return None
    problems: list[str] = []
    now = evidence_sections(folder, m.model)
    for rel, digest in sorted(m.sources.items()):
        if not (folder / rel).is_file():
            problems.append(f"{MEASUREMENTS_FILE} was made from {rel}, which is gone")
        elif sha256_file(folder / rel) != digest:
            problems.append(f"{MEASUREMENTS_FILE} was made from an earlier {rel}")
    recorded = m.model_dump(mode="json")
    for section in RECOMPUTED:
        actual = now[section] if section not in ("coverage",) else now[section]
        problems += [f"{MEASUREMENTS_FILE}: {d}" for d in _section_differences(recorded[section], _jsonable(actual),
                                                                              section)][:10]
    lines: list[dict[str, Any]] = []
    text = card.read_text(encoding="utf-8", errors="replace")
    template = _template_for(m)
    if template is not None:
        from hubtool.card.render import render_text

        try:
            expected = render_text(template, m)
        except CardError as exc:
            problems.append(f"{MEASUREMENTS_FILE} cannot be rendered: {exc}")
            expected = None
        if expected is not None and sha256_bytes(text.encode("utf-8")) != sha256_bytes(expected.encode("utf-8")):
            lines = _line_differences(text, expected)
    return {
        "status": "failed" if problems or lines else "passed",
        "rounding": ROUNDING,
        "rerendered": template is not None,
        "template": m.template.name,
        "problems": problems,
        "lines": lines,
    }


def _jsonable(value: Any) -> Any:
    import json

    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def _line_differences(text: str, expected: str) -> list[dict[str, Any]]:
    """Each line of the card that the measurements do not render, with the line they do render."""
    have, want = text.splitlines(), expected.splitlines()
    out = []
    matcher = difflib.SequenceMatcher(a=have, b=want, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for k in range(i1, max(i2, i1 + 1)):
            if k >= len(have) and tag != "delete":
                break
            wanted = want[j1 + (k - i1)] if j1 + (k - i1) < j2 else None
            out.append({"line": k + 1 if k < len(have) else len(have), "card": have[k] if k < len(have) else "",
                        "evidence": wanted})
    return out[:50]
