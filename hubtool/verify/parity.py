"""Output parity workers: each runs inside its own process (see ``hubtool.runtime.isolate``).

The reference worker loads the folder with eager attention in float32 (the reference)
and float64 (the judge of error size), runs fixed prompts of several lengths, a greedy
continuation of each, and one left-padded batch, and saves every logit to a file in
the run's work folder. Every other backend's worker loads that file and measures itself
against it. Workers return metrics only; ``hubtool.verify.run`` judges them against the
tolerances, so the thresholds live in one place and are written into the report.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

REFERENCE_FILE = "reference.safetensors"
# Several lengths: a 2-token prompt, a sentence, and a paragraph.
PROMPTS = (
    "Hello world",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Benchmarks of small language models measure how latency grows with depth and width. "
    "A family of checkpoints that differ in one dimension at a time lets a reader separate "
    "the cost of arithmetic from the cost of launching kernels.",
)


# -- helpers shared by the workers ---------------------------------------------------------

def _tokenize(folder: str) -> list[list[int]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    return [tok(p)["input_ids"] for p in PROMPTS]


def _padded_batch(seqs: list[list[int]], pad: int):
    """Left-padded batch with the mask and position ids that make each row equal its lone run."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, width - len(seq):] = torch.tensor(seq)
        mask[row, width - len(seq):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


def _forward(model, ids, mask=None, positions=None):
    import torch

    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False).logits


def _greedy(model, prompt: list[int], new_tokens: int, eos: int) -> list[int]:
    """N greedy tokens decoded with the KV cache, EOS blocked so every run yields N.

    A plain loop over ``forward`` (what ``generate`` does, without its per-step logits
    processors), so a compiled ``forward`` is what decodes.
    """
    import torch

    tokens: list[int] = []
    ids = torch.tensor([prompt])
    past = None
    with torch.inference_mode():
        for _ in range(new_tokens):
            out = model(input_ids=ids, past_key_values=past, use_cache=True, logits_to_keep=1)
            past = out.past_key_values
            row = out.logits[0, -1].clone()
            row[eos] = -math.inf
            tokens.append(int(row.argmax()))
            ids = torch.tensor([[tokens[-1]]])
    return tokens


def _run_all(model, seqs, prompt_lens, batch, new_tokens, eos, *, greedy=None) -> dict[str, Any]:
    """Everything a torch backend computes: greedy tokens (unless given), full-sequence and batch logits."""
    import torch

    if greedy is None:
        greedy = [_greedy(model, s[:n], new_tokens, eos) for s, n in zip(seqs, prompt_lens)]
    logits = [_forward(model, torch.tensor([s]))[0] for s in seqs]
    ids, mask, positions = batch
    batch_logits = _forward(model, ids, mask, positions)[mask.bool()]
    return {"logits": logits, "batch_logits": batch_logits, "greedy": greedy}


def _state_digests(model) -> dict[str, str]:
    """sha256 of every reloaded parameter's bytes, to compare with the file's."""
    import torch

    out = {}
    for name, tensor in model.state_dict().items():
        data = tensor.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes()
        out[name] = hashlib.sha256(data).hexdigest()
    return out


def _gap(logits, eos: int) -> float:
    """top-1 minus top-2 of one greedy step's logits (EOS excluded: the greedy loop blocks it)."""
    row = logits.clone()
    row[eos] = -math.inf
    top = row.topk(2).values
    return float(top[0] - top[1])


def _load_reference(work_dir: str) -> dict[str, Any]:
    from safetensors.torch import load_file

    raw = load_file(str(Path(work_dir) / REFERENCE_FILE))
    n = int(raw["count"].item())
    seqs = [raw[f"seq.{i}"].tolist() for i in range(n)]
    return {
        "seqs": seqs,
        "prompt_lens": [int(raw[f"prompt_len.{i}"].item()) for i in range(n)],
        "logits32": [raw[f"logits32.{i}"] for i in range(n)],
        "logits64": [raw[f"logits64.{i}"] for i in range(n)],
        "batch": (raw["batch.input_ids"], raw["batch.attention_mask"], raw["batch.position_ids"]),
        "batch32": raw["batch.logits32"],
        "batch64": raw["batch.logits64"],
        "eos": int(raw["eos"].item()),
        "new_tokens": int(raw["new_tokens"].item()),
    }


# -- metrics ----------------------------------------------------------------------------------

class _Err:
    """Running max |diff| and sums of squares against the fp32 and fp64 references."""

    def __init__(self) -> None:
        self.max_abs = 0.0
        self.sq, self.sq_ref, self.count = 0.0, 0.0, 0

    def add(self, got, ref32, ref64) -> None:
        got64 = got.double()
        self.max_abs = max(self.max_abs, float((got - ref32).abs().max()))
        self.sq += float(((got64 - ref64) ** 2).sum())
        self.sq_ref += float(((ref32.double() - ref64) ** 2).sum())
        self.count += got.numel()

    def metrics(self, prefix: str = "") -> dict[str, Any]:
        rmse = math.sqrt(self.sq / self.count) if self.count else None
        ref = math.sqrt(self.sq_ref / self.count) if self.count else None
        return {
            f"{prefix}max_abs_diff": self.max_abs,
            f"{prefix}rmse_vs_fp64": rmse,
            f"eager_{prefix}rmse_vs_fp64": ref,
            f"{prefix}rmse_ratio": (rmse / ref) if ref else None,
            f"{prefix}compared": self.count,
        }


