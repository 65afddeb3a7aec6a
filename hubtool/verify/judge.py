"""Tolerances, verdicts and coverage: how parity metrics become passed / partial / failed.

Errors are judged the way Dynamo's own accuracy check does, scaled to the model: a
backend's error against the float64 reference may be at most ``RATIO`` times eager
float32's own error against it, plus an allowance of a few float32 roundings of the
values being compared (``ALLOWANCE_ULPS`` x unit roundoff x their magnitude). A fixed
absolute allowance is wrong both ways: 1e-5 is thousands of times tiny-gpt2's whole
float32 error and would hide real bugs, and could be too tight for a model with large
logits. The constants were calibrated on the reference family (see the README's
verification section for the measured ratios and the margin they leave).
"""

from __future__ import annotations

from typing import Any

from hubtool.evidence.verification import Coverage

U32 = 2.0**-24  # float32 unit roundoff
RATIO = 3.0  # RMSE and max error: at most this multiple of eager float32's own
ALLOWANCE_ULPS = 4.0  # plus this many float32 roundings of the compared values' magnitude
NEAR_TIE_ULPS = 64.0  # top-1/top-2 gaps below this many roundings of the logits are ties
TORCH_GROUPS = ("logits", "batch", "probe")
VLLM_GROUPS = ("prompt_logprobs", "generated_logprobs", "probe_logprobs")


def near_tie_epsilon(absmax: float) -> float:
    """Gap below which two correct float32 computations may disagree on the top-1 token."""
    return NEAR_TIE_ULPS * U32 * max(absmax, 1e-30)


def tolerances(*, new_tokens: int, graph_breaks_allowed: int) -> dict[str, Any]:
    """Every threshold a verdict uses, written verbatim into the report."""
    return {
        "reference": "transformers eager attention, float32, CPU; a float64 eager run judges error size",
        "unit_roundoff": U32,
        "rmse_rule": "rmse_vs_fp64 <= ratio * eager_rmse_vs_fp64 + allowance_ulps * unit_roundoff * ref_rms",
        "max_rule": "max_abs_vs_fp64 <= ratio * eager_max_abs_vs_fp64 + allowance_ulps * unit_roundoff * ref_absmax",
        "ratio": RATIO,
        "allowance_ulps": ALLOWANCE_ULPS,
        "groups": {"transformers": list(TORCH_GROUPS), "vllm": list(VLLM_GROUPS)},
        "near_tie_rule": "a top-1 or greedy disagreement counts only where the reference's top-1/top-2 gap "
                         "exceeds near_tie_ulps * unit_roundoff * max|logit|",
        "near_tie_ulps": NEAR_TIE_ULPS,
        "top1_disagreements_max": 0,
        "greedy_new_tokens": new_tokens,
        "greedy_flips_max": 0,
        "greedy_rule": "comparison of a continuation stops at its first divergence",
        "graph_breaks_allowed": graph_breaks_allowed,
        "compile_rule": "Dynamo captured graphs, Inductor compiled every one and generated or loaded its code, "
                        "no frame fell back to eager; graph breaks make the cell partial and fail it beyond "
                        "graph_breaks_allowed",
    }


def group_problems(name: str, m: dict[str, Any]) -> list[str]:
    """The rules one comparison group breaks (empty: within tolerance)."""
    if not m.get("compared"):
        return []
    problems = []
    rmse_bound = RATIO * m["eager_rmse_vs_fp64"] + ALLOWANCE_ULPS * U32 * m["ref_rms"]
    if not m["rmse_vs_fp64"] <= rmse_bound:
        times = m["rmse_vs_fp64"] / m["eager_rmse_vs_fp64"] if m["eager_rmse_vs_fp64"] else float("inf")
        problems.append(f"{name}: error vs float64 (RMSE {m['rmse_vs_fp64']:.3g}) is {times:.3g}x eager float32's "
                        f"own, above the bound {rmse_bound:.3g}")
    max_bound = RATIO * m["eager_max_abs_vs_fp64"] + ALLOWANCE_ULPS * U32 * m["ref_absmax"]
    if not m["max_abs_vs_fp64"] <= max_bound:
        problems.append(f"{name}: largest error vs float64 {m['max_abs_vs_fp64']:.3g} "
                        f"is above the bound {max_bound:.3g}")
    return problems


