"""The staging hub: the part of the Hugging Face Hub's HTTP API that huggingface_hub and
the ``hf`` CLI use to create model repos, upload (regular and LFS files), branch, open pull
requests, list and download. Storage is hubtool.hub.store; this module only speaks HTTP.

One log line per request (never a header, never a query string). Malformed requests get a
4xx with a message; an unexpected failure in one request is a 500 for that request only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from hubtool.errors import HubError, display_path
from hubtool.hub.store import (
    SHA256_RE,
    FileEntry,
    Store,
    StoreError,
    check_path,
    check_repo_id,
    lfs_pointer,
    wants_lfs,
)

MAX_JSON_BODY = 1 << 30  # regular files travel base64 inside the commit payload
LFS_URL_TTL = 3600
_TRUE = {"1", "true", "True", "yes"}


def load_tokens(token_file: Path) -> frozenset[str]:
    """The accepted bearer tokens: one per line, blank lines and '#' comments ignored."""
    try:
        lines = Path(token_file).read_text().splitlines()
    except OSError as exc:
        raise HubError(f"cannot read token file {display_path(token_file)}: {exc.strerror or exc}") from None
    tokens = frozenset(t.strip() for t in lines if t.strip() and not t.strip().startswith("#"))
    if not tokens:
        raise HubError(f"token file {display_path(token_file)} holds no token")
    return tokens


class _ChunkedReader:
    """Reads a ``Transfer-Encoding: chunked`` request body as a plain stream."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.left = 0
        self.done = False

    def read(self, n: int) -> bytes:
        if self.done:
            return b""
        if self.left == 0:
            line = self.raw.readline(1024)
            if not line:
                return b""
            self.left = int(line.split(b";")[0].strip() or b"0", 16)
            if self.left == 0:
                while self.raw.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                self.done = True
                return b""
        data = self.raw.read(min(n, self.left))
        self.left -= len(data)
        if self.left == 0:
            self.raw.readline(1024)
        return data

    def read_all(self, limit: int) -> bytes:
        parts, total = [], 0
        while chunk := self.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise StoreError(413, "request body too large")
            parts.append(chunk)
        return b"".join(parts)


