"""On-disk storage of the staging hub: durable, content-addressed, all-or-nothing.

``names``: what a repo id, a file path, a branch or tag name may be. ``blobs``: atomic,
fsynced writes and content-addressed blobs. ``repos``: repos and their refs. ``commits``:
commits and pull requests. The HTTP layer (hubtool.hub.server) only talks to ``Store``.
"""

from hubtool.hub.store.blobs import FileEntry, Upload, git_blob_oid, lfs_pointer, wants_lfs
from hubtool.hub.store.commits import Store, conflicting_files
from hubtool.hub.store.names import (
    COMMIT_RE,
    SHA256_RE,
    StoreError,
    check_namespace,
    check_path,
    check_ref_name,
    check_repo_id,
)
from hubtool.hub.store.repos import DEFAULT_BRANCH

__all__ = [
    "COMMIT_RE", "DEFAULT_BRANCH", "SHA256_RE", "FileEntry", "Store", "StoreError", "Upload", "check_namespace",
    "check_path", "check_ref_name", "check_repo_id", "conflicting_files", "git_blob_oid", "lfs_pointer", "wants_lfs",
]
