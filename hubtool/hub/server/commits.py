"""Commit routes: ``POST /api/models/{repo}/commit/{rev}`` (NDJSON: header / file / lfsFile /
deletedFile / deletedFolder lines, or the older single JSON object) and the commit list.

Who may commit: a writer of the namespace to a branch; anyone with a token who can see the
repo may open a pull request (``?create_pr=1``); a PR's author may also add commits to its
``refs/pr/N``. Permission is settled from the headers before the body is read.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hubtool.hub.server.web import (
    base_url,
    endpoint,
    hub,
    in_thread,
    json_response,
    query_flag,
    read_body,
    repo_id_of,
    require_user,
    take_revision,
    visible_repo,
)
from hubtool.hub.store import SHA256_RE, FileEntry, Store, StoreError, check_path
from hubtool.hub.store.names import PR_REF_RE


def _lines(raw: bytes, content_type: str) -> list[dict[str, Any]]:
    try:
        lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
    except ValueError:
        raise StoreError(400, "commit payload is not NDJSON") from None
    if content_type.startswith("application/json") and len(lines) == 1 and isinstance(lines[0], dict) \
            and "key" not in lines[0]:
        lines = _json_commit_to_lines(lines[0])
    if not all(isinstance(line, dict) and isinstance(line.get("value"), dict) for line in lines):
        raise StoreError(400, "every commit line needs a 'key' and an object 'value'")
    return lines


def _json_commit_to_lines(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The older JSON commit payload (summary/files/lfsFiles/deletedFiles) as NDJSON lines."""
    lines = [{"key": "header", "value": {k: body.get(k) for k in ("summary", "description", "parentCommit")}}]
    lines += [{"key": "file", "value": f} for f in body.get("files", [])]
    lines += [{"key": "lfsFile", "value": f} for f in body.get("lfsFiles", [])]
    lines += [{"key": "deletedFile", "value": f} for f in body.get("deletedFiles", [])]
    return lines


def parse_commit(store: Store, repo_id: str, raw: bytes, content_type: str) -> tuple[dict[str, Any], list]:
    """(header, operations) of a commit payload; regular files are stored as blobs on the way."""
    header: dict[str, Any] = {}
    operations: list[tuple[str, Any]] = []
    for line in _lines(raw, content_type):
        key, value = line.get("key"), line["value"]
        if key == "header":
            header = value
        elif key == "file":
            path = check_path(value.get("path"))
            if value.get("encoding", "base64") == "base64":
                data = base64.b64decode(str(value.get("content", "")), validate=True)
            else:
                data = str(value.get("content", "")).encode()
            operations.append(("add", FileEntry.regular(path, data, store.put_bytes(data))))
        elif key == "lfsFile":
            path = check_path(value.get("path"))
            oid = str(value.get("oid", "")).lower()
            if value.get("algo", "sha256") != "sha256" or not SHA256_RE.match(oid):
                raise StoreError(400, f"lfsFile '{path}' needs a sha256 oid")
            if not store.repo_has_object(repo_id, oid):
                raise StoreError(422, f"LFS object {oid} for '{path}' was not uploaded to {repo_id}")
            size = int(value.get("size") or store.blob_path(oid).stat().st_size)
            if not store.has_blob(oid, size):
                raise StoreError(422, f"LFS object {oid} for '{path}' does not have {size} bytes")
            operations.append(("add", FileEntry.large(path, oid, size)))
        elif key in ("deletedFile", "deletedFolder"):
            kind = "delete" if key == "deletedFile" else "delete_folder"
            operations.append((kind, check_path(str(value.get("path", "")).rstrip("/"))))
        else:
            raise StoreError(400, f"unknown commit operation {key!r}")
    summary = header.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise StoreError(400, "the commit needs a header with a summary")
    if not isinstance(header.get("description") or "", str):
        raise StoreError(400, "the commit description must be a string")
    return header, operations


@endpoint
async def commit(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await visible_repo(request, repo_id)
    user = require_user(request)
    revision = take_revision(request.path_params["rest"])[0] or "main"
    create_pr = query_flag(request, "create_pr")
    store = hub(request).store
    namespace = repo_id.split("/")[0]
    if not create_pr and not user.owns(namespace):
        pr = PR_REF_RE.match(revision)
        author = (await in_thread(store.pull, repo_id, int(pr.group(1))))["author"] if pr else None
        if author != user.name:
            raise StoreError(403, f"You don't have the rights to write under the namespace {namespace!r}")
    raw = await read_body(request, hub(request).limits.commit_bytes)
    content_type = request.headers.get("content-type") or ""

    def apply() -> tuple[str, int | None]:
        header, operations = parse_commit(store, repo_id, raw, content_type)
        return store.apply_commit(
            repo_id, revision, operations=operations, title=header["summary"].strip(),
            message=header.get("description") or "", parent_commit=header.get("parentCommit"),
            create_pr=create_pr, author=user.name,
        )

    commit_id, number = await in_thread(apply)
    base = f"{base_url(request)}/{repo_id}"
    return json_response({"success": True, "commitOid": commit_id, "commitUrl": f"{base}/commit/{commit_id}",
                          "hookOutput": "", "pullRequestUrl": f"{base}/discussions/{number}" if number else None})


@endpoint
async def list_commits(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await visible_repo(request, repo_id)
    rest = request.path_params.get("rest")
    revision = take_revision(rest)[0] if rest else None
    store = hub(request).store

    def history() -> list[dict[str, Any]]:
        return [{"id": c["id"], "title": c["title"], "message": c["message"], "date": c["date"],
                 "authors": [{"user": c.get("author") or "staging"}]}
                for c in store.history(repo_id, store.resolve(repo_id, revision))]

    return json_response(await in_thread(history))


ROUTES = [
    Route("/api/models/{ns}/{name}/commit/{rest:path}", commit, methods=["POST"]),
    Route("/api/models/{ns}/{name}/commits", list_commits, methods=["GET"]),
    Route("/api/models/{ns}/{name}/commits/{rest:path}", list_commits, methods=["GET"]),
]