def _top1(got_top, ref_rows, epsilon: float) -> dict[str, int]:
    """Top-1 agreement where the reference is decided (top-1/top-2 gap above epsilon)."""
    import torch

    top = ref_rows.topk(2, dim=-1)
    decided = (top.values[:, 0] - top.values[:, 1]) > epsilon
    same = torch.as_tensor(got_top).reshape(-1) == top.indices[:, 0]
    return {"agree": int((decided & same).sum()), "disagree": int((decided & ~same).sum()),
            "near_ties": int((~decided).sum())}


def _greedy_compare(got: list[list[int]], ref: dict[str, Any], epsilon: float) -> dict[str, Any]:
    """Flip = first divergence at a decided step; a near-tie divergence ends the comparison there."""
    flips = ties = compared = 0
    first_flip = None
    for i, tokens in enumerate(got):
        n = ref["prompt_lens"][i]
        want = ref["seqs"][i][n:]
        for k, (a, b) in enumerate(zip(tokens, want)):
            compared += 1
            if a == b:
                continue
            gap = _gap(ref["logits32"][i][n - 1 + k], ref["eos"])
            if gap > epsilon:
                flips += 1
                first_flip = first_flip or f"prompt {i} step {k}: got {a}, reference {b} (gap {gap:.3g})"
            else:
                ties += 1
            break
    return {"greedy_flips": flips, "greedy_near_tie_divergences": ties, "greedy_tokens_compared": compared,
            "greedy_first_flip": first_flip}


def torch_metrics(ref: dict[str, Any], out: dict[str, Any], *, epsilon: float) -> dict[str, Any]:
    err, batch_err = _Err(), _Err()
    tops = {"agree": 0, "disagree": 0, "near_ties": 0}
    for got, r32, r64 in zip(out["logits"], ref["logits32"], ref["logits64"]):
        err.add(got, r32, r64)
        for key, value in _top1(got.argmax(-1), r32, epsilon).items():
            tops[key] += value
    batch_err.add(out["batch_logits"], ref["batch32"], ref["batch64"])
    decided = tops["agree"] + tops["disagree"]
    return {
        **err.metrics(),
        **{k: v for k, v in batch_err.metrics("batch_").items() if not k.startswith("eager_")},
        "top1_agreement": tops["agree"] / decided if decided else None,
        "top1_disagreements": tops["disagree"],
        "top1_near_ties": tops["near_ties"],
        **_greedy_compare(out["greedy"], ref, epsilon),
        "prompt_tokens": [n for n in ref["prompt_lens"]],
    }


# -- workers (run in child processes) --------------------------------------------------------

def reference_worker(*, folder: str, work_dir: str, new_tokens: int, epsilon: float) -> dict[str, Any]:
    """Eager fp32 + fp64 reference; its own metrics are its fp64 error and a repeat run (determinism)."""
    import torch
    from safetensors.torch import save_file

    from hubtool.backends import eager
    from hubtool.runtime.fingerprint import fingerprint

    start = time.perf_counter()
    prompts = _tokenize(folder)
    m32 = eager.load(Path(folder))
    model = m32.model
    eos = int(model.config.eos_token_id if model.config.eos_token_id is not None else 0)
    greedy = [_greedy(model, p, new_tokens, eos) for p in prompts]
    seqs = [p + g for p, g in zip(prompts, greedy)]
    prompt_lens = [len(p) for p in prompts]
    batch = _padded_batch(seqs, eos)
    first = _run_all(model, seqs, prompt_lens, batch, new_tokens, eos, greedy=greedy)
    m64 = eager.load(Path(folder), dtype="float64")
    logits64 = [_forward(m64.model, torch.tensor([s]))[0] for s in seqs]
    batch64 = _forward(m64.model, *batch)[batch[1].bool()]
    del m64
    tensors = {"count": torch.tensor(len(seqs)), "eos": torch.tensor(eos), "new_tokens": torch.tensor(new_tokens)}
    for i, s in enumerate(seqs):
        tensors.update({
            f"seq.{i}": torch.tensor(s), f"prompt_len.{i}": torch.tensor(prompt_lens[i]),
            f"logits32.{i}": first["logits"][i].contiguous(), f"logits64.{i}": logits64[i].contiguous(),
        })
    tensors.update({
        "batch.input_ids": batch[0], "batch.attention_mask": batch[1], "batch.position_ids": batch[2],
        "batch.logits32": first["batch_logits"].contiguous(), "batch.logits64": batch64.contiguous(),
    })
    save_file(tensors, str(Path(work_dir) / REFERENCE_FILE))
    ref = _load_reference(work_dir)
    metrics = torch_metrics(ref, first, epsilon=epsilon)
    longest = max(range(len(seqs)), key=lambda i: len(seqs[i]))
    again = _forward(model, torch.tensor([seqs[longest]]))[0]
    metrics["repeat_max_abs_diff"] = float((again - first["logits"][longest]).abs().max())
    info = dict(m32.info)
    info["tied_after_reload"] = (
        model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
        if model.config.tie_word_embeddings else None
    )
    return {
        "status": "ran",
        "metrics": metrics,
        "info": info,
        "reloaded_digests": _state_digests(model),
        "fingerprint": fingerprint(attn_implementation="eager", compile_mode=None, cache_type="DynamicCache"),
        "worker_seconds": time.perf_counter() - start,
    }


