"""How confounded a family's design is: does depth rank with parameter count across its models?

A family built to ask "does latency follow layer count or parameter count?" can only answer
if its models do not order the two the same way. When depth ranks follow parameter ranks,
every correlation of latency with one is forced onto the other by the design, whatever the
measurements say. This module puts a number on that (Spearman's rho between n_layer and
parameters across the models, with n and an exact or sampled permutation p-value) and a
plain sentence. Pure Python: no numpy, no I/O.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

EXACT_MAX_N = 8  # 8! = 40,320 orderings: enumerated; above that, sampled
DEFAULT_SAMPLES = 20_000
SEPARATION_THRESHOLD = 0.9  # |rho| at or above this: the design cannot separate depth from parameters


@dataclass(frozen=True)
class DesignConfounding:
    """Spearman's rho between depth and parameter count across a family, and what it means."""

    n: int
    rho: float | None  # None: fewer than 3 models, or depth or parameters constant
    p_value: float | None  # two-sided permutation p-value of rho
    method: str  # "exact (N! orderings)" or "sampled (K orderings, seed S)"
    permutations: int
    threshold: float
    separable: bool | None
    sentence: str
    models: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the mean of their ranks (as Spearman's rho requires)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho (Pearson's r of average ranks); None when either side is constant."""
    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    return _pearson(average_ranks(x), average_ranks(y))


def permutation_p_value(
    x: Sequence[float], y: Sequence[float], *, samples: int = DEFAULT_SAMPLES, seed: int = 0
) -> tuple[float | None, str, int]:
    """Two-sided p-value of Spearman's rho under random pairing: (p, method, orderings used).

    n <= 8: every ordering of y is enumerated, so p is exact. Larger n: ``samples`` seeded
    random orderings, p = (hits + 1) / (samples + 1), which is never zero.
    """
    rx, ry = average_ranks(x), average_ranks(y)
    observed = _pearson(rx, ry)
    if observed is None:
        return None, "not computed (a constant variable)", 0
    bar = abs(observed) - 1e-12
    n = len(rx)
    if n <= EXACT_MAX_N:
        total = hits = 0
        for perm in itertools.permutations(ry):
            total += 1
            hits += abs(_pearson(rx, perm) or 0.0) >= bar  # never None: the same ranks, reordered
        return hits / total, f"exact ({n}! = {total:,} orderings)", total
    rng = random.Random(seed)
    shuffled = list(ry)
    hits = 0
    for _ in range(samples):
        rng.shuffle(shuffled)
        hits += abs(_pearson(rx, shuffled) or 0.0) >= bar
    return (hits + 1) / (samples + 1), f"sampled ({samples:,} orderings, seed {seed})", samples


def _field(model: Any, key: str) -> Any:
    return model[key] if isinstance(model, Mapping) else getattr(model, key)


def design_confounding(
    models: Iterable[Any],
    *,
    threshold: float = SEPARATION_THRESHOLD,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> DesignConfounding:
    """Rank correlation between depth and parameter count across ``models``, with a verdict.

    Each model is a mapping or object with ``name``, ``n_layer`` and ``parameters``. The
    family "can separate" depth from parameters when |rho| < ``threshold``.
    """
    rows: list[dict[str, Any]] = [
        {"name": str(_field(m, "name")), "n_layer": int(_field(m, "n_layer")),
         "parameters": int(_field(m, "parameters"))}
        for m in models
    ]
    rows.sort(key=lambda r: (r["parameters"], r["name"]))
    n = len(rows)
    depth = [r["n_layer"] for r in rows]
    params = [r["parameters"] for r in rows]
    rho = spearman(depth, params) if n >= 3 else None
    if rho is None:
        why = f"only {n} model{'s' if n != 1 else ''}" if n < 3 else (
            "every model has the same depth" if len(set(depth)) == 1 else "every model has the same parameter count")
        sentence = (f"Depth versus parameter count cannot be assessed across this family ({why}; n = {n}), "
                    "so it cannot separate the effect of depth from the effect of parameter count.")
        return DesignConfounding(n, None, None, "not computed", 0, threshold, False if n >= 1 else None, sentence, rows)
    p, method, used = permutation_p_value(depth, params, samples=samples, seed=seed)
    separable = abs(rho) < threshold
    figure = f"Spearman rho = {rho:+.2f}, n = {n}, permutation p = {p:.3g}, {method}"
    if separable:
        strength = "weakly" if abs(rho) < 0.5 else "moderately"
        sentence = (f"Depth and parameter count are only {strength} rank-correlated across this family "
                    f"({figure}): it can separate the effect of depth from the effect of parameter count.")
    else:
        direction = "together" if rho > 0 else "in opposite orders"
        sentence = (f"Depth and parameter count rank {direction} across this family ({figure}): "
                    "it cannot separate the effect of depth from the effect of parameter count; any "
                    "correlation of latency with one is forced onto the other by the design.")
    return DesignConfounding(n, rho, p, method, used, threshold, separable, sentence, rows)


def spearman_test(x: Sequence[float], y: Sequence[float], *, samples: int = DEFAULT_SAMPLES,
                  seed: int = 0) -> dict[str, Any]:
    """Spearman's rho with its n and permutation p-value, as a report row carries it."""
    rho = spearman(x, y) if len(x) >= 2 else None
    if rho is None:
        return {"rho": None, "n": len(x), "p_value": None, "p_method": None}
    p, method, _ = permutation_p_value(x, y, samples=samples, seed=seed)
    return {"rho": rho, "n": len(x), "p_value": p, "p_method": method}
