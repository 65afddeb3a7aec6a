"""Cards: golden renders from fixed reports, strict templates, --check, and the card audit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubtool.card.audit import audit_card, contradiction_lines
from hubtool.card.render import card_command
from hubtool.spec.catalog import resolve_spec
from hubtool.cli.main import cli
from hubtool.errors import CardError
from tests.card_fixtures import benchmark_report, linked_family, verification_report, write_reports
from tests.conftest import ALL_NAMES, CONFIGS, REFERENCE

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture()
def family(family_dir: Path, tmp_path: Path) -> Path:
    root = linked_family(family_dir, tmp_path / "artifacts")
    for name in ALL_NAMES:
        spec = resolve_spec(name, CONFIGS)
        write_reports(root / name, verification_report(name), benchmark_report(name, spec.config["n_layer"]))
    return root


@pytest.mark.parametrize("name", ALL_NAMES)
def test_golden_card(family: Path, name: str) -> None:
    result = card_command(resolve_spec(name, CONFIGS), root=family)
    assert result.status == "written"
    text = (family / name / "README.md").read_text()
    golden = GOLDEN / f"{name}.README.md"
    if os.environ.get("HUBTOOL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    # Rendering again changes nothing, byte for byte.
    assert card_command(resolve_spec(name, CONFIGS), root=family).status == "unchanged"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_card_numbers_come_from_the_files(family: Path, name: str) -> None:
    card_command(resolve_spec(name, CONFIGS), root=family)
    text = (family / name / "README.md").read_text()
    n_embd, n_layer, n_head, n_inner, params, nbytes = REFERENCE[name]
    assert f"| Parameters | {params:,} (" in text
    assert f"| Layers (n_layer) | {n_layer} |" in text
    assert f"| Model size | {nbytes:,} bytes ({nbytes / 1e6:,.2f} MB" in text
    assert f'from_pretrained("Crusadersk/{name}")' in text
    vllm_row = next(line for line in text.splitlines() if line.startswith("| vLLM |"))
    if name in ("tiny-gpt2", "gpt2-5m", "gpt2-100m"):
        assert "| No | Unsupported CPU attention configuration: head_dim=" in vllm_row
        assert "| vLLM |" not in text.split("## Latency")[1].split("## Training")[0].split("Not published")[0]
    else:
        assert vllm_row.startswith("| vLLM | Yes |")
    assert "Not trained: the weights are randomly initialised (seed 0)" in text


def test_front_matter_round_trip(family: Path) -> None:
    from huggingface_hub import ModelCard

    card_command(resolve_spec("gpt2-25m", CONFIGS), root=family)
    data = ModelCard.load(family / "gpt2-25m" / "README.md").data.to_dict()
    assert data == {
        "language": ["en"], "license": "mit", "library_name": "transformers", "pipeline_tag": "text-generation",
        "tags": ["gpt2", "benchmarking", "inference-latency", "random-weights"],
    }


def test_latency_only_for_backends_whose_parity_passed(family: Path) -> None:
    folder = family / "gpt2-25m"
    write_reports(folder, verification_report("gpt2-25m", overrides={"compile": {"status": "failed", "reason": "max |diff| 0.3 > 1e-4"}}), None)
    card_command(resolve_spec("gpt2-25m", CONFIGS), root=family)
    text = (folder / "README.md").read_text()
    latency = text.split("## Latency")[1].split("## Training")[0]
    assert "| torch.compile (Inductor) |" not in latency
    assert "- torch.compile (Inductor): parity failed in verification" in latency
    assert "| transformers (eager attention) |" in latency
    assert "| torch.compile (Inductor) | No (parity failed) | max \\|diff\\| 0.3 > 1e-4 |" in text
    audit = audit_card(folder, backends=verification_report("gpt2-25m", overrides={"compile": {"status": "failed"}})["backends"])
    assert audit["status"] == "passed", contradiction_lines(audit)


def test_missing_value_is_an_error_naming_it(family: Path, tmp_path: Path) -> None:
    template = tmp_path / "mine.md.j2"
    template.write_text("# {{ m.model }}\n\n{{ m.facts.n_layer }}\n{{ m.facts.flops_per_token }}\n")
    with pytest.raises(CardError, match=r"mine\.md\.j2 \(line 4\): missing value: .*flops_per_token"):
        card_command(resolve_spec("tiny-gpt2", CONFIGS), root=family, template=template)
    assert not (family / "tiny-gpt2" / "README.md").exists()
    result = CliRunner().invoke(cli, ["card", "tiny-gpt2", "--out", str(family), "--template", str(template)])
    assert result.exit_code == 1 and "missing value" in result.output and "Traceback" not in result.output


def test_user_template(family: Path, tmp_path: Path) -> None:
    template = tmp_path / "short.md.j2"
    template.write_text("# {{ m.model }}: {{ m.facts.parameters | commas }} parameters\n")
    card_command(resolve_spec("gpt2-50m", CONFIGS), root=family, template=template)
    assert (family / "gpt2-50m" / "README.md").read_text().endswith("# gpt2-50m: 51,475,968 parameters\n")


def test_check_flag(family: Path) -> None:
    runner = CliRunner()
    args = ["card", "tiny-gpt2", "--out", str(family)]
    assert runner.invoke(cli, [*args, "--check"]).exit_code == 1  # no card yet
    assert runner.invoke(cli, args).exit_code == 0
    checked = runner.invoke(cli, [*args, "--check"])
    assert checked.exit_code == 0 and "current" in checked.output
    # A new measurement makes the card stale.
    write_reports(family / "tiny-gpt2", verification_report("tiny-gpt2", overrides={"sdpa": {"status": "crashed"}}), None)
    stale = runner.invoke(cli, [*args, "--check"])
    assert stale.exit_code == 1 and "out of date" in stale.output


def test_unbuilt_model_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["card", "gpt2-25m", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not built; run `hubtool build gpt2-25m` first" in result.output


@pytest.mark.parametrize("name", ALL_NAMES)
def test_own_cards_pass_their_audit(family: Path, name: str) -> None:
    card_command(resolve_spec(name, CONFIGS), root=family)
    audit = audit_card(family / name, backends=verification_report(name)["backends"])
    assert audit["status"] == "passed", contradiction_lines(audit)
    claimed = {c["claim"] for c in audit["claims"]}
    assert {"parameters", "n_layer", "n_embd", "n_head", "n_inner", "n_positions", "vocab_size",
            "precision", "model_size", "trained"} <= claimed


HAND_WRITTEN = """\
---
license: mit
tags:
- gpt2
---
# tiny-gpt2