class HubApp:
    """Routing, auth and JSON shapes; one instance shared by all request threads."""

    def __init__(self, root: Path, *, tokens: frozenset[str] | None = None, log: Callable[[str], None] | None = None):
        self.store = Store(root)
        self.tokens = tokens
        self.secret = secrets.token_bytes(32)
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hubtool-staging-hub"
    app: HubApp  # set on the subclass made by make_server

    # -- plumbing --------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        """Silence the default access log (it would print query strings); see _log."""

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        """Requests too malformed to reach _dispatch (bad request line, huge headers) still get their line."""
        self.app.log(f"{self.client_address[0]} - {format % args}")

    def _log(self, status: int) -> None:
        ms = (time.perf_counter() - self._started) * 1000
        path = urlsplit(self.path).path
        self.app.log(f"{self.client_address[0]} {self.command} {path} {status} {ms:.0f}ms")

    def _dispatch(self) -> None:
        self._started = time.perf_counter()
        self._body_read = False
        self._status = 500
        try:
            self._route()
        except StoreError as exc:
            self._error(exc.status, str(exc), exc.code)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            self._error(400, f"malformed request: {type(exc).__name__}: {exc}")
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            self._status = 499  # client went away
        except Exception as exc:  # one bad request must never take the server down
            self._error(500, f"internal error: {type(exc).__name__}: {exc}")
        self._log(self._status)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _dispatch

    def _base_url(self) -> str:
        host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
        return f"http://{host}"

    def _body(self, limit: int = MAX_JSON_BODY) -> bytes:
        self._body_read = True
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return _ChunkedReader(self.rfile).read_all(limit)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > limit:
            raise StoreError(413, "request body too large")
        return self.rfile.read(length)

    def _json_body(self) -> Any:
        raw = self._body()
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            raise StoreError(400, "request body is not valid JSON") from None

    def _send(self, status: int, body: bytes = b"", *, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        if not self._body_read and self.command in ("POST", "PUT") and self.headers.get("Content-Length") != "0":
            self.close_connection = True  # unread body: the connection cannot be reused
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)

    def _error(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        extra = dict(headers or {})
        extra["X-Error-Message"] = message.encode("ascii", "replace").decode()[:300]
        if code:
            extra["X-Error-Code"] = code
        try:
            self._json({"error": message}, status, extra)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    # -- auth ------------------------------------------------------------------------
    def _authed(self) -> bool:
        """Whether the request carries a valid token (always true for a hub without tokens)."""
        header = self.headers.get("Authorization") or ""
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        if self.app.tokens is None:
            return True
        if token is None:
            return False
        if not any(hmac.compare_digest(token, t) for t in self.app.tokens):
            raise StoreError(401, "Invalid credentials in Authorization header")
        return True

    def _require_write(self) -> None:
        if not self._authed():
            raise StoreError(401, "a token is required to write to this hub (Authorization: Bearer ...)")

    def _visible_repo(self, repo_id: str) -> dict[str, Any]:
        meta = self.app.store.repo_meta(repo_id)
        if meta is None or (meta["private"] and not self._authed()):
            raise StoreError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        return meta

    # -- routing ---------------------------------------------------------------------
    def _route(self) -> None:
        parts = [unquote(p) for p in urlsplit(self.path).path.split("/")[1:]]
        self._query = parse_qs(urlsplit(self.path).query)
        self._authed()  # a wrong token is refused everywhere, as the Hub does
        method = self.command
        if parts[:2] == ["api", "repos"] and parts[2:] == ["create"] and method == "POST":
            return self._create_repo()
        if parts[:2] == ["api", "whoami-v2"] and method == "GET":
            return self._whoami()
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            self._body()
            return self._json({"errors": [], "warnings": []})
        if parts[:1] == ["api"] and len(parts) >= 4 and parts[1] in ("models", "datasets", "spaces"):
            if parts[1] != "models":
                raise StoreError(404, f"this staging hub only stores model repos, not {parts[1]}", "RepoNotFound")
            return self._api(f"{parts[2]}/{parts[3]}", parts[4:], method)
        if len(parts) >= 5 and parts[1].endswith(".git") and parts[2:5] == ["info", "lfs", "objects"]:
            return self._lfs(f"{parts[0]}/{parts[1][:-4]}", parts[5:], method)
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            revision, rest = _take_revision(parts, 3)
            return self._resolve(f"{parts[0]}/{parts[1]}", revision, "/".join(rest))
        raise StoreError(404, f"no such endpoint: {method} {urlsplit(self.path).path}")

    def _api(self, repo_id: str, rest: list[str], method: str) -> None:
        check_repo_id(repo_id)
        meta = self._visible_repo(repo_id)
        action = rest[0] if rest else ""
        if method == "GET" and action in ("", "revision"):
            revision = _take_revision(rest, 1)[0] if action == "revision" else None
            return self._info(repo_id, meta, revision)
        if method == "GET" and action == "tree":
            revision, path = _take_revision(rest, 1)
            return self._tree(repo_id, revision, "/".join(path))
        if method == "POST" and action == "paths-info":
            return self._paths_info(repo_id, _take_revision(rest, 1)[0])
        if method == "GET" and action == "refs":
            return self._refs(repo_id)
        if method == "GET" and action == "commits":
            return self._commits(repo_id, _take_revision(rest, 1)[0] if len(rest) > 1 else None)
        if method == "POST" and action == "preupload":
            self._require_write()
            return self._preupload(repo_id, _take_revision(rest, 1)[0])
        if method == "POST" and action == "commit":
            self._require_write()
            return self._commit(repo_id, _take_revision(rest, 1)[0])
        if method == "POST" and action == "branch" and len(rest) >= 2:
            self._require_write()
            body = self._json_body()
            self.app.store.create_branch(repo_id, "/".join(rest[1:]), starting_point=body.get("startingPoint"))
            return self._json({})
        raise StoreError(404, f"no such endpoint: {method} {urlsplit(self.path).path}")

    # -- endpoints -------------------------------------------------------------------
    def _whoami(self) -> None:
        if self.app.tokens is not None and not self._authed():
            raise StoreError(401, "a token is required")
        self._json({"type": "user", "name": "staging", "fullname": "staging hub user", "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"role": "write"}}})

    def _create_repo(self) -> None:
        self._require_write()
        body = self._json_body()
        name, org = body.get("name"), body.get("organization")
        if body.get("type") not in (None, "model"):
            raise StoreError(400, "this staging hub only stores model repos")
        if not org and isinstance(name, str) and "/" in name:
            org, name = name.split("/", 1)
        if not isinstance(name, str) or not isinstance(org, str):
            raise StoreError(400, "repo creation needs 'name' and 'organization' (ORG/NAME)")
        repo_id = f"{org}/{name}"
        check_repo_id(repo_id)
        private = bool(body.get("private")) or body.get("visibility") == "private"
        url = f"{self._base_url()}/{repo_id}"
        if not self.app.store.create_repo(repo_id, private=private):
            message = "You already created this model repo"
            return self._json({"error": message, "url": url}, 409, {"X-Error-Message": message})
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _info(self, repo_id: str, meta: dict[str, Any], revision: str | None) -> None:
        store = self.app.store
        commit_id = store.resolve(repo_id, revision)
        commit = store.commit(repo_id, commit_id)
        files = store.files(repo_id, commit_id)
        blobs = self._query.get("blobs", ["false"])[0] in _TRUE
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
        self._json({
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
            "author": repo_id.split("/")[0], "sha": commit_id, "lastModified": commit["date"],
            "createdAt": meta["createdAt"], "private": meta["private"], "disabled": False, "gated": False,
            "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
            "usedStorage": sum(e.size for e in files.values()),
        })

    def _entries(self, repo_id: str, revision: str | None) -> tuple[str, dict[str, FileEntry], set[str]]:
        commit_id = self.app.store.resolve(repo_id, revision)
        files = self.app.store.files(repo_id, commit_id)
        folders = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
        return commit_id, files, folders

    @staticmethod
    def _file_json(entry: FileEntry) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": entry.path}
        if entry.lfs:
            out["lfs"] = {"oid": entry.sha256, "size": entry.size,
                          "pointerSize": len(lfs_pointer(entry.sha256, entry.size))}
        return out

    @staticmethod
    def _folder_json(path: str, files: dict[str, FileEntry]) -> dict[str, Any]:
        inside = sorted(f"{p}:{e.git_oid}" for p, e in files.items() if p.startswith(path + "/"))
        return {"type": "directory", "oid": hashlib.sha1("\n".join(inside).encode()).hexdigest(), "size": 0, "path": path}

    def _tree(self, repo_id: str, revision: str | None, path: str) -> None:
        commit_id, files, folders = self._entries(repo_id, revision)
        path = path.strip("/")
        if path and path not in folders:
            raise StoreError(404, f"Entry not found: {path}", "EntryNotFound")
        recursive = self._query.get("recursive", ["false"])[0] in _TRUE
        prefix = f"{path}/" if path else ""
        out = []
        for folder in sorted(folders):
            if folder.startswith(prefix) and (recursive or "/" not in folder[len(prefix):]):
                out.append(self._folder_json(folder, files))
        for name in sorted(files):
            if name.startswith(prefix) and (recursive or "/" not in name[len(prefix):]):
                out.append(self._file_json(files[name]))
        self._json(out, headers={"X-Repo-Commit": commit_id})

    def _paths_info(self, repo_id: str, revision: str | None) -> None:
        raw = self._body()
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            paths = json.loads(raw or b"{}").get("paths", [])
        else:
            paths = parse_qs(raw.decode()).get("paths", [])
        if isinstance(paths, str):
            paths = [paths]
        _, files, folders = self._entries(repo_id, revision)
        out = []
        for path in paths:
            path = str(path).strip("/")
            if path in files:
                out.append(self._file_json(files[path]))
            elif path in folders:
                out.append(self._folder_json(path, files))
        self._json(out)

    def _refs(self, repo_id: str) -> None:
        refs = self.app.store.refs(repo_id)
        branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in sorted(refs["branches"].items())]
        prs = [{"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": c}
               for n, c in sorted(refs["prs"].items(), key=lambda kv: int(kv[0]))]
        include_prs = self._query.get("include_prs", ["0"])[0] in _TRUE
        self._json({"branches": branches, "converts": [], "tags": [], **({"pullRequests": prs} if include_prs else {})})

    def _commits(self, repo_id: str, revision: str | None) -> None:
        store = self.app.store
        history = store.history(repo_id, store.resolve(repo_id, revision))
        self._json([{"id": c["id"], "title": c["title"], "message": c["message"], "date": c["date"],
                     "authors": [{"user": "staging"}]} for c in history])

    def _preupload(self, repo_id: str, revision: str | None) -> None:
        body = self._json_body()
        commit_id = self.app.store.resolve(repo_id, revision)
        existing = self.app.store.files(repo_id, commit_id)
        out = []
        for item in body.get("files", []):
            path = check_path(item.get("path"))
            size = int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample") or "")
            entry = existing.get(path)
            out.append({
                "path": path,
                "uploadMode": "lfs" if wants_lfs(path, size, sample) else "regular",
                "shouldIgnore": False,
                "oid": entry.remote_oid if entry else None,
            })
        self._json({"files": out, "commitOid": commit_id})

    def _commit(self, repo_id: str, revision: str | None) -> None:
        raw = self._body()
        lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
        if (self.headers.get("Content-Type") or "").startswith("application/json") and len(lines) == 1 \
                and isinstance(lines[0], dict) and "key" not in lines[0]:
            lines = _json_commit_to_lines(lines[0])
        header: dict[str, Any] = {}
        operations: list[tuple[str, Any]] = []
        store = self.app.store
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "header":
                header = value
            elif key == "file":
                path = check_path(value["path"])
                if value.get("encoding", "base64") == "base64":
                    data = base64.b64decode(value["content"], validate=True)
                else:
                    data = str(value["content"]).encode()
                operations.append(("add", FileEntry.regular(path, data, store.put_bytes(data))))
            elif key == "lfsFile":
                path = check_path(value["path"])
                oid = str(value["oid"]).lower()
                if value.get("algo", "sha256") != "sha256" or not SHA256_RE.match(oid):
                    raise StoreError(400, f"lfsFile '{path}' needs a sha256 oid")
                if not store.repo_has_object(repo_id, oid):
                    raise StoreError(422, f"LFS object {oid} for '{path}' was not uploaded to {repo_id}")
                size = int(value.get("size") or store.blob_path(oid).stat().st_size)
                operations.append(("add", FileEntry.large(path, oid, size)))
            elif key in ("deletedFile", "deletedFolder"):
                kind = "delete" if key == "deletedFile" else "delete_folder"
                operations.append((kind, check_path(value["path"].rstrip("/"))))
            else:
                raise StoreError(400, f"unknown commit operation '{key}'")
        if not isinstance(header.get("summary"), str) or not header["summary"].strip():
            raise StoreError(400, "the commit needs a header with a summary")
        create_pr = self._query.get("create_pr", ["0"])[0] in _TRUE
        commit_id, pr = store.apply_commit(
            repo_id, revision or "main", operations=operations, title=header["summary"],
            message=header.get("description") or "", parent_commit=header.get("parentCommit"), create_pr=create_pr,
        )
        base = f"{self._base_url()}/{repo_id}"
        self._json({"success": True, "commitOid": commit_id, "commitUrl": f"{base}/commit/{commit_id}",
                    "hookOutput": "", "pullRequestUrl": f"{base}/discussions/{pr}" if pr else None})

    # -- LFS -------------------------------------------------------------------------
    def _signature(self, repo_id: str, oid: str, size: int, expires: int) -> str:
        return hmac.new(self.app.secret, f"{repo_id}\n{oid}\n{size}\n{expires}".encode(), "sha256").hexdigest()

    def _lfs(self, repo_id: str, rest: list[str], method: str) -> None:
        check_repo_id(repo_id)
        if rest == ["batch"] and method == "POST":
            return self._lfs_batch(repo_id)
        if len(rest) == 1 and method == "PUT":
            return self._lfs_put(repo_id, rest[0])
        if len(rest) == 1 and method in ("GET", "HEAD"):
            self._visible_repo(repo_id)
            if not self.app.store.repo_has_object(repo_id, rest[0]):
                raise StoreError(404, f"LFS object {rest[0]} not found", "EntryNotFound")
            return self._send_blob(rest[0], self.app.store.blob_path(rest[0]).stat().st_size, {})
        raise StoreError(404, f"no such endpoint: {method} {urlsplit(self.path).path}")

    def _lfs_batch(self, repo_id: str) -> None:
        body = self._json_body()
        operation = body.get("operation")
        if operation == "upload":
            self._require_write()
        self._visible_repo(repo_id)
        expires = int(time.time()) + LFS_URL_TTL
        objects = []
        for obj in body.get("objects", []):
            oid, size = str(obj.get("oid", "")).lower(), obj.get("size")
            if not SHA256_RE.match(oid) or not isinstance(size, int) or size < 0:
                objects.append({"oid": str(oid), "size": size if isinstance(size, int) else 0,
                                "error": {"code": 422, "message": "oid must be a sha256 and size an integer"}})
                continue
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            stored = self.app.store.repo_has_object(repo_id, oid, size)
            base = f"{self._base_url()}/{quote(repo_id)}.git/info/lfs/objects/{oid}"
            if operation == "upload" and not stored:
                query = f"size={size}&expires={expires}&signature={self._signature(repo_id, oid, size, expires)}"
                entry["actions"] = {"upload": {"href": f"{base}?{query}", "header": {}, "expires_in": LFS_URL_TTL}}
            elif operation == "download":
                if not stored:
                    entry["error"] = {"code": 404, "message": "Object does not exist"}
                else:
                    entry["actions"] = {"download": {"href": base, "header": {}}}
            objects.append(entry)
        self._json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                   headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_put(self, repo_id: str, oid: str) -> None:
        q = {k: v[0] for k, v in self._query.items()}
        try:
            size, expires = int(q["size"]), int(q["expires"])
        except (KeyError, ValueError):
            raise StoreError(403, "upload URL is not signed (ask the batch endpoint for one)") from None
        expected = self._signature(repo_id, oid, size, expires)
        if not hmac.compare_digest(expected, q.get("signature", "")) or expires < time.time():
            raise StoreError(403, "upload URL signature is invalid or expired")
        if not SHA256_RE.match(oid):
            raise StoreError(400, "LFS oid must be a sha256")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        if not chunked and int(self.headers.get("Content-Length") or -1) != size:
            raise StoreError(400, f"Content-Length must be the object size {size}")
        self._body_read = True
        stream = _ChunkedReader(self.rfile) if chunked else self.rfile
        if self.app.store.repo_meta(repo_id) is None:
            raise StoreError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        if self.app.store.repo_has_object(repo_id, oid, size):  # already there: drain and accept
            remaining = size
            while remaining and (chunk := stream.read(min(1 << 20, remaining))):
                remaining -= len(chunk)
        else:
            try:
                self.app.store.put_stream(stream, size=size, expect_sha256=oid)
            except StoreError:
                self.close_connection = True
                raise
            self.app.store.mark_object(repo_id, oid)
        self._json({})

    # -- downloads -------------------------------------------------------------------
    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        check_repo_id(repo_id)
        self._visible_repo(repo_id)
        commit_id, files, _ = self._entries(repo_id, revision)
        entry = files.get(path)
        if entry is None:
            return self._error(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit_id})
        headers = {"X-Repo-Commit": commit_id, "ETag": f'"{entry.sha256 if entry.lfs else entry.git_oid}"'}
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)})
        self._send_blob(entry.sha256, entry.size, headers)

    def _send_blob(self, sha256: str, size: int, headers: dict[str, str]) -> None:
        start, end = 0, size - 1
        status = 200
        wanted = self.headers.get("Range")
        if wanted and size > 0:
            try:
                unit, spec = wanted.split("=", 1)
                first, last = spec.split(",")[0].strip().split("-")
                if unit.strip() != "bytes":
                    raise ValueError
                if first:
                    start, end = int(first), min(int(last), size - 1) if last else size - 1
                else:
                    start, end = max(size - int(last), 0), size - 1
            except ValueError:
                raise StoreError(400, f"malformed Range header {wanted!r}") from None
            if start > end or start >= size:
                return self._error(416, "requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(end - start + 1, 0)
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        with open(self.app.store.blob_path(sha256), "rb") as fh:
            self.wfile.flush()
            self.connection.sendfile(fh, offset=start, count=length)


def _take_revision(parts: list[str], index: int) -> tuple[str | None, list[str]]:
    """The revision at ``parts[index]`` and what follows; accepts refs/pr/N left unquoted."""
    if index >= len(parts):
        return None, []
    if parts[index] == "refs" and len(parts) >= index + 3 and parts[index + 1] in ("pr", "heads", "convert"):
        return "/".join(parts[index:index + 3]), parts[index + 3:]
    return parts[index], parts[index + 1:]


def _json_commit_to_lines(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The older JSON commit payload (summary/files/lfsFiles/deletedFiles) as NDJSON lines."""
    lines = [{"key": "header", "value": {k: body.get(k) for k in ("summary", "description", "parentCommit")}}]
    lines += [{"key": "file", "value": f} for f in body.get("files", [])]
    lines += [{"key": "lfsFile", "value": f} for f in body.get("lfsFiles", [])]
    lines += [{"key": "deletedFile", "value": f} for f in body.get("deletedFiles", [])]
    return lines


class StagingHub:
    """A running staging hub (in a background thread, or in the foreground with serve_forever)."""

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int = 0,
                 token_file: Path | None = None, log: Callable[[str], None] | None = None) -> None:
        tokens = load_tokens(token_file) if token_file else None
        self.app = HubApp(Path(root), tokens=tokens, log=log)
        handler = type("BoundHandler", (Handler,), {"app": self.app})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise HubError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "StagingHub":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="staging-hub", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "StagingHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def default_root() -> Path:
    return Path(os.environ.get("HUBTOOL_HUB_ROOT") or "staging-hub")
