"""What binding evidence to bytes costs: the card and push gates on gpt2-100m against one read of its files.

Every gate hashes the model files it guards (no cache keyed on file times: a restored mtime
must not fool it). This measures, on gpt2-100m (384 MB of weights):
  read     one plain read of the model files (the floor any check of the bytes pays)
  identity folder_identity: sha256 of the model files
  card     `hubtool card`'s check mode's work: render the card from evidence and compare
  push     the push gate: card_problems (card, model files and every report, hashed)
Alternated over rounds; medians printed with their ratio to one read. Target: a gate under 1 s.

    .venv/bin/python benchmarks/hash_gates.py [--rounds 5] [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


def _read(folder: Path) -> None:
    from hubtool.folder.hashing import model_files

    for path in model_files(folder):
        with open(path, "rb") as fh:
            while fh.read(1 << 22):
                pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="artifacts root (gpt2-100m is built there if needed)")
    args = parser.parse_args()

    from hubtool.build.folder import build_model
    from hubtool.card.gate import card_problems
    from hubtool.card.render import card_command
    from hubtool.folder.hashing import folder_identity
    from hubtool.spec.catalog import artifacts_root, resolve_spec

    root = artifacts_root(args.out)
    spec = resolve_spec("gpt2-100m")
    folder = build_model(spec, root=root).path
    card_command(spec, root=root)  # a card to check (sections without evidence say so)
    steps = {
        "read": lambda: _read(folder),
        "identity": lambda: folder_identity(folder),
        "card": lambda: card_command(spec, root=root, check=True),
        "push": lambda: card_problems(folder, name=spec.name, repo_id=f"Crusadersk/{spec.name}"),
    }
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    print(f"gpt2-100m ({size / 1e6:,.0f} MB in the folder), {args.rounds} alternating rounds; median seconds:")
    for name, value in med.items():
        print(f"  {name:9} {value:7.3f} s   {value / med['read']:5.2f}x one read")
    ok = med["card"] < 1.0 and med["push"] < 1.0
    print("PASS (every gate under 1 s)" if ok else "FAIL (a gate took 1 s or more)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
