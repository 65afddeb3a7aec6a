"""The suite's own machinery (tests/conftest.py): each model built once, shared folders guarded,
private copies cheap, and the fast lane kept to tiny-gpt2."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import hubtool.build.folder
from tests.conftest import MODEL_PARAMS, REFERENCE, SessionModels, _require_family, linked_copy


def test_a_model_is_built_once_and_a_changed_folder_is_noticed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = hubtool.build.folder.build_model
    monkeypatch.setattr(hubtool.build.folder, "build_model", lambda spec, **kw: calls.append(spec.name) or real(spec, **kw))
    models = SessionModels(tmp_path)
    first = models.path("tiny-gpt2")
    assert models.path("tiny-gpt2") == first == tmp_path / "tiny-gpt2"
    assert calls == ["tiny-gpt2"]
    assert models.changed() == []
    (first / "verification.json").write_text("{}")
    assert models.changed() == ["tiny-gpt2"]


def test_private_copies_share_only_the_weights(tiny_dir: Path, tmp_path: Path) -> None:
    copy = linked_copy(tiny_dir, tmp_path / "copy")
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in tiny_dir.iterdir())
    for path in copy.iterdir():
        original = tiny_dir / path.name
        assert path.read_bytes() == original.read_bytes()
        shared = path.stat().st_ino == original.stat().st_ino
        assert shared is (path.name == "model.safetensors"), path.name


def test_bigger_models_need_the_family_marker() -> None:
    unmarked = SimpleNamespace(node=SimpleNamespace(nodeid="tests/x.py::t", get_closest_marker=lambda name: None))
    marked = SimpleNamespace(node=SimpleNamespace(nodeid="tests/x.py::t", get_closest_marker=lambda name: name))
    _require_family(unmarked, "tiny-gpt2")
    _require_family(marked, "gpt2-100m")
    with pytest.raises(pytest.fail.Exception, match="builds gpt2-100m: mark it @pytest.mark.family"):
        _require_family(unmarked, "gpt2-100m")
    assert [(p.values[0], [m.name for m in p.marks]) for p in MODEL_PARAMS] == [
        ("tiny-gpt2", []), ("gpt2-5m", ["family"]), ("gpt2-25m", ["family"]), ("gpt2-50m", ["family"]),
        ("gpt2-100m", ["family"])]


def test_a_big_model_fixture_puts_the_test_in_the_family_lane(request: pytest.FixtureRequest, gpt2_25m_dir: Path) -> None:
    """No marker written here: conftest adds it, so -m "not family" deselects this test."""
    assert request.node.get_closest_marker("family") is not None
    assert (gpt2_25m_dir / "model.safetensors").stat().st_size == REFERENCE["gpt2-25m"][5]
