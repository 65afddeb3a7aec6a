"""Audit a model card (any card, not only hubtool's) against the files it describes.

Claims are read from the card's tables ("| Parameters | 25M |"), key-value lines
("Layers: 3"), prose ("has 4.6M parameters", "compatible with vLLM", "randomly
initialised") and its front-matter tags, then each is checked against what the folder's
files measure and what verification found. Every contradiction names the claim, its line
in the card and the measured value.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from hubtool.folder.facts import folder_facts
from hubtool.folder.names import CARD_FILE

# claim -> names a card may use for it (compared after lowercasing; parentheses split off).
ALIASES: dict[str, tuple[str, ...]] = {
    "parameters": ("parameters", "params", "parameter count", "# params", "#params", "number of parameters",
                   "total parameters", "model parameters", "num parameters"),
    "n_layer": ("n_layer", "layers", "num layers", "number of layers", "num_hidden_layers", "depth",
                "transformer layers", "n_layers"),
    "n_embd": ("n_embd", "hidden size", "hidden_size", "embedding dimension", "embedding size", "d_model",
               "width", "embedding dim", "hidden dim", "model dimension"),
    "n_head": ("n_head", "heads", "attention heads", "num heads", "num_attention_heads", "number of heads",
               "n_heads"),
    "n_inner": ("n_inner", "feed-forward size", "intermediate size", "intermediate_size", "ffn size", "ffn dim",
                "mlp size", "feed-forward dimension", "mlp dim", "inner size"),
    "n_positions": ("n_positions", "context length", "context window", "max position embeddings",
                    "max_position_embeddings", "max sequence length", "context size", "sequence length"),
    "vocab_size": ("vocab_size", "vocab size", "vocabulary size", "vocabulary"),
    "precision": ("precision", "dtype", "torch_dtype", "data type", "weights dtype", "tensor type"),
    "model_size": ("model size", "size", "file size", "checkpoint size", "weights size", "disk size",
                   "size on disk"),
}
_ALIAS_TO_CLAIM = {alias: claim for claim, names in ALIASES.items() for alias in names}

BACKEND_PATTERNS = {
    "vllm": re.compile(r"\bvllm\b", re.I),
    "compile": re.compile(r"torch\.compile|\binductor\b", re.I),
    "sdpa": re.compile(r"\bsdpa\b|scaled[ _-]dot[ _-]product", re.I),
    "eager": re.compile(r"\beager\b|^\W*(hugging ?face )?transformers\W*$", re.I),
}
_YES = re.compile(r"^\s*(?:[✅✓✔☑]|\W*(?:yes|supported|compatible|works|passed)\b)", re.I)
_NO = re.compile(r"^\s*(?:[❌✗✘✖]|\W*(?:no|unsupported|not supported|incompatible|fails?|failed)\b)", re.I)
_PROSE_SUPPORT = re.compile(
    r"\b(?P<neg>not |n't |in)?(?:compatible with|supports?|works with|runs (?:on|with|under)|tested with|"
    r"verified with|loads in)\s+(?P<what>vllm|sdpa|torch\.compile|inductor)", re.I)

_TRAINED_NO = re.compile(r"\b(randomly[ -]initiali[sz]ed|random(?:ly)?[ -]init\w*|random weights|not trained|"
                         r"untrained|no training)\b", re.I)
_TRAINED_YES = re.compile(r"\b(custom[ -]trained|fine[ -]?tuned|pre-?trained on|trained (?:on|for|with)|"
                          r"we trained)\b|^\W*trained\b", re.I)

_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
_PARAM_PROSE = re.compile(_NUMBER + r"\s*([kmb])?\s*(?:parameters|params)\b", re.I)
_SCALED = re.compile(_NUMBER + r"\s*([kmbt])?\b", re.I)
_SIZE = re.compile(_NUMBER + r"\s*(bytes|b|kb|mb|gb|kib|mib|gib)\b", re.I)
_DTYPE = re.compile(r"\b(float32|fp32|f32|float16|fp16|f16|half|bfloat16|bf16|float64|fp64)\b", re.I)
_DTYPE_CANON = {"fp32": "float32", "f32": "float32", "fp16": "float16", "f16": "float16", "half": "float16",
                "bf16": "bfloat16", "fp64": "float64"}
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_UNIT = {"bytes": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


@dataclass
class Claim:
    claim: str
    stated: str
    line: int
    text: str
    measured: Any = None
    status: str = "unchecked"  # ok | contradiction | unchecked
    detail: str = ""


def _sig_round_matches(stated: str, actual: float) -> bool:
    """True when ``actual`` rounds to ``stated`` at the precision the card wrote.

    Trailing zeros of a whole number are not significant ("50M" allows 45M..55M), so the
    usual roundings ("25M" for 25,016,064, "100M" for 96,088,320) pass while "4.6M" for
    102,714 does not.
    """
    digits = stated.replace(",", "")
    value = Decimal(digits)
    if value == 0:
        return actual == 0
    if "." in digits:
        sig = len(digits.replace(".", "").lstrip("0"))
    else:
        sig = len(digits.rstrip("0")) or 1
    magnitude = math.floor(math.log10(abs(float(value))))
    quantum = 10 ** (magnitude - sig + 1)
    return abs(actual - float(value)) <= quantum / 2 + 1e-9 * quantum


def _check_count(stated: str, suffix: str | None, actual: int) -> bool:
    if suffix:
        return _sig_round_matches(stated, actual / _SUFFIX[suffix.lower()])
    return int(Decimal(stated.replace(",", ""))) == actual if "." not in stated else False


def _split_key_value(line: str) -> tuple[str, str] | None:
    """``| key | value |`` or ``key: value`` / ``key = value`` -> (key, value)."""
    clean = line.replace("**", "").replace("`", "").strip()
    if clean.startswith("|"):
        cells = [c.replace("\0", "|").strip() for c in clean.replace("\\|", "\0").strip("|").split("|")]
        if len(cells) >= 2 and cells[0] and not set(cells[0]) <= set("-: "):
            return cells[0], cells[1]
        return None
    clean = re.sub(r"^[-*+]\s+", "", clean)
    match = re.match(r"^([A-Za-z#_][\w #()/.-]{0,40}?)\s*[:=]\s*(.+)$", clean)
    return (match.group(1), match.group(2)) if match else None


def _claim_for_key(key: str) -> str | None:
    lowered = key.lower().strip()
    candidates = [re.sub(r"\s*\(.*?\)\s*", " ", lowered).strip(), *re.findall(r"\((.*?)\)", lowered), lowered]
    for candidate in candidates:
        if candidate in _ALIAS_TO_CLAIM:
            return _ALIAS_TO_CLAIM[candidate]
    return None


def _backend_for_key(key: str) -> str | None:
    for backend, pattern in BACKEND_PATTERNS.items():
        if pattern.search(key):
            return backend
    return None


def extract_claims(text: str) -> list[Claim]:
    """Every checkable claim in a card, with its 1-based line number."""
    claims: list[Claim] = []
    lines = text.splitlines()
    body_start = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
        for i in range(1, end):
            tag = lines[i].strip().lstrip("- ").strip().lower()
            if tag in ("random-weights", "untrained", "random-init"):
                claims.append(Claim("trained", "no", i + 1, lines[i].strip()))
            elif tag in ("trained", "fine-tuned", "custom-trained"):
                claims.append(Claim("trained", "yes", i + 1, lines[i].strip()))
        body_start = end + 1
    in_code = False
    for index in range(body_start, len(lines)):
        raw = lines[index]
        if raw.strip().startswith("```"):
            in_code = not in_code
            continue
        if in_code or not raw.strip():
            continue
        number, snippet = index + 1, raw.strip()[:160]
        pair = _split_key_value(raw)
        claim = _claim_for_key(pair[0]) if pair else None
        backend = _backend_for_key(pair[0]) if pair and claim is None else None
        if pair and claim:
            claims.append(Claim(claim, pair[1].strip(), number, snippet))
        elif pair and backend and (_YES.match(pair[1]) or _NO.match(pair[1])):
            claims.append(Claim(f"backend:{backend}", "yes" if _YES.match(pair[1]) else "no", number, snippet))
        else:
            for match in _PARAM_PROSE.finditer(raw):
                claims.append(Claim("parameters", match.group(0), number, snippet))
            for match in _PROSE_SUPPORT.finditer(raw):
                what = match.group("what").lower()
                what = "compile" if what in ("torch.compile", "inductor") else what
                claims.append(Claim(f"backend:{what}", "no" if match.group("neg") else "yes", number, snippet))
        if _TRAINED_NO.search(raw):
            claims.append(Claim("trained", "no", number, snippet))
        elif _TRAINED_YES.search(raw):
            claims.append(Claim("trained", "yes", number, snippet))
    return claims


def _check(claim: Claim, facts: dict[str, Any], backends: dict[str, Any] | None) -> None:
    name, stated = claim.claim, claim.stated
    if name == "parameters":
        claim.measured = facts["parameters"]
        match = _PARAM_PROSE.search(stated) or _SCALED.search(stated)
        if not match:
            claim.detail = "no number found"
            return
        ok = _check_count(match.group(1), match.group(2), facts["parameters"])
        claim.status, claim.detail = (
            ("ok", "") if ok else ("contradiction", f"measured {facts['parameters']:,} parameters"))
    elif name in ("n_layer", "n_embd", "n_head", "n_inner", "n_positions", "vocab_size"):
        claim.measured = facts[name]
        match = re.search(_NUMBER, stated)
        if not match or "." in match.group(1) or facts[name] is None:
            claim.detail = "no whole number found"
            return
        value = int(match.group(1).replace(",", ""))
        claim.status = "ok" if value == facts[name] else "contradiction"
        claim.detail = "" if claim.status == "ok" else f"config.json has {name} = {facts[name]:,}"
    elif name == "precision":
        claim.measured = facts["weights"]["dtype"]
        match = _DTYPE.search(stated)
        if not match:
            claim.detail = "no dtype found"
            return
        said = _DTYPE_CANON.get(match.group(1).lower(), match.group(1).lower())
        claim.status = "ok" if said == claim.measured else "contradiction"
        claim.detail = "" if claim.status == "ok" else f"the weight files store {claim.measured}"
    elif name == "model_size":
        actual = facts["weights"]["bytes"]
        claim.measured = actual
        match = _SIZE.search(stated)
        if not match:
            claim.detail = "no size with a unit found"
            return
        unit = _UNIT[match.group(2).lower()]
        ok = (_sig_round_matches(match.group(1), actual / unit) if unit > 1
              else int(match.group(1).replace(",", "")) == actual)
        claim.status = "ok" if ok else "contradiction"
        claim.detail = "" if ok else (f"the weight files are {actual:,} bytes "
                                      f"({actual / 1e6:,.2f} MB, {actual / 2**20:,.2f} MiB)")
    elif name == "trained":
        if facts.get("trained") is None:  # not known without reading the weights (a claims-only audit)
            claim.detail = "not checked: the weights were not read"
            return
        claim.measured = "yes" if facts["trained"] else "no"
        claim.status = "ok" if stated == claim.measured else "contradiction"
        claim.detail = "" if claim.status == "ok" else (
            "the weights are trained" if facts["trained"] else "the weights are at their random initialisation"
        )
    elif name.startswith("backend:"):
        backend = name.split(":", 1)[1]
        cell = (backends or {}).get(backend)
        status = cell["status"] if cell else None
        claim.measured = status or "not verified"
        if status is None and backends and stated == "yes":
            claim.status, claim.detail = "contradiction", f"the verification never ran {backend}"
            return
        if status in (None, "unavailable"):
            claim.detail = "not verified here" if status is None else "backend not installed where verified"
            return
        works = status in ("passed", "partial")
        claim.status = "ok" if (stated == "yes") == works else "contradiction"
        if claim.status == "contradiction":
            reason = f": {cell['reason']}" if cell and cell.get("reason") else ""
            claim.detail = f"verification: {status}{reason}"


def audit_text(text: str, facts: dict[str, Any], *, backends: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check a card's claims against ``facts`` (``hubtool.folder.facts``) and verified backend statuses.

    ``backends`` is a verification report's "backends" mapping (None: not verified).
    Status: passed, failed (a contradiction) or no-claims (nothing checkable).
    """
    claims = extract_claims(text)
    for claim in claims:
        _check(claim, facts, backends)
    contradictions = sum(c.status == "contradiction" for c in claims)
    checked = sum(c.status != "unchecked" for c in claims)
    status = "failed" if contradictions else ("passed" if checked else "no-claims")
    return {
        "status": status,
        "file": CARD_FILE,
        "claims": [asdict(c) for c in claims],
        "contradictions": contradictions,
        "checked": checked,
    }


