"""The four timed calls for a transformers causal LM (eager, sdpa or compiled forward).

The prompt is seeded random token ids built before timing (tokenization is outside the
timed region by construction). Decode feeds back the greedy token, so a step does what a
real decoding loop does. With ``static_cache`` the KV cache is a preallocated
``StaticCache`` and positions are passed as tensors, which is what CUDA graphs
(``mode="reduce-overhead"``) need: a growing ``DynamicCache`` changes shapes every step.
"""

from __future__ import annotations

from typing import Any


class TorchRunner:
    def __init__(
        self, model: Any, *, prompt_len: int, new_tokens: int, batch_size: int, seed: int,
        static_cache: bool = False, mark_cudagraph_steps: bool = False,
    ) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.new_tokens = new_tokens
        self.batch_size = batch_size
        self.prompt_len = prompt_len
        self.device = next(model.parameters()).device
        generator = torch.Generator().manual_seed(seed)
        vocab = model.config.vocab_size
        self.ids = torch.randint(0, vocab, (batch_size, prompt_len), generator=generator).to(self.device)
        self.attention_mask = torch.ones_like(self.ids)
        self.static_cache = static_cache
        self.mark_cudagraph_steps = mark_cudagraph_steps
        self._cache = None
        self._token = None
        self._position = 0
        self._eos = model.config.eos_token_id

    # -- helpers ---------------------------------------------------------------------------
    def _fresh_cache(self):
        if not self.static_cache:
            return None  # the model creates a DynamicCache
        if self._cache is None:
            from transformers import StaticCache

            self._cache = StaticCache(config=self.model.config, max_cache_len=self.prompt_len + self.new_tokens + 1)
        else:
            with self.torch.inference_mode():  # its tensors were made in inference mode
                self._cache.reset()
        return self._cache

    def _forward(self, ids, cache, start: int):
        torch = self.torch
        if self.mark_cudagraph_steps:
            torch.compiler.cudagraph_mark_step_begin()
        kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": True, "past_key_values": cache}
        if self.static_cache:
            positions = torch.arange(start, start + ids.shape[1], device=self.device)
            kwargs["position_ids"] = positions.unsqueeze(0).expand(ids.shape[0], -1)
        with torch.inference_mode():
            out = self.model(**kwargs)
        # argmax makes a fresh tensor: safe even when CUDA graphs reuse the output buffer.
        return out.past_key_values, out.logits[:, -1:].argmax(-1)

    # -- the Runner protocol -----------------------------------------------------------------
    def prefill(self) -> int:
        _, token = self._forward(self.ids, self._fresh_cache(), 0)
        return int(token.shape[0]) * self.prompt_len

    def begin_decode(self) -> None:
        self._cache, self._token = self._forward(self.ids, self._fresh_cache(), 0)
        self._position = self.prompt_len

    def decode_step(self) -> int:
        self._cache, self._token = self._forward(self._token, self._cache, self._position)
        self._position += 1
        return int(self._token.shape[0])

    def generate(self) -> int:
        kwargs: dict[str, Any] = {
            "attention_mask": self.attention_mask,
            "max_new_tokens": self.new_tokens,
            "min_new_tokens": self.new_tokens,
            "do_sample": False,
            "use_cache": True,
            "pad_token_id": self._eos,
        }
        if self.static_cache:
            # Our own compiled forward is what is measured: generate must not compile again.
            kwargs.update(cache_implementation="static", disable_compile=True)
        with self.torch.inference_mode():
            out = self.model.generate(self.ids, **kwargs)
        return int(out.shape[0]) * (int(out.shape[1]) - self.prompt_len)
