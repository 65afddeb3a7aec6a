"""How each engine's phases are timed: one Runner per engine, the same calls for every backend.

The phase loop (``hubtool.bench.phases``) owns warmup, repeats, failures and the clock;
a runner supplies the work:

- ``prefill()``: what ``generate()`` computes for the prompt: one forward over it into a
  fresh KV cache with logits for the last position only (``logits_to_keep=1``), called
  with generate()'s own arguments (``hubtool.backends.decoding``); timed by the loop's clock.
- ``decode(clock)``: after an untimed prefill, ``new_tokens`` single-token steps with the
  KV cache, each timed alone; returns the step times.
- ``generate(clock)``: a real generation of ``new_tokens`` tokens, timed whole by the loop
  (end-to-end), with the time of each token's arrival stamped inside it: time to first
  token and the inter-token latencies.

The prompt is seeded random token ids made before timing (tokenization is outside the
timed region by construction).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol


@dataclass
class Generated:
    tokens: int
    ttft_ms: float
    itl_ms: list[float]


class Runner(Protocol):
    new_tokens: int
    batch_size: int
    prompt_len: int

    def prefill(self) -> int: ...

    def decode(self, clock: Any) -> list[float]: ...

    def generate(self, clock: Any) -> Generated: ...


def random_prompt(*, vocab: int, batch_size: int, prompt_len: int, seed: int) -> list[list[int]]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch_size, prompt_len), generator=generator).tolist()


class TorchRunner:
    """A transformers causal LM (eager, sdpa or a compiled forward).

    With ``static_cache`` the KV cache is a preallocated ``StaticCache`` and positions are
    passed as tensors, which is what CUDA graphs (``mode="reduce-overhead"``) need.
    """

    def __init__(self, model: Any, *, prompt_len: int, new_tokens: int, batch_size: int, seed: int,
                 static_cache: bool = False, mark_cudagraph_steps: bool = False) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.new_tokens, self.batch_size, self.prompt_len = new_tokens, batch_size, prompt_len
        self.device = next(model.parameters()).device
        ids = random_prompt(vocab=model.config.vocab_size, batch_size=batch_size, prompt_len=prompt_len, seed=seed)
        self.ids = torch.tensor(ids, device=self.device)
        self.attention_mask = torch.ones_like(self.ids)
        self.static_cache = static_cache
        self.mark_cudagraph_steps = mark_cudagraph_steps
        self._cache: Any = None  # a transformers StaticCache once made
        self._eos = model.config.eos_token_id
        from hubtool.backends import decoding

        decoding.generate_keywords(model)  # recorded now, so no phase's first call includes it

    def _fresh_cache(self):
        from hubtool.backends import decoding

        if not self.static_cache:
            return decoding.fresh_cache(self.model)
        if self._cache is None:
            from transformers import StaticCache

            self._cache = StaticCache(config=self.model.config, max_cache_len=self.prompt_len + self.new_tokens + 1)
        else:
            with self.torch.inference_mode():  # its tensors were made in inference mode
                self._cache.reset()
        return self._cache

    def _forward(self, ids, cache, start: int):
        """One step with generate()'s own arguments (``hubtool.backends.decoding``): (cache, next tokens)."""
        from hubtool.backends import decoding

        if self.mark_cudagraph_steps:
            self.torch.compiler.cudagraph_mark_step_begin()
        cache, logits = decoding.step(self.model, ids, cache, start)
        # argmax makes a fresh tensor: safe even when CUDA graphs reuse the output buffer.
        return cache, logits.argmax(-1, keepdim=True)

    def prefill(self) -> int:
        self._forward(self.ids, self._fresh_cache(), 0)
        return self.batch_size * self.prompt_len

    def decode(self, clock: Any) -> list[float]:
        from hubtool.bench.timing import time_calls

        cache, token = self._forward(self.ids, self._fresh_cache(), 0)
        state = {"cache": cache, "token": token, "position": self.prompt_len}

        def step() -> None:
            state["cache"], state["token"] = self._forward(state["token"], state["cache"], state["position"])
            state["position"] += 1

        ms, _ = time_calls(step, calls=self.new_tokens, clock=clock)
        return ms

    def generate(self, clock: Any) -> Generated:
        from transformers import LogitsProcessorList

        stamps = _Stamps(clock)
        kwargs: dict[str, Any] = {
            "attention_mask": self.attention_mask, "max_new_tokens": self.new_tokens,
            "min_new_tokens": self.new_tokens, "do_sample": False, "use_cache": True, "pad_token_id": self._eos,
            "logits_processor": LogitsProcessorList([stamps]),
        }
        if self.static_cache:
            # Our own compiled forward is what is measured: generate must not compile again.
            kwargs.update(cache_implementation="static", disable_compile=True)
        start = clock.host_now()
        with self.torch.inference_mode():
            out = self.model.generate(self.ids, **kwargs)
        tokens = int(out.shape[0]) * (int(out.shape[1]) - self.prompt_len)
        return stamps.result(start, tokens)


