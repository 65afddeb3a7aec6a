"""``ORG/NAME[@REVISION]`` -> a local folder, through the huggingface_hub cache.

Any command that takes a model can take a Hub repo id instead of a spec name; this is
where it is fetched (or found in the cache, when offline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hubtool.errors import HubError
from hubtool.hub.client import (
    configure_transfer,
    describe_error,
    hub_exceptions,
    is_offline,
    make_api,
    resolve_endpoint,
)
from hubtool.spec.catalog import is_spec_path

if TYPE_CHECKING:
    from hubtool.hub.transfer import ByteReport

_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
REPO_REF_RE = re.compile(rf"^(?P<repo>{_PART}/{_PART})(?:@(?P<rev>[^\s@]+))?$")


def parse_repo_ref(repo: str) -> tuple[str, str | None]:
    """``ORG/NAME[@REVISION]`` -> (repo id, revision or None); a HubError otherwise."""
    match = REPO_REF_RE.match(repo)
    if not match or ".." in match.group("repo"):
        raise HubError(f"'{repo}' is not a repo id (expected ORG/NAME or ORG/NAME@REVISION)")
    return match.group("repo"), match.group("rev")


def is_repo_id(target: str) -> bool:
    """True for ``ORG/NAME[@REV]`` that is not an existing local path nor a spec file name."""
    return bool(REPO_REF_RE.match(target)) and not is_spec_path(target) and not Path(target).exists()


@dataclass(frozen=True)
class Pulled:
    """A repo's files on disk, and exactly what was fetched from where."""

    folder: Path
    repo_id: str
    revision: str | None  # as asked
    commit: str  # the commit the files are at
    endpoint: str
    hub_reached: bool  # False: a cached copy was used and the hub was not contacted
    offline: bool


def pull_repo(
    repo: str, *, endpoint: str | None = None, token: str | None = None, allow_patterns: list[str] | None = None,
    offline: bool | None = None,
) -> Path:
    """The local folder of ``fetch_repo``."""
    return fetch_repo(repo, endpoint=endpoint, token=token, allow_patterns=allow_patterns, offline=offline).folder


def fetch_repo(
    repo: str, *, endpoint: str | None = None, token: str | None = None, allow_patterns: list[str] | None = None,
    offline: bool | None = None, on_bytes: ByteReport | None = None,
) -> Pulled:
    """Download ``ORG/NAME[@REVISION]`` at one resolved commit and return where it is.

    The hub is asked first which commit the revision names; an unreachable hub is an
    error, never a silent fall-back to a cached copy. Only ``offline`` (default:
    HF_HUB_OFFLINE) uses the cache without contacting the hub, and says so.
    ``on_bytes(done, total)`` hears the bytes downloaded (first ``(0, None)``, before the
    hub is asked); huggingface_hub's own bars are then not drawn.
    """
    repo_id, revision = parse_repo_ref(repo)
    url = resolve_endpoint(endpoint)
    configure_transfer(url)
    from huggingface_hub import snapshot_download

    from hubtool.hub.transfer import download_bars

    offline = is_offline() if offline is None else offline
    with download_bars(on_bytes) as bars:
        try:
            if offline:
                folder = Path(snapshot_download(repo_id, revision=revision, endpoint=url, token=token,
                                                local_files_only=True, allow_patterns=allow_patterns, **bars))
                return Pulled(folder, repo_id, revision, folder.name, url, hub_reached=False, offline=True)
            # Ask the hub first: snapshot_download alone falls back to a cached copy when the hub is down.
            commit = make_api(url, token).model_info(repo_id, revision=revision).sha
            folder = Path(snapshot_download(repo_id, revision=revision, endpoint=url, token=token,
                                            allow_patterns=allow_patterns, **bars))
        except hub_exceptions() as exc:
            raise describe_error(
                exc, endpoint=url, repo_id=repo_id, revision=revision, token_sent=_token_sent(token)
            ) from None
    # The snapshot folder is named by the commit it holds (a push in between moves the branch).
    commit = folder.name if re.fullmatch(r"[0-9a-f]{40}", folder.name) else commit
    return Pulled(folder, repo_id, revision, commit or folder.name, url, hub_reached=True, offline=False)


def _token_sent(token: str | None) -> bool:
    """Whether huggingface_hub will send a token (explicit, HF_TOKEN or a saved login)."""
    if token:
        return True
    from huggingface_hub import get_token

    return get_token() is not None
