"""The forward calls that decoding is made of, with exactly the arguments ``generate()`` passes.

verify's greedy loop and bench's prefill and decode phases call ``forward`` themselves
(to time each step alone). They pass what ``generate()`` passes, key for key, in the same
order: a fresh ``DynamicCache`` (not ``None``) for the prompt, ``position_ids``,
``logits_to_keep=1``, ``use_cache`` and ``return_dict``. That does two things:

- the timed step is the step ``generate()`` runs, not a near relative of it;
- a compiled ``forward`` sees the same call signature from the loop and from
  ``generate()``. Dynamo guards on which keyword arguments are present, so a loop with
  different keywords compiles its own prefill and decode graphs: 8 graphs per model
  instead of 5, and about a fifth more compile time (measured on gpt2-25m, cold cache).

``tests/test_decoding.py`` records what ``generate()`` really passes in the installed
transformers and fails if it stops matching ``step_kwargs``.
"""

from __future__ import annotations

from typing import Any


def fresh_cache(model: Any) -> Any:
    """An empty ``DynamicCache``, as ``generate()`` makes one before the prompt's forward."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def step_kwargs(ids: Any, cache: Any, start: int) -> dict[str, Any]:
    """``forward``'s keyword arguments for ``ids`` at positions ``start..``, in generate()'s order.

    Call it under ``torch.inference_mode()``, as generate() makes its tensors: Dynamo guards on
    a tensor's dispatch keys, and one made outside inference mode compiles a graph of its own.
    ``ids`` is cloned contiguous, as generate() clones it.
    """
    import torch

    batch, length = ids.shape
    positions = torch.arange(start, start + length, device=ids.device).repeat(batch, 1)
    return {"input_ids": ids.clone(memory_format=torch.contiguous_format), "past_key_values": cache,
            "position_ids": positions, "logits_to_keep": 1, "use_cache": True, "return_dict": True}


def step(model: Any, ids: Any, cache: Any, start: int) -> tuple[Any, Any]:
    """One forward into ``cache``: (the cache to pass next, the last position's logits, batch x vocab)."""
    import torch

    with torch.inference_mode():
        out = model(**step_kwargs(ids, cache, start))
    return out.past_key_values, out.logits[:, -1]
