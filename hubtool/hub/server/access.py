"""Who a request is, and what it may see and change.

A staging hub started with ``--token-file`` knows users by their tokens. The file has one
token per line, then the user it belongs to, then (optionally) the organisations that user
is a member of, comma-separated::

    # token                       user     organisations
    hf_alice_0123456789abcdef     alice    research,Crusadersk
    hf_bob_0123456789abcdef       bob
    hf_ci_0123456789abcdef        ci       *

A token writes only to its user's namespace and its organisations' (``*``: every
namespace); private repos are visible only to those who may write to them; a request
without a token reads public repos and writes nothing; an unknown token is refused (401).
A line holding a token alone (the older format) is the user ``staging`` with ``*``.

Without a token file the hub is open: every request, with any token or none, is the user
``staging`` with ``*``; the server then listens on loopback addresses only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from hubtool.errors import HubError, display_path
from hubtool.hub.store import StoreError
from hubtool.hub.store.names import NAME_RE

OPEN_USER = "staging"
_COMMENT_RE = re.compile(r"(^|\s)#.*$")


@dataclass(frozen=True)
class User:
    """A token's owner: its name, its organisations, or every namespace (``everywhere``)."""

    name: str
    orgs: tuple[str, ...] = ()
    everywhere: bool = False

    def owns(self, namespace: str) -> bool:
        return self.everywhere or namespace == self.name or namespace in self.orgs


@dataclass(frozen=True)
class Access:
    """The users a hub knows (by sha256 of their token); ``open`` when it has no token file."""

    users: dict[bytes, User] = field(default_factory=dict)
    open: bool = True

    def identify(self, authorization: str | None) -> User | None:
        """The user behind an ``Authorization`` header; None for anonymous; 401 for a token no one owns."""
        if self.open:
            return User(OPEN_USER, everywhere=True)
        token = _bearer(authorization)
        if token is None:
            return None
        user = self.users.get(hashlib.sha256(token.encode()).digest())
        if user is None:
            raise StoreError(401, "Invalid credentials in Authorization header")
        return user

    @staticmethod
    def can_read(user: User | None, repo_id: str, meta: dict) -> bool:
        return not meta.get("private") or (user is not None and user.owns(repo_id.split("/")[0]))


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def load_access(token_file: Path | None) -> Access:
    """The access rules of a hub: open without a token file, else the users it lists."""
    if token_file is None:
        return Access()
    where = display_path(token_file)
    try:
        lines = Path(token_file).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise HubError(f"cannot read token file {where}: {getattr(exc, 'strerror', None) or exc}") from None
    users: dict[bytes, User] = {}
    for number, line in enumerate(lines, 1):
        fields = _COMMENT_RE.sub("", line).split()
        if not fields:
            continue
        if len(fields) > 3:
            raise HubError(f"{where}:{number}: expected 'TOKEN USER [ORG1,ORG2]', got {len(fields)} fields")
        token, name, orgs = fields[0], (fields[1] if len(fields) > 1 else OPEN_USER), fields[2:]
        if not NAME_RE.match(name):
            raise HubError(f"{where}:{number}: {name!r} is not a user name")
        org_names = tuple(o for o in (orgs[0].split(",") if orgs else []) if o)
        everywhere = len(fields) == 1 or "*" in org_names
        bad = [o for o in org_names if o != "*" and not NAME_RE.match(o)]
        if bad:
            raise HubError(f"{where}:{number}: {bad[0]!r} is not an organisation name")
        key = hashlib.sha256(token.encode()).digest()
        if key in users:
            raise HubError(f"{where}:{number}: this token already appears on an earlier line")
        users[key] = User(name, tuple(o for o in org_names if o != "*"), everywhere)
    if not users:
        raise HubError(f"token file {where} holds no token")
    return Access(users=users, open=False)
