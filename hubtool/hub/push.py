"""A built model folder -> a Hub repo, in one commit, with a plan and a check afterwards.

The plan compares every local file with the remote one (LFS sha256, or the git blob id
of a regular file): only added or changed files are uploaded, and when nothing changed
no commit is made. After a commit, every remote file's size and sha256 is checked
against the local file.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubtool.errors import ArtifactError, FoundWrong, HubError, display_path
from hubtool.evidence.provenance import read_provenance
from hubtool.hub.client import DEFAULT_ENDPOINT, describe_error, hub_exceptions, make_api, resolve_endpoint
from hubtool.hub.pull import REPO_REF_RE
from hubtool.runtime.environment import hubtool_version

if TYPE_CHECKING:
    from hubtool.hub.transfer import ByteReport

_TEMP_SUFFIXES = ("~", ".tmp", ".temp", ".part", ".partial", ".swp", ".lock", ".incomplete")


@dataclass(frozen=True)
class FileChange:
    """One file of the plan: add / update / unchanged (local) or remote-only (left as is)."""

    path: str
    action: str
    size: int | None  # local size (None for remote-only)
    remote_size: int | None


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    endpoint: str
    revision: str
    status: str  # "pushed" | "up-to-date" | "dry-run"
    changes: list[FileChange]
    commit_oid: str | None = None
    commit_url: str | None = None
    pr_url: str | None = None
    tag: str | None = None
    verified: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, action: str) -> int:
        return sum(c.action == action for c in self.changes)


def repo_files(folder: Path) -> list[Path]:
    """The files of a model folder that belong in its repo: no dotfiles, no temp files."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.name.endswith(_TEMP_SUFFIXES):
            continue
        if ".tmp-" in path.name or not path.is_file():
            continue
        out.append(path)
    return out


def check_card(folder: Path, *, name: str, repo_id: str | None = None) -> None:
    """Refuse a folder whose card is not the one rendered for its current files (``hubtool.card.gate``)."""
    from hubtool.card.gate import card_problems

    problems = card_problems(folder, name=name, repo_id=repo_id)
    if problems:
        raise FoundWrong(f"{display_path(folder)}: {problems[0]} (or push with --force)")


def default_commit_message(folder: Path) -> str:
    """Names the hubtool version and the spec the weights were built from."""
    try:
        prov = read_provenance(folder)
    except ArtifactError:
        prov = None
    spec_hash = prov.spec.sha256 if prov else None
    suffix = f" (spec sha256 {spec_hash[:12]})" if spec_hash else ""
    return f"Upload {folder.name} with hubtool {hubtool_version()}{suffix}"


def _remote_files(info: Any) -> dict[str, Any]:
    return {s.rfilename: s for s in (info.siblings or [])} if info is not None else {}


def _same(local_op: Any, local_path: Path, remote: Any) -> bool:
    """Does the remote file hold the local bytes? LFS: sha256; regular: the git blob id."""
    if remote.size is not None and remote.size != local_op.upload_info.size:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == local_op.upload_info.sha256.hex()
    from huggingface_hub.utils.sha import git_hash

    return remote.blob_id == git_hash(local_path.read_bytes())


def plan_changes(folder: Path, files: list[Path], operations: dict[str, Any],
                 remote: dict[str, Any]) -> list[FileChange]:
    changes = []
    for path in files:
        rel = path.relative_to(folder).as_posix()
        op, other = operations[rel], remote.get(rel)
        if other is None:
            action = "add"
        else:
            action = "unchanged" if _same(op, path, other) else "update"
        changes.append(FileChange(rel, action, op.upload_info.size, other.size if other else None))
    for rel in sorted(set(remote) - set(operations)):
        changes.append(FileChange(rel, "remote-only", None, remote[rel].size))
    return changes


