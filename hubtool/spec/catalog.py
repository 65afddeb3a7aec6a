"""Where specs and built folders live, and turning a NAME argument into a spec.

NAME is a spec name from the configs folder or a path to a spec file. The configs folder
is ``HUBTOOL_CONFIGS``, else ``./model_configs`` in the working directory, else the
reference family shipped inside the package; card templates are found the same way
(``HUBTOOL_TEMPLATES``, ``./templates``, the shipped default). So a user's own family
wins over the bundled one, and an installed wheel works from any directory. Built
folders go under the artifacts root: ``--out``, else ``HUBTOOL_ARTIFACTS``, else
``./artifacts``.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from hubtool.errors import ArtifactError, UsageError, display_path
from hubtool.folder.names import WEIGHTS_FILE
from hubtool.spec.family import FAMILY_FILE, Family, load_family
from hubtool.spec.model import NAME_RE, ModelSpec, load_spec

SPEC_SUFFIXES = (".yaml", ".yml")
# In the repository model_configs/ and templates/ sit beside hubtool/ (the source of truth);
# setup.py maps them into the package as hubtool/_bundled/<name> for wheels and installs.
BUNDLED_PACKAGE = "_bundled"
_CHECKOUT_ROOT = Path(__file__).resolve().parents[2]


def bundled_dir(name: str) -> Path:
    """The shipped copy of ``name`` (``model_configs`` or ``templates``).

    Installed: ``hubtool/_bundled/<name>`` inside the package, found with importlib.resources.
    Run from a checkout (editable install, PYTHONPATH): the repository's own top-level folder.
    """
    shipped = resources.files("hubtool").joinpath(BUNDLED_PACKAGE).joinpath(name)
    if shipped.is_dir():
        return Path(str(shipped))
    return _CHECKOUT_ROOT / name


def _project_folder(env_var: str, name: str) -> Path:
    """``$env_var``, else ./name in the working directory, else the copy shipped with hubtool."""
    env = os.environ.get(env_var)
    if env:
        return Path(env)
    local = Path(name)
    return local if local.is_dir() else bundled_dir(name)


def configs_dir() -> Path:
    """The folder of specs: HUBTOOL_CONFIGS, else ./model_configs, else the bundled reference family."""
    return _project_folder("HUBTOOL_CONFIGS", "model_configs")


def templates_dir() -> Path:
    """The folder of card templates: HUBTOOL_TEMPLATES, else ./templates, else the bundled default."""
    return _project_folder("HUBTOOL_TEMPLATES", "templates")


def artifacts_root(out: Path | str | None = None) -> Path:
    """Root of built model folders: ``--out``, else HUBTOOL_ARTIFACTS, else ./artifacts."""
    if out:
        return Path(out)
    return Path(os.environ.get("HUBTOOL_ARTIFACTS") or "artifacts")


def model_dir(name: str, out: Path | str | None = None) -> Path:
    return artifacts_root(out) / name


def built_folder(target: str, out: Path | str | None = None) -> Path:
    """A NAME argument -> a built model folder: a folder path as given, else OUT/NAME for a spec."""
    path = Path(target)
    if path.is_dir() or os.sep in target:
        if not (path / WEIGHTS_FILE).is_file():
            raise ArtifactError(f"{display_path(path)}: not a built model folder (no {WEIGHTS_FILE})")
        return path
    spec = resolve_spec(target)
    folder = model_dir(spec.name, out)
    if not (folder / WEIGHTS_FILE).is_file():
        out_flag = f" --out {out}" if out else ""
        raise ArtifactError(f"{spec.name} is not built in {display_path(folder)}; "
                            f"run hubtool build {target}{out_flag} first")
    return folder


def spec_names(folder: Path | None = None) -> list[str]:
    folder = folder or configs_dir()
    if not folder.is_dir():
        return []
    return sorted(
        p.stem for p in folder.iterdir()
        if p.suffix in SPEC_SUFFIXES and p.name != FAMILY_FILE and p.is_file()
    )


def is_spec_path(target: str) -> bool:
    return target.endswith(SPEC_SUFFIXES)


def spec_path(target: str, folder: Path | None = None) -> Path:
    """The spec file a NAME argument means; a usage error for unknown or escaping names."""
    if is_spec_path(target):
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"no such spec file: {target}")
        return path
    folder = folder or configs_dir()
    valid = spec_names(folder)
    listing = ", ".join(valid) if valid else f"none: {display_path(folder)} has no specs"
    if not NAME_RE.match(target):
        raise UsageError(
            f"'{target}' is not a model name (letters, digits, '.', '_', '-' only); valid names: {listing}"
        )
    for suffix in SPEC_SUFFIXES:
        path = folder / f"{target}{suffix}"
        if path.is_file():
            return path
    raise UsageError(f"unknown model '{target}'; valid names: {listing}")


def resolve_spec(target: str, folder: Path | None = None) -> ModelSpec:
    return load_spec(spec_path(target, folder))


def resolve_targets(names: tuple[str, ...] | list[str], *, all_: bool, folder: Path | None = None) -> list[ModelSpec]:
    """NAME... or --all -> validated specs, in the order given (--all: sorted by size)."""
    if all_ and names:
        raise UsageError("give model names or --all, not both")
    if not all_ and not names:
        raise UsageError("give at least one model name, or --all")
    if all_:
        folder = folder or configs_dir()
        specs = [load_spec(spec_path(n, folder)) for n in spec_names(folder)]
        if not specs:
            raise UsageError(f"no specs found in {display_path(folder)}")
        return sorted(specs, key=lambda s: (s.parameters, s.name))
    seen: dict[str, ModelSpec] = {}
    for target in names:
        spec = resolve_spec(target, folder)
        if spec.name in seen and seen[spec.name].path.resolve() != spec.path.resolve():
            raise UsageError(f"two different specs are both named '{spec.name}'")
        seen[spec.name] = spec
    return list(seen.values())


def family_for(spec: ModelSpec) -> Family:
    """The family file beside the spec, else the default configs folder's."""
    beside = spec.path.parent / FAMILY_FILE
    return load_family(beside if beside.is_file() else configs_dir() / FAMILY_FILE)
