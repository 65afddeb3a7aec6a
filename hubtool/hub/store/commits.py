"""Commits and pull requests: the writes that move a branch or a ``refs/pr/N`` head.

A commit applies add/delete operations to a snapshot and is all-or-nothing: the commit file
is written (durably) first, and refs.json, which names it, last. A pull request is a
``refs/pr/N`` head plus its state (title, author, base branch, status, events), kept in the
same refs.json so that opening, committing to and merging one is a single atomic replace.
Merging is a three-way merge by file (the PR's base commit, the base branch's head, the PR's
head); a file changed differently on both sides is a conflict and nothing is merged.
"""

from __future__ import annotations

import secrets
from typing import Any

from hubtool.hub.store.names import COMMIT_RE, PR_REF_RE, StoreError
from hubtool.hub.store.repos import DEFAULT_BRANCH, RepoStore, make_commit, now, revision_not_found

Operation = tuple[str, Any]  # ("add", FileEntry) | ("delete", path) | ("delete_folder", path)


def _event(kind: str, author: str | None, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": secrets.token_hex(12), "type": kind, "createdAt": now(), "author": {"name": author or "staging"},
            "data": data}


def apply_operations(files: dict[str, dict[str, Any]], operations: list[Operation]) -> dict[str, dict[str, Any]]:
    files = dict(files)
    for kind, value in operations:
        if kind == "add":
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
    return files


