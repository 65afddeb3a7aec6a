"""Is this README.md the card rendered for these exact files? The gate push applies.

A card passes when measurements.json records the sha256 of this README.md, of the model
files as they are now, and of every report it was rendered from as they are now, and names
the repo being pushed to. File times play no part: a copied folder keeps its card, and one
changed byte in any measured file stales it.
"""

from __future__ import annotations

from pathlib import Path

from hubtool.errors import ArtifactError
from hubtool.evidence.card import CardMeasurements
from hubtool.folder.hashing import folder_identity, identity_changes, sha256_file
from hubtool.folder.names import CARD_FILE, MEASUREMENTS_FILE


def card_problems(folder: Path, *, name: str, repo_id: str | None = None,
                  identity: dict[str, str] | None = None) -> list[str]:
    """Why the folder's card may not be published (empty: it may)."""
    card = folder / CARD_FILE
    if not card.is_file():
        return [f"there is no {CARD_FILE}; run `hubtool card {name}`"]
    try:
        m = CardMeasurements.load(folder / MEASUREMENTS_FILE)
    except ArtifactError as exc:
        return [f"{exc}; run `hubtool card {name}`"]
    if m is None:
        return [f"{CARD_FILE} has no {MEASUREMENTS_FILE} beside it, so nothing binds it to the files; "
                f"run `hubtool card {name}`"]
    problems = []
    if m.card_sha256 != sha256_file(card):
        problems.append(f"{CARD_FILE} is not the card rendered from {MEASUREMENTS_FILE} (edited since); "
                        f"run `hubtool card {name}`")
    changes = identity_changes(m.subject, identity if identity is not None else folder_identity(folder))
    if changes:
        problems.append(f"{CARD_FILE} was rendered for other files ({'; '.join(changes)}); run `hubtool card {name}`")
    for rel, digest in sorted(m.sources.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"{CARD_FILE} was rendered from {rel}, which is gone; run `hubtool card {name}`")
        elif sha256_file(path) != digest:
            problems.append(f"{CARD_FILE} was rendered from an earlier {rel}; run `hubtool card {name}`")
    if repo_id is not None and m.repo_id != repo_id:
        namespace = repo_id.split("/")[0]
        problems.append(f"{CARD_FILE} names {m.repo_id} but the push goes to {repo_id}; "
                        f"run `hubtool card {name} --namespace {namespace}`")
    return problems
