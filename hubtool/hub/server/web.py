"""HTTP plumbing every route shares: the hub's state, who is asking, bodies read under a cap,
URL parts decoded one segment at a time, and error answers in the Hub's shape.

Routing runs on the raw (still percent-encoded) path so that an encoded ``/`` inside a
revision or a branch name stays inside it; each route decodes its own parts. Nothing a
client sent ever reaches a response header unescaped, and no answer names a server path.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from hubtool.hub.server.access import Access, User
from hubtool.hub.store import Store, StoreError, check_repo_id

_timeout = getattr(asyncio, "timeout", None)
TRUE = {"1", "true", "True", "yes"}
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


@dataclass(frozen=True)
class Limits:
    """Request body caps (checked before anything is buffered) and the idle timeout of a body."""

    json_bytes: int = 8 << 20  # API calls: repo creation, preupload lists, LFS batches, ...
    commit_bytes: int = 128 << 20  # regular files travel base64 inside the commit payload
    lfs_bytes: int = 50 << 30  # one LFS object (the Hub's own per-file limit)
    body_idle_seconds: float = 60.0


@dataclass
class HubState:
    """What every request handler needs; one per running hub."""

    store: Store
    access: Access
    secret: bytes
    log: Callable[[str], None]
    limits: Limits = field(default_factory=Limits)


def hub(request: Request) -> HubState:
    return request.app.state.hub


# -- text that leaves the server ---------------------------------------------------------
def escape(text: str) -> str:
    """Control characters (and line separators) as escapes: safe in a log line or a header."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 32 or code == 127 or 0x80 <= code < 0xA0 or ch in "\u2028\u2029":
            out.append(f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def header_value(text: str, *, limit: int = 300) -> str:
    return escape(text).encode("ascii", "backslashreplace").decode()[:limit]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None, *,
                  media_type: str = "application/json") -> Response:
    return Response(json.dumps(data).encode(), status_code=status, headers=headers, media_type=media_type)


def error_response(status: int, message: str, code: str | None = None, *, headers: dict[str, str] | None = None,
                   close: bool = False) -> Response:
    extra = {**(headers or {}), "X-Error-Message": header_value(message)}
    if code:
        extra["X-Error-Code"] = code
    if close:
        extra["Connection"] = "close"
    return Response(json.dumps({"error": message}).encode(), status_code=status, headers=extra,
                    media_type="application/json")


Handler = Callable[[Request], Awaitable[Response]]


def endpoint(fn: Handler) -> Handler:
    """Every failure inside a route becomes an answer: StoreError as itself, malformed input
    as 400, a vanished client as 499 (logged only), anything else as a 500 without details."""

    async def run(request: Request) -> Response:
        try:
            user_of(request)  # a token no one owns is refused everywhere, as the Hub does
            return await fn(request)
        except StoreError as exc:
            return error_response(exc.status, str(exc), exc.code, close=exc.status in (408, 413))
        except ClientDisconnect:
            return Response(status_code=499)
        except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error) as exc:
            return error_response(400, f"malformed request: {type(exc).__name__}: {exc}"[:300])
        except Exception as exc:  # noqa: BLE001 - logged and answered as a 500: one bad request must never take the server down
            state = hub(request)
            state.log(escape(f"internal error in {request.method} {request.url.path}: "
                             + "".join(traceback.format_exception_only(type(exc), exc)).strip()))
            return error_response(500, f"internal error ({type(exc).__name__}); the server log has the details")

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


# -- URL parts ---------------------------------------------------------------------------
def part(request: Request, name: str) -> str:
    """One path parameter, percent-decoded (routing ran on the encoded path)."""
    return unquote(request.path_params[name], errors="strict")


def repo_id_of(request: Request) -> str:
    repo_id = f"{part(request, 'ns')}/{part(request, 'name')}"
    check_repo_id(repo_id)
    return repo_id


