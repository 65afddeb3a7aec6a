"""Deliberately broken checkpoints fail verification with a message naming the tensor or file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hubtool.cli.main import cli
from hubtool.verify.run import verify_target
from tests.verify_fixtures import copy_model, read_header, tensor_offsets, write_header

WEIGHTS = "model.safetensors"


@pytest.fixture
def broken(tiny_dir, tmp_path):
    return copy_model(tiny_dir, tmp_path / "model")


def failed_checks(report: dict) -> dict[str, str]:
    return {c["name"]: c["detail"] for c in report["checks"] if c["status"] == "failed"}


def run(folder, tmp_path, **kwargs) -> dict:
    report, path = verify_target(str(folder), backends="eager,sdpa", output=tmp_path / "report.json",
                                 cache_dir=tmp_path / "cache", **kwargs)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert path == tmp_path / "report.json" and saved == report.to_dict()
    return report.to_dict()


def assert_refused(report: dict) -> None:
    """The file checks failed, nothing ran, the whole report failed."""
    assert report["files_status"] == "failed"
    assert report["status"] == "failed"
    assert {b: c["status"] for b, c in report["backends"].items()} == {"eager": "failed", "sdpa": "failed"}
    assert all("file checks failed" in c["reason"] for c in report["backends"].values())


def test_one_changed_weight_is_named(broken, tmp_path):
    name = "transformer.h.1.mlp.c_fc.bias"
    start, _ = tensor_offsets(broken / WEIGHTS, name)
    raw = bytearray((broken / WEIGHTS).read_bytes())
    raw[start] ^= 0x01  # one bit of one float
    (broken / WEIGHTS).write_bytes(bytes(raw))
    report = run(broken, tmp_path)
    assert_refused(report)
    fails = failed_checks(report)
    assert list(fails) == ["bit-identical to build", "files match provenance"]
    assert f"tensor(s) {name} differ from the sha256 recorded at build" in fails["bit-identical to build"]
    assert fails["files match provenance"].startswith("changed since the build: model.safetensors (sha256 ")


def test_truncated_file_is_named(broken, tmp_path):
    raw = (broken / WEIGHTS).read_bytes()
    (broken / WEIGHTS).write_bytes(raw[:-1000])
    fails = failed_checks(assert_refused_report := run(broken, tmp_path))
    assert_refused(assert_refused_report)
    assert "model.safetensors: truncated" in fails["safetensors file"]
    assert "transformer.wpe.weight" in fails["safetensors file"] or "transformer.wte.weight" in fails["safetensors file"]


def test_header_lying_about_shape_is_named(broken, tmp_path):
    header, data = read_header(broken / WEIGHTS)
    header["transformer.h.0.ln_1.weight"]["shape"] = [3]  # 2 floats stored, 3 claimed
    write_header(broken / WEIGHTS, header, data)
    report = run(broken, tmp_path)
    assert_refused(report)
    detail = failed_checks(report)["safetensors file"]
    assert "tensor transformer.h.0.ln_1.weight: header says F32 [3] (12 bytes) but its data spans 8 bytes" in detail


def test_header_with_consistent_wrong_shape_is_named(broken, tmp_path):
    header, data = read_header(broken / WEIGHTS)
    header["transformer.h.0.attn.c_attn.weight"]["shape"] = [6, 2]  # same bytes, transposed
    write_header(broken / WEIGHTS, header, data)
    report = run(broken, tmp_path)
    assert_refused(report)
    fails = failed_checks(report)
    assert fails["tensor shapes"] == "transformer.h.0.attn.c_attn.weight is [6, 2], config implies [2, 6]"


def test_header_lying_about_dtype_is_named(broken, tmp_path):
    header, data = read_header(broken / WEIGHTS)
    header["transformer.ln_f.bias"]["dtype"] = "F16"
    write_header(broken / WEIGHTS, header, data)
    report = run(broken, tmp_path)
    assert_refused(report)
    assert "tensor transformer.ln_f.bias: header says F16 [2] (4 bytes) but its data spans 8 bytes" in \
        failed_checks(report)["safetensors file"]


def test_consistent_wrong_dtype_is_named(broken, tmp_path):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(broken / WEIGHTS)
    tensors["transformer.ln_f.weight"] = tensors["transformer.ln_f.weight"].astype("float64")
    save_file(tensors, broken / WEIGHTS, metadata={"format": "pt"})
    fails = failed_checks(report := run(broken, tmp_path))
    assert_refused(report)
    assert fails["dtype"] == "declared float32 (F32); transformer.ln_f.weight is F64"


def test_missing_tensor_is_named(broken, tmp_path):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(broken / WEIGHTS)
    del tensors["transformer.h.1.attn.c_proj.weight"]
    save_file(tensors, broken / WEIGHTS, metadata={"format": "pt"})
    report = run(broken, tmp_path)
    assert_refused(report)
    fails = failed_checks(report)
    assert fails["tensor names"] == "missing tensor(s) transformer.h.1.attn.c_proj.weight"
    assert "transformer.h.1.attn.c_proj.weight recorded at build are missing" in fails["bit-identical to build"]


def test_untied_lm_head_is_named(broken, tmp_path):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(broken / WEIGHTS)
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"] + 0.01
    save_file(tensors, broken / WEIGHTS, metadata={"format": "pt"})
    fails = failed_checks(report := run(broken, tmp_path))
    assert_refused(report)
    assert fails["tied weights"] == (
        "lm_head.weight differs from transformer.wte.weight although config.json ties them"
    )


def test_config_disagreeing_with_spec_is_named(broken, tmp_path):
    config = json.loads((broken / "config.json").read_text())
    config["n_layer"] = 3
    config["tie_word_embeddings"] = False
    (broken / "config.json").write_text(json.dumps(config))
    fails = failed_checks(report := run(broken, tmp_path))
    assert_refused(report)
    assert fails["config matches spec"] == (
        "config.json: n_layer is 3, spec says 2; tie_word_embeddings is False, spec says True"
    )
    assert fails["files match provenance"].startswith("changed since the build: config.json (sha256 ")


def pickle_only(src, dst):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(src)
    dst.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        (dst / name).write_bytes((src / name).read_bytes())
    torch.save(model.state_dict(), dst / "pytorch_model.bin")
    return dst


def test_pickle_only_folder_is_refused(tiny_dir, tmp_path):
    folder = pickle_only(tiny_dir, tmp_path / "pickled")
    result = CliRunner().invoke(cli, ["verify", str(folder), "--backend", "eager", "--output",
                                      str(tmp_path / "r.json")], env={"HUBTOOL_CACHE": str(tmp_path / "c")})
    assert result.exit_code == 1, result.output
    assert "refusing pickle weight file(s) pytorch_model.bin" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["backends"]["eager"]["status"] == "failed"


@pytest.mark.slow
def test_pickle_only_folder_loads_when_allowed(tiny_dir, tmp_path, verify_cache):
    folder = pickle_only(tiny_dir, tmp_path / "pickled")
    report = verify_target(str(folder), backends="eager", allow_pickle=True, cache_dir=verify_cache)[0].to_dict()
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["pickle files"]["detail"] == "allowed on request: pytorch_model.bin"
    assert checks["bit-identical to build"]["status"] == "skipped"
    assert checks["tied weights"]["status"] == "passed"  # the state dict repeats the tied lm_head
    assert checks["reloaded tensors"]["status"] == "passed"
    assert report["backends"]["eager"]["status"] == "passed", report["backends"]["eager"]
    assert report["status"] == "passed"
    assert (folder / "verification.json").is_file()
    # Nothing ties a folder from elsewhere to a spec: said plainly, not passed.
    assert checks["regenerated from spec and seed"]["status"] == "skipped"
    assert len(report["unverified"]) == 3 and report["coverage"][0]["visible"] is False


def test_cli_names_the_broken_tensor_and_exits_1(broken, tmp_path):
    start, _ = tensor_offsets(broken / WEIGHTS, "transformer.wpe.weight")
    raw = bytearray((broken / WEIGHTS).read_bytes())
    raw[start + 4] ^= 0x80
    (broken / WEIGHTS).write_bytes(bytes(raw))
    result = CliRunner().invoke(cli, ["verify", str(broken), "--backend", "sdpa"],
                                env={"HUBTOOL_CACHE": str(tmp_path / "c")})
    assert result.exit_code == 1
    assert "files: bit-identical to build: tensor(s) transformer.wpe.weight differ" in result.output
    assert json.loads((broken / "verification.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("args, message", [
    (["tiny-gpt2", "--backend", "eager,tensorrt"], "unknown backend 'tensorrt'; choose from eager, sdpa"),
    (["no-such-model"], "is not a folder, a spec name"),
    ([], "give at least one TARGET"),
    (["tiny-gpt2", "gpt2-25m", "--output", "x.json"], "--output takes a single TARGET"),
], ids=["backend", "target", "none", "output-many"])
def test_usage_errors_exit_2(args, message, tmp_path):
    result = CliRunner().invoke(cli, ["verify", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_unbuilt_spec_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["verify", "gpt2-50m", "--out", str(tmp_path)])
    assert result.exit_code == 3
    assert result.output.strip().endswith("not built yet (run: hubtool build gpt2-50m)")
