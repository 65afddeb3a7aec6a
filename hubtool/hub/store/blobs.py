"""Durable files and content-addressed blobs.

Everything the staging hub writes goes through here: a temp file under ``tmp/``, fsynced,
renamed into place, and the folder that received it fsynced too, so that what a response
acknowledged is on disk even if the machine loses power right after. Blobs are named by
their sha256 and never change; an upload is hashed while it is written and published only
when its bytes match the sha256 it claimed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubtool.hub.store.names import SHA256_RE, StoreError

LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
# The Hub's default .gitattributes sends these to LFS whatever their size.
LFS_SUFFIXES = (
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gz", ".h5", ".joblib", ".mlmodel", ".model",
    ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt", ".pth",
    ".rar", ".safetensors", ".tar", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst",
)


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what git and the Hub call a regular file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def wants_lfs(path: str, size: int, sample: bytes) -> bool:
    """The Hub's rule: LFS for large files, binary files and the default LFS suffixes."""
    return size > 0 and (size >= LFS_SIZE_THRESHOLD or path.lower().endswith(LFS_SUFFIXES) or b"\0" in sample)


@dataclass(frozen=True)
class FileEntry:
    """One file of a commit: where its bytes are and what the Hub reports about it."""

    path: str
    sha256: str
    size: int
    lfs: bool
    git_oid: str  # git blob id: of the content (regular file) or of the LFS pointer

    @classmethod
    def regular(cls, path: str, data: bytes, sha256: str) -> FileEntry:
        return cls(path, sha256, len(data), False, git_blob_oid(data))

    @classmethod
    def large(cls, path: str, sha256: str, size: int) -> FileEntry:
        return cls(path, sha256, size, True, git_blob_oid(lfs_pointer(sha256, size)))

    @classmethod
    def from_json(cls, path: str, meta: dict[str, Any]) -> FileEntry:
        return cls(path, meta["sha256"], meta["size"], meta["lfs"], meta["git_oid"])

    @property
    def remote_oid(self) -> str:
        """What huggingface_hub compares a local file with: sha256 for LFS, the git blob id otherwise."""
        return self.sha256 if self.lfs else self.git_oid

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "lfs": self.lfs, "git_oid": self.git_oid}


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DurableFiles:
    """Atomic, fsynced writes into a root whose ``tmp/`` holds nothing but work in progress."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"

    def write_bytes(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="file-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)

    def write_json(self, path: Path, data: Any) -> None:
        self.write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())

    # -- blobs ------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        if SHA256_RE.match(sha256) is None:
            return False
        try:
            found = self.blob_path(sha256).stat().st_size
        except OSError:
            return False
        return size is None or found == size

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not self.has_blob(sha, len(data)):
            upload = self.new_upload()
            upload.write(data)
            upload.finish(expect_sha256=sha, expect_size=len(data))
        return sha

    def new_upload(self) -> Upload:
        return Upload(self)

    def publish_blob(self, tmp: Path, sha256: str) -> None:
        target = self.blob_path(sha256)
        if not target.parent.is_dir():
            target.parent.mkdir(exist_ok=True)
            fsync_dir(target.parent.parent)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        fsync_dir(target.parent)


class Upload:
    """Bytes arriving in chunks: written to a temp file and hashed as they come.

    ``finish`` publishes them as a blob when size and sha256 match; ``abort`` (or any
    refusal) leaves nothing behind.
    """

    def __init__(self, files: DurableFiles) -> None:
        self.files = files
        fd, tmp = tempfile.mkstemp(dir=files.tmp, prefix="upload-")
        self.path = Path(tmp)
        self.fh = os.fdopen(fd, "wb")
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.fh.write(chunk)
        self.size += len(chunk)

    def write_all(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def finish(self, *, expect_sha256: str, expect_size: int) -> None:
        try:
            if self.size != expect_size:
                raise StoreError(400, f"upload has {self.size} bytes, expected {expect_size}")
            if self.digest.hexdigest() != expect_sha256:
                raise StoreError(400, f"uploaded bytes have sha256 {self.digest.hexdigest()}, expected {expect_sha256}")
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            self.files.publish_blob(self.path, expect_sha256)
        finally:
            self.abort()

    def abort(self) -> None:
        if not self.fh.closed:
            self.fh.close()
        self.path.unlink(missing_ok=True)
