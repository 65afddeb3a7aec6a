"""A new family folder: family metadata and two commented example specs (``hubtool init``).

Researchers outside the reference family start here: the folder is what ``HUBTOOL_CONFIGS``
points at, the comments explain each key where it is written, and the values a card
prints verbatim but only the user can supply (family name, summary) are marked TODO.
"""

from __future__ import annotations

import datetime
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubtool.errors import UsageError, display_path
from hubtool.folder.io import write_text
from hubtool.spec.family import FAMILY_FILE, load_family
from hubtool.spec.model import load_spec

# The Hub's rule for a user or organisation name, as huggingface_hub validates repo ids:
# letters, digits, '-', '_', '.', starting and ending with a letter or digit, at most 96
# characters, no '--' or '..'.
NAMESPACE_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
LICENSE_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
TODO = "TODO"

_FAMILY = """\
# Metadata shared by every model in this folder (written by `hubtool init`).
# Cards print these values as written: replace each TODO before `hubtool card` and `push`.
name: {name}
namespace: {namespace}  # Hub user or organisation: each model goes to {namespace}/<spec name>
license: {license}  # a Hub license id: mit, apache-2.0, cc-by-4.0, ...
language: [en]
library_name: transformers
pipeline_tag: text-generation
tags: [gpt2, benchmarking]  # Hub tags on every card (random-weights/trained is added per model)
author: {author}
summary: >-
  {summary}
# How to cite the family: a BibTeX entry on every card.
citation:
  key: {citation_key}
  type: misc
  title: {citation_title}
  author: {author}
  year: {year}
  howpublished: Hugging Face Hub, https://huggingface.co/{namespace}
# Optional: technical reports that use the family, with what each found.
# reports:
#   - id: TR1
#     title: "..."
#     role: "What the report measured with these models."
"""

_SPEC = """\
# {name}: an example spec written by `hubtool init`; edit it, copy it, or delete it.
# One YAML file per model: the file name is the model's name and its repo ({namespace}/{name}).
# Architecture keys are GPT2Config's own. Derived figures (head_dim, parameter count, exact
# weight bytes) are computed, never written here: see `hubtool list`. Unknown keys are errors.
description: {description}  # the card's first line
role: {role}  # the model's place in the family's design
n_embd: {n_embd}  # width of the residual stream (hidden size); divisible by n_head
n_layer: {n_layer}  # transformer blocks (depth)
n_head: 2  # attention heads; head_dim = n_embd / n_head
n_inner: {n_inner}  # feed-forward width (GPT-2 uses 4 * n_embd, the default)
n_positions: 1024  # context length in tokens; the tokenizer truncates here
vocab_size: 50257  # GPT-2's byte-level BPE vocabulary
activation_function: gelu_new  # GPT-2's activation
resid_pdrop: 0.0  # dropout after attention and MLP (0: outputs are deterministic)
embd_pdrop: 0.0  # dropout on the embeddings
attn_pdrop: 0.0  # dropout on the attention weights
seed: 0  # torch.manual_seed before GPT2LMHeadModel(config): same spec and seed, same bytes
dtype: float32  # weights: float32, float16 or bfloat16
tokenizer: gpt2  # bundled GPT-2 BPE; or ./a-folder (beside this file), or a Hub repo id org/name
# Also accepted (defaults shown): tie_word_embeddings: true, layer_norm_epsilon: 1.0e-5,
# initializer_range: 0.02, bos_token_id: 50256, eos_token_id: 50256.
"""

EXAMPLES: tuple[dict[str, Any], ...] = (
    {"name": "gpt2-wide", "n_embd": 128, "n_layer": 2, "n_inner": 512,
     "description": "A shallow, wide GPT-2 from the hubtool init example.",
     "role": "Shallow and wide: few layers, a wide residual stream."},
    {"name": "gpt2-deep", "n_embd": 64, "n_layer": 8, "n_inner": 256,
     "description": "A deep, narrow GPT-2 from the hubtool init example.",
     "role": "Deep and narrow: more layers, a narrow residual stream."},
)


@dataclass(frozen=True)
class Scaffold:
    folder: Path
    files: list[Path]
    namespace: str
    next_commands: list[str]


def check_namespace(namespace: str) -> str:
    """``namespace`` when it is a valid Hub user or organisation name; a UsageError otherwise."""
    if not NAMESPACE_RE.match(namespace) or "--" in namespace or ".." in namespace:
        raise UsageError(
            f"'{namespace}' is not a Hub namespace (letters, digits, '-', '_', '.'; starting and ending "
            "with a letter or digit; at most 96 characters; no '--' or '..')"
        )
    return namespace


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def next_commands(folder: Path) -> list[str]:
    """What to run after ``init``, in order: the folder becomes the configs folder."""
    return [
        f"export HUBTOOL_CONFIGS={shlex.quote(str(folder.resolve()))}",
        "hubtool list",
        "hubtool build --all",
        "hubtool verify --all",
        "hubtool bench --all --quick",
        "hubtool card --all",
        "hubtool push --all --dry-run",
        "HF_TOKEN=hf_... hubtool push --all",
    ]


def scaffold_family(
    folder: Path, *, namespace: str, author: str | None = None, license_id: str = "mit", force: bool = False
) -> Scaffold:
    """Write ``family.yaml`` and two example specs into ``folder`` (new or empty, unless ``force``)."""
    folder = Path(folder)
    check_namespace(namespace)
    if not LICENSE_RE.match(license_id):
        raise UsageError(f"'{license_id}' is not a Hub license id (lowercase, e.g. mit, apache-2.0, cc-by-4.0)")
    author = (author or namespace).strip()
    if not author or "\n" in author:
        raise UsageError("--author must be one non-empty line")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{display_path(folder)} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise UsageError(f"{display_path(folder)} is not empty; choose a new folder, or --force to write into it")
    folder.mkdir(parents=True, exist_ok=True)

    texts = {
        FAMILY_FILE: _FAMILY.format(
            name=_quoted(f"{TODO}: a short name for the family"),
            namespace=namespace,
            license=license_id,
            author=_quoted(author),
            citation_key=re.sub(r"[^A-Za-z0-9]+", "_", namespace).strip("_").lower() + "_family",
            citation_title=_quoted(f"{TODO}: the family's title"),
            year=datetime.date.today().year,
            summary=f"{TODO}: one paragraph on what the family is for and what it varies between its models.",
        ),
    }
    for example in EXAMPLES:
        texts[f"{example['name']}.yaml"] = _SPEC.format(
            namespace=namespace, **{**example, "description": _quoted(example["description"]),
                                    "role": _quoted(example["role"])},
        )
    files = []
    for name, text in texts.items():
        write_text(folder / name, text)
        files.append(folder / name)
    # What was written must load: the same checks any command applies.
    load_family(folder / FAMILY_FILE)
    for path in files[1:]:
        load_spec(path)
    return Scaffold(folder=folder, files=files, namespace=namespace, next_commands=next_commands(folder))
