"""How to make a built folder's weights again: the data behind a card's "Reproduce" section.

Two independent routes, so a reader need not trust hubtool to check it: the exact
``hubtool build`` (and ``hubtool train``) commands, bound to the spec's sha256 and the
hubtool version that ran them; and two lines of plain transformers + torch that give the
same random tensors (``torch.manual_seed(SEED)`` then ``GPT2LMHeadModel(GPT2Config(...))``).
Everything comes from the folder's provenance and its spec; nothing is imported or run here.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hubtool.errors import ArtifactError, display_path
from hubtool.evidence.provenance import Provenance, TrainingRecord, read_provenance
from hubtool.folder.names import PROVENANCE_FILE
from hubtool.spec.model import ModelSpec

IMPORTS = "import torch\nfrom transformers import GPT2Config, GPT2LMHeadModel"
STDLIB_CORPUS_PREFIX = "python-stdlib-docstrings"  # hubtool.train.corpus's label for the default corpus


@dataclass(frozen=True)
class Reproduction:
    """Commands and code that rebuild a folder's weights, with what they must match."""

    model: str
    spec_file: str
    spec_sha256: str
    spec_source: str  # "bundled": the spec shipped with hubtool; "family": the publisher's own spec file
    seed: int
    build_command: str
    train_commands: list[str]
    corpus: dict[str, Any] | None  # sources, sha256, tokens of the training text (trained models)
    hubtool: dict[str, Any]  # version, git_commit, git_dirty of the hubtool that built it
    weights: str  # "random" | "trained"
    imports: str
    transformers_lines: list[str]  # the two lines; for a trained model they give the starting weights
    notes: list[str] = field(default_factory=list)

    @property
    def python(self) -> str:
        """The imports and the two lines, runnable as they stand."""
        return "\n".join([self.imports, *self.transformers_lines]) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "python": self.python}


def _literal(value: Any) -> str:
    """A Python literal for a config value (repr is valid Python for int, float, bool, str, None)."""
    return repr(value)


def transformers_lines(spec: ModelSpec) -> list[str]:
    """``torch.manual_seed(SEED)`` and the model line, as build's initialisation runs them."""
    args = ", ".join(f"{key}={_literal(value)}" for key, value in sorted(spec.config.items()))
    model = f"model = GPT2LMHeadModel(GPT2Config({args}))"
    if spec.dtype != "float32":  # initialised in float32, then cast, as build does
        model += f".to(torch.{spec.dtype})"
    return [f"torch.manual_seed({spec.seed})", model]


def _is_bundled(spec: ModelSpec) -> bool:
    from hubtool.spec.catalog import bundled_dir

    try:
        return spec.path.resolve().parent == bundled_dir("model_configs").resolve()
    except OSError:
        return False


def _train_commands(name: str, training: TrainingRecord) -> tuple[list[str], list[str]]:
    """One ``hubtool train`` per recorded run (each continues from the previous weights)."""
    sources = list(training.corpus.get("sources") or [])
    default = bool(sources) and all(s.startswith(STDLIB_CORPUS_PREFIX) for s in sources)
    notes = []
    if default:
        notes.append(f"Training text: the default corpus, {sources[0]}; its sha256 depends on the Python version.")
    commands = []
    for i, run in enumerate(training.runs):
        args = ["hubtool", "train", name]
        if not default:
            if run.corpus_sha256 == training.corpus.get("sha256"):
                for source in sources:
                    args += ["--corpus", source]
            else:
                notes.append(f"Run {i + 1} trained on a corpus with sha256 {run.corpus_sha256}; "
                             "its sources are not recorded.")
        args += ["--steps", str(run.steps), "--seq-len", str(run.seq_len), "--batch-size", str(run.batch_size),
                 "--lr", repr(run.lr), "--seed", str(run.seed)]
        line = shlex.join(args)
        if run.processes > 1:
            line = f"accelerate launch --num_processes {run.processes} -m hubtool.cli.main " + line[len("hubtool "):]
        commands.append(line)
    return commands, notes


def reproduction(folder: Path, *, spec: ModelSpec) -> Reproduction:
    """What rebuilds ``folder``'s weights from ``spec``; an error when the folder is from another spec."""
    prov: Provenance | None = read_provenance(folder)
    if prov is None:
        raise ArtifactError(f"{display_path(folder)}: no {PROVENANCE_FILE}; run `hubtool build {spec.name}` first")
    if prov.spec.sha256 != spec.spec_hash:
        raise ArtifactError(
            f"{display_path(folder)} was built from another version of {spec.path.name} "
            f"(spec sha256 {prov.spec.sha256[:12]}, now {spec.spec_hash[:12]}); run `hubtool build {spec.name}`"
        )
    bundled = _is_bundled(spec)
    notes = [] if bundled else [
        f"{spec.path.name} is the publisher's own spec: run the build with HUBTOOL_CONFIGS set to the "
        "folder that holds it (or give the spec file's path instead of the name)."
    ]
    train_commands: list[str] = []
    if prov.training:
        train_commands, train_notes = _train_commands(spec.name, prov.training)
        notes += train_notes
        notes.append("The transformers lines give the weights before training; the train commands continue from them.")
    return Reproduction(
        model=spec.name,
        spec_file=spec.path.name,
        spec_sha256=spec.spec_hash,
        spec_source="bundled" if bundled else "family",
        seed=spec.seed,
        build_command=f"hubtool build {spec.name}",
        train_commands=train_commands,
        corpus=dict(prov.training.corpus) if prov.training else None,
        hubtool=prov.hubtool.model_dump(),
        weights="trained" if prov.training else "random",
        imports=IMPORTS,
        transformers_lines=transformers_lines(spec),
        notes=notes,
    )
