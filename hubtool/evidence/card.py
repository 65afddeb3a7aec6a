"""``measurements.json``: everything a card shows, and the sha256 of every file it came from.

A card's README.md is a pure function of this record and its template, and this record is
a function of the folder's evidence (files, verification, benchmarks, provenance) and the
spec's prose. ``subject`` binds it to the model files, ``sources`` to the reports read,
``card_sha256`` to the README.md written from it: push and the audit check all three.
"""

from __future__ import annotations

from typing import Any

from hubtool.evidence.base import Record, Strict
from hubtool.evidence.provenance import HubtoolIdentity


class StaleNote(Strict):
    """A section left unmeasured because its evidence describes other bytes (or is missing)."""

    section: str
    report: str
    why: str
    command: str


class TemplateRef(Strict):
    name: str  # file name; "model_card.md.j2" is the bundled default
    sha256: str


class CardMeasurements(Record):
    SCHEMA = "hubtool.card-measurements/2"
    REMEDY = "hubtool card NAME"

    model: str
    repo_id: str
    hubtool: HubtoolIdentity
    subject: dict[str, str]
    sources: dict[str, str]  # evidence file (relative to the folder) -> sha256 when read
    template: TemplateRef
    card_sha256: str | None = None  # README.md written from this record
    facts: dict[str, Any]
    prose: dict[str, Any]  # spec and family text, as written by people (not measurements)
    statements: list[str]  # comparative statements, computed from the family table
    family: list[dict[str, Any]]
    compatibility: list[dict[str, Any]] | None = None  # None: not verified for these bytes
    coverage: list[dict[str, Any]] = []
    verification: dict[str, Any] | None = None
    latency: list[dict[str, Any]] = []  # one group per machine, results only
    smoke: list[dict[str, Any]] = []  # smoke runs: named, never tabulated as results
    withheld: list[dict[str, Any]] = []
    training: dict[str, Any] | None = None
    reproduce: dict[str, Any] | None = None
    stale: list[StaleNote] = []
    measured_sections: list[str]
