"""``verification.json``: what verify checked, on which bytes, from where, and what it found."""

from __future__ import annotations

from typing import Any, Literal

from hubtool.evidence.base import Record, Strict
from hubtool.evidence.provenance import HubtoolIdentity

VerdictStatus = Literal["passed", "partial", "failed", "unsupported", "unavailable", "crashed"]
# A verdict that licenses a backend's "Yes" on a card and its latency in bench.
WORKING = ("passed", "partial")


class Source(Strict):
    """Where the checked files came from."""

    kind: Literal["spec", "folder", "hub"]
    folder: str
    spec: str | None = None  # spec file, when the target was a spec name
    repo_id: str | None = None
    revision: str | None = None  # as asked (branch, tag or commit)
    commit: str | None = None  # the commit the files are at
    endpoint: str | None = None
    hub_reached: bool | None = None  # False: a cached copy, the hub was not contacted
    offline: bool = False


class Check(Strict):
    name: str
    status: Literal["passed", "failed", "skipped"]
    detail: str


class Verdict(Strict):
    """One backend's result. ``reason`` is written for readers; ``raw_reason`` is the backend's own text."""

    status: VerdictStatus
    reason: str | None = None
    raw_reason: str | None = None
    metrics: dict[str, Any] = {}
    info: dict[str, Any] = {}
    seconds: float = 0.0
    exit_code: int | None = None
    stderr_tail: str | None = None

    @property
    def working(self) -> bool:
        return self.status in WORKING


class Coverage(Strict):
    """A class of bug, and whether this model's parity run can see it."""

    bug_class: str
    visible: bool
    how: str


class Verification(Record):
    SCHEMA = "hubtool.verification/2"
    REMEDY = "hubtool verify NAME"

    created: str
    hubtool: HubtoolIdentity
    subject: dict[str, str]  # model file -> sha256, as checked
    target: str
    source: Source
    fingerprint: dict[str, Any]
    tolerances: dict[str, Any]
    checks: list[Check]
    files_status: Literal["passed", "failed"]
    unverified: list[str] = []  # claims that could not be tied to a spec (no provenance, no spec)
    backends: dict[str, Verdict]
    coverage: list[Coverage] = []
    card_audit: dict[str, Any] | None = None
    status: Literal["passed", "failed", "crashed"]

    def working(self, backend: str) -> bool:
        verdict = self.backends.get(backend)
        return bool(verdict and verdict.working)
