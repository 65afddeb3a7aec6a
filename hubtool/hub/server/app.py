"""The staging hub as one ASGI application: every route module's routes, ``whoami``, the
access log, and routing on the encoded path.

One log line per request: client, method, path (control characters escaped, never a query
string or a header), status, milliseconds. Anything unmatched is a JSON 404 in the Hub's
shape, so clients report it as such.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubtool.hub.server import commits, files, lfs, refs, repos
from hubtool.hub.server.web import ANY_METHOD, HubState, endpoint, escape, json_response, read_body, require_user
from hubtool.hub.store import StoreError


@endpoint
async def whoami(request: Request) -> Response:
    user = require_user(request)
    return json_response({
        "type": "user", "id": user.name, "name": user.name, "fullname": user.name, "isPro": False,
        "orgs": [{"type": "org", "name": org, "fullname": org} for org in user.orgs],
        "auth": {"type": "access_token", "accessToken": {"displayName": "staging hub token", "role": "write"}},
    })


@endpoint
async def validate_yaml(request: Request) -> Response:
    await read_body(request, request.app.state.hub.limits.json_bytes)
    return json_response({"errors": [], "warnings": []})


@endpoint
async def unknown(request: Request) -> Response:
    path = request.scope.get("raw_path", b"").decode("latin-1")
    if path.startswith(("/api/datasets/", "/api/spaces/", "/datasets/", "/spaces/")):
        raise StoreError(404, "this staging hub only stores model repos", "RepoNotFound")
    raise StoreError(404, f"no such endpoint: {request.method} {path}")


class AccessLog:
    """Logs every request once, as its answer's last byte goes out; routes the app on the still-encoded path.

    The line is written before that last byte is sent, so a client that has its answer finds the request
    already in the log (a reader of the log never sees it trail the traffic it describes).
    """

    def __init__(self, app: ASGIApp, state: HubState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 499  # what is logged when the client leaves before an answer
        logged = False

        def log() -> None:
            nonlocal logged
            if not logged:
                logged = True
                client = (scope.get("client") or ("-",))[0]
                ms = (time.perf_counter() - started) * 1000
                self.state.log(f"{client} {scope['method']} {escape(scope['path'])} {status} {ms:.0f}ms")

        async def logged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                log()
            await send(message)

        raw = scope.get("raw_path") or scope["path"].encode()
        routed = {**scope, "path": raw.decode("latin-1"), "root_path": ""}
        try:
            await self.app(routed, receive, logged_send)
        finally:
            log()


def build_app(state: HubState) -> Any:
    routes = [
        Route("/api/whoami-v2", whoami, methods=["GET"]),
        Route("/api/validate-yaml", validate_yaml, methods=["POST"]),
        *repos.ROUTES, *files.ROUTES, *commits.ROUTES, *lfs.ROUTES, *refs.ROUTES,
        Route("/{anything:path}", unknown, methods=ANY_METHOD),
    ]
    app = Starlette(routes=routes)
    app.state.hub = state
    return AccessLog(app, state)
