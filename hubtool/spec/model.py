"""Model specs: load and validate a YAML spec, derive what follows from it, make a GPT2Config.

A spec uses GPT2Config's own key names, so it reads like the config it produces.
Derived figures (head_dim, parameter count, safetensors bytes) are computed here from the
spec alone, never written by hand, and the tests hold them equal to the built files.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hubtool.errors import SpecError
from hubtool.folder import safetensors

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# key -> (type, default). ``None`` default with a required marker below means "must be given".
_INT, _FLOAT, _BOOL, _STR = int, float, bool, str
ARCH_KEYS: dict[str, tuple[type, Any]] = {
    "n_embd": (_INT, None),
    "n_layer": (_INT, None),
    "n_head": (_INT, None),
    "n_inner": (_INT, None),  # None -> 4 * n_embd, as GPT2Config does
    "n_positions": (_INT, 1024),
    "vocab_size": (_INT, 50257),
    "activation_function": (_STR, "gelu_new"),
    "resid_pdrop": (_FLOAT, 0.0),
    "embd_pdrop": (_FLOAT, 0.0),
    "attn_pdrop": (_FLOAT, 0.0),
    "layer_norm_epsilon": (_FLOAT, 1e-5),
    "initializer_range": (_FLOAT, 0.02),
    "tie_word_embeddings": (_BOOL, True),
    "bos_token_id": (_INT, 50256),
    "eos_token_id": (_INT, 50256),
}
REQUIRED_KEYS = ("n_embd", "n_layer", "n_head")
POSITIVE_KEYS = ("n_embd", "n_layer", "n_head", "n_inner", "n_positions", "vocab_size")
DROPOUT_KEYS = ("resid_pdrop", "embd_pdrop", "attn_pdrop")
ACTIVATIONS = ("gelu_new", "gelu", "gelu_fast", "gelu_pytorch_tanh", "relu", "silu", "tanh")

# Keys about how the model is built and described, not part of GPT2Config.
BUILD_KEYS: dict[str, tuple[type, Any]] = {
    "seed": (_INT, 0),
    "dtype": (_STR, "float32"),
    "tokenizer": (_STR, "gpt2"),
    "description": (_STR, ""),
    "role": (_STR, ""),
}
DTYPES = ("float32", "float16", "bfloat16")  # weight dtypes a spec may declare

# Bump when the build output for an unchanged spec changes, so old folders are rebuilt.
# 2: model.safetensors metadata names hubtool's version, the spec hash and the seed;
#    the tokenizer's model_max_length is n_positions.
BUILD_FORMAT = 2


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: a repeated key must not silently win."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(path, f"cannot read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(path, f"invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else f"a {type(data).__name__}"
        raise SpecError(path, f"expected a mapping of keys to values, got {kind}")
    return data


def _typed(path: Path, key: str, value: Any, kind: type) -> Any:
    """Check one value's type. bool is not an int; an int is a fine float."""
    ok = (
        isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        or (kind is float and isinstance(value, int) and not isinstance(value, bool))
    )
    if not ok:
        raise SpecError(
            path, f"{key} must be {_KIND_NAMES[kind]}, got {value!r} ({type(value).__name__})", key=key
        )
    return float(value) if kind is float else value


_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _unknown_key_error(path: Path, key: Any, allowed: list[str]) -> SpecError:
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f"; allowed keys: {', '.join(sorted(allowed))}"
    return SpecError(path, f"unknown key '{key}'{hint}", key=str(key))


