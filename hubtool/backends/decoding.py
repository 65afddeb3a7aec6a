"""The forward calls that decoding is made of, with exactly the arguments ``generate()`` passes.

verify's greedy loop and bench's prefill and decode phases call ``forward`` themselves
(to time each step alone). They pass what ``generate()`` passes, key for key, in the same
order: a fresh cache (not ``None``) for the prompt, position ids, ``logits_to_keep=1``,
``use_cache`` and ``return_dict``. That does two things:

- the timed step is the step ``generate()`` runs, not a near relative of it;
- a compiled ``forward`` sees the same call from the loop and from ``generate()``. Dynamo
  guards on which keyword arguments are present, so a loop with other keywords compiles
  prefill and decode graphs of its own: 8 graphs per model instead of 5, and about a fifth
  more compile time (measured on gpt2-25m, cold cache).

The keywords are not written down here: transformers renames them between releases (5.19
passes the cache as ``past_key_values``, 5.24 as ``cache``). They are recorded once per
model class from a two-token ``generate()`` on the uncompiled forward (milliseconds), and
an argument this module cannot supply is an error, not a silently different call.
``tests/test_decoding.py`` checks the loop's calls against generate()'s, argument for argument.
"""

from __future__ import annotations

import functools
from typing import Any

# What each keyword generate() passes gets here; the cache is found by its type, whatever its name.
_CACHE = "<cache>"
_KEYWORDS: dict[type, tuple[tuple[str, str], ...]] = {}


class UnknownArgument(RuntimeError):
    """generate() passes forward an argument this module does not know how to supply."""


def fresh_cache(model: Any) -> Any:
    """An empty ``DynamicCache``, as ``generate()`` makes one before the prompt's forward."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def generate_keywords(model: Any) -> tuple[tuple[str, str], ...]:
    """generate()'s keyword arguments to ``forward`` as (name, what it carries), in its order.

    Recorded once per model class, from a greedy two-token ``generate()`` on the class's own
    (uncompiled) forward; the instance's ``forward`` (a compiled one) is put back after.
    """
    cls = type(model)
    if cls not in _KEYWORDS:
        _KEYWORDS[cls] = _record(model)
    return _KEYWORDS[cls]


def _record(model: Any) -> tuple[tuple[str, str], ...]:
    import torch
    from transformers import Cache

    calls: list[tuple[tuple[str, str], ...]] = []
    original = type(model).forward.__get__(model)

    @functools.wraps(original)  # generate() reads forward's signature (logits_to_keep)
    def recorder(*args: Any, **kwargs: Any) -> Any:
        if args:
            raise UnknownArgument(f"generate() passed forward {len(args)} positional argument(s)")
        calls.append(tuple((key, _CACHE if isinstance(value, Cache) else key) for key, value in kwargs.items()))
        return original(**kwargs)

    instance = model.__dict__.get("forward")
    model.forward = recorder
    try:
        ids = torch.zeros((1, 2), dtype=torch.long, device=next(model.parameters()).device)
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=2, min_new_tokens=2,
                           do_sample=False, pad_token_id=0)
    finally:
        if instance is None:
            del model.forward
        else:
            model.forward = instance
    if len(calls) != 2 or calls[0] != calls[1]:
        raise UnknownArgument(f"generate()'s prompt and step calls differ: {calls}")
    return calls[0]


def step_kwargs(model: Any, ids: Any, cache: Any, start: int) -> dict[str, Any]:
    """``forward``'s keyword arguments for ``ids`` at positions ``start..``: generate()'s, in its order.

    Call it under ``torch.inference_mode()``, as generate() makes its tensors: Dynamo guards on
    a tensor's dispatch keys, and one made outside inference mode compiles a graph of its own.
    ``ids`` is cloned contiguous, as generate() clones it.
    """
    import torch

    batch, length = ids.shape
    values = {
        "input_ids": lambda: ids.clone(memory_format=torch.contiguous_format),
        "position_ids": lambda: torch.arange(start, start + length, device=ids.device).repeat(batch, 1),
        "attention_mask": lambda: torch.ones((batch, start + length), dtype=torch.long, device=ids.device),
        "logits_to_keep": lambda: 1,
        "use_cache": lambda: True,
        "return_dict": lambda: True,
        _CACHE: lambda: cache,
    }
    kwargs = {}
    for name, carries in generate_keywords(model):
        if carries not in values:
            raise UnknownArgument(f"generate() passes forward {name!r}, which hubtool's decoding loop "
                                  "cannot supply: its steps would not be generate()'s")
        kwargs[name] = values[carries]()
    return kwargs


def step(model: Any, ids: Any, cache: Any, start: int) -> tuple[Any, Any]:
    """One forward into ``cache``: (the cache to pass next, the last position's logits, batch x vocab)."""
    import torch
    from transformers import Cache

    with torch.inference_mode():
        out = model(**step_kwargs(model, ids, cache, start))
    returned = next((value for value in out.values() if isinstance(value, Cache)), cache)
    return returned, out.logits[:, -1]
