"""Verify a model folder: its files, and the parity of its outputs across backends.

Order: the files are checked first without loading anything (``weights``: safetensors
structure, names, shapes, dtype, tying, digests against provenance; ``files``: every
recorded file's sha256). Then each backend runs in its own process
(``hubtool.runtime.isolate``): eager float32 first, which also saves the reference
logits, a float64 run that judges the size of every error, the sharp-attention probe,
what the tokenizer and config say, and (for an untrained build) the weights regenerated
from the spec and seed; then every other backend measures itself against that reference
(``hubtool.verify.parity``) and is judged (``hubtool.verify.judge``). A crash or hang of
one backend is recorded and the others go on. Last, the folder's README.md is audited
against the files and these results. The report is bound to the sha256 of the model
files it checked and saved atomically as ``verification.json``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hubtool.backends import registry
from hubtool.backends.registry import Backend
from hubtool.card.audit import audit_card
from hubtool.errors import UsageError
from hubtool.evidence.verification import Check, Coverage, Verdict, Verification
from hubtool.folder.hashing import folder_identity
from hubtool.folder.io import read_json_object
from hubtool.folder.names import CONFIG_FILE, VERIFICATION_FILE
from hubtool.runtime.cache import cache_root, compile_cache
from hubtool.runtime.environment import hubtool_identity
from hubtool.runtime.isolate import IsolatedResult, run_isolated
from hubtool.spec.catalog import artifacts_root
from hubtool.verify import files, judge
from hubtool.verify.target import Target, resolve_target
from hubtool.verify.weights import BUFFER_SUFFIXES, check_weights

DEFAULT_NEW_TOKENS = 8
DEFAULT_TIMEOUT_S = 900.0
# Imported once by the server the torch workers are forked from (see hubtool.runtime.isolate).
TORCH_PRELOAD = (
    "torch", "safetensors.torch", "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto", "transformers.models.gpt2.modeling_gpt2",
)
# And when a compiled backend runs: Inductor's machine checks (inductor_warmup, which must come
# before Inductor's own modules; measured 8.7 -> 6.3 s per compiled bench process), then Dynamo and
# Inductor's entry point (about 1.2 s more that every compiled worker would pay again). A run
# without one would only wait for them, about 3.6 s at start-up.
COMPILE_PRELOAD = ("hubtool.backends.inductor_warmup", "torch._inductor.compile_fx")


def torch_preload(*, compiled: bool) -> tuple[str, ...]:
    """What the torch workers' server imports, for a run with or without a compiled backend."""
    return (*TORCH_PRELOAD, *COMPILE_PRELOAD) if compiled else TORCH_PRELOAD

# One vLLM engine at a time, whatever --jobs says: vLLM's CPU build binds its threads to the cores
# and sizes its KV cache from the memory it finds free, so two engines would fight over both.
_ENGINE_LOCK = threading.Lock()

# progress(event, backend, data): "start" with {"pid": child pid} once its process runs,
# "done" with the backend's Verdict. A repo id's download comes first, as the backend "download":
# "fetch" with {"done": bytes, "total": bytes or None} as it goes, then "fetched" (no data).
Progress = Callable[[str, str, Any], None]


def default_backends() -> list[str]:
    return registry.names(verify=True)


