"""One module per inference backend: how to load a model folder and run it.

Verify and bench import these inside isolated workers (see ``hubtool.runtime.isolate``); this
package itself imports nothing heavy.

Interface of the torch backends (``eager``, ``sdpa``, ``compile``)::

    loaded = load(folder: Path, *, device: str = "cpu", dtype: str = "float32") -> Loaded
    loaded.model        # transformers GPT2LMHeadModel, eval mode, on ``device``
    loaded.info         # dict: backend, attn_implementation, device, dtype, load_seconds,
                        #       missing_keys, unexpected_keys, mismatched_keys
    loaded.logits(input_ids, attention_mask=None) -> float tensor [batch, seq, vocab]
    loaded.refresh_info() -> dict   # compile: re-reads the Dynamo/Inductor counters

``compile`` compiles ``model.forward`` with Inductor (so ``generate`` runs compiled code)
and its ``info`` proves it: ``compiler_backend``, ``graphs`` (graphs Inductor compiled),
``graph_breaks``, ``recompiles``, ``compile_seconds``, ``fxgraph_cache_hits/misses``,
``failed_frames`` (frames Dynamo gave up on and ran eagerly).

``compile.load`` also takes ``mode`` and ``dynamic`` (torch.compile's), and
``compile.proof_problems(info)`` lists why a run does not count as compiled.

``vllm``: ``available()`` (an import check without importing), ``load(folder, *,
max_model_len=512, dtype="float32", seed=0, **LLM_overrides) -> vllm.LLM`` (engine in
process, prefix caching off, a small KV cache), and ``unsupported_errors()``, a context
manager for calls such as ``llm.generate``. A configuration vLLM refuses (e.g. CPU
attention with head_dim 1 or 384, which fails at the first forward, not at load) raises
``BackendUnsupported`` carrying vLLM's own message.
"""

from __future__ import annotations

BACKENDS: tuple[str, ...] = ("eager", "sdpa", "compile", "vllm")
TORCH_BACKENDS: tuple[str, ...] = ("eager", "sdpa", "compile")


class BackendUnsupported(Exception):
    """The backend cannot run this model configuration; the message is the backend's reason."""
