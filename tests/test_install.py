"""A built wheel, installed into a fresh venv, works from an empty directory.

The wheel must carry the reference family and the default card template (found with
importlib.resources), and a user's own model_configs/ and templates/ must win over them.
The fresh venv gets hubtool from the wheel only; its dependencies (torch, transformers...)
come from the test's own environment through a .pth file, so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ALL_NAMES, CONFIGS, REFERENCE, REPO

pytestmark = pytest.mark.slow

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*")


def _copy_source(dest: Path) -> Path:
    """The files a build needs, copied, so building writes nothing into the checkout."""
    dest.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("hubtool", "model_configs", "templates"):
        shutil.copytree(REPO / name, dest / name, ignore=_IGNORE)
    return dest


def _pip(*args: str) -> None:
    # Without PYTHONPATH (make test points it at the checkout): pip must not find hubtool installed already.
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=300, env=_clean_env())
    assert done.returncode == 0, done.stdout + done.stderr


def _fresh_venv(path: Path, *install: str, editable: bool = False) -> Path:
    """A venv with no pip and no packages; ``install`` goes in with this environment's pip.

    An editable install builds in the target interpreter, so it needs setuptools (from the
    dependencies path) first; a wheel goes in before that path exists, so pip never even
    looks at this environment's own hubtool (pip would refuse to touch it, but need not try).
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # Dependencies (and setuptools, for an editable build) from this environment. A path in
    # a .pth file is only appended to sys.path: its own .pth files (this environment's
    # editable hubtool) are not processed, and the venv's site-packages comes first.
    deps = Path(purelib) / "_hubtool_test_deps.pth"
    if editable:
        deps.write_text(sysconfig.get_paths()["purelib"] + "\n")
    _pip("--python", str(python), "install", "--no-deps", "--no-build-isolation", "-q", *install)
    deps.write_text(sysconfig.get_paths()["purelib"] + "\n")
    return path


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "HUBTOOL_CONFIGS", "HUBTOOL_TEMPLATES", "HUBTOOL_ARTIFACTS")}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


def _run(venv: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(venv / "bin" / "hubtool"), *args], cwd=cwd, env=env or _clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    src = _copy_source(root / "src")
    _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"), str(src))
    (built,) = (root / "dist").glob("hubtool-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fresh_venv(tmp_path_factory.mktemp("venv") / "venv", str(wheel))


def test_wheel_carries_the_family_the_template_and_every_module(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    specs = {p.name for p in CONFIGS.glob("*.yaml")}
    assert {"family.yaml", "gpt2-5m.yaml", "tiny-gpt2.yaml"} <= specs
    assert {n.split("/")[-1] for n in names if n.startswith("hubtool/_bundled/model_configs/")} == specs
    assert "hubtool/_bundled/templates/model_card.md.j2" in names
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "hubtool").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules - names == set()
    for spec in specs:
        data = zipfile.ZipFile(wheel).read(f"hubtool/_bundled/model_configs/{spec}")
        assert data == (CONFIGS / spec).read_bytes(), spec


def test_installed_wheel_runs_list_build_card_from_an_empty_directory(venv: Path, tmp_path: Path) -> None:
    work = tmp_path / "empty"
    work.mkdir()
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import hubtool, hubtool.spec.catalog as c; print(hubtool.__file__); print(c.configs_dir()); print(c.templates_dir())"],
        cwd=work, env=_clean_env(), capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    package = venv.resolve() / "lib"
    assert all(Path(line).resolve().is_relative_to(package) for line in where), where
    assert Path(where[1]).name == "model_configs" and Path(where[1]).parent.name == "_bundled"

    listed = _run(venv, "list", "--json", cwd=work)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ALL_NAMES
    assert {r["name"]: (r["parameters"], r["weight_bytes"]) for r in rows} == {
        n: (REFERENCE[n][4], REFERENCE[n][5]) for n in ALL_NAMES
    }

    built = _run(venv, "build", "tiny-gpt2", cwd=work)
    assert built.returncode == 0, built.stderr
    folder = work / "artifacts" / "tiny-gpt2"
    assert (folder / "model.safetensors").stat().st_size == REFERENCE["tiny-gpt2"][5]
    assert json.loads((folder / "provenance.json").read_text())["parameters"] == REFERENCE["tiny-gpt2"][4]

    carded = _run(venv, "card", "tiny-gpt2", cwd=work)
    assert carded.returncode == 0, carded.stderr
    card = (folder / "README.md").read_text()
    assert "| Parameters | 102,714 (" in card
    assert f"| Model size | {REFERENCE['tiny-gpt2'][5]:,} bytes" in card
    assert sorted(p.name for p in work.iterdir()) == ["artifacts"]


def test_own_folders_in_the_working_directory_win(venv: Path, tmp_path: Path) -> None:
    work = tmp_path / "mine"
    (work / "model_configs").mkdir(parents=True)
    (work / "templates").mkdir()
    (work / "model_configs" / "family.yaml").write_text("namespace: someone\nlicense: apache-2.0\n")
    (work / "model_configs" / "my-tiny.yaml").write_text("n_embd: 4\nn_layer: 1\nn_head: 2\n")
    (work / "templates" / "model_card.md.j2").write_text("# {{ m.model }}: {{ m.facts.parameters | commas }} parameters\n")

    listed = _run(venv, "list", "--json", cwd=work)
    assert [r["name"] for r in json.loads(listed.stdout)] == ["my-tiny"]
    assert _run(venv, "build", "my-tiny", cwd=work).returncode == 0
    assert _run(venv, "card", "my-tiny", cwd=work).returncode == 0
    params = json.loads(_run(venv, "list", "--json", cwd=work).stdout)[0]["parameters"]
    card = (work / "artifacts" / "my-tiny" / "README.md").read_text()
    assert card.endswith(f"\n# my-tiny: {params:,} parameters\n") and "license: apache-2.0" in card

    # HUBTOOL_CONFIGS wins over ./model_configs.
    env = _clean_env(HUBTOOL_CONFIGS=str(CONFIGS))
    assert [r["name"] for r in json.loads(_run(venv, "list", "--json", cwd=work, env=env).stdout)] == ALL_NAMES


def test_editable_install_finds_the_repository_folders(tmp_path: Path) -> None:
    src = _copy_source(tmp_path / "src")
    venv = _fresh_venv(tmp_path / "venv", "-e", str(src), editable=True)
    work = tmp_path / "empty"
    work.mkdir()
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import hubtool, hubtool.spec.catalog as c; print(hubtool.__file__); print(c.configs_dir()); print(c.templates_dir())"],
        cwd=work, env=_clean_env(), capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert done == [str(src / "hubtool" / "__init__.py"), str(src / "model_configs"), str(src / "templates")]
    listed = _run(venv, "list", "--json", cwd=work)
    assert [r["name"] for r in json.loads(listed.stdout)] == ALL_NAMES