def verify_target(
    target: str,
    *,
    backends: str | list[str] | tuple[str, ...] | None = None,
    new_tokens: int = DEFAULT_NEW_TOKENS,
    endpoint: str | None = None,
    offline: bool | None = None,
    allow_pickle: bool = False,
    output: Path | None = None,
    out: Path | str | None = None,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    threads: int | None = None,
    graph_breaks_allowed: int = 0,
) -> tuple[Verification, Path]:
    """Check the files, run every backend in isolation, write the report; returns it and where it went."""
    chosen = registry.parse(backends, default=default_backends())
    if new_tokens < 1:
        raise UsageError(f"--new-tokens must be at least 1, got {new_tokens}")
    if graph_breaks_allowed < 0:
        raise UsageError(f"--allow-graph-breaks must be 0 or more, got {graph_breaks_allowed}")
    def on_bytes(done: int, total: int | None) -> None:  # passed even without progress: no hub bars drawn
        if progress:
            progress("fetch", "download", {"done": done, "total": total})

    resolved = resolve_target(target, out=out, endpoint=endpoint, offline=offline, on_bytes=on_bytes)
    if progress and resolved.source.kind == "hub":
        progress("fetched", "download", None)
    subject = folder_identity(resolved.folder)
    tol = judge.tolerances(new_tokens=new_tokens, graph_breaks_allowed=graph_breaks_allowed)
    checks, digests = check_weights(
        resolved.folder, spec_config=resolved.claim.config if resolved.claim else None,
        spec_dtype=resolved.claim.dtype if resolved.claim else None, allow_pickle=allow_pickle,
    )
    if resolved.provenance_error:
        checks.append(Check(name="provenance", status="failed", detail=resolved.provenance_error))
    checks.append(files.provenance_files(resolved.folder, resolved.provenance))
    run = _Run(resolved, tol, new_tokens=new_tokens, cache=Path(cache_dir) if cache_dir else cache_root(),
               timeout=timeout, threads=threads or _cpu_threads(), progress=progress)
    verdicts: dict[str, Verdict] = {}
    fingerprint: dict[str, Any] | None = None
    coverage: list[Coverage] = []
    if any(c.status == "failed" for c in checks):
        for backend in chosen:
            verdicts[backend.name] = Verdict(status="failed", reason="not run: the file checks failed")
    else:
        fingerprint, coverage = run.all_backends(chosen, verdicts, checks, digests)
    if fingerprint is None:
        from hubtool.runtime.fingerprint import fingerprint as take_fingerprint

        fingerprint = take_fingerprint()
    files_status = "failed" if any(c.status == "failed" for c in checks) else "passed"
    audit = audit_card(resolved.folder, backends={k: v.model_dump() for k, v in verdicts.items()})
    report = Verification(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        hubtool=hubtool_identity(),
        subject=subject,
        target=target,
        source=resolved.source,
        fingerprint=fingerprint,
        tolerances=tol,
        checks=checks,
        files_status=files_status,
        unverified=_unverified(resolved),
        backends=verdicts,
        coverage=coverage,
        card_audit=audit,
        status=overall_status(files_status, verdicts, audit),
    )
    path = Path(output) if output else default_report_path(resolved, out=out)
    path.parent.mkdir(parents=True, exist_ok=True)
    report.write(path)
    return report, path


