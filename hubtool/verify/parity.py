"""Output parity workers: each runs inside its own process (see ``hubtool.runtime.isolate``).

The reference worker loads the folder with eager attention in float32 (the reference)
and float64 (the judge of error size), runs fixed prompts of several lengths, a greedy
continuation of each and one left-padded batch, and saves the logits to a file in the
run's work folder. It also writes the *probe*: the same model with its query and key
weights amplified so that attention is sharp rather than near-uniform (random weights
make every attention row almost flat, which hides scaling and masking bugs), run on the
short prompts plus one long random prompt that reaches near the end of the context.

Every other backend's worker loads the saved file and measures itself against it, on
the model and on the probe. Workers return metrics only; ``hubtool.verify.judge`` holds
the tolerances, so thresholds live in one place and are written into the report.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

REFERENCE_FILE = "reference.safetensors"
PROBE_DIR = "probe"
# Several lengths: a 2-token prompt, a sentence, and a paragraph.
PROMPTS = (
    "Hello world",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Benchmarks of small language models measure how latency grows with depth and width. "
    "A family of checkpoints that differ in one dimension at a time lets a reader separate "
    "the cost of arithmetic from the cost of launching kernels.",
)
PROBE_SCORE_STD = 3.0  # target standard deviation of the probe's attention scores
PROBE_ROWS = 64  # logit rows of the long prompt kept (spread over its length)


# -- helpers shared by the workers ---------------------------------------------------------

def _backend(declaration: dict[str, Any]):
    from hubtool.backends.registry import Backend

    return Backend.from_dict(declaration)


def _load(declaration: dict[str, Any], folder: Path, *, dtype: str = "float32"):
    backend = _backend(declaration)
    return backend.load_module().load(folder, device="cpu", dtype=dtype, **backend.options)


def _eager(folder: Path, *, dtype: str = "float32"):
    from hubtool.backends import attention

    return attention.load(folder, dtype=dtype, attn_implementation="eager")


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

    A plain loop over ``forward`` with generate()'s own arguments (``hubtool.backends.decoding``),
    without its per-step logits processors: a compiled ``forward`` decodes here with the
    graphs that ``generate()`` and bench's phases use.
    """
    import torch

    from hubtool.backends import decoding

    tokens: list[int] = []
    ids, cache, start = torch.tensor([prompt]), decoding.fresh_cache(model), 0
    for _ in range(new_tokens):
        cache, logits = decoding.step(model, ids, cache, start)
        start += ids.shape[1]
        row = logits[0].clone()
        row[eos] = -math.inf
        tokens.append(int(row.argmax()))
        ids = torch.tensor([[tokens[-1]]])
    return tokens


def _generate(model, prompt: list[int], new_tokens: int, eos: int) -> list[int]:
    """N greedy tokens from ``generate()`` itself (EOS suppressed until N by min_new_tokens).

    Runs the code path bench's end-to-end phase times, so a compiled backend's graphs for it
    are compiled (and cached) here too.
    """
    import torch

    ids = torch.tensor([prompt])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, pad_token_id=eos)
    return out[0, len(prompt):].tolist()


def _state_digests(model) -> dict[str, str]:
    """sha256 of every parameter's bytes (reloaded or regenerated), to compare with the file's."""
    import torch

    out = {}
    for name, tensor in model.state_dict().items():
        data = tensor.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes()
        out[name] = hashlib.sha256(data).hexdigest()
    return out


def _gap(logits, eos: int) -> float:
    """top-1 minus top-2 of one greedy step's logits (EOS excluded: the greedy loop blocks it)."""
    import torch

    row = logits.clone()
    row[eos] = -torch.inf
    top = row.topk(2).values
    return float(top[0] - top[1])


def long_prompt(*, vocab: int, length: int, seed: int = 0) -> list[int]:
    """Seeded random token ids: positions near the end of the context, no tokenizer needed."""
    import torch

    return torch.randint(0, vocab, (length,), generator=torch.Generator().manual_seed(seed)).tolist()


