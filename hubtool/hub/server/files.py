"""File routes: the tree listing, paths-info, preupload (regular or LFS?) and downloads.

Downloads (``/{repo}/resolve/{rev}/{path}``) carry what huggingface_hub checks: the commit
(``X-Repo-Commit``), the ETag (git blob id, or sha256 for LFS, also as ``X-Linked-Etag``),
the size, and honour a single ``Range`` (206). Small files are answered in one piece, large
ones streamed from disk in 1 MiB chunks.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from hubtool.hub.server.web import (
    check_visible,
    endpoint,
    error_response,
    hub,
    in_thread,
    json_response,
    query_flag,
    read_body,
    read_json_object,
    repo_id_of,
    require_user,
    take_revision,
    user_of,
    visible_repo,
)
from hubtool.hub.store import FileEntry, Store, StoreError, check_path, lfs_pointer, wants_lfs

_IN_ONE_PIECE = 4 << 20
_CHUNK = 1 << 20


def file_json(entry: FileEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": entry.path}
    if entry.lfs:
        out["lfs"] = {"oid": entry.sha256, "size": entry.size,
                      "pointerSize": len(lfs_pointer(entry.sha256, entry.size))}
    return out


def folder_json(path: str, files: dict[str, FileEntry]) -> dict[str, Any]:
    inside = sorted(f"{p}:{e.git_oid}" for p, e in files.items() if p.startswith(path + "/"))
    oid = hashlib.sha1("\n".join(inside).encode(), usedforsecurity=False).hexdigest()
    return {"type": "directory", "oid": oid, "size": 0, "path": path}


def snapshot(store: Store, *, repo_id: str, revision: str | None) -> tuple[str, dict[str, FileEntry], set[str]]:
    """(commit id, files, folders) of a revision."""
    commit_id = store.resolve(repo_id, revision)
    files = store.files(repo_id, commit_id)
    folders = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
    return commit_id, files, folders


@endpoint
async def tree(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await visible_repo(request, repo_id)
    revision, path = take_revision(request.path_params["rest"])
    path = path.strip("/")
    recursive = query_flag(request, "recursive")

    def listing() -> tuple[str, list[dict[str, Any]]]:
        commit_id, files, folders = snapshot(hub(request).store, repo_id=repo_id, revision=revision)
        if path and path not in folders:
            raise StoreError(404, f"Entry not found: {path}", "EntryNotFound")
        prefix = f"{path}/" if path else ""
        out = [folder_json(f, files) for f in sorted(folders)
               if f.startswith(prefix) and (recursive or "/" not in f[len(prefix):])]
        out += [file_json(files[n]) for n in sorted(files)
                if n.startswith(prefix) and (recursive or "/" not in n[len(prefix):])]
        return commit_id, out

    commit_id, out = await in_thread(listing)
    return json_response(out, headers={"X-Repo-Commit": commit_id})


@endpoint
async def paths_info(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await visible_repo(request, repo_id)
    revision = take_revision(request.path_params["rest"])[0]
    raw = await read_body(request, hub(request).limits.json_bytes)
    if (request.headers.get("content-type") or "").startswith("application/json"):
        paths = json.loads(raw or b"{}").get("paths", [])
    else:
        paths = parse_qs(raw.decode()).get("paths", [])
    if isinstance(paths, str):
        paths = [paths]

    def lookup() -> list[dict[str, Any]]:
        _, files, folders = snapshot(hub(request).store, repo_id=repo_id, revision=revision)
        out = []
        for path in paths:
            path = str(path).strip("/")
            if path in files:
                out.append(file_json(files[path]))
            elif path in folders:
                out.append(folder_json(path, files))
        return out

    return json_response(await in_thread(lookup))


@endpoint
async def preupload(request: Request) -> Response:
    """Which files go to LFS, and the oid of what is there now (so unchanged files are skipped)."""
    repo_id = repo_id_of(request)
    await visible_repo(request, repo_id)
    require_user(request)  # anyone who may open a pull request may ask
    revision = take_revision(request.path_params["rest"])[0]
    body = await read_json_object(request)
    items = body.get("files", [])
    if not isinstance(items, list):
        raise StoreError(400, "'files' must be a list")

    def plan() -> dict[str, Any]:
        store = hub(request).store
        commit_id = store.resolve(repo_id, revision)
        existing = store.files(repo_id, commit_id)
        out = []
        for item in items:
            path = check_path(item.get("path"))
            size = int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample") or "", validate=True)
            entry = existing.get(path)
            out.append({"path": path, "uploadMode": "lfs" if wants_lfs(path, size, sample) else "regular",
                        "shouldIgnore": False, "oid": entry.remote_oid if entry else None})
        return {"files": out, "commitOid": commit_id}

    return json_response(await in_thread(plan))


@endpoint
async def resolve(request: Request) -> Response:
    repo_id = repo_id_of(request)
    revision, path = take_revision(request.path_params["rest"])
    store, user = hub(request).store, user_of(request)
    whole = request.method == "GET" and "range" not in request.headers

    def lookup() -> tuple[str, FileEntry | None, bytes | None]:
        """One trip to a worker thread: may the asker see it, which file, and (small ones) its bytes."""
        check_visible(store, user, repo_id)
        commit_id, files, _ = snapshot(store, repo_id=repo_id, revision=revision)
        entry = files.get(path)
        if entry is not None and whole and entry.size <= _IN_ONE_PIECE:  # small: its bytes come along
            return commit_id, entry, _read(store.blob_path(entry.sha256), 0, entry.size)
        return commit_id, entry, None

    commit_id, entry, data = await in_thread(lookup)
    if entry is None:
        return error_response(404, f"Entry not found: {path}", "EntryNotFound", headers={"X-Repo-Commit": commit_id})
    headers = {"X-Repo-Commit": commit_id, "ETag": f'"{entry.remote_oid}"'}
    if entry.lfs:
        headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)})
    if data is not None:
        headers.update({"Content-Length": str(entry.size), "Accept-Ranges": "bytes"})
        return Response(data, headers=headers, media_type="application/octet-stream")
    return await blob_response(request, blob=store.blob_path(entry.sha256), size=entry.size, headers=headers)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first range of a ``Range: bytes=...`` header as (start, end inclusive); None for none."""
    if not header or size == 0:
        return None
    try:
        unit, spec = header.split("=", 1)
        first, last = spec.split(",")[0].strip().split("-")
        if unit.strip() != "bytes":
            raise ValueError
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:
            start, end = max(size - int(last), 0), size - 1
    except ValueError:
        raise StoreError(400, f"malformed Range header {header!r}") from None
    if start > end or start >= size:
        raise StoreError(416, "requested range not satisfiable")
    return start, end