def verify_targets(targets: list[str], *, jobs: int = 1,
                   progress_for: Callable[[str], Progress | None] | None = None,
                   **options: Any) -> Iterator[tuple[str, Verification, Path]]:
    """``verify_target`` for each target, up to ``jobs`` at once; yields in the order given.

    Each target's backends still run one after another in their own processes; ``jobs`` only
    overlaps targets. One verification keeps about two cores busy (the reference worker's
    threads, Inductor's parallel kernel builds), so overlapping pays on machines with more
    cores than that: on 2 cores the five bundled models took 427 s with ``jobs=2`` against
    423 s one after another. Reports do not depend on ``jobs``: every worker keeps the same
    pinned thread count. vLLM workers never overlap (``_ENGINE_LOCK``).

    A Ctrl-C kills every running worker and ends the run (nothing is written for a target cut
    short). Another error in one target lets the targets already running finish, starts no
    new one, and is raised when its turn comes.
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")

    def one(target: str) -> tuple[str, Verification, Path]:
        progress = progress_for(target) if progress_for else None
        report, path = verify_target(target, progress=progress, **options)
        return target, report, path

    if jobs == 1 or len(targets) < 2:
        for target in targets:
            yield one(target)
        return

    from concurrent.futures import ThreadPoolExecutor

    from hubtool.runtime.isolate import kill_running

    pool = ThreadPoolExecutor(max_workers=min(jobs, len(targets)), thread_name_prefix="verify")
    futures = [pool.submit(one, target) for target in targets]
    try:
        for future in futures:
            yield future.result()
    except KeyboardInterrupt:
        kill_running()
        raise
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)


def default_report_path(resolved: Target, *, out: Path | str | None = None) -> Path:
    """Beside the weights, except for pulled repos: never write into the huggingface_hub cache."""
    if resolved.source.kind == "hub" and resolved.source.repo_id:
        return artifacts_root(out) / "pulled" / resolved.source.repo_id.replace("/", "--") / VERIFICATION_FILE
    return resolved.folder / VERIFICATION_FILE


def overall_status(files_status: str, verdicts: dict[str, Verdict], audit: dict[str, Any]) -> str:
    """failed: something checked was found wrong; crashed: nothing wrong found, but a backend could not run."""
    if files_status == "failed" or audit.get("status") == "failed" or any(
            v.status == "failed" for v in verdicts.values()):
        return "failed"
    if any(v.status == "crashed" for v in verdicts.values()):
        return "crashed"
    return "passed"


def _unverified(resolved: Target) -> list[str]:
    """Claims that nothing ties to a spec (a folder from elsewhere, without provenance)."""
    if resolved.claim is not None:
        return []
    return [
        "built from a spec: there is no provenance.json and no spec to compare the config with",
        "randomly initialised with a known seed: nothing to regenerate the weights from",
        "unchanged since it was made: no recorded sha256 to compare the files with",
    ]


def _cpu_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def crash_reason(res: IsolatedResult, timeout: float) -> str:
    """What a reader needs to know about a crashed worker: the root cause, not the trailing boilerplate."""
    if res.status == "timeout":
        return f"timed out after {timeout:g}s and was killed"
    if res.exit_code is not None and res.exit_code < 0:
        return f"worker process killed by signal {-res.exit_code}"
    cause = f": {res.cause}" if res.cause else ""
    return f"worker process exited with code {res.exit_code}{cause}"


def _crashed(res: IsolatedResult, timeout: float) -> Verdict:
    return Verdict(status="crashed", reason=crash_reason(res, timeout), raw_reason=res.cause,
                   seconds=round(res.seconds, 3), exit_code=res.exit_code, stderr_tail=res.stderr_tail)


class _Run:
    """One verification run: the isolated workers and the judging of their results."""

    def __init__(self, target: Target, tol: dict[str, Any], *, new_tokens: int, cache: Path, timeout: float,
                 threads: int, progress: Progress | None) -> None:
        self.target, self.tol, self.new_tokens, self.cache = target, tol, new_tokens, cache
        self.timeout, self.threads, self.progress = timeout, threads, progress

    def _isolated(self, name: str, worker: str, kwargs: dict[str, Any], *,
                  preload: tuple[str, ...]) -> IsolatedResult:
        def started(pid: int) -> None:
            if self.progress:
                self.progress("start", name, {"pid": pid})

        return run_isolated(f"hubtool.verify.parity:{worker}", kwargs, timeout=self.timeout,
                            cache_dir=compile_cache(self.cache), threads=self.threads,
                            preload=preload, on_start=started)

    def _done(self, name: str, verdicts: dict[str, Verdict], verdict: Verdict) -> None:
        verdicts[name] = verdict
        if self.progress:
            self.progress("done", name, verdict)

    def _regenerate(self) -> tuple[dict[str, Any] | None, str]:
        """The spec and seed to regenerate the weights from, or why they are not regenerated."""
        claim = self.target.claim
        if claim is None:
            return None, "no spec or provenance names a seed"
        if self.target.trained:
            return None, "trained after the build: the training record in provenance.json covers these weights"
        return {"config": claim.config, "seed": claim.seed, "dtype": claim.dtype}, ""

    def all_backends(self, chosen: list[Backend], verdicts: dict[str, Verdict], checks: list[Check],
                     digests: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Coverage]]:
        """Reference first (it is the eager verdict), then the rest. Returns the fingerprint and coverage."""
        (self.cache / "verify").mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="verify-", dir=self.cache / "verify"))
        folder = str(self.target.folder.resolve())
        regenerate, why_not = self._regenerate()
        claim = self.target.claim
        preload = torch_preload(compiled=any(b.compiled for b in chosen))
        try:
            res = self._isolated("eager", "reference_worker", {
                "folder": folder, "work_dir": str(work), "new_tokens": self.new_tokens, "regenerate": regenerate,
                "spec_config": claim.config if claim else None,
                "spec_dtype": claim.dtype if claim else None,
            }, preload=preload)
            names = [b.name for b in chosen]
            if res.status != "ok":
                crashed = _crashed(res, self.timeout)
                if "eager" in names:
                    self._done("eager", verdicts, crashed)
                for backend in chosen:
                    if backend.name != "eager":
                        self._done(backend.name, verdicts, Verdict(
                            status="failed", reason=f"not run: the eager reference crashed ({crashed.reason})"))
                return None, []
            ref = res.result
            config = read_json_object(self.target.folder / CONFIG_FILE) or {}
            checks.extend(_reload_checks(ref, digests))
            checks.append(files.config_semantics(ref["config_differences"]))
            checks.extend(files.tokenizer_checks(self.target.folder, ref["tokenizer"], config,
                                                 claimed=claim.tokenizer if claim else None))
            checks.append(files.regeneration(digests, ref["regenerated_digests"], why_not=why_not))
            if "eager" in names:
                self._done("eager", verdicts, self._judged(registry.get("eager"), res))
            for backend in chosen:
                if backend.name != "eager":
                    self._done(backend.name, verdicts, self._backend(backend, folder, work, ref, preload))
            probe = ref["probe"]
            coverage = judge.coverage(
                head_dim=probe["head_dim"], long_prompt_tokens=probe["long_prompt_tokens"],
                n_positions=int(config.get("n_positions") or 0), tied_to_spec=claim is not None,
                new_tokens=self.new_tokens,
            )
            return ref["fingerprint"], coverage
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _backend(self, backend: Backend, folder: str, work: Path, ref: dict[str, Any],
                 preload: tuple[str, ...]) -> Verdict:
        missing = backend.unavailable()
        if missing:
            return Verdict(status="unavailable", reason=f"{missing} where this was verified")
        refused = backend.unsupported_on("cpu")
        if refused:
            return Verdict(status="unsupported", reason=refused)
        common = {"backend": backend.to_dict(), "folder": folder, "work_dir": str(work)}
        if backend.engine == "vllm":
            # vLLM gets a fresh interpreter: its engine expects to own process start-up.
            with _ENGINE_LOCK:
                res = self._isolated(backend.name, "vllm_worker", {
                    **common, "head_dim": ref["probe"]["head_dim"], "dtype": ref["info"]["dtype"]}, preload=())
        else:
            res = self._isolated(backend.name, "transformers_worker", common, preload=preload)
        return self._judged(backend, res)

    def _judged(self, backend: Backend, res: IsolatedResult) -> Verdict:
        if res.status != "ok":
            return _crashed(res, self.timeout)
        result = res.result
        seconds = round(res.seconds, 3)
        if result["status"] == "unsupported":
            return Verdict(status="unsupported", reason=result["reason"], raw_reason=result.get("raw_reason"),
                           seconds=seconds, exit_code=res.exit_code)
        status, reason = judge.judge(backend.to_dict(), result, self.tol)
        return Verdict(status=status, reason=reason, metrics=result["metrics"], info=result.get("info", {}),
                       seconds=seconds, exit_code=res.exit_code)


def _reload_checks(reference: dict[str, Any], digests: dict[str, dict[str, Any]]) -> list[Check]:
    """What transformers itself saw on reload: keys, tying, and bytes equal to the file's."""
    info = reference.get("info", {})
    reloaded = reference.get("reloaded_digests", {})
    checks = []
    missing, unexpected = info.get("missing_keys", []), info.get("unexpected_keys", [])
    if missing or unexpected:
        checks.append(Check(name="reload keys", status="failed",
                            detail=f"transformers reports missing {missing[:5]} and unexpected {unexpected[:5]}"))
    else:
        checks.append(Check(name="reload keys", status="passed",
                            detail="transformers loaded with no missing or unexpected keys"))
    if info.get("tied_after_reload") is False:
        checks.append(Check(name="tied after reload", status="failed",
                            detail="lm_head.weight is not transformer.wte.weight after loading"))
    elif info.get("tied_after_reload"):
        checks.append(Check(name="tied after reload", status="passed",
                            detail="lm_head.weight shares transformer.wte.weight's storage"))
    differ = sorted(n for n, meta in digests.items() if n in reloaded and reloaded[n] != meta["sha256"])
    absent = sorted(n for n in digests if n not in reloaded and not n.endswith(BUFFER_SUFFIXES))
    if differ or absent:
        checks.append(Check(name="reloaded tensors", status="failed",
                            detail=f"reloaded tensor(s) {', '.join((differ + absent)[:5])} differ from the file"))
    else:
        checks.append(Check(name="reloaded tensors", status="passed",
                            detail=f"{len(digests)} reloaded tensors bit-identical to the file"))
    return checks
