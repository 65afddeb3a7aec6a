"""The family design's confounding: Spearman's rho between depth and parameters, with n and p."""

from __future__ import annotations

import math

import pytest

from hubtool.report.design import average_ranks, design_confounding, permutation_p_value, spearman
from hubtool.spec.catalog import resolve_targets
from tests.conftest import CONFIGS, REFERENCE

OLD_FOUR = ("tiny-gpt2", "gpt2-25m", "gpt2-50m", "gpt2-100m")


def _models(names) -> list[dict]:
    return [{"name": n, "n_layer": REFERENCE[n][1], "parameters": REFERENCE[n][4]} for n in names]


def test_average_ranks_share_ties() -> None:
    assert average_ranks([2, 3, 8, 8]) == [1.0, 2.0, 3.5, 3.5]
    assert average_ranks([5, 1, 5, 5]) == [3.0, 1.0, 3.0, 3.0]


def test_old_four_cannot_separate_depth_from_parameters() -> None:
    result = design_confounding(_models(OLD_FOUR))
    # depth ranks 1, 2, 3.5, 3.5 against parameter ranks 1..4: rho = 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert result.n == 4
    assert result.rho == pytest.approx(3 / math.sqrt(10), abs=1e-12)
    # Exactly 4 of the 24 orderings reach |rho| >= 0.9487 (two each way, the tied pair swapped).
    assert result.p_value == pytest.approx(4 / 24, abs=1e-12)
    assert result.permutations == 24 and result.method.startswith("exact")
    assert result.separable is False
    assert "cannot separate the effect of depth from the effect of parameter count" in result.sentence
    assert "rho = +0.95, n = 4, permutation p = 0.167" in result.sentence


def test_with_gpt2_5m_the_family_can_separate() -> None:
    result = design_confounding(_models([*OLD_FOUR, "gpt2-5m"]))
    # in parameter order depth is 2, 12, 3, 8, 8 -> ranks 1, 5, 2, 3.5, 3.5: rho = 3.5 / sqrt(95)
    assert result.n == 5
    assert result.rho == pytest.approx(3.5 / math.sqrt(95), abs=1e-12)
    assert result.permutations == 120 and result.method == "exact (5! = 120 orderings)"
    assert result.p_value == pytest.approx(76 / 120, abs=1e-12)
    assert result.separable is True
    assert "can separate the effect of depth from the effect of parameter count" in result.sentence
    assert "rho = +0.36, n = 5" in result.sentence
    assert [m["name"] for m in result.models] == ["tiny-gpt2", "gpt2-5m", "gpt2-25m", "gpt2-50m", "gpt2-100m"]


def test_the_bundled_family_as_specs() -> None:
    """Objects with name / n_layer / parameters (the specs themselves) work as well as mappings."""
    specs = resolve_targets([], all_=True, folder=CONFIGS)
    rows = [type("M", (), {"name": s.name, "n_layer": s.config["n_layer"], "parameters": s.parameters})() for s in specs]
    assert design_confounding(rows).rho == pytest.approx(3.5 / math.sqrt(95), abs=1e-12)


def test_exact_p_value_by_brute_force_count() -> None:
    """Perfect order at n = 6: only the identity and its reverse reach |rho| = 1, so p = 2 / 720."""
    p, method, used = permutation_p_value([1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60])
    assert (p, used) == (pytest.approx(2 / 720), 720)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_large_families_are_sampled_with_a_seed() -> None:
    depth = list(range(1, 11))
    params = list(range(10, 110, 10))
    p1, method, used = permutation_p_value(depth, params, samples=2_000, seed=7)
    p2, _, _ = permutation_p_value(depth, params, samples=2_000, seed=7)
    assert p1 == p2 and used == 2_000 and method == "sampled (2,000 orderings, seed 7)"
    # rho = 1 at n = 10: a random ordering reaches it with probability 2 / 10!, so hits are 0.
    assert p1 == pytest.approx(1 / 2_001)
    result = design_confounding([{"name": str(i), "n_layer": d, "parameters": q} for i, (d, q) in enumerate(zip(depth, params, strict=True))],
                                samples=2_000)
    assert result.rho == pytest.approx(1.0) and result.separable is False


@pytest.mark.parametrize(("models", "why"), [
    ([("a", 2, 10), ("b", 4, 20)], "only 2 models"),
    ([("a", 8, 10), ("b", 8, 20), ("c", 8, 30)], "every model has the same depth"),
])
def test_degenerate_families_say_why(models, why: str) -> None:
    result = design_confounding([{"name": n, "n_layer": d, "parameters": p} for n, d, p in models])
    assert result.rho is None and result.p_value is None and result.separable is False
    assert why in result.sentence and "cannot separate" in result.sentence
