"""Running a staging hub: lock the root, open the store, bind, serve with uvicorn.

uvicorn (its h11 protocol) parses HTTP: header validation and size limits, keep-alive,
unread bodies skipped, a listen backlog, TCP_NODELAY (asyncio sets it). Added here: a
deadline for the request head, so a connection that sends nothing, or a head too slowly,
is closed. ``StagingHub`` runs in a background thread (``start``/``stop``, for tests and
scripts) or in the foreground (``serve_forever``, for ``hubtool hub serve``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from hubtool.errors import HubError
from hubtool.hub.server.access import load_access
from hubtool.hub.server.app import build_app
from hubtool.hub.server.lock import RootLock
from hubtool.hub.server.web import HubState, Limits, escape
from hubtool.hub.store import Store

HEAD_TIMEOUT = 30.0  # seconds for a request head to arrive in full
KEEP_ALIVE_TIMEOUT = 15  # seconds an idle kept-alive connection stays open
BACKLOG = 2048
MAX_CONNECTIONS = 1024  # beyond this, new requests get 503
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class HeadDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus: the request head must arrive within HEAD_TIMEOUT of the
    connection opening (or of the previous answer), however slowly its bytes trickle in."""

    _head_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_deadline_passed)

    def _head_deadline_passed(self) -> None:
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.conn.send(h11.ConnectionClosed())
            self.transport.close()


class _ForwardWarnings(logging.Handler):
    """uvicorn's own warnings (invalid requests, overload) as hub log lines, escaped."""

    def __init__(self, log: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.forward = log

    def emit(self, record: logging.LogRecord) -> None:
        self.forward(escape(f"- {record.getMessage()}"))


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def default_root() -> Path:
    return Path(os.environ.get("HUBTOOL_HUB_ROOT") or "staging-hub")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        # proto must say TCP: asyncio sets TCP_NODELAY only on sockets that do (else Nagle
        # and delayed ACKs add ~40 ms to every small answer on a kept-alive connection)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:
        raise HubError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise HubError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(False)
    return sock


class StagingHub:
    """A staging hub on ``host:port`` (0: a free port) serving the repos under ``root``.

    Refuses to start when another server holds ``root``, or when it would be open (no
    ``token_file``) on an address other than loopback.
    """

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int = 0, token_file: Path | None = None,
                 log: Callable[[str], None] | None = None, limits: Limits | None = None) -> None:
        access = load_access(token_file)
        if access.open and not is_loopback(host):
            raise HubError(f"refusing to listen on {host} without --token-file: an open hub lets anyone write; "
                           "give a token file or listen on 127.0.0.1")
        self.root = Path(root)
        self.log = log or _stderr
        self.open = access.open
        self._lock = RootLock(self.root)
        self._lock.acquire()
        try:
            self.store = Store(self.root)
            self._sock = _bind(host, port)
        except BaseException:
            self._lock.release()
            raise
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._lock.record(url=self.url)
        state = HubState(store=self.store, access=access, secret=secrets.token_bytes(32), log=self.log,
                         limits=limits or Limits())
        self.app = build_app(state)
        config = uvicorn.Config(
            self.app, http=HeadDeadlineH11Protocol, ws="none", lifespan="off", interface="asgi3", loop="asyncio",
            log_config=None, access_log=False, proxy_headers=False, server_header=False,
            headers=[("Server", "hubtool-staging-hub")], backlog=BACKLOG, limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE_TIMEOUT, timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._warnings = _ForwardWarnings(self.log)
        self._closed = False

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self._sock])
        except BaseException as exc:  # noqa: BLE001 - the server thread's failure is kept and reported by start()
            self._failure = exc

    def start(self) -> StagingHub:
        """Serve in a background thread; returns once the server accepts requests."""
        logging.getLogger("uvicorn.error").addHandler(self._warnings)
        self._thread = threading.Thread(target=self._run, name="staging-hub", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                reason = f": {type(self._failure).__name__}" if self._failure else ""
                raise HubError(f"the staging hub did not start{reason}")
            time.sleep(0.005)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM (re-raised after a graceful shutdown)."""
        logging.getLogger("uvicorn.error").addHandler(self._warnings)
        try:
            self.server.run(sockets=[self._sock])
        finally:
            self.close()

    def stop(self) -> None:
        """Stop serving (finishing requests in flight, up to a few seconds) and release the root."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT)
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        logging.getLogger("uvicorn.error").removeHandler(self._warnings)
        self._sock.close()
        self._lock.release()

    def __enter__(self) -> StagingHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
