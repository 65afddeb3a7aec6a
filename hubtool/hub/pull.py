"""``ORG/NAME[@REVISION]`` -> a local folder, through the huggingface_hub cache.

Any command that takes a model can take a Hub repo id instead of a spec name; this is
where it is fetched (or found in the cache, when offline).
"""

from __future__ import annotations

import re
from pathlib import Path

from hubtool.spec.catalog import is_spec_path
from hubtool.errors import HubError
from hubtool.hub.client import configure_transfer, describe_error, hub_exceptions, is_offline, resolve_endpoint

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


def pull_repo(
    repo: str, *, endpoint: str | None = None, token: str | None = None, allow_patterns: list[str] | None = None
) -> Path:
    """Download ``ORG/NAME[@REVISION]`` with snapshot_download and return its local folder.

    Honours ``endpoint``, else HF_ENDPOINT; with HF_HUB_OFFLINE set it only looks in the
    cache. Every failure (missing repo or revision, closed port, not a hub) is a one-line
    HubError.
    """
    repo_id, revision = parse_repo_ref(repo)
    url = resolve_endpoint(endpoint)
    configure_transfer(url)
    from huggingface_hub import snapshot_download

    offline = is_offline()
    try:
        folder = snapshot_download(
            repo_id, revision=revision, endpoint=url, token=token, local_files_only=offline,
            allow_patterns=allow_patterns,
        )
    except hub_exceptions() as exc:
        raise describe_error(
            exc, endpoint=url, repo_id=repo_id, revision=revision, token_sent=_token_sent(token)
        ) from None
    return Path(folder)


def _token_sent(token: str | None) -> bool:
    """Whether huggingface_hub will send a token (explicit, HF_TOKEN or a saved login)."""
    if token:
        return True
    from huggingface_hub import get_token

    return get_token() is not None
