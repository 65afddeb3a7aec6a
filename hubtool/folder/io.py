"""Atomic writers and strict readers for the files of a model folder.

Every writer puts the bytes in a temporary file beside the target and renames it into
place, so a crash never leaves half a file for the next stage to read. Readers turn an
unreadable file into an error that names it, never into a silent default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hubtool.errors import ArtifactError, display_path


def write_bytes(path: Path, data: bytes) -> None:
    """Write bytes atomically (temporary file in the same folder, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def dumps(data: Any) -> str:
    """The one JSON layout hubtool writes: indented, keys sorted, so equal data gives equal bytes."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_json(path: Path, data: Any) -> None:
    write_text(path, dumps(data))


def read_json(path: Path) -> Any | None:
    """A JSON file's content, or None when it does not exist; unreadable JSON is an error naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{display_path(path)}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ArtifactError(f"{display_path(path)}: not valid JSON ({exc})") from None


def read_json_object(path: Path) -> dict[str, Any] | None:
    """Like ``read_json``, for files that must hold a JSON object."""
    data = read_json(path)
    if data is not None and not isinstance(data, dict):
        raise ArtifactError(f"{display_path(path)}: expected a JSON object, got {type(data).__name__}")
    return data


def apply_umask(folder: Path) -> None:
    """mkdtemp makes 0700 folders and some writers 0600 files; give them the usual modes."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
