"""Summary statistics for timing samples: robust centre, spread, and honest uncertainty.

Latency samples are skewed and carry outliers (a context switch, a GC pause), so the
centre is the median with a percentile-bootstrap 95% confidence interval; outliers are
counted by the 1.5 IQR rule and never dropped; tail percentiles are reported only when
there are enough samples to mean something (n >= 100). Every random draw is seeded, so a
report recomputed from its raw samples gives the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

BOOTSTRAP_RESAMPLES = 2000
TAIL_MIN_N = 100
CI_LEVEL = 0.95


def _array(samples: Sequence[float]):
    import numpy as np

    values = np.asarray(samples, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("need a non-empty list of numbers")
    if not np.all(np.isfinite(values)):
        raise ValueError("samples must be finite")
    return values


def bootstrap_median_ci(
    samples: Sequence[float], *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median."""
    import numpy as np

    values = _array(samples)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(resamples, values.size))
    medians = np.median(values[idx], axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(medians, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def count_outliers(samples: Sequence[float]) -> int:
    """Samples outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR] (Tukey's fences). Counted, never removed."""
    import numpy as np

    values = _array(samples)
    q1, q3 = np.quantile(values, [0.25, 0.75])
    fence = 1.5 * (q3 - q1)
    return int(np.sum((values < q1 - fence) | (values > q3 + fence)))


def summarize(samples: Sequence[float], *, unit: str, seed: int = 0) -> dict[str, Any]:
    """The STATS block of a benchmark report; the raw samples are kept in it."""
    import numpy as np

    values = _array(samples)
    q1, q3 = np.quantile(values, [0.25, 0.75])
    tail = values.size >= TAIL_MIN_N
    return {
        "unit": unit,
        "n": int(values.size),
        "median": float(np.median(values)),
        "mean": float(np.mean(values)),
        "stdev": float(np.std(values, ddof=1)) if values.size > 1 else 0.0,
        "iqr": float(q3 - q1),
        "ci95": list(bootstrap_median_ci(values, seed=seed)),
        "p95": float(np.quantile(values, 0.95)) if tail else None,
        "p99": float(np.quantile(values, 0.99)) if tail else None,
        "outliers": count_outliers(values),
        "samples": [float(v) for v in values],
    }


def ratio_of_medians(
    numerator: Sequence[float], denominator: Sequence[float], *, seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL,
) -> dict[str, Any]:
    """A speedup as median(numerator) / median(denominator) with a bootstrap CI.

    The two sample sets are resampled independently (they come from different runs),
    so the interval carries the uncertainty of both medians.
    """
    import numpy as np

    a, b = _array(numerator), _array(denominator)
    if np.median(b) <= 0:
        raise ValueError("denominator median must be positive")
    rng = np.random.default_rng(seed)
    med_a = np.median(a[rng.integers(0, a.size, size=(resamples, a.size))], axis=1)
    med_b = np.median(b[rng.integers(0, b.size, size=(resamples, b.size))], axis=1)
    ratios = med_a / med_b
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(ratios, [alpha, 1.0 - alpha])
    return {"ratio": float(np.median(a) / np.median(b)), "ci95": [float(lo), float(hi)]}


HIERARCHICAL_METHOD = (
    "hierarchical percentile bootstrap of the median: resample worker processes with replacement, "
    "then each chosen process's samples, pool and take the median; 2000 resamples, seeded"
)


def _hierarchical_medians(groups: Sequence[Sequence[float]], *, rng, resamples: int):
    """Medians of ``resamples`` two-stage resamples (processes, then samples within each).

    One resample: draw k processes with replacement (k = how many there are), draw each chosen
    process's own number of samples from it with replacement, pool, take the median. Drawn as
    arrays, a block of resamples at a time, rather than one resample per Python iteration: the
    loop took 1.4 s of a two-cell `bench --quick` (16 intervals).
    """
    import numpy as np

    arrays = [_array(g) for g in groups if len(g)]
    if not arrays:
        raise ValueError("need at least one group with samples")
    k = len(arrays)
    sizes = np.array([a.size for a in arrays])
    longest = int(sizes.max())
    padded = np.zeros((k, longest))
    for i, values in enumerate(arrays):
        padded[i, :values.size] = values
    medians = np.empty(resamples)
    block = max(1, 1_000_000 // (k * longest))  # resamples per block: about 8 MB per array
    for start in range(0, resamples, block):
        count = min(block, resamples - start)
        picks = rng.integers(0, k, size=(count, k))
        taken = sizes[picks]  # (count, k): how many samples each chosen process contributes
        draws = np.floor(rng.random((count, k, longest)) * taken[..., None]).astype(np.intp)
        values = padded[picks[..., None], draws]
        if (sizes == longest).all():
            medians[start:start + count] = np.median(values.reshape(count, -1), axis=1)
        else:  # a shorter process fills only its own count of slots
            values[np.arange(longest) >= taken[..., None]] = np.nan
            medians[start:start + count] = np.nanmedian(values.reshape(count, -1), axis=1)
    return medians


def hierarchical_median_ci(
    groups: Sequence[Sequence[float]], *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL,
) -> tuple[float, float]:
    """95% interval of the pooled median that includes the variance between processes.

    With one process this is the ordinary bootstrap; with several, a process whose samples
    all sit apart from the others' widens the interval, as a re-run on another process
    would move the median.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    medians = _hierarchical_medians(groups, rng=rng, resamples=resamples)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(medians, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def hierarchical_ratio(
    a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], *, seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL,
) -> dict[str, Any]:
    """median(a) / median(b) with a hierarchical bootstrap interval (a and b resampled independently)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ma = _hierarchical_medians(a, rng=rng, resamples=resamples)
    mb = _hierarchical_medians(b, rng=rng, resamples=resamples)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(ma / mb, [alpha, 1.0 - alpha])
    pooled_a = np.concatenate([_array(g) for g in a if len(g)])
    pooled_b = np.concatenate([_array(g) for g in b if len(g)])
    return {"ratio": float(np.median(pooled_a) / np.median(pooled_b)), "ci95": [float(lo), float(hi)]}


def median_order_ci(samples: Sequence[float], *, z: float = 1.96) -> tuple[float, float]:
    """Distribution-free ~95% interval of the median from order statistics (cheap: the stopping rule's)."""
    values = sorted(samples)
    n = len(values)
    half = z * math.sqrt(n) / 2
    lo = max(0, int(math.floor(n / 2 - half)))
    hi = min(n - 1, int(math.ceil(n / 2 + half)) - 1)
    return values[lo], values[hi]


def summarize_processes(groups: Sequence[Sequence[float]], *, unit: str, seed: int = 0) -> dict[str, Any]:
    """The Stats block of a phase measured in several processes (raw samples stay in the process records)."""
    import numpy as np

    kept = [list(g) for g in groups if len(g)]
    pooled = _array([v for g in kept for v in g])
    q1, q3 = np.quantile(pooled, [0.25, 0.75])
    tail = pooled.size >= TAIL_MIN_N
    return {
        "unit": unit,
        "n": int(pooled.size),
        "processes": len(kept),
        "median": float(np.median(pooled)),
        "mean": float(np.mean(pooled)),
        "stdev": float(np.std(pooled, ddof=1)) if pooled.size > 1 else 0.0,
        "iqr": float(q3 - q1),
        "ci95": list(hierarchical_median_ci(kept, seed=seed)),
        "ci_method": HIERARCHICAL_METHOD,
        "process_medians": [float(np.median(g)) for g in kept],
        "p50": float(np.quantile(pooled, 0.5)),
        "p90": float(np.quantile(pooled, 0.90)) if pooled.size >= 10 else None,
        "p95": float(np.quantile(pooled, 0.95)) if tail else None,
        "p99": float(np.quantile(pooled, 0.99)) if tail else None,
        "outliers": count_outliers(pooled),
    }
