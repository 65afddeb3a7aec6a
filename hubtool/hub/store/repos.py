"""The repos of a staging hub: snapshots (commits), refs (branches, tags, pull requests).

Layout under the root folder::

    blobs/ab/<sha256>                    file contents, named by their sha256
    repos/<org>/<name>/repo.json         private flag, gated, creation time
    repos/<org>/<name>/refs.json         branches, tags, pull requests (heads and state)
    repos/<org>/<name>/commits/<id>.json one full snapshot per commit: parents, message, files
    repos/<org>/<name>/objects/<sha256>  marker: this LFS object was uploaded to this repo
    tmp/                                 work in progress (emptied at start-up)

A change becomes visible only when refs.json is replaced, after the blobs and the commit
file it names are durable, so a server killed at any point restarts with exactly the
acknowledged commits. A 40-hex revision is always a commit id: no ref may take such a
name, so pinning a commit can never be redirected.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from hubtool.hub.store.blobs import DurableFiles, FileEntry, fsync_dir
from hubtool.hub.store.names import (
    COMMIT_RE,
    PR_REF_RE,
    SHA256_RE,
    StoreError,
    check_ref_name,
    check_repo_id,
)

DEFAULT_BRANCH = "main"
_COMMIT_CACHE = 512


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


def not_found(repo_id: str) -> StoreError:
    return StoreError(404, f"Repository not found: {repo_id}", "RepoNotFound")


def revision_not_found(revision: str) -> StoreError:
    return StoreError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


class RepoStore(DurableFiles):
    """Repos and their refs under one root folder (commits and pull requests: store.commits).

    Thread-safe within one process; one process per root (the server holds the root's lock).
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        for sub in ("blobs", "repos", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # In-memory copies of what is on disk. This process is the root's only writer (the
        # server holds its lock), so they change only where the files do, under _lock.
        # Callers treat what reading methods return as read-only.
        self._metas: dict[str, dict[str, Any]] = {}
        self._refs: dict[str, dict[str, Any]] = {}
        self._commits: dict[tuple[str, str], dict[str, Any]] = {}
        self._entries: dict[tuple[str, str], dict[str, FileEntry]] = {}
        self._clean_tmp()

    def _clean_tmp(self) -> None:
        """Uploads and commits interrupted by a crash or a restart are garbage."""
        for leftover in self.tmp.iterdir():
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    # -- LFS objects, scoped per repo ---------------------------------------------------
    # Blobs are shared on disk, but a repo may only use LFS objects uploaded to it: no
    # repo can learn of, or reference, another (possibly private) repo's content.
    def mark_object(self, repo_id: str, sha256: str) -> None:
        folder = self._repo_dir(repo_id) / "objects"
        if not folder.is_dir():
            folder.mkdir()
            fsync_dir(folder.parent)
        self.write_bytes(folder / sha256, b"")

    def repo_has_object(self, repo_id: str, sha256: str, size: int | None = None) -> bool:
        return (
            SHA256_RE.match(sha256) is not None
            and (self._repo_dir(repo_id) / "objects" / sha256).is_file()
            and self.has_blob(sha256, size)
        )

    # -- repos ----------------------------------------------------------------------------
    def _repo_dir(self, repo_id: str) -> Path:
        org, name = check_repo_id(repo_id)
        return self.root / "repos" / org / name

    def repo_meta(self, repo_id: str) -> dict[str, Any] | None:
        """The repo's settings (private, gated, createdAt), or None when it does not exist."""
        cached = self._metas.get(repo_id)
        if cached is None:
            with self._lock:
                cached = self._read_meta(repo_id)
                if cached is not None:
                    self._metas[repo_id] = cached
        return cached

    def _read_meta(self, repo_id: str) -> dict[str, Any] | None:
        try:
            meta = json.loads((self._repo_dir(repo_id) / "repo.json").read_text())
        except (OSError, ValueError):
            return None
        return {"private": False, "gated": False, **meta, "id": repo_id}

    def _forget(self, *repo_ids: str) -> None:
        for repo_id in repo_ids:
            self._metas.pop(repo_id, None)
            self._refs.pop(repo_id, None)
        self._commits.clear()
        self._entries.clear()

    def list_repos(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted((self.root / "repos").glob("*/*/repo.json")):
            meta = self.repo_meta(f"{path.parent.parent.name}/{path.parent.name}")
            if meta is not None:
                out.append(meta)
        return out

    def create_repo(self, repo_id: str, *, private: bool) -> bool:
        """Create an empty repo (one empty initial commit on main). False when it exists."""
        with self._lock:
            target = self._repo_dir(repo_id)
            if (target / "repo.json").is_file():
                return False
            staging = Path(tempfile.mkdtemp(dir=self.tmp, prefix="repo-"))
            (staging / "commits").mkdir()
            created = now()
            initial = make_commit(parents=[], title="initial commit", message="", files={}, date=created,
                                   author=None)
            self.write_json(staging / "commits" / f"{initial['id']}.json", initial)
            self.write_json(staging / "refs.json", {"branches": {DEFAULT_BRANCH: initial["id"]}, "tags": {},
                                                    "prs": {}, "pulls": {}})
            self.write_json(staging / "repo.json", {"id": repo_id, "private": private, "gated": False,
                                                    "createdAt": created})
            self._move_into_place(staging, target)
            self._forget(repo_id)
            return True

    def _move_into_place(self, source: Path, target: Path) -> None:
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True)
            fsync_dir(target.parent.parent)
        if target.exists():  # a leftover without repo.json: never committed, safe to replace
            shutil.rmtree(target)
        os.replace(source, target)
        fsync_dir(target.parent)
        fsync_dir(source.parent)

    def delete_repo(self, repo_id: str) -> None:
        with self._lock:
            target = self._repo_dir(repo_id)
            if self.repo_meta(repo_id) is None:
                raise not_found(repo_id)
            doomed = Path(tempfile.mkdtemp(dir=self.tmp, prefix="deleted-"))
            os.replace(target, doomed / "repo")
            fsync_dir(target.parent)
            self._forget(repo_id)
        shutil.rmtree(doomed, ignore_errors=True)

    def move_repo(self, from_id: str, to_id: str) -> None:
        with self._lock:
            if self.repo_meta(from_id) is None:
                raise not_found(from_id)
            target = self._repo_dir(to_id)
            if (target / "repo.json").is_file():
                raise StoreError(409, f"Repository {to_id} already exists")
            source = self._repo_dir(from_id)
            self._move_into_place(source, target)
            meta = json.loads((target / "repo.json").read_text())
            self.write_json(target / "repo.json", {**meta, "id": to_id})
            self._forget(from_id, to_id)

    def update_settings(self, repo_id: str, *, private: bool | None = None, gated: Any = None) -> None:
        with self._lock:
            meta = self._read_meta(repo_id)
            if meta is None:
                raise not_found(repo_id)
            if private is not None:
                meta["private"] = private
            if gated is not None:
                meta["gated"] = gated
            self.write_json(self._repo_dir(repo_id) / "repo.json", meta)
            self._metas[repo_id] = meta

    # -- reading --------------------------------------------------------------------------
    def refs(self, repo_id: str) -> dict[str, dict[str, Any]]:
        """Branches, tags, pull request heads (prs) and state (pulls); read-only."""
        cached = self._refs.get(repo_id)
        if cached is None:
            with self._lock:
                cached = self._refs[repo_id] = self.refs_for_update(repo_id)
        return cached

    def refs_for_update(self, repo_id: str) -> dict[str, dict[str, Any]]:
        """A fresh copy of the refs, to change and pass to _save_refs (under _lock)."""
        try:
            refs = json.loads((self._repo_dir(repo_id) / "refs.json").read_text())
        except FileNotFoundError:
            raise not_found(repo_id) from None
        for key in ("branches", "tags", "prs", "pulls"):
            refs.setdefault(key, {})
        return refs

    def commit(self, repo_id: str, commit_id: str) -> dict[str, Any]:
        key = (repo_id, commit_id)
        cached = self._commits.get(key)
        if cached is None:
            cached = json.loads((self._repo_dir(repo_id) / "commits" / f"{commit_id}.json").read_text())
            if len(self._commits) >= _COMMIT_CACHE:
                self._commits.clear()
            self._commits[key] = cached
        return cached

    def has_commit(self, repo_id: str, commit_id: str) -> bool:
        return COMMIT_RE.match(commit_id) is not None and (
            (repo_id, commit_id) in self._commits
            or (self._repo_dir(repo_id) / "commits" / f"{commit_id}.json").is_file()
        )

    def resolve(self, repo_id: str, revision: str | None, *, refs: dict | None = None) -> str:
        """A revision -> commit id. A 40-hex revision is a commit id and nothing else; then
        refs/pr/N, refs/heads/B, refs/tags/T, a branch name, a tag name."""
        revision = revision or DEFAULT_BRANCH
        if COMMIT_RE.match(revision):
            if self.has_commit(repo_id, revision):
                return revision
            raise revision_not_found(revision)
        refs = refs if refs is not None else self.refs(repo_id)
        if match := PR_REF_RE.match(revision):
            found = refs["prs"].get(match.group(1))
        elif revision.startswith("refs/heads/"):
            found = refs["branches"].get(revision.removeprefix("refs/heads/"))
        elif revision.startswith("refs/tags/"):
            found = refs["tags"].get(revision.removeprefix("refs/tags/"))
        else:
            found = refs["branches"].get(revision) or refs["tags"].get(revision)
        if found is None:
            raise revision_not_found(revision)
        return found

    def files(self, repo_id: str, commit_id: str) -> dict[str, FileEntry]:
        """The files of a commit; read-only."""
        key = (repo_id, commit_id)
        cached = self._entries.get(key)
        if cached is None:
            recorded = self.commit(repo_id, commit_id)["files"]
            cached = {path: FileEntry.from_json(path, meta) for path, meta in recorded.items()}
            if len(self._entries) >= _COMMIT_CACHE:
                self._entries.clear()
            self._entries[key] = cached
        return cached

    def history(self, repo_id: str, commit_id: str) -> list[dict[str, Any]]:
        """Commits from ``commit_id`` back to the first, newest first (first parents)."""
        out = []
        current: str | None = commit_id
        while current:
            commit = self.commit(repo_id, current)
            out.append(commit)
            current = commit["parents"][0] if commit["parents"] else None
        return out

    # -- refs -----------------------------------------------------------------------------
    def _save_refs(self, repo_id: str, refs: dict[str, Any]) -> None:
        self.write_json(self._repo_dir(repo_id) / "refs.json", refs)
        self._refs[repo_id] = refs

    def create_branch(self, repo_id: str, branch: str, *, starting_point: str | None) -> None:
        check_ref_name(branch, kind="branch")
        with self._lock:
            refs = self.refs_for_update(repo_id)
            if branch in refs["branches"]:
                raise StoreError(409, f"Reference already exists: refs/heads/{branch}")
            if branch in refs["tags"]:
                raise StoreError(409, f"A tag named {branch!r} exists; a branch may not share its name")
            refs["branches"][branch] = self.resolve(repo_id, starting_point, refs=refs)
            self._save_refs(repo_id, refs)

    def delete_branch(self, repo_id: str, branch: str) -> None:
        with self._lock:
            refs = self.refs_for_update(repo_id)
            if branch not in refs["branches"]:
                raise StoreError(404, f"Branch not found: {branch!r}", "RevisionNotFound")
            if branch == DEFAULT_BRANCH:
                raise StoreError(403, f"the default branch {DEFAULT_BRANCH!r} cannot be deleted")
            del refs["branches"][branch]
            self._save_refs(repo_id, refs)

    def create_tag(self, repo_id: str, tag: str, *, revision: str | None) -> str:
        check_ref_name(tag, kind="tag")
        with self._lock:
            refs = self.refs_for_update(repo_id)
            if tag in refs["tags"]:
                raise StoreError(409, f"Tag already exists: refs/tags/{tag}")
            if tag in refs["branches"]:
                raise StoreError(409, f"A branch named {tag!r} exists; a tag may not share its name")
            refs["tags"][tag] = commit_id = self.resolve(repo_id, revision, refs=refs)
            self._save_refs(repo_id, refs)
            return commit_id

    def delete_tag(self, repo_id: str, tag: str) -> None:
        with self._lock:
            refs = self.refs_for_update(repo_id)
            if refs["tags"].pop(tag, None) is None:
                raise StoreError(404, f"Tag not found: {tag!r}", "RevisionNotFound")
            self._save_refs(repo_id, refs)

    def write_commit(self, repo_id: str, commit: dict[str, Any]) -> None:
        self.write_json(self._repo_dir(repo_id) / "commits" / f"{commit['id']}.json", commit)


def make_commit(*, parents: list[str], title: str, message: str, files: dict, date: str,
                 author: str | None) -> dict[str, Any]:
    body = {"parents": parents, "title": title, "message": message, "date": date, "files": files}
    if author:
        body["author"] = author
    body["id"] = hashlib.sha1(json.dumps(body, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    return body