def take_revision(raw: str) -> tuple[str, str]:
    """An encoded ``REVISION[/PATH]`` -> (revision, path). The client encodes '/' inside a
    revision; ``refs/pr/N``, ``refs/heads/B`` and ``refs/tags/T`` sent unencoded work too."""
    segments = raw.split("/")
    if segments[0] == "refs" and len(segments) >= 3 and segments[1] in ("pr", "heads", "tags", "convert"):
        revision, rest = "/".join(segments[:3]), segments[3:]
    else:
        revision, rest = segments[0], segments[1:]
    return unquote(revision, errors="strict"), "/".join(unquote(s, errors="strict") for s in rest)


def query_flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false") in TRUE


def base_url(request: Request) -> str:
    """The URL the client used to reach this hub (its Host header), for URLs in answers."""
    host = request.headers.get("host") or "{}:{:d}".format(*request.scope["server"][:2])
    return f"http://{host}"


# -- who is asking -----------------------------------------------------------------------
def user_of(request: Request) -> User | None:
    try:
        return request.state.user
    except AttributeError:
        request.state.user = hub(request).access.identify(request.headers.get("authorization"))
        return request.state.user


def require_user(request: Request) -> User:
    user = user_of(request)
    if user is None:
        raise StoreError(401, "a token is required to write to this hub (Authorization: Bearer ...)")
    return user


def require_namespace(user: User, namespace: str) -> None:
    if not user.owns(namespace):
        raise StoreError(403, f"You don't have the rights to write under the namespace {namespace!r}")


def check_visible(store: Store, user: User | None, repo_id: str) -> dict[str, Any]:
    """The repo's metadata, or RepoNotFound when it does not exist or ``user`` may not see it."""
    meta = store.repo_meta(repo_id)
    if meta is None or not Access.can_read(user, repo_id, meta):
        raise StoreError(404, f"Repository not found: {repo_id}", "RepoNotFound")
    return meta


async def visible_repo(request: Request, repo_id: str) -> dict[str, Any]:
    return await run_in_threadpool(check_visible, hub(request).store, user_of(request), repo_id)


async def writable_repo(request: Request, repo_id: str) -> tuple[dict[str, Any], User]:
    """A repo the asker may change: 404 when unseen, 401 without a token, 403 outside its namespaces."""
    meta = await visible_repo(request, repo_id)
    user = require_user(request)
    require_namespace(user, repo_id.split("/")[0])
    return meta, user


# -- bodies ------------------------------------------------------------------------------
async def body_chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body as it arrives, refused (413) as soon as it is declared or seen to be
    longer than ``limit``, and (408) when the client stops sending for too long."""
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > limit:
        raise StoreError(413, f"request body too large (limit {limit:,} bytes)")
    idle = hub(request).limits.body_idle_seconds
    total = 0
    while True:
        try:
            message = await _within(idle, request.receive())
        except asyncio.TimeoutError:
            raise StoreError(408, "the request body stopped arriving") from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise StoreError(413, f"request body too large (limit {limit:,} bytes)")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _within(seconds: float, awaitable: Awaitable[Any]) -> Any:
    """``awaitable`` or asyncio.TimeoutError after ``seconds``. asyncio.timeout (3.11+) costs
    no extra task, which matters once per received chunk of a large upload."""
    if _timeout is None:  # Python 3.10
        return await asyncio.wait_for(awaitable, seconds)
    async with _timeout(seconds):
        return await awaitable


async def read_body(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in body_chunks(request, limit)])


async def read_json(request: Request, limit: int | None = None) -> Any:
    raw = await read_body(request, limit or hub(request).limits.json_bytes)
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise StoreError(400, "request body is not valid JSON") from None
    return data


async def read_json_object(request: Request) -> dict[str, Any]:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise StoreError(400, "request body must be a JSON object")
    return data


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run blocking store work off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def elapsed_ms(start: float) -> str:
    return f"{(time.perf_counter() - start) * 1000:.0f}ms"