async def blob_response(request: Request, *, blob: Path, size: int, headers: dict[str, str]) -> Response:
    try:
        wanted = byte_range(request.headers.get("range"), size)
    except StoreError as exc:
        if exc.status != 416:
            raise
        return error_response(416, str(exc), headers={"Content-Range": f"bytes */{size}"})
    start, end, status = 0, size - 1, 200
    if wanted is not None:
        (start, end), status = wanted, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(end - start + 1, 0)
    headers.update({"Content-Length": str(length), "Accept-Ranges": "bytes"})
    media = "application/octet-stream"
    if request.method == "HEAD" or length == 0:
        return Response(b"", status_code=status, headers=headers, media_type=media)
    if length <= _IN_ONE_PIECE:
        data = await in_thread(_read, blob, start, length)
        return Response(data, status_code=status, headers=headers, media_type=media)
    return StreamingResponse(_stream(blob, start, length), status_code=status, headers=headers, media_type=media)


def _read(blob: Path, start: int, length: int) -> bytes:
    with open(blob, "rb") as fh:
        fh.seek(start)
        return fh.read(length)


async def _stream(blob: Path, start: int, length: int) -> AsyncIterator[bytes]:
    fh = await in_thread(open, blob, "rb")
    try:
        await in_thread(fh.seek, start)
        while length > 0:
            chunk = await in_thread(fh.read, min(_CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        fh.close()


ROUTES = [
    Route("/api/models/{ns}/{name}/tree/{rest:path}", tree, methods=["GET"]),
    Route("/api/models/{ns}/{name}/paths-info/{rest:path}", paths_info, methods=["POST"]),
    Route("/api/models/{ns}/{name}/preupload/{rest:path}", preupload, methods=["POST"]),
    Route("/{ns}/{name}/resolve/{rest:path}", resolve, methods=["GET", "HEAD"]),
]