def torch_worker(*, backend: str, folder: str, work_dir: str, epsilon: float) -> dict[str, Any]:
    """One torch backend measured against the saved reference."""
    import importlib

    start = time.perf_counter()
    ref = _load_reference(work_dir)
    module = importlib.import_module(f"hubtool.backends.{backend}")
    loaded = module.load(Path(folder))
    out = _run_all(loaded.model, ref["seqs"], ref["prompt_lens"], ref["batch"], ref["new_tokens"], ref["eos"])
    return {
        "status": "ran",
        "metrics": torch_metrics(ref, out, epsilon=epsilon),
        "info": loaded.refresh_info(),
        "worker_seconds": time.perf_counter() - start,
    }


def vllm_worker(*, folder: str, work_dir: str, epsilon: float) -> dict[str, Any]:
    """vLLM's prompt and generated-token logprobs against transformers' log_softmax."""
    import torch

    from hubtool.backends import BackendUnsupported
    from hubtool.backends import vllm as vllm_backend

    start = time.perf_counter()
    ref = _load_reference(work_dir)
    max_len = max(len(s) for s in ref["seqs"]) + ref["new_tokens"] + 32
    try:
        llm = vllm_backend.load(Path(folder), max_model_len=max_len)
        with vllm_backend.unsupported_errors():
            scored, generated = _vllm_run(llm, ref)
    except BackendUnsupported as exc:
        return {"status": "unsupported", "reason": str(exc), "worker_seconds": time.perf_counter() - start}

    err = _Err()
    tops = {"agree": 0, "disagree": 0, "near_ties": 0}
    for i, out in enumerate(scored):
        seq = ref["seqs"][i]
        lp32 = torch.log_softmax(ref["logits32"][i], -1)
        lp64 = torch.log_softmax(ref["logits64"][i], -1)
        positions = range(1, len(seq))
        got = torch.tensor([out.prompt_logprobs[t][seq[t]].logprob for t in positions], dtype=torch.float32)
        idx = torch.tensor([seq[t] for t in positions])
        rows = torch.arange(len(seq) - 1)
        err.add(got, lp32[rows, idx], lp64[rows, idx])
        top = [next(tok for tok, lp in out.prompt_logprobs[t].items() if lp.rank == 1) for t in positions]
        for key, value in _top1(top, ref["logits32"][i][:-1], epsilon).items():
            tops[key] += value
    gen_err = _Err()
    tokens = []
    for i, out in enumerate(generated):
        n = ref["prompt_lens"][i]
        completion = out.outputs[0]
        tokens.append(list(completion.token_ids))
        lp32 = torch.log_softmax(ref["logits32"][i], -1)
        lp64 = torch.log_softmax(ref["logits64"][i], -1)
        for k, token in enumerate(completion.token_ids):
            if token != ref["seqs"][i][n + k]:
                break
            gen_err.add(torch.tensor([completion.logprobs[k][token].logprob]),
                        lp32[n - 1 + k, token:token + 1], lp64[n - 1 + k, token:token + 1])
    decided = tops["agree"] + tops["disagree"]
    metrics = {
        **{f"prompt_logprob_{k}": v for k, v in err.metrics().items()},
        **{f"generated_logprob_{k}": v for k, v in gen_err.metrics().items() if not k.startswith("eager_")},
        "top1_agreement": tops["agree"] / decided if decided else None,
        "top1_disagreements": tops["disagree"],
        "top1_near_ties": tops["near_ties"],
        **_greedy_compare(tokens, ref, epsilon),
        "prompt_tokens": list(ref["prompt_lens"]),
    }
    return {"status": "ran", "metrics": metrics, "info": {"backend": "vllm", "max_model_len": max_len},
            "worker_seconds": time.perf_counter() - start}


def _vllm_run(llm, ref: dict[str, Any]):
    from vllm import SamplingParams

    n = ref["new_tokens"]
    score = SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=1)
    scored = llm.generate([{"prompt_token_ids": s} for s in ref["seqs"]], score, use_tqdm=False)
    greedy = SamplingParams(temperature=0, max_tokens=n, min_tokens=n, logprobs=1, seed=0)
    prompts = [{"prompt_token_ids": s[:k]} for s, k in zip(ref["seqs"], ref["prompt_lens"])]
    generated = llm.generate(prompts, greedy, use_tqdm=False)
    return scored, generated
