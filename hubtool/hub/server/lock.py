"""One server per ``--root``: an exclusive ``flock`` on ``ROOT/server.lock``.

Two servers writing one root lose each other's commits, so the second refuses to start
and names the first (pid, URL, both recorded in the lock file). The kernel drops the lock
when its process dies, however it dies, so a crashed server never leaves the root stuck.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from hubtool.errors import HubError, display_path

LOCK_NAME = "server.lock"


class RootLock:
    """Held from before the store is opened (it empties tmp/) until the server stops."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            raise HubError(f"{display_path(self.path.parent)} is already served by another staging hub ({holder}); "
                           "stop it first or choose another --root") from None
        except OSError as exc:
            os.close(fd)
            raise HubError(f"cannot lock {display_path(self.path)}: {exc.strerror or exc}") from None
        self._fd = fd

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            info = {}
        pid, url = info.get("pid"), info.get("url")
        if pid and url:
            return f"pid {pid}, {url}"
        return f"pid {pid}, starting" if pid else "starting"

    def record(self, *, url: str | None) -> None:
        """Write who holds the lock (pid, URL) for a refused second server to report."""
        if self._fd is None:
            return
        data = json.dumps({"pid": os.getpid(), "url": url}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
