"""verify's greedy loop and bench's phases call forward exactly as generate() does.

Recorded against the installed transformers, so an upgrade that changes generate()'s call
fails here, not as a silent doubling of compile time. The compiled check counts Dynamo's
graphs: after the loop, generate() must compile nothing new.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hubtool.runtime import cache as cache_paths
from hubtool.runtime.isolate import child_env

NEW_TOKENS = 4


def _describe(kwargs: dict) -> list[tuple[str, object]]:
    """Each keyword argument, in order, with the value that decides a compiled graph's guards."""
    import torch

    out: list[tuple[str, object]] = []
    for key, value in kwargs.items():
        if torch.is_tensor(value):
            out.append((key, (tuple(value.shape), value.dtype, value.tolist() if key == "position_ids" else None)))
        elif isinstance(value, bool | int | type(None)):
            out.append((key, value))
        else:
            out.append((key, type(value).__name__))
    return out


def _recording(model) -> list[list[tuple[str, object]]]:
    """Replace ``model.forward`` by a recorder that keeps its signature (generate() inspects it)."""
    calls: list[list[tuple[str, object]]] = []
    original = model.forward

    @functools.wraps(original)
    def forward(*args, **kwargs):
        assert not args
        calls.append(_describe(kwargs))
        return original(**kwargs)

    model.forward = forward
    return calls


def test_the_loop_passes_what_generate_passes(tiny_dir: Path) -> None:
    import torch

    from hubtool.backends import attention
    from hubtool.verify.parity import _generate, _greedy

    model = attention.load(tiny_dir, attn_implementation="sdpa").model
    calls = _recording(model)
    prompt = [464, 2068, 7586, 21831, 18045]
    generated = _generate(model, prompt, NEW_TOKENS, eos=50256)
    by_generate = list(calls)
    calls.clear()
    looped = _greedy(model, prompt, NEW_TOKENS, eos=50256)

    # generate() runs one forward per token; the loop runs the same ones, argument for argument.
    assert len(by_generate) == NEW_TOKENS
    assert calls == by_generate
    # The prompt's call gets a fresh cache, not None (transformers 5.19 names it past_key_values, 5.24 cache).
    assert "DynamicCache" in dict(calls[0]).values()
    assert dict(calls[1])["position_ids"] == ((1, 1), torch.int64, [[len(prompt)]])
    assert looped == generated


def test_bench_runner_steps_are_generate_steps(tiny_dir: Path) -> None:
    from hubtool.backends import attention
    from hubtool.bench.runners import TorchRunner
    from hubtool.bench.timing import CpuClock

    model = attention.load(tiny_dir, attn_implementation="sdpa").model
    calls = _recording(model)
    runner = TorchRunner(model, prompt_len=6, new_tokens=NEW_TOKENS, batch_size=2, seed=0)
    runner.generate(CpuClock())
    by_generate = list(calls)
    calls.clear()
    runner.decode(CpuClock())  # an untimed prefill, then NEW_TOKENS steps

    assert len(by_generate) == NEW_TOKENS
    # generate() stops after NEW_TOKENS forwards (the prompt's, then one per new token but the last);
    # decode runs those and one step more, at the next position.
    assert calls[:NEW_TOKENS] == by_generate
    assert calls[NEW_TOKENS] == [(k, ((2, 1), v[1], [[6 + NEW_TOKENS - 1]] * 2) if k == "position_ids" else v)
                                 for k, v in by_generate[-1]]


_COMPILED = """
import json, sys, torch
from torch._dynamo.utils import counters
from hubtool.backends import compile as compiled
from hubtool.verify.parity import _generate, _greedy
model = compiled.load(__import__("pathlib").Path(sys.argv[1])).model
prompt = [464, 2068, 7586, 21831, 18045]
looped = _greedy(model, prompt, 4, 50256)
after_loop = counters["stats"]["unique_graphs"]
generated = _generate(model, prompt, 4, 50256)
from torch._dynamo.utils import get_compilation_metrics
reasons = [(m.recompile_reason or "").splitlines()[0][:200] for m in get_compilation_metrics() if m.recompile_reason]
print(json.dumps({"after_loop": after_loop, "after_generate": counters["stats"]["unique_graphs"],
                  "same_tokens": looped == generated, "recompiles": reasons}))
"""


@pytest.mark.slow
def test_compiled_generate_reuses_the_loops_graphs(tiny_dir: Path, verify_cache: Path) -> None:
    env = child_env(cache_dir=cache_paths.compile_cache(verify_cache), threads=1)
    out = subprocess.run([sys.executable, "-c", _COMPILED, str(tiny_dir)], env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    # prefill, the first cached step, and the later steps (the cache's layout changes once).
    assert counts["after_loop"] == 3, counts["recompiles"]
    assert counts["after_generate"] == counts["after_loop"]
    assert counts["same_tokens"] is True