A custom-trained GPT-2 with 4.6M parameters.

| Property | Value |
|---|---|
| Parameters | 4.6M |
| Layers | 12 |
| Hidden size | 2 |
| Model size | 17.6 MB |
| Precision | FP32 |

## Compatibility
| Backend | Supported |
|---|---|
| vLLM | ✅ |
| Transformers | ✅ |
"""


def test_audit_catches_a_hand_written_card(family: Path) -> None:
    folder = family / "tiny-gpt2"
    (folder / "README.md").write_text(HAND_WRITTEN)
    audit = audit_card(folder, backends=verification_report("tiny-gpt2")["backends"])
    assert audit["status"] == "failed"
    bad = {(c["claim"], c["line"]): c for c in audit["claims"] if c["status"] == "contradiction"}
    assert set(bad) == {("trained", 8), ("parameters", 8), ("parameters", 12), ("n_layer", 13),
                        ("model_size", 15), ("backend:vllm", 21)}
    assert bad[("parameters", 12)]["measured"] == 102_714
    assert bad[("n_layer", 13)]["detail"] == "config.json has n_layer = 2"
    assert "Unsupported CPU attention configuration: head_dim=1" in bad[("backend:vllm", 21)]["detail"]
    lines = contradiction_lines(audit)
    assert "README.md:12: parameters '4.6M' contradicts the files: measured 102,714 parameters" in lines
    ok = {c["claim"] for c in audit["claims"] if c["status"] == "ok"}
    assert {"n_embd", "precision", "backend:eager"} <= ok


def test_audit_flags_yes_for_a_backend_whose_parity_failed(family: Path) -> None:
    folder = family / "gpt2-25m"
    card_command(resolve_spec("gpt2-25m", CONFIGS), root=family)  # claims vLLM: Yes
    failed = verification_report("gpt2-25m", overrides={"vllm": {"status": "failed", "reason": "logprob diff 0.2"}})
    audit = audit_card(folder, backends=failed["backends"])
    assert audit["status"] == "failed"
    assert [c["claim"] for c in audit["claims"] if c["status"] == "contradiction"] == ["backend:vllm"]


@pytest.mark.parametrize(
    ("stated", "ok"),
    [("25M", True), ("25.0M", True), ("25,016,064", True), ("0.025B", True), ("24M", False), ("2.5M", False),
     ("250M", False), ("25,016,065", False)],
)
def test_parameter_rounding(family: Path, stated: str, ok: bool) -> None:
    folder = family / "gpt2-25m"
    (folder / "README.md").write_text(f"# x\n\n| Parameters | {stated} |\n")
    audit = audit_card(folder)
    assert audit["status"] == ("passed" if ok else "failed")


def test_card_without_claims_is_reported(family: Path) -> None:
    folder = family / "gpt2-50m"
    (folder / "README.md").write_text("# gpt2-50m\n\nA model.\n")
    assert audit_card(folder)["status"] == "no-claims"
    (folder / "README.md").unlink()
    assert audit_card(folder)["status"] == "no-card"


def test_trained_model_card_says_so_and_passes_audit(family: Path, tmp_path: Path) -> None:
    from hubtool.train.loop import train_model

    folder = family / "tiny-gpt2"
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.unlink()
    weights.write_bytes(data)  # un-share the hard link before training rewrites it
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog. " * 400)
    train_model(folder, corpus=[str(corpus)], steps=3, seq_len=32, batch_size=2, lr=1e-2)
    card_command(resolve_spec("tiny-gpt2", CONFIGS), root=family)
    text = (folder / "README.md").read_text()
    assert "- trained\n" in text and "random-weights" not in text
    training = text.split("## Training")[1].split("## Citation")[0]
    assert "Trained for 3 steps on 192 tokens" in training
    assert "corpus.txt" in training and "final training loss" in training
    audit = audit_card(folder, backends=verification_report("tiny-gpt2")["backends"])
    assert audit["status"] == "passed", contradiction_lines(audit)
    assert [c["stated"] for c in audit["claims"] if c["claim"] == "trained"] == ["yes", "yes"]
    # The same card text on the untrained weights is caught.
    untrained = family / "gpt2-25m"
    (untrained / "README.md").write_text(text)
    assert "trained" in [c["claim"] for c in audit_card(untrained)["claims"] if c["status"] == "contradiction"]


def test_family_row_of_an_unbuilt_model_says_where_its_count_comes_from(family: Path) -> None:
    import shutil as sh

    sh.rmtree(family / "gpt2-100m")
    card_command(resolve_spec("gpt2-25m", CONFIGS), root=family)
    text = (family / "gpt2-25m" / "README.md").read_text()
    assert "| gpt2-100m | 8 | 768 | 2 | 384 | 96,088,320 (from spec, not built) |" in text
    assert "| **gpt2-25m** | 3 | 384 | 2 | 192 | 25,016,064 |" in text
