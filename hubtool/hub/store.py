"""On-disk storage of the staging hub: content-addressed blobs, commits, branches.

Layout under the root folder::

    blobs/ab/<sha256>                    file contents, named by their sha256
    repos/<org>/<name>/repo.json         id, private flag, creation time
    repos/<org>/<name>/refs.json         {"branches": {name: commit}, "prs": {n: commit}}
    repos/<org>/<name>/commits/<id>.json one full snapshot per commit: parents, message, files
    tmp/                                 uploads in progress (never read)

Every file is written to tmp/ and renamed into place. A commit becomes visible only when
refs.json is replaced, after its blobs and its commit file exist, so a client killed at
any point leaves the repo at its previous commit and a restarted server sees exactly what
was committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

DEFAULT_BRANCH = "main"
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
# The Hub's default .gitattributes sends these to LFS whatever their size.
LFS_SUFFIXES = (
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gz", ".h5", ".joblib", ".mlmodel", ".model",
    ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt", ".pth",
    ".rar", ".safetensors", ".tar", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst",
)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_CHUNK = 1 << 20


class StoreError(Exception):
    """A request the store refuses. ``code`` is the Hub's X-Error-Code, ``status`` the HTTP status."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class FileEntry:
    """One file of a commit: where its bytes are and what the Hub reports about it."""

    path: str
    sha256: str
    size: int
    lfs: bool
    git_oid: str  # git blob id: of the content (regular file) or of the LFS pointer

    @classmethod
    def regular(cls, path: str, data: bytes, sha256: str) -> "FileEntry":
        return cls(path, sha256, len(data), False, git_blob_oid(data))

    @classmethod
    def large(cls, path: str, sha256: str, size: int) -> "FileEntry":
        return cls(path, sha256, size, True, git_blob_oid(lfs_pointer(sha256, size)))

    @property
    def remote_oid(self) -> str:
        """What huggingface_hub compares a local file with: sha256 for LFS, the git blob id otherwise."""
        return self.sha256 if self.lfs else self.git_oid

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "lfs": self.lfs, "git_oid": self.git_oid}


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what git and the Hub call a regular file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def wants_lfs(path: str, size: int, sample: bytes) -> bool:
    """The Hub's rule: LFS for large files, binary files and the default LFS suffixes."""
    return size > 0 and (size >= LFS_SIZE_THRESHOLD or path.lower().endswith(LFS_SUFFIXES) or b"\0" in sample)


