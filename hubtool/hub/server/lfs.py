"""Git LFS routes: the batch API, the upload ``PUT`` and object downloads.

The batch answer omits ``actions`` for objects the repo already has, so unchanged weights
are never sent twice. huggingface_hub sends no Authorization header with the ``PUT``, so
its URL is signed (HMAC over repo, oid, size and expiry). The upload is streamed to a temp
file and hashed as it arrives; it becomes a blob only if its size and sha256 match.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hubtool.hub.server.files import blob_response
from hubtool.hub.server.web import (
    base_url,
    body_chunks,
    endpoint,
    hub,
    in_thread,
    json_response,
    part,
    read_json_object,
    repo_id_of,
    require_user,
    visible_repo,
)
from hubtool.hub.store import SHA256_RE, StoreError

LFS_URL_TTL = 3600
_WRITE_EVERY = 4 << 20


def signature(secret: bytes, *, repo_id: str, oid: str, size: int, expires: int) -> str:
    return hmac.new(secret, f"{repo_id}\n{oid}\n{size}\n{expires}".encode(), "sha256").hexdigest()


@endpoint
async def batch(request: Request) -> Response:
    repo_id = repo_id_of(request)
    await visible_repo(request, repo_id)
    body = await read_json_object(request)
    operation = body.get("operation")
    if operation not in ("upload", "download"):
        raise StoreError(400, "operation must be 'upload' or 'download'")
    if operation == "upload":
        require_user(request)  # anyone who may open a pull request may upload for it
    objects = body.get("objects", [])
    if not isinstance(objects, list):
        raise StoreError(400, "'objects' must be a list")
    state = hub(request)
    expires = int(time.time()) + LFS_URL_TTL
    base = f"{base_url(request)}/{quote(repo_id)}.git/info/lfs/objects"

    def answer(obj: Any) -> dict[str, Any]:
        obj = obj if isinstance(obj, dict) else {}
        oid, size = str(obj.get("oid", "")).lower(), obj.get("size")
        if not SHA256_RE.match(oid) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return {"oid": oid, "size": size if isinstance(size, int) else 0,
                    "error": {"code": 422, "message": "oid must be a sha256 and size an integer"}}
        entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
        stored = state.store.repo_has_object(repo_id, oid, size)
        if operation == "upload" and not stored:
            if size > state.limits.lfs_bytes:
                entry["error"] = {"code": 422, "message": f"objects are limited to {state.limits.lfs_bytes:,} bytes"}
                return entry
            sig = signature(state.secret, repo_id=repo_id, oid=oid, size=size, expires=expires)
            href = f"{base}/{oid}?size={size}&expires={expires}&signature={sig}"
            entry["actions"] = {"upload": {"href": href, "header": {}, "expires_in": LFS_URL_TTL}}
        elif operation == "download":
            if stored:
                entry["actions"] = {"download": {"href": f"{base}/{oid}", "header": {}}}
            else:
                entry["error"] = {"code": 404, "message": "Object does not exist"}
        return entry

    out = await in_thread(lambda: [answer(obj) for obj in objects])
    return json_response({"transfer": "basic", "objects": out, "hash_algo": "sha256"},
                         media_type="application/vnd.git-lfs+json")


@endpoint
async def upload(request: Request) -> Response:
    """The signed ``PUT``: exactly ``size`` bytes whose sha256 is ``oid``."""
    repo_id, oid = repo_id_of(request), part(request, "oid")
    state = hub(request)
    query = request.query_params
    try:
        size, expires = int(query["size"]), int(query["expires"])
    except (KeyError, ValueError):
        raise StoreError(403, "upload URL is not signed (ask the batch endpoint for one)") from None
    expected = signature(state.secret, repo_id=repo_id, oid=oid, size=size, expires=expires)
    if not hmac.compare_digest(expected, query.get("signature", "")) or expires < time.time():
        raise StoreError(403, "upload URL signature is invalid or expired")
    if not SHA256_RE.match(oid):
        raise StoreError(400, "LFS oid must be a sha256")
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) != size:
        raise StoreError(400, f"Content-Length must be the object size {size}")
    if await in_thread(state.store.repo_meta, repo_id) is None:
        raise StoreError(404, f"Repository not found: {repo_id}", "RepoNotFound")
    chunks = body_chunks(request, size)
    if await in_thread(state.store.repo_has_object, repo_id, oid, size):
        async for _ in chunks:  # already there: read and drop, so the connection stays usable
            pass
        return json_response({})
    pending = await in_thread(state.store.new_upload)
    writing: asyncio.Future | None = None  # the previous batch, written while the next one arrives
    try:
        batch: list[bytes] = []
        batched = 0
        async for chunk in chunks:
            batch.append(chunk)
            batched += len(chunk)
            if batched >= _WRITE_EVERY:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(in_thread(pending.write_all, batch))
                batch, batched = [], 0
        if writing is not None:
            await writing
        await in_thread(pending.write_all, batch)
        await in_thread(pending.finish, expect_sha256=oid, expect_size=size)
    except StoreError as exc:
        if exc.status == 413:  # more bytes than the signed size
            raise StoreError(400, f"upload is longer than the object size {size}") from None
        raise
    finally:
        if writing is not None and not writing.done():
            await asyncio.wait([writing])
        await in_thread(pending.abort)
    await in_thread(state.store.mark_object, repo_id, oid)
    return json_response({})


@endpoint
async def download(request: Request) -> Response:
    repo_id, oid = repo_id_of(request), part(request, "oid")
    await visible_repo(request, repo_id)
    store = hub(request).store
    if not await in_thread(store.repo_has_object, repo_id, oid):
        raise StoreError(404, f"LFS object {oid} not found", "EntryNotFound")
    size = (await in_thread(store.blob_path(oid).stat)).st_size
    return await blob_response(request, blob=store.blob_path(oid), size=size, headers={"ETag": f'"{oid}"'})


ROUTES = [
    Route("/{ns}/{name}.git/info/lfs/objects/batch", batch, methods=["POST"]),
    Route("/{ns}/{name}.git/info/lfs/objects/{oid}", upload, methods=["PUT"]),
    Route("/{ns}/{name}.git/info/lfs/objects/{oid}", download, methods=["GET", "HEAD"]),
]
