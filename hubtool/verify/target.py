"""A TARGET argument -> the folder to verify, what it claims to be, and where it came from.

TARGET is a spec name or spec file (its built folder; the spec is the claim), any local
folder (its provenance, if any, is the claim), or a Hub repo id ``ORG/NAME[@REV]``
(fetched at one resolved commit; an unreachable hub is an error unless offline).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubtool.errors import ArtifactError, UsageError, display_path
from hubtool.evidence.provenance import Provenance, read_provenance
from hubtool.evidence.verification import Source
from hubtool.folder.names import CONFIG_FILE
from hubtool.hub.pull import REPO_REF_RE
from hubtool.spec.catalog import artifacts_root, is_spec_path, resolve_spec, spec_names

if TYPE_CHECKING:
    from hubtool.hub.transfer import ByteReport


@dataclass(frozen=True)
class Claim:
    """What the folder claims to be built from (a spec's values), when anything says so."""

    config: dict[str, Any]
    dtype: str
    seed: int
    tokenizer: str


@dataclass(frozen=True)
class Target:
    name: str
    folder: Path
    source: Source
    claim: Claim | None
    provenance: Provenance | None
    provenance_error: str | None = None

    @property
    def trained(self) -> bool:
        return bool(self.provenance and self.provenance.training)


def _provenance(folder: Path) -> tuple[Provenance | None, str | None]:
    try:
        return read_provenance(folder), None
    except ArtifactError as exc:
        return None, str(exc)


def _claim_from(prov: Provenance | None) -> Claim | None:
    if prov is None:
        return None
    return Claim(prov.spec.config, prov.spec.dtype, prov.seed, prov.spec.tokenizer)


def resolve_target(target: str, *, out: Path | str | None = None, endpoint: str | None = None,
                   offline: bool | None = None, on_bytes: ByteReport | None = None) -> Target:
    """``on_bytes(done, total)`` hears the download of a repo id (``hubtool.hub.pull.fetch_repo``)."""
    path = Path(target)
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise ArtifactError(f"{display_path(path)}: not a model folder (no {CONFIG_FILE})")
        prov, error = _provenance(path)
        source = Source(kind="folder", folder=str(path.resolve()))
        return Target(path.resolve().name, path, source, _claim_from(prov), prov, error)
    if is_spec_path(target) or target in spec_names():
        spec = resolve_spec(target)
        folder = artifacts_root(out) / spec.name
        if not (folder / CONFIG_FILE).is_file():
            raise ArtifactError(f"{display_path(folder)}: not built yet (run: hubtool build {spec.name})")
        prov, error = _provenance(folder)
        claim = Claim(spec.config, spec.dtype, spec.seed, spec.tokenizer)
        source = Source(kind="spec", folder=str(folder.resolve()), spec=str(spec.path))
        return Target(spec.name, folder, source, claim, prov, error)
    if REPO_REF_RE.match(target):
        from hubtool.hub.pull import fetch_repo

        pulled = fetch_repo(target, endpoint=endpoint, offline=offline, on_bytes=on_bytes)
        prov, error = _provenance(pulled.folder)
        source = Source(kind="hub", folder=str(pulled.folder), repo_id=pulled.repo_id, revision=pulled.revision,
                        commit=pulled.commit, endpoint=pulled.endpoint, hub_reached=pulled.hub_reached,
                        offline=pulled.offline)
        return Target(pulled.repo_id, pulled.folder, source, _claim_from(prov), prov, error)
    names = ", ".join(spec_names()) or "none"
    raise UsageError(f"'{target}' is not a folder, a spec name ({names}) or a Hub repo id ORG/NAME[@REV]")
