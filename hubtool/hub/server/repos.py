"""Repo-level routes: create, delete, move, settings (private/gated), repo info, list models.

Who may do what is decided here from the namespace (the part before the '/'): a token
writes under its user's and organisations' namespaces; a private repo answers 404 to
everyone else, as the Hub does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hubtool.hub.server.access import Access
from hubtool.hub.server.web import (
    base_url,
    check_visible,
    endpoint,
    hub,
    in_thread,
    json_response,
    query_flag,
    read_json_object,
    repo_id_of,
    require_namespace,
    require_user,
    take_revision,
    user_of,
    writable_repo,
)
from hubtool.hub.store import Store, StoreError, check_namespace, check_repo_id, lfs_pointer

_MODEL_TYPES = (None, "model")


def _check_type(body: dict[str, Any]) -> None:
    if body.get("type") not in _MODEL_TYPES:
        raise StoreError(400, "this staging hub only stores model repos")


def info_json(store: Store, *, repo_id: str, meta: dict[str, Any], revision: str | None, blobs: bool) -> dict[str, Any]:
    """What ``GET /api/models/{repo}`` answers (huggingface_hub's ModelInfo)."""
    commit_id = store.resolve(repo_id, revision)
    commit = store.commit(repo_id, commit_id)
    files = store.files(repo_id, commit_id)
    siblings = []
    for path in sorted(files):
        sibling: dict[str, Any] = {"rfilename": path}
        if blobs:
            entry = files[path]
            sibling.update(size=entry.size, blobId=entry.git_oid)
            if entry.lfs:
                sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size,
                                  "pointerSize": len(lfs_pointer(entry.sha256, entry.size))}
        siblings.append(sibling)
    return {
        "_id": hashlib.sha1(repo_id.encode(), usedforsecurity=False).hexdigest()[:24],
        "id": repo_id, "modelId": repo_id,
        "author": repo_id.split("/")[0], "sha": commit_id, "lastModified": commit["date"],
        "createdAt": meta["createdAt"], "private": meta["private"], "disabled": False, "gated": meta["gated"],
        "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
        "usedStorage": sum(e.size for e in files.values()),
    }


@endpoint
async def create_repo(request: Request) -> Response:
    user = require_user(request)
    body = await read_json_object(request)
    _check_type(body)
    name, org = body.get("name"), body.get("organization")
    if not org and isinstance(name, str) and "/" in name:
        org, name = name.split("/", 1)
    org = org or user.name
    if not isinstance(name, str) or not isinstance(org, str):
        raise StoreError(400, "repo creation needs 'name' (and 'organization' or ORG/NAME)")
    repo_id = f"{check_namespace(org)}/{name}"
    check_repo_id(repo_id)
    require_namespace(user, org)
    private = body.get("private") is True or body.get("visibility") == "private"
    url = f"{base_url(request)}/{repo_id}"
    if not await in_thread(hub(request).store.create_repo, repo_id, private=private):
        return json_response({"error": "You already created this model repo", "url": url}, 409,
                             {"X-Error-Message": "You already created this model repo"})
    return json_response({"url": url, "name": repo_id, "id": repo_id})


@endpoint
async def delete_repo(request: Request) -> Response:
    user = require_user(request)
    body = await read_json_object(request)
    _check_type(body)
    name, org = body.get("name"), body.get("organization") or user.name
    repo_id = f"{org}/{name}"
    check_repo_id(repo_id)
    await writable_repo(request, repo_id)
    await in_thread(hub(request).store.delete_repo, repo_id)
    return json_response({})


@endpoint
async def move_repo(request: Request) -> Response:
    user = require_user(request)
    body = await read_json_object(request)
    _check_type(body)
    source, target = body.get("fromRepo"), body.get("toRepo")
    if not isinstance(source, str) or not isinstance(target, str):
        raise StoreError(400, "a move needs 'fromRepo' and 'toRepo' (ORG/NAME)")
    check_repo_id(source)
    check_repo_id(target)
    await writable_repo(request, source)
    require_namespace(user, target.split("/")[0])
    await in_thread(hub(request).store.move_repo, source, target)
    return json_response({})


@endpoint
async def update_settings(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await writable_repo(request, repo_id)
    body = await read_json_object(request)
    private = body.get("private")
    if "visibility" in body:
        if body["visibility"] not in ("private", "public"):
            raise StoreError(400, "visibility must be 'private' or 'public'")
        private = body["visibility"] == "private"
    if private is not None and not isinstance(private, bool):
        raise StoreError(400, "'private' must be true or false")
    gated = body.get("gated")
    if gated not in (None, False, "auto", "manual"):
        raise StoreError(400, "gated must be false, 'auto' or 'manual'")
    await in_thread(hub(request).store.update_settings, repo_id, private=private, gated=gated)
    return json_response({})


@endpoint
async def repo_info(request: Request) -> Response:
    repo_id = repo_id_of(request)
    rest = request.path_params.get("rest")
    revision = take_revision(rest)[0] if rest else None
    store, user, blobs = hub(request).store, user_of(request), query_flag(request, "blobs")

    def answer() -> dict[str, Any]:
        meta = check_visible(store, user, repo_id)
        return info_json(store, repo_id=repo_id, meta=meta, revision=revision, blobs=blobs)

    return json_response(await in_thread(answer))


@endpoint
async def list_models(request: Request) -> Response:
    """``GET /api/models?author=&search=&limit=``: the repos this client may see, one page."""
    author = request.query_params.get("author")
    search = (request.query_params.get("search") or "").lower()
    limit = int(request.query_params.get("limit") or 1000)
    user = user_of(request)
    store = hub(request).store

    def listing() -> list[dict[str, Any]]:
        out = []
        for meta in store.list_repos():
            repo_id = meta["id"]
            if author and repo_id.split("/")[0] != author or search and search not in repo_id.lower():
                continue
            if Access.can_read(user, repo_id, meta):
                info = info_json(store, repo_id=repo_id, meta=meta, revision=None, blobs=False)
                out.append({k: v for k, v in info.items() if k not in ("siblings", "usedStorage")})
            if len(out) >= limit:
                break
        return out

    return json_response(await in_thread(listing))


ROUTES = [
    Route("/api/repos/create", create_repo, methods=["POST"]),
    Route("/api/repos/delete", delete_repo, methods=["DELETE"]),
    Route("/api/repos/move", move_repo, methods=["POST"]),
    Route("/api/models", list_models, methods=["GET"]),
    Route("/api/models/{ns}/{name}", repo_info, methods=["GET"]),
    Route("/api/models/{ns}/{name}/revision/{rest:path}", repo_info, methods=["GET"]),
    Route("/api/models/{ns}/{name}/settings", update_settings, methods=["PUT"]),
]