def gpt2_tensor_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor of a GPT2LMHeadModel with these GPT2Config values (a spec's or a config.json's)."""
    e, v, p = int(config["n_embd"]), int(config["vocab_size"]), int(config["n_positions"])
    inner = int(config.get("n_inner") or 4 * e)
    shapes: dict[str, tuple[int, ...]] = {
        "transformer.wte.weight": (v, e),
        "transformer.wpe.weight": (p, e),
        "transformer.ln_f.weight": (e,),
        "transformer.ln_f.bias": (e,),
    }
    for i in range(int(config["n_layer"])):
        h = f"transformer.h.{i}."
        shapes.update({
            h + "ln_1.weight": (e,), h + "ln_1.bias": (e,),
            h + "attn.c_attn.weight": (e, 3 * e), h + "attn.c_attn.bias": (3 * e,),
            h + "attn.c_proj.weight": (e, e), h + "attn.c_proj.bias": (e,),
            h + "ln_2.weight": (e,), h + "ln_2.bias": (e,),
            h + "mlp.c_fc.weight": (e, inner), h + "mlp.c_fc.bias": (inner,),
            h + "mlp.c_proj.weight": (inner, e), h + "mlp.c_proj.bias": (e,),
        })
    if not config.get("tie_word_embeddings", True):
        shapes["lm_head.weight"] = (v, e)
    return shapes


@dataclass(frozen=True)
class ModelSpec:
    """One validated model spec. ``config`` holds GPT2Config keyword arguments."""

    name: str
    path: Path
    config: dict[str, Any]
    seed: int = 0
    dtype: str = "float32"
    tokenizer: str = "gpt2"
    description: str = ""
    role: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # -- derived -------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.config["n_embd"] // self.config["n_head"]

    @property
    def n_inner(self) -> int:
        return self.config["n_inner"]

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor ``save_pretrained`` writes for GPT2LMHeadModel, with its shape."""
        return gpt2_tensor_shapes(self.config)

    @property
    def parameters(self) -> int:
        """Unique parameters (a tied lm_head counts once, as the Hub and transformers count)."""
        return sum(math.prod(s) for s in self.tensor_shapes().values())

    @property
    def weights_metadata(self) -> dict[str, str]:
        """The ``__metadata__`` that ``build`` writes into model.safetensors: what made these bytes."""
        from hubtool.runtime.environment import hubtool_version

        return {
            "format": "pt",
            "hubtool_version": hubtool_version(),
            "seed": str(self.seed),
            "spec_sha256": self.spec_hash,
        }

    @property
    def weight_bytes(self) -> int:
        """Exact size of the ``model.safetensors`` file that ``build`` writes."""
        return safetensors.file_size(self.tensor_shapes(), self.dtype, metadata=self.weights_metadata)

    @property
    def spec_hash(self) -> str:
        """sha256 of everything that decides the built files (not the card prose)."""
        payload = {
            "format": BUILD_FORMAT,
            "config": self.config,
            "seed": self.seed,
            "dtype": self.dtype,
            "tokenizer": self.tokenizer,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def to_gpt2_config(self):  # -> transformers.GPT2Config (lazy import keeps the CLI fast)
        from transformers import GPT2Config

        return GPT2Config(**self.config, dtype=self.dtype)

    def summary(self) -> dict[str, Any]:
        """The figures ``hubtool list`` shows, all derived from the spec."""
        c = self.config
        return {
            "name": self.name,
            "n_layer": c["n_layer"],
            "n_embd": c["n_embd"],
            "n_head": c["n_head"],
            "head_dim": self.head_dim,
            "n_inner": c["n_inner"],
            "n_positions": c["n_positions"],
            "vocab_size": c["vocab_size"],
            "dtype": self.dtype,
            "parameters": self.parameters,
            "weight_bytes": self.weight_bytes,
        }


def parse_spec(path: Path, data: dict[str, Any]) -> ModelSpec:
    """Validate a spec mapping. Every error names the file and the key."""
    name = path.stem
    if not NAME_RE.match(name):
        raise SpecError(path, f"'{name}' is not a valid model name (letters, digits, '.', '_', '-')")
    allowed = list(ARCH_KEYS) + list(BUILD_KEYS)
    for key in data:
        if key not in allowed:
            raise _unknown_key_error(path, key, allowed)
    for key in REQUIRED_KEYS:
        if data.get(key) is None:
            raise SpecError(path, f"missing required key '{key}'", key=key)

    config: dict[str, Any] = {}
    for key, (kind, default) in ARCH_KEYS.items():
        value = data.get(key, default)
        config[key] = None if value is None else _typed(path, key, value, kind)
    if config["n_inner"] is None:
        config["n_inner"] = 4 * config["n_embd"]
    for key in POSITIVE_KEYS:
        if config[key] <= 0:
            raise SpecError(path, f"{key} must be positive, got {config[key]}", key=key)
    for key in DROPOUT_KEYS:
        if not 0.0 <= config[key] < 1.0:
            raise SpecError(path, f"{key} must be in [0, 1), got {config[key]}", key=key)
    if config["n_embd"] % config["n_head"]:
        raise SpecError(
            path,
            f"n_embd ({config['n_embd']}) is not divisible by n_head ({config['n_head']})",
            key="n_embd",
        )
    if config["activation_function"] not in ACTIVATIONS:
        raise SpecError(
            path,
            f"activation_function '{config['activation_function']}' is not one of {', '.join(ACTIVATIONS)}",
            key="activation_function",
        )
    for key in ("bos_token_id", "eos_token_id"):
        if not 0 <= config[key] < config["vocab_size"]:
            raise SpecError(path, f"{key} ({config[key]}) is outside the vocabulary", key=key)

    build = {key: _typed(path, key, data.get(key, default), kind) for key, (kind, default) in BUILD_KEYS.items()}
    if build["seed"] < 0:
        raise SpecError(path, f"seed must be >= 0, got {build['seed']}", key="seed")
    if build["dtype"] not in DTYPES:
        raise SpecError(path, f"dtype '{build['dtype']}' is not one of {', '.join(DTYPES)}", key="dtype")
    if not build["tokenizer"].strip():
        raise SpecError(path, "tokenizer must not be empty", key="tokenizer")
    return ModelSpec(name=name, path=path, config=config, **build)


def load_spec(path: Path) -> ModelSpec:
    """Load and validate one spec file."""
    return parse_spec(path, load_yaml_mapping(path))
