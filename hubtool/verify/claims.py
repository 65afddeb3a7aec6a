"""``hubtool verify TARGET --claims-only``: audit a card against its files, weights unread.

For a Hub repo the facts come from hubtool.folder.remote (config.json, README.md and the
safetensors headers through range reads), so re-checking a published card costs a few
requests and kilobytes. A local folder or spec name works too (its files are on disk).
The card is audited by hubtool.card.audit.audit_text, the same rules a full verify uses;
the result is a small JSON report naming the endpoint, repo and the commit it read.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hubtool.card.audit import audit_text
from hubtool.folder.io import write_json
from hubtool.folder.names import CARD_FILE

SCHEMA = "hubtool.claims/1"


def _no_card() -> dict[str, Any]:
    return {"status": "no-card", "file": CARD_FILE, "claims": [], "contradictions": 0, "checked": 0}


def report_name(target: str) -> str:
    """A file name for the report: ``org--name[--rev].json`` (no path separators, no '@')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "--", target).strip("-") + ".json"


def check_claims(
    target: str,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    out_json: Path | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Audit ``target``'s card (repo id ORG/NAME[@REV], folder or spec name); write and return the report.

    The report goes to ``out_json``, else ``<artifacts root>/claims/<target>.json``.
    Status: failed (a claim contradicts the files, or a header is inconsistent), passed,
    no-claims or no-card.
    """
    from hubtool.hub.pull import is_repo_id
    from hubtool.spec.catalog import artifacts_root, built_folder

    start = time.perf_counter()
    if is_repo_id(target):
        from hubtool.folder.remote import remote_facts

        repo = remote_facts(target, endpoint=endpoint, token=token)
        card, facts = repo.card, repo.facts
        where = {"endpoint": repo.endpoint, "repo": repo.repo_id, "revision": repo.revision, "commit": repo.commit,
                 "folder": None}
        files_read, problems = repo.files_read, repo.header_problems
    else:
        from hubtool.folder.facts import folder_facts

        folder = built_folder(target, out)
        path = folder / CARD_FILE
        card = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
        facts = folder_facts(folder)
        where = {"endpoint": None, "repo": None, "revision": None, "commit": None, "folder": str(folder)}
        files_read, problems = {name: "local file" for name in sorted(facts["weights"]["files"])}, []
    audit = audit_text(card, facts) if card is not None else _no_card()
    status = "failed" if audit["contradictions"] or problems else audit["status"]
    report = {
        "schema": SCHEMA,
        "target": target,
        **where,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": status,
        "files_read": files_read,
        "header_problems": problems,
        "facts": {k: v for k, v in facts.items() if k != "training"},
        "claims": audit,
        "seconds": round(time.perf_counter() - start, 3),
    }
    path = Path(out_json) if out_json else artifacts_root(out) / "claims" / report_name(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)
    report["report_path"] = str(path)
    return report
