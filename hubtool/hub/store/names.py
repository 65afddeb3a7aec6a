"""What the store accepts as a name: repo ids, file paths inside a repo, branch and tag names.

Kept apart from storage because every HTTP route checks names before touching disk, and
because the rules are the Hub's (and git's), not an implementation detail: a 40-hex
revision is always a commit id, so no branch or tag may look like one, and ref names follow
``git check-ref-format``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
PR_REF_RE = re.compile(r"^refs/pr/([1-9][0-9]{0,8})$")
MAX_REF_BYTES = 255
_REF_FORBIDDEN = set(" ~^:?*[\\")


def has_control(text: str) -> bool:
    """Control characters (C0, DEL, C1) and line/paragraph separators: never in a name."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


class StoreError(Exception):
    """A request the store refuses. ``status`` is the HTTP status, ``code`` the Hub's X-Error-Code.

    Internal to the staging hub: the HTTP layer turns it into an error response, and its
    message never names a server path.
    """

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def check_repo_id(repo_id: str) -> tuple[str, str]:
    """``ORG/NAME`` -> (org, name); refuses anything else (so no id can escape the root)."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if len(parts) != 2 or not all(NAME_RE.match(p) for p in parts) or ".." in repo_id:
        raise StoreError(400, f"invalid repo id {repo_id!r} (expected ORG/NAME)")
    return parts[0], parts[1]


def check_namespace(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise StoreError(400, f"invalid namespace {name!r}")
    return name


def check_path(path: Any) -> str:
    """A repo-relative file path; refuses absolute paths, '..', empty parts and control characters."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path:
        raise StoreError(400, f"invalid file path {path!r}")
    if has_control(path) or len(path.encode()) > 1024:
        raise StoreError(400, f"invalid file path {path!r}")
    if any(part in ("", ".", "..") for part in path.split("/")) or path.split("/")[0] == ".git":
        raise StoreError(400, f"invalid file path {path!r}")
    return path


def ref_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a branch or tag (None when it can): git's check-ref-format rules,
    plus the Hub's own: no 40-hex names (those are commit ids), nothing under refs/."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name.encode()) > MAX_REF_BYTES:
        return f"it is longer than {MAX_REF_BYTES} bytes"
    if COMMIT_RE.match(name):
        return "a 40-hex name is a commit id"
    if name.startswith("refs/") or name == "HEAD" or name == "@":
        return "that name is reserved"
    if set(name) & _REF_FORBIDDEN or has_control(name):
        return "it contains a space, a control character or one of ~^:?*[\\"
    if ".." in name or "@{" in name or "//" in name:
        return "it contains '..', '@{' or '//'"
    if name.startswith(("/", "-")) or name.endswith(("/", ".")):
        return "it starts with '/' or '-', or ends with '/' or '.'"
    for part in name.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return "a component starts with '.' or ends with '.lock'"
    return None


def check_ref_name(name: Any, *, kind: str) -> str:
    problem = ref_name_problem(name)
    if problem:
        raise StoreError(400, f"invalid {kind} name {name!r}: {problem}")
    return name