_MEASURED_NUMBER = re.compile(r"\d[\d,.]*\s*(?:ms|milliseconds?|tokens?/s|tok/s|it/s|x faster|GB/s)\b", re.I)


def unverified_numbers(text: str) -> list[dict[str, Any]]:
    """Latency and throughput figures a card states that no measurement file here can back."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        found = _MEASURED_NUMBER.findall(line)
        if found:
            out.append({"line": number, "text": line.strip()[:160], "values": found[:5]})
    return out


def audit_card(folder: Path, *, backends: dict[str, Any] | None = None) -> dict[str, Any]:
    """Audit the folder's README.md: its claims against the files, its numbers against the evidence.

    A card with measurements.json is re-checked number by number (``hubtool.card.recheck``);
    one without has its claims checked against the files, and its latency and throughput
    figures listed as unverified. Status: passed, failed (a contradiction), no-claims, no-card.
    """
    from hubtool.card.prose import superlative_problems
    from hubtool.card.recheck import recheck
    from hubtool.errors import ArtifactError
    from hubtool.evidence.card import CardMeasurements
    from hubtool.folder.names import MEASUREMENTS_FILE

    card = folder / CARD_FILE
    if not card.is_file():
        return {"status": "no-card", "file": CARD_FILE, "claims": [], "contradictions": 0, "checked": 0,
                "unverified": [], "recheck": None, "superlatives": []}
    text = card.read_text(encoding="utf-8", errors="replace")
    try:
        facts = folder_facts(folder)
    except ArtifactError as exc:  # a broken config or weight header: nothing to check the claims against
        return {"status": "failed", "file": CARD_FILE, "claims": [], "contradictions": 1, "checked": 0,
                "unverified": [], "recheck": {"problems": [f"the files cannot be read: {exc}"], "lines": []},
                "superlatives": []}
    result = audit_text(text, facts, backends=backends)
    again = recheck(folder)
    try:
        rows = (CardMeasurements.load(folder / MEASUREMENTS_FILE) or None)
    except ArtifactError:
        rows = None
    family = rows.family if rows else []
    current = rows.model if rows else folder.name
    superlatives = [{"line": line, "claim": claim, "detail": detail}
                    for line, claim, detail in superlative_problems(text, family, current)]
    contradictions = result["contradictions"] + len(superlatives)
    if again is not None:
        contradictions += len(again["problems"]) + len(again["lines"])
    result.update(
        recheck=again,
        superlatives=superlatives,
        unverified=[] if again is not None else unverified_numbers(text),
        contradictions=contradictions,
    )
    if contradictions:
        result["status"] = "failed"
    elif again is not None and again["status"] == "passed":
        result["status"] = "passed"
    return result


def contradiction_lines(audit: dict[str, Any]) -> list[str]:
    """One readable line per contradiction: where, what the card says, what was measured."""
    lines = [
        f"{audit['file']}:{c['line']}: {c['claim']} '{c['stated']}' contradicts the files: {c['detail']}"
        for c in audit["claims"] if c["status"] == "contradiction"
    ]
    lines += [f"{audit['file']}:{s['line']}: '{s['claim']}' contradicts the family table: {s['detail']}"
              for s in audit.get("superlatives", [])]
    again = audit.get("recheck") or {}
    lines += list(again.get("problems", []))
    for d in again.get("lines", []):
        wanted = (f"the evidence renders '{d['evidence']}'" if d["evidence"] is not None
                  else "the evidence renders no such line")
        lines.append(f"{audit['file']}:{d['line']}: '{d['card'][:120]}' is not what the measurements show; "
                     f"{wanted[:160]}")
    return lines