def push_model(
    folder: Path,
    *,
    repo_id: str,
    endpoint: str | None = None,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    token: str | None = None,
    tag: str | None = None,
    on_bytes: ByteReport | None = None,
) -> PushResult:
    """Push the repo files of ``folder`` to ``repo_id`` in one commit (or plan it, with dry_run).

    ``tag``: tag the pushed commit (or, when nothing changed, the branch's current head).
    ``on_bytes(done, total)`` hears the bytes of the changed files as they are read for the
    upload; not through Xet (huggingface.co with hf_xet), which reads files by path, unseen.
    """
    start = time.perf_counter()
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{display_path(folder)} does not exist; run `hubtool build {folder.name}` first")
    if not REPO_REF_RE.match(repo_id) or "@" in repo_id:
        raise HubError(f"'{repo_id}' is not a repo id (expected ORG/NAME)")
    if create_pr and revision not in (None, "main"):
        raise HubError("a pull request is always opened against main: give --create-pr or --revision, not both")
    if tag is not None:
        _check_tag_name(tag, create_pr=create_pr)
    if not force:
        check_card(folder, name=folder.name, repo_id=repo_id)
    files = repo_files(folder)
    if not files:
        raise ArtifactError(f"{display_path(folder)} holds no files to push")

    url = resolve_endpoint(endpoint)
    from huggingface_hub import CommitOperationAdd, get_token

    token = token or get_token()
    if token is None and url == DEFAULT_ENDPOINT and not dry_run:
        raise HubError(f"no token for {url}: set HF_TOKEN or run `hf auth login`")
    api = make_api(url, token)
    branch = revision or "main"

    def fail(exc: BaseException, rev: str | None = branch) -> HubError:
        return describe_error(exc, endpoint=url, repo_id=repo_id, revision=rev, token_sent=token is not None)

    operations = {p.relative_to(folder).as_posix(): CommitOperationAdd(p.relative_to(folder).as_posix(), str(p))
                  for p in files}
    with ThreadPoolExecutor(max_workers=2) as pool:
        # hash while the hub answers (hashlib releases the GIL); upload_info caches the digest
        hashing = [pool.submit(lambda op: op.upload_info.sha256, op) for op in operations.values()]
        info, branch_exists = _remote_info(api, repo_id, branch, fail)
        for done in hashing:
            done.result()
    changes = plan_changes(folder, files, operations, _remote_files(info))
    status = "dry-run" if dry_run else "up-to-date"
    to_send = [operations[c.path] for c in changes if c.action in ("add", "update")]
    if dry_run or (info is not None and not to_send):
        if not dry_run and not branch_exists and not create_pr:
            try:  # same files as main: the new branch starts there, no commit needed
                api.create_branch(repo_id, branch=branch, exist_ok=True)
            except hub_exceptions() as exc:
                raise fail(exc) from None
        if tag is not None and not dry_run:
            _tag(api, repo_id=repo_id, tag=tag, commit_oid=info.sha, fail=fail)
        return PushResult(repo_id, url, branch, status, changes, commit_oid=info.sha if info else None,
                          tag=None if dry_run else tag, seconds=time.perf_counter() - start)

    try:
        if info is None:
            api.create_repo(repo_id, private=private, exist_ok=True)
        elif not branch_exists and not create_pr:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        with ExitStack() as readers:
            if on_bytes is not None:
                _count_reads(to_send, on_bytes, readers)
            commit = api.create_commit(
                repo_id,
                operations=to_send,
                commit_message=commit_message or default_commit_message(folder),
                revision=None if create_pr else branch,
                create_pr=create_pr,
                parent_commit=info.sha if info is not None and branch_exists else None,
            )
    except hub_exceptions() as exc:
        raise fail(exc) from None
    verified = verify_remote(api, repo_id, commit.oid, folder, operations, fail=fail, token=token)
    if tag is not None:
        _tag(api, repo_id=repo_id, tag=tag, commit_oid=commit.oid, fail=fail)
    return PushResult(repo_id, url, branch, "pushed", changes, commit_oid=commit.oid, commit_url=commit.commit_url,
                      pr_url=commit.pr_url, tag=tag, verified=verified, seconds=time.perf_counter() - start)


def _count_reads(operations: list[Any], on_bytes: ByteReport, readers: ExitStack) -> None:
    """Let huggingface_hub read each file through a reader that reports the bytes read.

    ``CommitOperationAdd`` takes an open binary file in place of a path; it is swapped in after
    the digest is known, so no file is hashed twice. Xet uploads take paths only (given a file
    object, huggingface_hub falls back to plain LFS with a warning), so there nothing is counted.
    """
    from hubtool.hub.client import xet_enabled
    from hubtool.hub.transfer import UploadCounter

    if xet_enabled():
        return
    counter = UploadCounter(sum(op.upload_info.size for op in operations), on_bytes)
    for op in operations:
        op.path_or_fileobj = readers.enter_context(counter.reader(op.path_or_fileobj))


