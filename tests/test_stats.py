"""hubtool.bench.stats against synthetic data whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hubtool.bench.stats import (
    _hierarchical_medians,
    bootstrap_median_ci,
    count_outliers,
    ratio_of_medians,
    summarize,
)
from hubtool.report.design import spearman


def test_summary_of_known_values():
    samples = [1.0, 2.0, 3.0, 4.0, 100.0]
    s = summarize(samples, unit="ms", seed=0)
    assert s["unit"] == "ms"
    assert s["n"] == 5
    assert s["median"] == 3.0
    assert s["mean"] == pytest.approx(22.0)
    assert s["stdev"] == pytest.approx(np.std(samples, ddof=1))
    # Linear-interpolated quartiles of 1,2,3,4,100 are 2 and 4.
    assert s["iqr"] == pytest.approx(2.0)
    # Fences at 2 - 3 = -1 and 4 + 3 = 7: only 100 is outside.
    assert s["outliers"] == 1
    # The outlier is counted, never dropped.
    assert s["samples"] == samples
    lo, hi = s["ci95"]
    assert lo <= s["median"] <= hi
    assert 1.0 <= lo and hi <= 100.0


def test_tail_percentiles_only_from_100_samples():
    assert summarize(list(range(1, 100)), unit="ms")["p95"] is None
    s = summarize(list(range(1, 101)), unit="ms")
    assert s["p95"] == pytest.approx(95.05)
    assert s["p99"] == pytest.approx(99.01)


def test_summary_is_reproducible_for_a_seed():
    rng = np.random.default_rng(1)
    samples = rng.lognormal(0, 0.5, 40).tolist()
    assert summarize(samples, unit="ms", seed=7) == summarize(samples, unit="ms", seed=7)
    assert summarize(samples, unit="ms", seed=7)["ci95"] != summarize(samples, unit="ms", seed=8)["ci95"]


def test_constant_samples_have_a_degenerate_interval():
    s = summarize([2.5] * 10, unit="ms/token")
    assert s["ci95"] == [2.5, 2.5]
    assert s["stdev"] == 0.0 and s["iqr"] == 0.0 and s["outliers"] == 0


def test_outliers_by_tukey_fences():
    base = [10.0] * 8 + [11.0] * 8
    assert count_outliers(base) == 0
    assert count_outliers(base + [30.0, 0.5]) == 2


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_bad_samples_are_refused(bad):
    with pytest.raises(ValueError):
        summarize(bad, unit="ms")


def test_bootstrap_ci_covers_true_median_at_nominal_rate():
    """Over 600 synthetic samples (n=51) of Exp(1), the 95% CI covers ln 2 in 91-98% of them.

    The percentile bootstrap of a median is known to run slightly below nominal at small n
    (about 94% here); 600 trials give a binomial standard error near 0.9 points, so the
    band is roughly +-3.5 standard errors around the expected rate.
    """
    rng = np.random.default_rng(2024)
    true_median = math.log(2.0)
    trials = 600
    covered = 0
    for t in range(trials):
        lo, hi = bootstrap_median_ci(rng.exponential(1.0, 51), seed=t, resamples=1000)
        covered += lo <= true_median <= hi
    rate = covered / trials
    assert 0.91 <= rate <= 0.98, rate


def test_ci_narrows_with_more_samples():
    rng = np.random.default_rng(3)
    small = bootstrap_median_ci(rng.normal(10, 1, 20))
    large = bootstrap_median_ci(rng.normal(10, 1, 2000))
    assert (large[1] - large[0]) < (small[1] - small[0]) / 4


def test_ratio_of_medians():
    rng = np.random.default_rng(4)
    slow = rng.normal(20.0, 0.5, 200)
    fast = rng.normal(10.0, 0.25, 200)
    r = ratio_of_medians(slow, fast, seed=0)
    assert r["ratio"] == pytest.approx(np.median(slow) / np.median(fast))
    lo, hi = r["ci95"]
    assert lo < 2.0 < hi
    assert hi - lo < 0.1
    with pytest.raises(ValueError):
        ratio_of_medians([1.0], [0.0])


def _hierarchical_medians_by_definition(groups, *, rng, resamples):
    """The two-stage resample written out one resample at a time (what the array version must match)."""
    arrays = [np.asarray(g, dtype=float) for g in groups]
    medians = np.empty(resamples)
    for r in range(resamples):
        chosen = rng.integers(0, len(arrays), size=len(arrays))
        pooled = [arrays[i][rng.integers(0, arrays[i].size, size=arrays[i].size)] for i in chosen]
        medians[r] = np.median(np.concatenate(pooled))
    return medians


def test_hierarchical_resample_draws_each_process_s_own_count():
    # Two processes: one sample of 100, twenty of 0. A resample's median is 100 only when both
    # draws pick the one-sample process (1 in 4); had it filled twenty slots, 0 would rarely win.
    medians = _hierarchical_medians([[100.0], [0.0] * 20], rng=np.random.default_rng(0), resamples=4000)
    assert set(np.unique(medians)) <= {0.0, 50.0, 100.0}
    assert np.mean(medians == 100.0) == pytest.approx(0.25, abs=0.03)
    assert np.mean(medians == 0.0) == pytest.approx(0.75, abs=0.03)


@pytest.mark.parametrize("sizes", [(8, 8, 8), (5, 12, 40), (30, 1, 30, 7)])
def test_hierarchical_medians_match_the_definition(sizes):
    data = np.random.default_rng(7)
    groups = [data.normal(10 + i % 2, 1.0, size) for i, size in enumerate(sizes)]
    fast = _hierarchical_medians(groups, rng=np.random.default_rng(1), resamples=4000)
    slow = _hierarchical_medians_by_definition(groups, rng=np.random.default_rng(2), resamples=4000)
    spread = np.quantile(slow, 0.975) - np.quantile(slow, 0.025)
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):  # the same distribution, within resampling noise
        assert np.quantile(fast, q) == pytest.approx(np.quantile(slow, q), abs=0.08 * spread)


def test_spearman_known_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Monotone but non-linear: still a perfect rank correlation.
    assert spearman([1, 2, 3, 4, 5], [1, 8, 27, 64, 125]) == pytest.approx(1.0)
    # Ties take average ranks: x ranks 1.5,1.5,3,4; y ranks 1,2,3,4 -> r = 0.9487.
    assert spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833, abs=1e-6)
    # 1 - 6*sum(d^2)/(n(n^2-1)) with d = (0, -2, 1, 1): 1 - 36/60 = 0.4.
    assert spearman([1, 2, 3, 4], [1, 4, 2, 3]) == pytest.approx(0.4)
    assert spearman([1], [2]) is None
    assert spearman([1, 1, 1], [1, 2, 3]) is None
