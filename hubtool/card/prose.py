"""Comparative statements about a model, computed from its family's table, and their audit.

"Fewest layers of the family" or "half the width of gpt2-100m" must be true or absent, so
cards never carry such words from hand-written text: they are computed here from the
family rows (depth, width, parameters), and ``superlative_problems`` catches a card that
claims a superlative its family table does not support.
"""

from __future__ import annotations

import re
from typing import Any

_ORDINAL = {1: "", 2: "2nd ", 3: "3rd "}


def _rank_phrase(value: int, values: list[int], *, low: str, high: str, unit: str) -> str | None:
    """'the shallowest' / 'the 2nd deepest' / 'tied for the deepest' or None for the middle."""
    distinct_low = sorted(set(values))
    distinct_high = distinct_low[::-1]
    ties = values.count(value) > 1
    for order, word in ((distinct_low, low), (distinct_high, high)):
        position = order.index(value) + 1
        if position <= 2 and len(distinct_low) > 2 or position == 1:
            prefix = "tied for " if ties else ""
            return f"{prefix}the {_ORDINAL.get(position, f'{position}th ')}{word}{unit}"
    return None


def statements(rows: list[dict[str, Any]], current: str) -> list[str]:
    """True comparative sentences about ``current`` among ``rows`` (name, n_layer, n_embd, parameters)."""
    if len(rows) < 2:
        return []
    me = next(r for r in rows if r["name"] == current)
    others = [r for r in rows if r["name"] != current]
    depths, widths, params = [r["n_layer"] for r in rows], [r["n_embd"] for r in rows], [r["parameters"] for r in rows]
    out = []
    depth = _rank_phrase(me["n_layer"], depths, low="shallowest", high="deepest", unit="")
    out.append(f"{me['n_layer']} layers: {depth} of the {len(rows)} models." if depth else
               f"{me['n_layer']} layers: between {min(depths)} and {max(depths)}, the family's range of depths.")
    width = _rank_phrase(me["n_embd"], widths, low="narrowest", high="widest", unit="")
    out.append(f"{me['n_embd']} wide (n_embd): {width} of the {len(rows)} models." if width else
               f"{me['n_embd']} wide (n_embd): between {min(widths)} and {max(widths)}.")
    size = _rank_phrase(me["parameters"], params, low="smallest", high="largest", unit="")
    if size:
        out.append(f"{me['parameters']:,} parameters: {size} of the {len(rows)} models.")
    same_depth = [r["name"] for r in others if r["n_layer"] == me["n_layer"]]
    if same_depth:
        out.append(f"Same depth as {', '.join(same_depth)}; it differs from "
                   f"{'them' if len(same_depth) > 1 else 'it'} in width.")
    same_width = [r["name"] for r in others if r["n_embd"] == me["n_embd"]]
    if same_width:
        out.append(f"Same width as {', '.join(same_width)}; it differs in depth.")
    # Depth and size ranked differently from a neighbour: the comparison the family exists for.
    for other in others:
        if (other["n_layer"] - me["n_layer"]) * (other["parameters"] - me["parameters"]) < 0:
            deeper, bigger = (me, other) if me["n_layer"] > other["n_layer"] else (other, me)
            out.append(f"{deeper['name']} is deeper ({deeper['n_layer']} vs {bigger['n_layer']} layers) but smaller "
                       f"({deeper['parameters'] / bigger['parameters']:.2f}x the parameters) than {bigger['name']}.")
    return out


# Superlatives a card may claim, and the row field and direction they are about.
_SUPERLATIVES = {
    r"fewest layers|shallowest|least deep": ("n_layer", min),
    r"most layers|deepest": ("n_layer", max),
    r"narrowest|smallest (?:width|hidden size)": ("n_embd", min),
    r"widest|largest (?:width|hidden size)": ("n_embd", max),
    r"fewest parameters|smallest model|smallest of the family": ("parameters", min),
    r"most parameters|largest model|largest of the family": ("parameters", max),
}


def superlative_problems(text: str, rows: list[dict[str, Any]], current: str) -> list[tuple[int, str, str]]:
    """(line, the claim, what the family table says) for every superlative the table contradicts."""
    if len(rows) < 2 or not any(r["name"] == current for r in rows):
        return []
    me = next(r for r in rows if r["name"] == current)
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, (key, pick) in _SUPERLATIVES.items():
            for match in re.finditer(rf"\b(?:the )?(?:{pattern})\b", line, re.I):
                before = line[max(0, match.start() - 8):match.start()].lower()
                if "not the" in before or re.search(r"\d(?:st|nd|rd|th) $", before):
                    continue  # "not the deepest", "the 2nd deepest": not a superlative claim
                best = pick(r[key] for r in rows)
                if me[key] != best:
                    holder = ", ".join(r["name"] for r in rows if r[key] == best)
                    problems.append((number, match.group(0),
                                     f"{current} has {key} {me[key]:,}; {holder} has {best:,}"))
    return problems
