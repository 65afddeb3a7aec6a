"""Backends with a deliberate numerical bug, for the tests that verify must catch it.

Each is an ordinary backend module (``load`` + ``proof``) registered at run time through
``hubtool.backends.registry.register``: the bug sits in the worker, exactly where a real
backend's bug would be, and nothing in hubtool knows about it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubtool.backends import attention
from hubtool.backends import compile as compiled
from hubtool.backends.registry import Backend


def load(folder: Path, *, device: str = "cpu", dtype: str = "float32", attn_implementation: str = "eager",
         inject: str = "none", factor: float = 1.0, **compile_options: Any):
    if inject == "raise":
        _crash_like_inductor()
    if inject == "inductor-fallback":
        _hand_back_uncompiled_graphs()
        return compiled.load(folder, device=device, dtype=dtype, attn_implementation=attn_implementation,
                             **compile_options)
    if inject == "graph-break":
        loaded = compiled.load(folder, device=device, dtype=dtype, attn_implementation=attn_implementation,
                               **compile_options)
        _break_graph_in_mlp(loaded.model)
        return loaded
    loaded = attention.load(folder, device=device, dtype=dtype, attn_implementation=attn_implementation)
    model = loaded.model
    if inject == "scale-blocks":
        import torch

        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.startswith("transformer.h."):
                    param.mul_(factor)
    elif inject == "attention-scale":
        for block in model.transformer.h:
            block.attn.scaling *= factor
    return loaded


def proof(info: dict[str, Any]) -> list[str]:
    return compiled.proof(info) if info.get("compiler_backend") else attention.proof(info)


def _crash_like_inductor() -> None:
    """An exception, then boilerplate printed after it (as PyTorch prints after Dynamo's errors)."""
    import atexit
    import sys

    atexit.register(lambda: print("\nSet TORCHDYNAMO_VERBOSE=1 for the internal stack trace (please do this "
                                  "especially if you're reporting a bug to PyTorch).", file=sys.stderr))
    raise RuntimeError("No working C++ compiler found")


def _hand_back_uncompiled_graphs() -> None:
    """What a silent fallback does: Inductor's entry point returns the graph it was given, uncompiled."""
    import torch._inductor.compile_fx as compile_fx

    compile_fx.compile_fx = lambda gm, example_inputs, **kwargs: gm.forward


def _break_graph_in_mlp(model) -> None:
    """A graph break inside the first block's MLP forces Dynamo to split the graph there (one
    break is the case the gate exists for; more only add compile time)."""
    import torch._dynamo

    for block in model.transformer.h[:1]:
        original = block.mlp.forward

        def forward(hidden_states, _original=original):
            torch._dynamo.graph_break()
            return _original(hidden_states)

        block.mlp.forward = forward


def declare(name: str, inject: str, *, factor: float = 1.0, compiled_backend: bool = False) -> Backend:
    options: dict[str, Any] = {"attn_implementation": "sdpa" if compiled_backend else "eager", "inject": inject,
                               "factor": factor}
    if compiled_backend:
        options.update(mode=None, dynamic=True)
    return Backend(name, f"injected {inject}", "tests.injected_backends", "transformers", f"eager with {inject}",
                   options=options, compiled=compiled_backend)
