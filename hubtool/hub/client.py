"""Shared plumbing for talking to a hub through huggingface_hub.

Which endpoint to use, switching Xet off where it cannot work, and turning the many
exceptions huggingface_hub and its HTTP client raise into one-line HubErrors.
huggingface_hub is imported inside functions so that ``hubtool --help`` stays fast.
"""

from __future__ import annotations

import importlib
import json
import os
from urllib.parse import urlsplit

from hubtool.errors import HubError

DEFAULT_ENDPOINT = "https://huggingface.co"
_XET_HOSTS = ("huggingface.co", "hf.co")
_TRUE = {"1", "true", "yes", "on"}


def resolve_endpoint(endpoint: str | None = None) -> str:
    """``endpoint``, else HF_ENDPOINT (read now, not at import), else the Hub."""
    chosen = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    parts = urlsplit(chosen)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HubError(f"'{chosen}' is not an http(s) URL of a hub")
    return chosen.rstrip("/")


def is_offline() -> bool:
    """HF_HUB_OFFLINE from the environment now, or as huggingface_hub read it at import."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE


def configure_transfer(endpoint: str) -> None:
    """Switch Xet off for any endpoint but the Hub itself: a staging hub has no Xet storage,
    and with hf_xet installed every LFS upload would try Xet and fail."""
    from huggingface_hub import constants

    host = (urlsplit(endpoint).hostname or "").lower()
    if not any(host == h or host.endswith("." + h) for h in _XET_HOSTS):
        constants.HF_HUB_DISABLE_XET = True


def xet_enabled() -> bool:
    """Whether huggingface_hub sends LFS files through Xet now (after ``configure_transfer``)."""
    import importlib.util

    from huggingface_hub import constants

    return not constants.HF_HUB_DISABLE_XET and importlib.util.find_spec("hf_xet") is not None


def make_api(endpoint: str, token: str | None = None):
    """An HfApi bound to ``endpoint`` (HF_ENDPOINT is only read at import; this is not)."""
    from huggingface_hub import HfApi

    configure_transfer(endpoint)
    return HfApi(endpoint=endpoint, token=token)


def _http_error_types() -> tuple[type[BaseException], ...]:
    """The HTTP client's own errors (httpx2 for huggingface_hub 2.x, httpx for 1.x)."""
    found = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).HTTPError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def hub_exceptions() -> tuple[type[BaseException], ...]:
    """What a hub call raises for reasons outside hubtool: catch these, and only these.

    Connection and HTTP failures (OSError covers huggingface_hub's HTTP errors and offline
    mode), huggingface_hub's validation and parsing errors, and an answer that is not JSON.
    A KeyError or TypeError is a bug in hubtool and keeps its traceback.
    """
    from huggingface_hub import errors

    names = ("HFValidationError", "EntryNotFoundError", "RevisionResolutionError", "SafetensorsParsingError",
             "NotASafetensorsRepoError")
    found = tuple(getattr(errors, name) for name in names if hasattr(errors, name))
    return (OSError, json.JSONDecodeError, *found, *_http_error_types())


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _server_message(response) -> str:
    message = response.headers.get("X-Error-Message") or ""
    if not message:
        try:
            message = str(json.loads(response.text).get("error", ""))
        except (ValueError, AttributeError):
            message = ""
    return " ".join(message.split())[:200]


def describe_error(
    exc: BaseException,
    *,
    endpoint: str,
    repo_id: str | None = None,
    revision: str | None = None,
    token_sent: bool = False,
) -> HubError:
    """One line saying what went wrong with ``repo_id`` at ``endpoint``, and what to do."""
    from huggingface_hub import errors as hf_errors

    repo = f"'{repo_id}'" if repo_id else "the repo"
    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    for err in chain:
        if isinstance(err, hf_errors.OfflineModeIsEnabled) or (
            isinstance(err, hf_errors.LocalEntryNotFoundError) and is_offline()
        ):
            return HubError(
                f"{repo_id}{'@' + revision if revision else ''} is not in the local cache and offline mode "
                "is on (HF_HUB_OFFLINE); unset it or download the repo first"
            )
    for err in chain:
        if isinstance(err, hf_errors.RevisionNotFoundError):
            return HubError(f"revision '{revision or 'main'}' not found in {repo} at {endpoint}")
        if isinstance(err, hf_errors.RepositoryNotFoundError):
            hint = "" if token_sent else "; if it is private, set HF_TOKEN or run `hf auth login`"
            return HubError(f"repo {repo} not found at {endpoint}{hint}")
        if isinstance(err, hf_errors.RemoteEntryNotFoundError):
            return HubError(f"a file of {repo} is missing at {endpoint} (revision '{revision or 'main'}')")
        if isinstance(err, hf_errors.HfHubHTTPError) and getattr(err, "response", None) is not None:
            response = err.response
            status = response.status_code
            message = _server_message(response)
            if status == 401:
                if token_sent:
                    return HubError(f"{endpoint} rejected the token (401 Unauthorized); "
                                    "check HF_TOKEN or `hf auth login`")
                return HubError(f"{endpoint} requires a token (401 Unauthorized); set HF_TOKEN or run `hf auth login`")
            if status == 403:
                return HubError(f"the token may not write to {repo} at {endpoint} (403 Forbidden)")
            if status == 404 and not response.headers.get("X-Error-Code"):
                return HubError(f"{endpoint} does not look like a Hugging Face Hub (HTTP 404 for {response.url.path})")
            detail = f": {message}" if message else ""
            return HubError(f"{endpoint} answered HTTP {status} for {repo}{detail}")
    if names & {"ConnectError", "ConnectionRefusedError", "ConnectTimeout"}:
        return HubError(f"cannot connect to {endpoint} (connection refused or host unreachable); is the hub running?")
    if names & {"ReadTimeout", "TimeoutException", "WriteTimeout", "PoolTimeout", "TimeoutError"}:
        return HubError(f"{endpoint} did not answer in time")
    if names & {"JSONDecodeError", "FileMetadataError", "RemoteProtocolError", "DecodingError"}:
        return HubError(f"{endpoint} does not look like a Hugging Face Hub (its answer is not the Hub's API)")
    if any(isinstance(e, ValueError) and ("Malformed" in str(e) or "improperly formatted" in str(e)) for e in chain):
        return HubError(f"{endpoint} does not look like a Hugging Face Hub (malformed answer)")
    first = " ".join(str(exc).split())[:200] or type(exc).__name__
    return HubError(f"talking to {endpoint} about {repo} failed: {first}")