def proof_problems(declaration: dict[str, Any], info: dict[str, Any]) -> list[str]:
    """Why a run does not count as the labelled backend, from the backend module's ``proof``."""
    from hubtool.backends.registry import Backend

    proof = getattr(Backend.from_dict(declaration).load_module(), "proof", None)
    return proof(info) if proof else []


def judge(backend: dict[str, Any], result: dict[str, Any], tol: dict[str, Any]) -> tuple[str, str | None]:
    """(status, reason) of one backend's worker result."""
    metrics, info = result["metrics"], result.get("info", {})
    groups = VLLM_GROUPS if backend["engine"] == "vllm" else TORCH_GROUPS
    problems: list[str] = []
    for group in groups:
        problems.extend(group_problems(group, metrics["groups"].get(group, {})))
    repeat = metrics.get("repeat_max_abs_diff")
    if repeat:
        problems.append(f"a repeated forward differs by {repeat:.3g}: not deterministic")
    if metrics.get("top1_disagreements", 0) > tol["top1_disagreements_max"]:
        problems.append(f"top-1 differs at {metrics['top1_disagreements']} decided position(s)")
    if metrics.get("greedy_flips", 0) > tol["greedy_flips_max"]:
        problems.append(f"greedy continuation flipped: {metrics.get('greedy_first_flip')}")
    if metrics.get("generate_flips", 0) > tol["greedy_flips_max"]:
        problems.append(f"generate() continuation flipped: {metrics.get('generate_first_flip')}")
    problems.extend(f"not proven to run as labelled: {p}" for p in result.get("proof_problems", []))
    if problems:
        return "failed", "; ".join(problems)
    breaks = int(info.get("graph_breaks") or 0) if backend.get("compiled") else 0
    if breaks:
        where = "; ".join(info.get("graph_break_reasons", [])[:2])
        reason = f"{breaks} graph break(s){': ' + where if where else ''}"
        if breaks > tol["graph_breaks_allowed"]:
            return "failed", f"{reason} (allowed: {tol['graph_breaks_allowed']})"
        return "partial", reason
    return "passed", None


def coverage(*, head_dim: int, long_prompt_tokens: int, n_positions: int, tied_to_spec: bool,
             new_tokens: int) -> list[Coverage]:
    """Which classes of bug this model's parity run can see, and which it cannot."""
    scale_visible = head_dim > 1
    return [
        Coverage(bug_class="files changed after the build (weights, config, tokenizer)", visible=tied_to_spec,
                 how="sha256 of every file against provenance, config against the spec, weights regenerated "
                     "from spec and seed" if tied_to_spec else
                     "no provenance and no spec: the files cannot be tied to what they claim to be"),
        Coverage(bug_class="attention score scaling (1/sqrt(d) vs 1/d vs none)", visible=scale_visible,
                 how="probe with amplified query/key weights makes attention sharp" if scale_visible else
                     "invisible at head_dim 1: 1/sqrt(d), 1/d and no scaling are the same number"),
        Coverage(bug_class="causal masking and padding", visible=True,
                 how="left-padded batch against lone runs, and the sharp-attention probe"),
        Coverage(bug_class="KV-cache decoding", visible=True,
                 how=f"{new_tokens} greedy tokens decoded with the cache, compared token by token"),
        Coverage(bug_class="position embeddings", visible=long_prompt_tokens >= n_positions - 1,
                 how=f"a {long_prompt_tokens}-token random prompt (context {n_positions})"),
        Coverage(bug_class="float32 error growth", visible=True,
                 how="every output against a float64 run of the same weights"),
        Coverage(bug_class="sampling settings", visible=False,
                 how="parity uses greedy decoding; generation_config.json's sampling values are not exercised"),
    ]