def _check_tag_name(tag: str, *, create_pr: bool) -> None:
    """Refuse a tag before anything is pushed: with a pull request, or a name git would refuse."""
    from hubtool.hub.store.names import ref_name_problem

    if create_pr:
        raise HubError("a tag names a commit of a branch: give --tag or --create-pr, not both")
    problem = ref_name_problem(tag)
    if problem:
        raise HubError(f"{tag!r} is not a tag name: {problem}")


def _tag(api: Any, *, repo_id: str, tag: str, commit_oid: str, fail) -> None:
    """Tag ``commit_oid``; a tag already there on that commit is fine, on another one an error."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        api.create_tag(repo_id, tag=tag, revision=commit_oid)
        return
    except HfHubHTTPError as exc:
        if exc.response is None or exc.response.status_code != 409:
            raise fail(exc, commit_oid) from None
    except hub_exceptions() as exc:
        raise fail(exc, commit_oid) from None
    try:
        existing = {t.name: t.target_commit for t in api.list_repo_refs(repo_id).tags}
    except hub_exceptions() as exc:
        raise fail(exc, commit_oid) from None
    if existing.get(tag) != commit_oid:
        where = f"commit {existing[tag][:12]}" if existing.get(tag) else "a branch of the same name"
        raise HubError(f"tag '{tag}' already exists on {repo_id} at {where}; a tag does not move")


def _remote_info(api: Any, repo_id: str, branch: str, fail) -> tuple[Any, bool]:
    """(repo info at ``branch`` or, when that branch does not exist yet, at main; branch exists)."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return api.repo_info(repo_id, revision=branch, files_metadata=True), True
    except RepositoryNotFoundError:
        return None, False
    except RevisionNotFoundError:
        pass
    except hub_exceptions() as exc:
        raise fail(exc) from None
    try:
        return api.repo_info(repo_id, files_metadata=True), False
    except hub_exceptions() as exc:
        raise fail(exc, "main") from None


def verify_remote(api: Any, repo_id: str, commit_oid: str, folder: Path, operations: dict[str, Any], *,
                  fail, token: str | None) -> list[str]:
    """Check that every local file is on the remote at ``commit_oid`` with its size and sha256.

    LFS files carry their sha256 in the repo listing; regular (small) files are downloaded
    and hashed.
    """
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    headers = build_hf_headers(token=token)

    def remote_digest(rel: str, other: Any) -> tuple[int, str]:
        if other.lfs is not None:
            return other.lfs.size, other.lfs.sha256
        url = hf_hub_url(repo_id, rel, revision=commit_oid, endpoint=api.endpoint)
        response = get_session().get(url, headers=headers, follow_redirects=True)
        hf_raise_for_status(response)
        return len(response.content), hashlib.sha256(response.content).hexdigest()

    try:
        remote = _remote_files(api.repo_info(repo_id, revision=commit_oid, files_metadata=True))
        missing = sorted(set(operations) - set(remote))
        if missing:
            raise HubError(f"{missing[0]} is missing from {repo_id} after the push (commit {commit_oid[:12]})")
        with ThreadPoolExecutor(max_workers=4) as pool:
            digests = dict(zip(sorted(operations), pool.map(lambda rel: remote_digest(rel, remote[rel]),
                                                            sorted(operations)), strict=True))
    except hub_exceptions() as exc:
        raise fail(exc, commit_oid) from None
    for rel, (remote_size, remote_sha) in digests.items():
        op = operations[rel]
        local_sha = op.upload_info.sha256.hex()
        if remote_size != op.upload_info.size or remote_sha != local_sha:
            raise HubError(
                f"{rel} on {repo_id} (commit {commit_oid[:12]}) differs from {display_path(folder / rel)}: "
                f"{remote_size} bytes sha256 {remote_sha[:12]} vs {op.upload_info.size} bytes sha256 {local_sha[:12]}"
            )
    return sorted(digests)
