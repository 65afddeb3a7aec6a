"""The common shape of hubtool's JSON records: a schema string, strict fields, one-line errors.

Records are pydantic models with unknown keys forbidden, so a field renamed in one place
cannot be read as missing in another. ``from_file`` refuses a file of another schema (or
another version of this one) with one line naming the file, before looking at any field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hubtool.errors import ArtifactError, display_path
from hubtool.folder.io import read_json, write_json

R = TypeVar("R", bound="Record")


class Strict(BaseModel):
    """A nested part of a record: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())


class Record(Strict):
    """A top-level JSON file with a ``schema`` string such as ``hubtool.verification/2``."""

    SCHEMA: ClassVar[str]
    REMEDY: ClassVar[str] = ""  # the command that writes a fresh one, for error messages
    # Filled from SCHEMA by __init__ (from_dict checks it before validating). The default keeps it
    # optional in the __init__ that pydantic's mypy plugin writes for each subclass.
    schema_: str = Field(default="", alias="schema")

    def __init__(self, **data: Any) -> None:
        data.setdefault("schema", self.SCHEMA)
        super().__init__(**data)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def write(self, path: Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls: type[R], data: Any, *, source: str = "record") -> R:
        if not isinstance(data, dict):
            raise ArtifactError(f"{source}: expected a JSON object")
        found = data.get("schema")
        if found != cls.SCHEMA:
            remedy = f" (run `{cls.REMEDY}` to write a current one)" if cls.REMEDY else ""
            raise ArtifactError(f"{source}: schema {found!r} is not {cls.SCHEMA}{remedy}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise ArtifactError(f"{source}: {where}: {first['msg']} ({exc.error_count()} problem(s))") from None

    @classmethod
    def from_file(cls: type[R], path: Path) -> R:
        """The record in ``path``; an ArtifactError (one line, naming the file) when missing or invalid."""
        data = read_json(path)
        if data is None:
            raise ArtifactError(f"{display_path(path)}: no such file")
        return cls.from_dict(data, source=display_path(path))

    @classmethod
    def load(cls: type[R], path: Path) -> R | None:
        """Like ``from_file``, but None when the file does not exist."""
        return cls.from_file(path) if path.is_file() else None