class _Stamps:
    """A logits processor that only records when each token's logits exist (called once per step)."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.times: list[float] = []

    def __call__(self, input_ids, scores):
        self.times.append(self.clock.host_now(sync=True))
        return scores

    def result(self, start: float, tokens: int) -> Generated:
        ttft = self.times[0] - start
        itl = [b - a for a, b in pairwise(self.times)]
        return Generated(tokens=tokens, ttft_ms=ttft, itl_ms=itl)


class VllmRunner:
    """vLLM's engine, driven step by step as ``LLM.generate`` drives it, with a stamp per step.

    ``prefill`` is a generation of one token (what a request costs until its first token);
    ``decode`` and ``generate`` step the engine and stamp each step that produced tokens.
    """

    def __init__(self, llm: Any, *, prompt_len: int, new_tokens: int, batch_size: int, seed: int) -> None:
        self.llm = llm
        self.new_tokens, self.batch_size, self.prompt_len = new_tokens, batch_size, prompt_len
        vocab = llm.llm_engine.model_config.get_vocab_size()
        self.prompts = [{"prompt_token_ids": ids}
                        for ids in random_prompt(vocab=vocab, batch_size=batch_size, prompt_len=prompt_len, seed=seed)]
        self._next_id = 0

    def _params(self, tokens: int):
        from vllm import SamplingParams

        return SamplingParams(temperature=0.0, max_tokens=tokens, min_tokens=tokens, ignore_eos=True)

    def _run(self, tokens: int, clock: Any) -> tuple[float, list[float], int]:
        """(start, stamps of the steps that produced tokens, tokens produced) for one batch."""
        engine = self.llm.llm_engine
        params = self._params(tokens)
        start = clock.host_now()
        for prompt in self.prompts:
            engine.add_request(str(self._next_id), prompt, params)
            self._next_id += 1
        stamps: list[float] = []
        produced: dict[str, int] = {}
        while engine.has_unfinished_requests():
            outputs = engine.step()
            grew = False
            for out in outputs:
                n = len(out.outputs[0].token_ids)
                if n > produced.get(out.request_id, 0):
                    produced[out.request_id] = n
                    grew = True
            if grew:
                stamps.append(clock.host_now())
        return start, stamps, sum(produced.values())

    def prefill(self) -> int:
        from hubtool.bench.timing import CpuClock

        self._run(1, CpuClock())
        return self.batch_size * self.prompt_len

    def decode(self, clock: Any) -> list[float]:
        _, stamps, _ = self._run(self.new_tokens + 1, clock)
        return [b - a for a, b in pairwise(stamps)]

    def generate(self, clock: Any) -> Generated:
        start, stamps, tokens = self._run(self.new_tokens, clock)
        return Generated(tokens=tokens, ttft_ms=stamps[0] - start, itl_ms=[b - a for a, b in pairwise(stamps)])
