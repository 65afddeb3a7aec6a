"""Inference backends: one module per way of running a model, declared in ``registry``.

A backend module provides::

    load(folder: Path, *, device="cpu", dtype="float32", **options) -> Loaded   # the registry's options
    proof(info: dict) -> list[str]     # optional: why a run does not count as labelled
    available() -> str | None          # optional: why it cannot run here (not installed)

``Loaded`` (``hubtool.backends.attention``) holds the model and an ``info`` dict:
attn_implementation(_used), device, dtype, load_seconds, missing/unexpected/mismatched
keys, and for compiled backends the Dynamo and Inductor counters that ``proof`` reads. The
vLLM module's ``load`` returns a ``vllm.LLM`` instead, and its ``refusals()`` context turns
vLLM's attention-configuration refusals into ``BackendUnsupported``.

Verify and bench import backend modules only inside isolated workers
(``hubtool.runtime.isolate``); this package and its registry import nothing heavy.
"""