def kept_rows(length: int) -> list[int]:
    """Rows of a long sequence whose logits are kept: spread evenly, plus the last few."""
    step = max(1, length // (PROBE_ROWS - 8))
    return sorted(set(range(0, length, step)) | set(range(max(0, length - 8), length)))


# -- the probe ----------------------------------------------------------------------------------

def write_probe(folder: Path, dest: Path, *, model) -> float:
    """A copy of ``folder`` whose query and key weights are scaled so attention scores are O(3).

    Scaling W_q and W_k (and their biases) by ``alpha`` scales every score by alpha**2; the
    model is still a GPT-2 and every backend must agree on it. Returns alpha.
    """
    import shutil

    import torch
    from safetensors.torch import save_file

    config = model.config
    e = config.n_embd
    weights = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    w0 = weights["transformer.h.0.attn.c_attn.weight"]
    s_q, s_k = float(w0[:, :e].std()), float(w0[:, e : 2 * e].std())
    alpha = math.sqrt(PROBE_SCORE_STD / max(e * s_q * s_k, 1e-30))
    for i in range(config.n_layer):
        w, b = weights[f"transformer.h.{i}.attn.c_attn.weight"], weights[f"transformer.h.{i}.attn.c_attn.bias"]
        w[:, : 2 * e] *= alpha
        b[: 2 * e] *= alpha
    if config.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    dest.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file() and path.suffix != ".safetensors" and path.name.endswith((".json", ".txt")):
            shutil.copyfile(path, dest / path.name)
    save_file({k: v for k, v in weights.items() if v.dtype != torch.bool}, str(dest / "model.safetensors"),
              metadata={"format": "pt"})
    return alpha


# -- reference ---------------------------------------------------------------------------------

def _tokenizer_facts(folder: str) -> tuple[Any, dict[str, Any]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    facts = {
        "length": len(tok),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "model_max_length": tok.model_max_length if tok.model_max_length < 10**12 else None,
        "hello_world": tok("Hello world")["input_ids"],
        "class": type(tok).__name__,
    }
    return tok, facts


def _config_differences(folder: str, spec_config: dict[str, Any] | None, spec_dtype: str | None) -> list[str] | None:
    """config.json keys that differ from what the spec's GPT2Config writes (None: no spec to compare)."""
    if spec_config is None:
        return None
    import json

    from transformers import GPT2Config

    expected = GPT2Config(**spec_config, dtype=spec_dtype or "float32").to_diff_dict()
    actual = json.loads((Path(folder) / "config.json").read_text())
    defaults = GPT2Config().to_dict()
    ignore = {"transformers_version", "architectures", "_name_or_path", "dtype", "torch_dtype"}
    out = []
    for key in sorted((set(expected) | set(actual)) - ignore):
        want, have = expected.get(key, defaults.get(key)), actual.get(key, defaults.get(key))
        if want != have:
            out.append(f"{key} is {have!r}, the spec gives {want!r}")
    return out


def _regenerated_digests(spec_config: dict[str, Any], *, seed: int, dtype: str) -> dict[str, str]:
    """What ``hubtool build`` writes for this spec and seed: torch.manual_seed, then GPT2LMHeadModel."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**spec_config, dtype=dtype))
    if dtype != "float32":
        model = model.to(getattr(torch, dtype))
    return _state_digests(model)


def reference_worker(
    *, folder: str, work_dir: str, new_tokens: int, regenerate: dict[str, Any] | None = None,
    spec_config: dict[str, Any] | None = None, spec_dtype: str | None = None,
) -> dict[str, Any]:
    """Eager fp32 + fp64 reference, the probe, and what the folder's tokenizer and config say."""
    import torch
    from safetensors.torch import save_file

    from hubtool.runtime.fingerprint import fingerprint

    start = time.perf_counter()
    tok, tokenizer = _tokenizer_facts(folder)
    prompts = [tok(p)["input_ids"] for p in PROMPTS]
    m32 = _eager(Path(folder))
    model = m32.model
    eos = int(model.config.eos_token_id if model.config.eos_token_id is not None else 0)
    greedy = [_greedy(model, p, new_tokens, eos) for p in prompts]
    seqs = [p + g for p, g in zip(prompts, greedy, strict=True)]
    prompt_lens = [len(p) for p in prompts]
    batch = _padded_batch(seqs, eos)
    positions = int(model.config.n_positions)
    long = long_prompt(vocab=int(model.config.vocab_size), length=positions - 1)
    rows = kept_rows(len(long))

    probe_dir = Path(work_dir) / PROBE_DIR
    alpha = write_probe(Path(folder), probe_dir, model=model)
    probe32 = _eager(probe_dir).model
    m64, probe64 = _eager(Path(folder), dtype="float64").model, _eager(probe_dir, dtype="float64").model

    tensors: dict[str, Any] = {
        "count": torch.tensor(len(seqs)), "eos": torch.tensor(eos), "new_tokens": torch.tensor(new_tokens),
        "batch.input_ids": batch[0], "batch.attention_mask": batch[1], "batch.position_ids": batch[2],
        "batch.logits32": _forward(model, *batch)[batch[1].bool()],
        "batch.logits64": _forward(m64, *batch)[batch[1].bool()],
        "long.ids": torch.tensor(long), "long.rows": torch.tensor(rows),
    }
    for i, s in enumerate(seqs):
        ids = torch.tensor([s])
        tensors.update({
            f"seq.{i}": torch.tensor(s), f"prompt_len.{i}": torch.tensor(prompt_lens[i]),
            f"logits32.{i}": _forward(model, ids)[0], f"logits64.{i}": _forward(m64, ids)[0],
            f"probe32.{i}": _forward(probe32, ids)[0], f"probe64.{i}": _forward(probe64, ids)[0],
        })
    long_ids = torch.tensor([long])
    tensors["long.probe32"] = _forward(probe32, long_ids)[0, rows]
    tensors["long.probe64"] = _forward(probe64, long_ids)[0, rows]
    again = _forward(model, torch.tensor([seqs[-1]]))[0]
    repeat = float((again - tensors[f"logits32.{len(seqs) - 1}"]).abs().max())
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(Path(work_dir) / REFERENCE_FILE))
    del m64, probe64

    info = dict(m32.info)
    info["tied_after_reload"] = (
        model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
        if model.config.tie_word_embeddings else None
    )
    regenerated = None
    if regenerate is not None:
        regenerated = _regenerated_digests(regenerate["config"], seed=regenerate["seed"], dtype=regenerate["dtype"])
    ref = load_reference(work_dir)
    out = run_torch(model, probe32, ref, greedy=greedy)
    metrics = compare_torch(ref, out)
    metrics["repeat_max_abs_diff"] = repeat
    from hubtool.backends import attention

    return {
        "status": "ran",
        "metrics": metrics,
        "info": info,
        "proof_problems": attention.proof(info),
        "tokenizer": tokenizer,
        "config_differences": _config_differences(folder, spec_config, spec_dtype),
        "reloaded_digests": _state_digests(model),
        "regenerated_digests": regenerated,
        "probe": {"alpha": alpha, "long_prompt_tokens": len(long), "rows_kept": len(rows),
                  "head_dim": model.config.n_embd // model.config.n_head},
        "fingerprint": fingerprint(),
        "worker_seconds": time.perf_counter() - start,
    }


def load_reference(work_dir: str) -> dict[str, Any]:
    from safetensors.torch import load_file

    raw = load_file(str(Path(work_dir) / REFERENCE_FILE))
    n = int(raw["count"].item())
    return {
        "seqs": [raw[f"seq.{i}"].tolist() for i in range(n)],
        "prompt_lens": [int(raw[f"prompt_len.{i}"].item()) for i in range(n)],
        "logits32": [raw[f"logits32.{i}"] for i in range(n)],
        "logits64": [raw[f"logits64.{i}"] for i in range(n)],
        "probe32": [raw[f"probe32.{i}"] for i in range(n)],
        "probe64": [raw[f"probe64.{i}"] for i in range(n)],
        "batch": (raw["batch.input_ids"], raw["batch.attention_mask"], raw["batch.position_ids"]),
        "batch32": raw["batch.logits32"],
        "batch64": raw["batch.logits64"],
        "long": raw["long.ids"].tolist(),
        "long_rows": raw["long.rows"].tolist(),
        "long32": raw["long.probe32"],
        "long64": raw["long.probe64"],
        "eos": int(raw["eos"].item()),
        "new_tokens": int(raw["new_tokens"].item()),
        "probe_dir": str(Path(work_dir) / PROBE_DIR),
    }


# -- metrics ----------------------------------------------------------------------------------

class ErrorSum:
    """Error of a result against the float32 and float64 references, and eager's own float32 error.

    RMSE against float64 is the measure of numerical error; eager float32's RMSE against
    the same float64 values is the yardstick it is judged by, and the reference values'
    own magnitude (rms, max) scales the absolute allowance.
    """

    def __init__(self) -> None:
        self.max_abs = self.max_abs64 = self.eager_max_abs64 = self.ref_absmax = 0.0
        self.sq = self.sq_eager = self.sq_ref = 0.0
        self.count = 0

    def add(self, got, ref32, ref64) -> None:
        got64, ref32_64 = got.double(), ref32.double()
        self.max_abs = max(self.max_abs, float((got64 - ref32_64).abs().max()))
        self.max_abs64 = max(self.max_abs64, float((got64 - ref64).abs().max()))
        self.eager_max_abs64 = max(self.eager_max_abs64, float((ref32_64 - ref64).abs().max()))
        self.ref_absmax = max(self.ref_absmax, float(ref64.abs().max()))
        self.sq += float(((got64 - ref64) ** 2).sum())
        self.sq_eager += float(((ref32_64 - ref64) ** 2).sum())
        self.sq_ref += float((ref64**2).sum())
        self.count += got.numel()

    def metrics(self) -> dict[str, Any]:
        if not self.count:
            return {"compared": 0}
        rmse, eager = math.sqrt(self.sq / self.count), math.sqrt(self.sq_eager / self.count)
        return {
            "compared": self.count,
            "max_abs_diff": self.max_abs,
            "max_abs_vs_fp64": self.max_abs64,
            "eager_max_abs_vs_fp64": self.eager_max_abs64,
            "rmse_vs_fp64": rmse,
            "eager_rmse_vs_fp64": eager,
            "rmse_ratio": rmse / eager if eager else None,
            "ref_rms": math.sqrt(self.sq_ref / self.count),
            "ref_absmax": self.ref_absmax,
        }


def _top1(got_top, ref_rows, epsilon: float) -> dict[str, int]:
    """Top-1 agreement where the reference is decided (top-1/top-2 gap above epsilon)."""
    import torch

    top = ref_rows.topk(2, dim=-1)
    decided = (top.values[:, 0] - top.values[:, 1]) > epsilon
    same = torch.as_tensor(got_top).reshape(-1) == top.indices[:, 0]
    return {"agree": int((decided & same).sum()), "disagree": int((decided & ~same).sum()),
            "near_ties": int((~decided).sum())}


def near_tie_epsilon(ref: dict[str, Any]) -> float:
    """Two values each within a few float32 roundings of the truth can swap a top-1 closer than this."""
    from hubtool.verify.judge import near_tie_epsilon as epsilon

    return epsilon(max(float(x.abs().max()) for x in ref["logits64"]))


def _greedy_compare(got: list[list[int]], ref: dict[str, Any], epsilon: float) -> dict[str, Any]:
    """Flip = first divergence at a decided step; a near-tie divergence ends the comparison there."""
    flips = ties = compared = 0
    first_flip = None
    for i, tokens in enumerate(got):
        n = ref["prompt_lens"][i]
        want = ref["seqs"][i][n:]
        for k, (a, b) in enumerate(zip(tokens, want, strict=False)):
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


def run_torch(model, probe_model, ref: dict[str, Any], *, greedy: list[list[int]] | None = None) -> dict[str, Any]:
    """Everything a torch backend computes for the comparison."""
    import torch

    if greedy is None:
        greedy = [_greedy(model, s[:n], ref["new_tokens"], ref["eos"])
                  for s, n in zip(ref["seqs"], ref["prompt_lens"], strict=True)]
    ids, mask, positions = ref["batch"]
    return {
        "greedy": greedy,
        "generated": [_generate(model, s[:n], ref["new_tokens"], ref["eos"])
                      for s, n in zip(ref["seqs"], ref["prompt_lens"], strict=True)],
        "logits": [_forward(model, torch.tensor([s]))[0] for s in ref["seqs"]],
        "batch_logits": _forward(model, ids, mask, positions)[mask.bool()],
        "probe": [_forward(probe_model, torch.tensor([s]))[0] for s in ref["seqs"]],
        "long": _forward(probe_model, torch.tensor([ref["long"]]))[0, ref["long_rows"]],
    }


def compare_torch(ref: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """Metrics of one torch backend's outputs against the reference, by group."""
    epsilon = near_tie_epsilon(ref)
    main, batch, probe = ErrorSum(), ErrorSum(), ErrorSum()
    tops = {"agree": 0, "disagree": 0, "near_ties": 0}
    for got, r32, r64 in zip(out["logits"], ref["logits32"], ref["logits64"], strict=True):
        main.add(got, r32, r64)
        for key, value in _top1(got.argmax(-1), r32, epsilon).items():
            tops[key] += value
    batch.add(out["batch_logits"], ref["batch32"], ref["batch64"])
    for got, r32, r64 in zip(out["probe"], ref["probe32"], ref["probe64"], strict=True):
        probe.add(got, r32, r64)
    probe.add(out["long"], ref["long32"], ref["long64"])
    decided = tops["agree"] + tops["disagree"]
    loop, generate = _greedy_compare(out["greedy"], ref, epsilon), _greedy_compare(out["generated"], ref, epsilon)
    return {
        "groups": {"logits": main.metrics(), "batch": batch.metrics(), "probe": probe.metrics()},
        "near_tie_epsilon": epsilon,
        "top1_agreement": tops["agree"] / decided if decided else None,
        "top1_disagreements": tops["disagree"],
        "top1_near_ties": tops["near_ties"],
        **loop,
        "generate_flips": generate["greedy_flips"],
        "generate_tokens_compared": generate["greedy_tokens_compared"],
        "generate_first_flip": generate["greedy_first_flip"],
        "prompt_tokens": list(ref["prompt_lens"]),
    }


# -- workers (run in child processes) --------------------------------------------------------

def transformers_worker(*, backend: dict[str, Any], folder: str, work_dir: str) -> dict[str, Any]:
    """One transformers-engine backend measured against the saved reference (model and probe)."""
    from hubtool.verify.judge import proof_problems

    start = time.perf_counter()
    ref = load_reference(work_dir)
    loaded = _load(backend, Path(folder))
    probe = _load(backend, Path(ref["probe_dir"]))
    out = run_torch(loaded.model, probe.model, ref)
    info = loaded.refresh_info()
    probe_info = probe.refresh_info()
    return {
        "status": "ran",
        "metrics": compare_torch(ref, out),
        "info": info,
        "proof_problems": proof_problems(backend, info) + [f"probe: {p}" for p in proof_problems(backend, probe_info)],
        "worker_seconds": time.perf_counter() - start,
    }


def vllm_worker(*, backend: dict[str, Any], folder: str, work_dir: str, head_dim: int, dtype: str) -> dict[str, Any]:
    """vLLM's prompt and generated-token logprobs against transformers' log_softmax, on the model and the probe."""
    import torch

    from hubtool.backends import vllm as vllm_backend

    start = time.perf_counter()
    ref = load_reference(work_dir)
    epsilon = near_tie_epsilon(ref)
    max_len = len(ref["long"]) + 1
    options = _backend(backend).options
    try:
        with vllm_backend.refusals(head_dim=head_dim, dtype=dtype):
            llm = vllm_backend.load(Path(folder), max_model_len=max_len, **options)
            scored, generated = _vllm_run(llm, ref)
            probe_weights = "reloaded in place"
            if not _reload_in_place(llm, Path(ref["probe_dir"])):
                del llm  # one engine at a time: a second beside the first fails to start
                probe_weights = "second engine"
                llm = vllm_backend.load(Path(ref["probe_dir"]), max_model_len=max_len, **options)
            probe_scored = _vllm_score(llm, [*ref["seqs"], ref["long"]])
    except vllm_backend.BackendUnsupported as exc:
        return {"status": "unsupported", "reason": exc.reason, "raw_reason": exc.raw,
                "worker_seconds": time.perf_counter() - start}

    main, probe = ErrorSum(), ErrorSum()
    tops = {"agree": 0, "disagree": 0, "near_ties": 0}

    def add_prompt(err: ErrorSum, out, seq, r32, r64, rows: list[int] | None = None) -> None:
        """Logprob of each next prompt token; ``rows``: the positions whose reference logits were kept."""
        positions = [p for p in (rows if rows is not None else range(len(seq) - 1)) if p + 1 < len(seq)]
        local = [rows.index(p) for p in positions] if rows is not None else positions
        lp32, lp64 = torch.log_softmax(r32[local], -1), torch.log_softmax(r64[local], -1)
        idx = torch.tensor([seq[p + 1] for p in positions])
        got = torch.tensor([out.prompt_logprobs[p + 1][seq[p + 1]].logprob for p in positions], dtype=torch.float32)
        at = torch.arange(len(positions))
        err.add(got, lp32[at, idx], lp64[at, idx])

    for i, out in enumerate(scored):
        seq = ref["seqs"][i]
        add_prompt(main, out, seq, ref["logits32"][i], ref["logits64"][i])
        top = [next(tok for tok, lp in out.prompt_logprobs[t].items() if lp.rank == 1) for t in range(1, len(seq))]
        for key, value in _top1(top, ref["logits32"][i][:-1], epsilon).items():
            tops[key] += value
    for i, out in enumerate(probe_scored[:-1]):
        add_prompt(probe, out, ref["seqs"][i], ref["probe32"][i], ref["probe64"][i])
    add_prompt(probe, probe_scored[-1], ref["long"], ref["long32"], ref["long64"], rows=ref["long_rows"])

    generated_err = ErrorSum()
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
            generated_err.add(torch.tensor([completion.logprobs[k][token].logprob]),
                              lp32[n - 1 + k, token:token + 1], lp64[n - 1 + k, token:token + 1])
    decided = tops["agree"] + tops["disagree"]
    metrics = {
        "groups": {"prompt_logprobs": main.metrics(), "generated_logprobs": generated_err.metrics(),
                   "probe_logprobs": probe.metrics()},
        "near_tie_epsilon": epsilon,
        "top1_agreement": tops["agree"] / decided if decided else None,
        "top1_disagreements": tops["disagree"],
        "top1_near_ties": tops["near_ties"],
        **_greedy_compare(tokens, ref, epsilon),
        "prompt_tokens": list(ref["prompt_lens"]),
    }
    return {"status": "ran", "metrics": metrics,
            "info": {"vllm_version": vllm_backend.version(), "max_model_len": max_len, "probe_weights": probe_weights},
            "proof_problems": [], "worker_seconds": time.perf_counter() - start}


def _reload_in_place(llm, probe_dir: Path) -> bool:
    """Load the probe's weights into the running engine; False where this vLLM cannot.

    vLLM reloads a checkpoint into a running engine in place (``reload_weights``, its own path for
    weight updates, which redoes the kernels' weight processing). That spares a second engine start
    (measured on gpt2-25m: the worker took 35.7 s instead of 47.5 s). The probe is judged against its
    own reference, so weights that did not change fail it (gpt2-25m: probe RMSE 5e5x eager's own).
    """
    try:
        llm.collective_rpc("reload_weights", kwargs={"weights_path": str(probe_dir)})
    except (AttributeError, NotImplementedError, TypeError):
        return False
    return True


def _vllm_score(llm, seqs: list[list[int]]):
    from vllm import SamplingParams

    score = SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=1)
    return llm.generate([{"prompt_token_ids": s} for s in seqs], score, use_tqdm=False)


def _vllm_run(llm, ref: dict[str, Any]):
    from vllm import SamplingParams

    n = ref["new_tokens"]
    scored = _vllm_score(llm, ref["seqs"])
    greedy = SamplingParams(temperature=0, max_tokens=n, min_tokens=n, logprobs=1, seed=0)
    prompts = [{"prompt_token_ids": s[:k]} for s, k in zip(ref["seqs"], ref["prompt_lens"], strict=True)]
    generated = llm.generate(prompts, greedy, use_tqdm=False)
    return scored, generated
