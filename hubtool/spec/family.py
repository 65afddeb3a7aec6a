"""The family file: metadata shared by every model of a family (namespace, license, reports).

Card prose and citation data live here as data, never in code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubtool.errors import SpecError
from hubtool.spec.model import _unknown_key_error, load_yaml_mapping

FAMILY_FILE = "family.yaml"

_KEYS: dict[str, type] = {
    "name": str,
    "namespace": str,
    "license": str,
    "language": list,
    "library_name": str,
    "pipeline_tag": str,
    "tags": list,
    "author": str,
    "summary": str,
    "citation": dict,
    "reports": list,
    "acknowledgments": str,
}
_REQUIRED = ("namespace", "license")
_REPORT_KEYS = ("id", "title", "role")


@dataclass(frozen=True)
class Family:
    path: Path
    namespace: str
    license: str
    name: str = ""
    language: list[str] = field(default_factory=list)
    library_name: str = "transformers"
    pipeline_tag: str = "text-generation"
    tags: list[str] = field(default_factory=list)
    author: str = ""
    summary: str = ""
    citation: dict[str, Any] = field(default_factory=dict)
    reports: list[dict[str, str]] = field(default_factory=list)
    acknowledgments: str = ""

    def repo_id(self, model_name: str) -> str:
        return f"{self.namespace}/{model_name}"


def load_family(path: Path) -> Family:
    """Load and validate a family file; errors name the file and key."""
    data = load_yaml_mapping(path)
    for key in data:
        if key not in _KEYS:
            raise _unknown_key_error(path, key, list(_KEYS))
    for key in _REQUIRED:
        if not data.get(key):
            raise SpecError(path, f"missing required key '{key}'", key=key)
    for key, value in data.items():
        if not isinstance(value, _KEYS[key]):
            raise SpecError(path, f"{key} must be a {_KEYS[key].__name__}, got {type(value).__name__}", key=key)
    for i, report in enumerate(data.get("reports", [])):
        if not isinstance(report, dict) or set(report) != set(_REPORT_KEYS):
            raise SpecError(path, f"reports[{i}] must have exactly the keys {', '.join(_REPORT_KEYS)}", key="reports")
    return Family(path=path, **data)