def check_path(path: Any) -> str:
    """A repo-relative file path; refuses absolute paths, '..' and empty parts."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path or "\0" in path:
        raise StoreError(400, f"invalid file path {path!r}")
    if any(part in ("", ".", "..") for part in path.split("/")) or path.split("/")[0] == ".git":
        raise StoreError(400, f"invalid file path {path!r}")
    return path


def check_repo_id(repo_id: str) -> tuple[str, str]:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(NAME_RE.match(p) for p in parts) or ".." in repo_id:
        raise StoreError(400, f"invalid repo id '{repo_id}' (expected ORG/NAME)")
    return parts[0], parts[1]


class Store:
    """The repos under one root folder. Thread-safe within one process."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for sub in ("blobs", "repos", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._clean_tmp()

    # -- low-level files -------------------------------------------------------------
    def _clean_tmp(self) -> None:
        """Uploads interrupted by a crash or a restart are garbage."""
        for leftover in (self.root / "tmp").iterdir():
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    def _write_json(self, path: Path, data: Any) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="json-")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        path = self.blob_path(sha256)
        return SHA256_RE.match(sha256) is not None and path.is_file() and (size is None or path.stat().st_size == size)

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not self.has_blob(sha, len(data)):
            fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="blob-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self._publish_blob(Path(tmp), sha)
        return sha

    def put_stream(self, stream: BinaryIO, *, size: int, expect_sha256: str) -> None:
        """Store exactly ``size`` bytes read from ``stream``; refuse them unless their sha256 matches.

        A short read (client gone) raises and leaves nothing behind.
        """
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="upload-")
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as fh:
                remaining = size
                while remaining:
                    chunk = stream.read(min(_CHUNK, remaining))
                    if not chunk:
                        raise StoreError(400, f"upload ended after {size - remaining} of {size} bytes")
                    digest.update(chunk)
                    fh.write(chunk)
                    remaining -= len(chunk)
            if digest.hexdigest() != expect_sha256:
                raise StoreError(400, f"uploaded bytes have sha256 {digest.hexdigest()}, expected {expect_sha256}")
            self._publish_blob(Path(tmp), expect_sha256)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _publish_blob(self, tmp: Path, sha256: str) -> None:
        target = self.blob_path(sha256)
        target.parent.mkdir(exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)

    # -- LFS objects, scoped per repo -------------------------------------------------
    # Blobs are shared on disk, but a repo may only use LFS objects uploaded to it: no
    # repo can learn of, or reference, another (possibly private) repo's content.
    def mark_object(self, repo_id: str, sha256: str) -> None:
        marker = self._repo_dir(repo_id) / "objects" / sha256
        marker.parent.mkdir(exist_ok=True)
        marker.touch()

    def repo_has_object(self, repo_id: str, sha256: str, size: int | None = None) -> bool:
        return (
            SHA256_RE.match(sha256) is not None
            and (self._repo_dir(repo_id) / "objects" / sha256).is_file()
            and self.has_blob(sha256, size)
        )

    # -- repos -----------------------------------------------------------------------
    def _repo_dir(self, repo_id: str) -> Path:
        org, name = check_repo_id(repo_id)
        return self.root / "repos" / org / name

    def repo_meta(self, repo_id: str) -> dict[str, Any] | None:
        try:
            return json.loads((self._repo_dir(repo_id) / "repo.json").read_text())
        except (OSError, ValueError):
            return None

    def create_repo(self, repo_id: str, *, private: bool) -> bool:
        """Create an empty repo (one empty initial commit on main). False when it exists."""
        with self._lock:
            target = self._repo_dir(repo_id)
            if (target / "repo.json").is_file():
                return False
            staging = Path(tempfile.mkdtemp(dir=self.root / "tmp", prefix="repo-"))
            (staging / "commits").mkdir()
            now = _now()
            initial = self._make_commit(parents=[], title="initial commit", message="", files={}, date=now)
            self._write_json(staging / "commits" / f"{initial['id']}.json", initial)
            self._write_json(staging / "refs.json", {"branches": {DEFAULT_BRANCH: initial["id"]}, "prs": {}})
            self._write_json(staging / "repo.json", {"id": repo_id, "private": private, "createdAt": now})
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # a leftover without repo.json: never committed, safe to replace
                shutil.rmtree(target)
            os.replace(staging, target)
            return True

    def refs(self, repo_id: str) -> dict[str, dict[str, str]]:
        return json.loads((self._repo_dir(repo_id) / "refs.json").read_text())

    def commit(self, repo_id: str, commit_id: str) -> dict[str, Any]:
        return json.loads((self._repo_dir(repo_id) / "commits" / f"{commit_id}.json").read_text())

    def resolve(self, repo_id: str, revision: str | None) -> str:
        """Branch name, refs/heads/B, refs/pr/N or a commit id -> commit id (RevisionNotFound otherwise)."""
        revision = revision or DEFAULT_BRANCH
        refs = self.refs(repo_id)
        name = revision.removeprefix("refs/heads/")
        if name in refs["branches"]:
            return refs["branches"][name]
        match = re.fullmatch(r"refs/pr/(\d+)", revision)
        if match and match.group(1) in refs["prs"]:
            return refs["prs"][match.group(1)]
        if COMMIT_RE.match(revision) and (self._repo_dir(repo_id) / "commits" / f"{revision}.json").is_file():
            return revision
        raise StoreError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def files(self, repo_id: str, commit_id: str) -> dict[str, FileEntry]:
        return {
            path: FileEntry(path, meta["sha256"], meta["size"], meta["lfs"], meta["git_oid"])
            for path, meta in self.commit(repo_id, commit_id)["files"].items()
        }

    def history(self, repo_id: str, commit_id: str) -> list[dict[str, Any]]:
        """Commits from ``commit_id`` back to the first, newest first (first parents)."""
        out = []
        current: str | None = commit_id
        while current:
            commit = self.commit(repo_id, current)
            out.append(commit)
            current = commit["parents"][0] if commit["parents"] else None
        return out

    def create_branch(self, repo_id: str, branch: str, *, starting_point: str | None) -> None:
        if not NAME_RE.match(branch.replace("/", "-")) or branch.startswith("refs/"):
            raise StoreError(400, f"invalid branch name '{branch}'")
        with self._lock:
            refs = self.refs(repo_id)
            if branch in refs["branches"]:
                raise StoreError(409, f"Reference already exists: refs/heads/{branch}")
            refs["branches"][branch] = self.resolve(repo_id, starting_point)
            self._write_json(self._repo_dir(repo_id) / "refs.json", refs)

    def apply_commit(
        self,
        repo_id: str,
        revision: str,
        *,
        operations: list[tuple[str, Any]],
        title: str,
        message: str,
        parent_commit: str | None,
        create_pr: bool,
    ) -> tuple[str, int | None]:
        """Apply add/delete operations on top of ``revision`` as one commit.

        ``operations``: ("add", FileEntry), ("delete", path) or ("delete_folder", path); added
        blobs must already be stored. Returns (commit id, pull request number or None).
        """
        with self._lock:
            head = self.resolve(repo_id, revision)
            if parent_commit and not create_pr and not head.startswith(parent_commit):
                raise StoreError(412, f"A commit has happened since {parent_commit}; refresh and try again")
            base = self.resolve(repo_id, parent_commit) if parent_commit and create_pr else head
            files = {path: entry.to_json() for path, entry in self.files(repo_id, base).items()}
            for kind, value in operations:
                if kind == "add":
                    if not self.has_blob(value.sha256, value.size):
                        raise StoreError(422, f"LFS object {value.sha256} for '{value.path}' was not uploaded")
                    files[value.path] = value.to_json()
                elif kind == "delete":
                    if files.pop(value, None) is None:
                        raise StoreError(404, f"A file with this name doesn't exist: {value}", "EntryNotFound")
                else:
                    prefix = value.rstrip("/") + "/"
                    doomed = [p for p in files if p.startswith(prefix)]
                    if not doomed:
                        raise StoreError(404, f"A folder with this name doesn't exist: {value}", "EntryNotFound")
                    for path in doomed:
                        del files[path]
            commit = self._make_commit(parents=[base], title=title, message=message, files=files, date=_now())
            repo_dir = self._repo_dir(repo_id)
            self._write_json(repo_dir / "commits" / f"{commit['id']}.json", commit)
            refs = self.refs(repo_id)
            pr_number = None
            if create_pr:
                pr_number = max((int(n) for n in refs["prs"]), default=0) + 1
                refs["prs"][str(pr_number)] = commit["id"]
            elif revision.startswith("refs/pr/"):
                refs["prs"][revision.removeprefix("refs/pr/")] = commit["id"]
            else:
                refs["branches"][revision.removeprefix("refs/heads/")] = commit["id"]
            self._write_json(repo_dir / "refs.json", refs)  # the commit becomes visible here
            return commit["id"], pr_number

    @staticmethod
    def _make_commit(*, parents: list[str], title: str, message: str, files: dict, date: str) -> dict[str, Any]:
        body = {"parents": parents, "title": title, "message": message, "date": date, "files": files}
        body["id"] = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return body


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