class Store(RepoStore):
    """The staging hub's storage: repos, refs, commits and pull requests under one root."""

    def commit_target(self, refs: dict[str, Any], revision: str) -> tuple[str, str]:
        """Where a commit to ``revision`` goes: ("branch", name) or ("pr", number). Commit ids
        and tags are not places to commit to, as on the Hub."""
        if COMMIT_RE.match(revision):
            raise StoreError(400, f"{revision!r} is a commit id; commits go to a branch or to refs/pr/N")
        if match := PR_REF_RE.match(revision):
            if match.group(1) not in refs["prs"]:
                raise revision_not_found(revision)
            return "pr", match.group(1)
        branch = revision.removeprefix("refs/heads/")
        if branch not in refs["branches"]:
            if branch in refs["tags"] or revision.startswith("refs/tags/"):
                raise StoreError(400, f"{revision!r} is a tag; commits go to a branch or to refs/pr/N")
            raise revision_not_found(revision)
        return "branch", branch

    def pull(self, repo_id: str, number: int) -> dict[str, Any]:
        refs = self.refs(repo_id)
        return self._pull(refs, number)

    @staticmethod
    def _pull(refs: dict[str, Any], number: int | str) -> dict[str, Any]:
        key = str(number)
        if key not in refs["prs"]:
            raise StoreError(404, f"Discussion #{number} not found", "EntryNotFound")
        meta = refs["pulls"].get(key) or {}  # a PR from before pull state was kept
        return {"num": int(key), "title": f"Pull request #{key}", "author": "staging", "createdAt": now(),
                "status": "open", "base": DEFAULT_BRANCH, "baseCommit": None, "mergeCommitId": None,
                "events": [], **meta, "head": refs["prs"][key]}

    def pulls(self, repo_id: str) -> list[dict[str, Any]]:
        refs = self.refs(repo_id)
        return [self._pull(refs, n) for n in sorted(refs["prs"], key=int)]

    def apply_commit(
        self,
        repo_id: str,
        revision: str,
        *,
        operations: list[Operation],
        title: str,
        message: str,
        parent_commit: str | None,
        create_pr: bool,
        author: str | None = None,
    ) -> tuple[str, int | None]:
        """Apply ``operations`` on top of ``revision`` as one commit (or open a pull request
        against that branch). Added blobs must already be stored. Returns (commit id, PR number)."""
        if parent_commit is not None and not (isinstance(parent_commit, str) and COMMIT_RE.match(parent_commit)):
            raise StoreError(400, f"parentCommit must be a full 40-hex commit id, not {parent_commit!r}")
        for kind, value in operations:
            if kind == "add" and not self.has_blob(value.sha256, value.size):
                raise StoreError(422, f"LFS object {value.sha256} for '{value.path}' was not uploaded")
        with self._lock:
            refs = self.refs_for_update(repo_id)
            kind, name = self.commit_target(refs, revision)
            if create_pr and kind != "branch":
                raise StoreError(400, "a pull request is opened against a branch")
            head = refs["branches"][name] if kind == "branch" else refs["prs"][name]
            if kind == "pr" and self._pull(refs, name)["status"] != "open":
                raise StoreError(403, f"pull request #{name} is {self._pull(refs, name)['status']}; "
                                      "it takes no commits")
            base = head
            if parent_commit is not None:
                if create_pr:
                    if not self.has_commit(repo_id, parent_commit):
                        raise revision_not_found(parent_commit)
                    base = parent_commit
                elif parent_commit != head:
                    raise StoreError(412, f"A commit has happened since {parent_commit}; refresh and try again")
            files = apply_operations(self.commit(repo_id, base)["files"], operations)
            commit = make_commit(parents=[base], title=title, message=message, files=files, date=now(), author=author)
            self.write_commit(repo_id, commit)
            number = None
            event = _event("commit", author, {"subject": title, "oid": commit["id"]})
            if create_pr:
                number = max((int(n) for n in refs["prs"]), default=0) + 1
                refs["prs"][str(number)] = commit["id"]
                refs["pulls"][str(number)] = {
                    "num": number, "title": title, "author": author or "staging", "createdAt": now(), "status": "open",
                    "base": name, "baseCommit": base, "mergeCommitId": None, "events": [event],
                }
            elif kind == "pr":
                refs["prs"][name] = commit["id"]
                pull = refs["pulls"].setdefault(name, {})
                pull.setdefault("events", []).append(event)
            else:
                refs["branches"][name] = commit["id"]
            self._save_refs(repo_id, refs)  # the commit becomes visible here
            return commit["id"], number

    def set_pull_status(self, repo_id: str, number: int, status: str, *, author: str | None) -> dict[str, Any]:
        """Close or reopen; returns the status-change event."""
        if status not in ("open", "closed"):
            raise StoreError(400, f"status must be 'open' or 'closed', not {status!r}")
        with self._lock:
            refs = self.refs_for_update(repo_id)
            pull = self._pull(refs, number)
            if pull["status"] == "merged":
                raise StoreError(403, f"pull request #{number} is merged")
            event = _event("status-change", author, {"status": status})
            if pull["status"] != status:
                pull["status"] = status
                pull["events"].append(event)
                refs["pulls"][str(number)] = {k: v for k, v in pull.items() if k != "head"}
                self._save_refs(repo_id, refs)
            return event

    def _merge_base(self, repo_id: str, ours: str, theirs: str) -> str:
        """The newest commit of ``theirs``'s first-parent line that ``ours`` also has."""
        known = {c["id"] for c in self.history(repo_id, ours)}
        line = self.history(repo_id, theirs)
        return next((c["id"] for c in line if c["id"] in known), line[-1]["id"])

    def merge_pull(self, repo_id: str, number: int, *, author: str | None, comment: str | None = None) -> str:
        """Merge pull request ``number`` into its base branch; returns the merge commit id."""
        with self._lock:
            refs = self.refs_for_update(repo_id)
            pull = self._pull(refs, number)
            if pull["status"] != "open":
                raise StoreError(403, f"pull request #{number} is {pull['status']}; only open ones can be merged")
            base_branch = pull["base"]
            if base_branch not in refs["branches"]:
                raise StoreError(409, f"the base branch {base_branch!r} of pull request #{number} no longer exists")
            ours_id, theirs_id = refs["branches"][base_branch], pull["head"]
            ancestor_id = pull["baseCommit"] or self._merge_base(repo_id, ours_id, theirs_id)
            merged, conflicts = merge_files(self.commit(repo_id, ancestor_id)["files"],
                                            ours=self.commit(repo_id, ours_id)["files"],
                                            theirs=self.commit(repo_id, theirs_id)["files"])
            if conflicts:
                raise StoreError(409, f"pull request #{number} conflicts with {base_branch!r} in: "
                                      f"{', '.join(conflicts[:10])}")
            commit = make_commit(parents=[ours_id, theirs_id], title=pull["title"], message=comment or "",
                                 files=merged, date=now(), author=author)
            self.write_commit(repo_id, commit)
            refs["branches"][base_branch] = commit["id"]
            pull.update(status="merged", mergeCommitId=commit["id"])
            pull["events"].append(_event("status-change", author, {"status": "merged"}))
            refs["pulls"][str(number)] = {k: v for k, v in pull.items() if k != "head"}
            self._save_refs(repo_id, refs)
            return commit["id"]


def merge_files(ancestor: dict, *, ours: dict, theirs: dict) -> tuple[dict, list[str]]:
    """Three-way merge by file: (merged snapshot, paths changed differently on both sides)."""
    merged, conflicts = {}, []
    for path in sorted(set(ancestor) | set(ours) | set(theirs)):
        a, o, t = ancestor.get(path), ours.get(path), theirs.get(path)
        if o == t or t == a:
            chosen = o
        elif o == a:
            chosen = t
        else:
            conflicts.append(path)
            continue
        if chosen is not None:
            merged[path] = chosen
    return merged, conflicts


def conflicting_files(store: Store, *, repo_id: str, pull: dict[str, Any]) -> list[str]:
    """Files a merge of ``pull`` would conflict on now (empty when it merges cleanly)."""
    refs = store.refs(repo_id)
    if pull["status"] != "open" or pull["base"] not in refs["branches"] or not pull["baseCommit"]:
        return []
    return merge_files(store.commit(repo_id, pull["baseCommit"])["files"],
                       ours=store.commit(repo_id, refs["branches"][pull["base"]])["files"],
                       theirs=store.commit(repo_id, pull["head"])["files"])[1]
