"""Cards: golden renders from fixed evidence, sections that go stale with the bytes, --check, and the audit."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubtool.card.audit import audit_card, contradiction_lines
from hubtool.card.gate import card_problems
from hubtool.card.render import card_command
from hubtool.cli.main import cli
from hubtool.errors import TemplateError
from hubtool.evidence.card import CardMeasurements
from hubtool.evidence.provenance import HubtoolIdentity, read_provenance
from hubtool.spec.catalog import resolve_spec
from tests.card_fixtures import IDENTITY, benchmark, copy_family, verification, write_evidence
from tests.conftest import ALL_NAMES, CONFIGS, MODEL_PARAMS, REFERENCE

GOLDEN = Path(__file__).parent / "golden"


def _fixed_identity(folder: Path) -> None:
    """Provenance names the hubtool that built it (version, commit): fix it, so cards compare with goldens."""
    prov = read_provenance(folder)
    prov.model_copy(update={"hubtool": HubtoolIdentity(**IDENTITY)}).write(folder / "provenance.json")


def _with_evidence(root: Path, name: str, **kwargs) -> Path:
    folder = root / name
    _fixed_identity(folder)
    write_evidence(folder, n_layer=resolve_spec(name, CONFIGS).config["n_layer"], **kwargs)
    return folder


@pytest.fixture()
def family(family_dir: Path, tmp_path: Path) -> Path:
    """Every reference model, privately copied, with fixed evidence for its current bytes."""
    root = copy_family(family_dir, tmp_path / "artifacts", ALL_NAMES)
    for name in ALL_NAMES:
        _with_evidence(root, name)
    return root


@pytest.fixture()
def tiny(tiny_dir: Path, tmp_path: Path) -> Path:
    """An artifacts root holding a private tiny-gpt2 with fixed evidence (its siblings are not built)."""
    root = copy_family(tiny_dir.parent, tmp_path / "artifacts", ["tiny-gpt2"])
    _with_evidence(root, "tiny-gpt2")
    return root


def render(root: Path, name: str = "tiny-gpt2", **kwargs) -> str:
    card_command(resolve_spec(name, CONFIGS), root=root, **kwargs)
    return (root / name / "README.md").read_text()


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n")[1].split("\n## ")[0]


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_golden_card(family: Path, name: str) -> None:
    result = card_command(resolve_spec(name, CONFIGS), root=family)
    assert result.status == "written" and result.warnings == []
    text = (family / name / "README.md").read_text()
    golden = GOLDEN / f"{name}.README.md"
    if os.environ.get("HUBTOOL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    # Rendering again changes nothing, byte for byte.
    assert card_command(resolve_spec(name, CONFIGS), root=family).status == "unchanged"


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_card_numbers_come_from_the_files(family: Path, name: str) -> None:
    text = render(family, name)
    n_embd, n_layer, n_head, n_inner, params, nbytes = REFERENCE[name]
    assert f"| Parameters | {params:,} (" in text
    assert f"| Layers (n_layer) | {n_layer} |" in text
    assert f"| Model size | {nbytes:,} bytes ({nbytes / 1e6:,.2f} MB" in text
    assert f'from_pretrained("Crusadersk/{name}")' in text
    vllm_row = next(line for line in section(text, "Compatibility").splitlines() if line.startswith("| vLLM |"))
    latency = section(text, "Latency")
    if name in ("tiny-gpt2", "gpt2-5m", "gpt2-100m"):
        assert "| No | vLLM's CPU attention does not run head size" in vllm_row
        assert "| vLLM |" not in latency.split("Not published")[0]
    else:
        assert vllm_row.startswith("| vLLM | Yes |")
    assert "### AMD EPYC, 2 threads" in latency
    assert "Not trained: the weights are randomly initialised (seed 0)" in text
    m = CardMeasurements.from_file(family / name / "measurements.json")
    assert m.measured_sections == ["Model details", "Compatibility", "Latency on AMD EPYC, 2 threads"]
    assert m.subject["model.safetensors"] in text.replace("`", " ") or m.subject["model.safetensors"][:16] in text


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_own_cards_pass_their_audit(family: Path, name: str) -> None:
    render(family, name)
    audit = audit_card(family / name, backends=verification(family / name).model_dump()["backends"])
    assert audit["status"] == "passed", contradiction_lines(audit)
    assert audit["recheck"]["rerendered"] is True and audit["recheck"]["lines"] == []


def test_prose_is_computed_and_true(family: Path) -> None:
    text = render(family, "gpt2-25m")
    design = section(text, "Design")
    assert "- 3 layers: the 2nd shallowest of the 5 models." in design
    assert "gpt2-5m is deeper (12 vs 3 layers) but smaller (0.20x the parameters) than gpt2-25m." in design
    for false in ("Fewest layers", "half the width", "wide."):
        assert false not in text
    reports = section(text, "Technical reports")
    assert reports.strip().startswith("Quoted from the reports they cite; nothing in this section was measured here.")
    assert "TR121" in reports and "0.811" in reports
    assert text.rstrip().endswith("beside this card (rendered by hubtool 0.2.0).")


def test_front_matter_round_trip(tiny: Path) -> None:
    from huggingface_hub import ModelCard

    render(tiny)
    data = ModelCard.load(tiny / "tiny-gpt2" / "README.md").data.to_dict()
    assert data == {
        "language": ["en"], "license": "mit", "library_name": "transformers", "pipeline_tag": "text-generation",
        "tags": ["gpt2", "benchmarking", "inference-latency", "random-weights"],
    }


def test_latency_only_for_backends_whose_parity_passed(tiny: Path) -> None:
    folder = tiny / "tiny-gpt2"
    verification(folder, statuses={"compile": "failed"}).write(folder / "verification.json")
    text = render(tiny)
    latency = section(text, "Latency")
    assert "| torch.compile (Inductor) |" not in latency.split("Not published")[0]
    assert "- torch.compile (Inductor) on AMD EPYC, 2 threads (batch 1): parity failed for these weights" in latency
    assert "| transformers (eager attention) | 1 |" in latency
    assert "| torch.compile (Inductor) | No (parity failed) | failed on purpose |" in text


def test_partial_compile_is_said(tiny: Path) -> None:
    folder = tiny / "tiny-gpt2"
    verification(folder, breaks=3).write(folder / "verification.json")
    text = render(tiny)
    assert "| torch.compile (Inductor) | Partial (3 graph breaks) | 3 graph break(s) |" in text
    assert "| torch.compile (Inductor) | Yes |" not in text


def test_devices_each_get_their_own_table(tiny: Path) -> None:
    from hubtool.evidence.benchmark import Machine

    folder = tiny / "tiny-gpt2"
    one = Machine(id="cpu-111111111111", device="cpu", name="AMD EPYC, 1 thread", cpu="AMD EPYC", threads=1)
    bench = benchmark(folder, 2, machine=one)
    bench.write(folder / "benchmarks" / f"{one.id}.json")
    latency = section(render(tiny), "Latency")
    assert latency.index("### AMD EPYC, 2 threads") < latency.index("### AMD EPYC, 1 thread")  # by machine id
    assert latency.count("| Backend | Batch | Prefill (ms) |") == 2
    assert "Decode vs memory limit" in latency and "| 20.0x |" not in latency.split("###")[0]


def test_smoke_runs_are_never_shown_as_results(tiny: Path) -> None:
    folder = tiny / "tiny-gpt2"
    shutil.rmtree(folder / "benchmarks")
    write_evidence(folder, n_layer=2, benchmark_record=benchmark(folder, 2, quality="smoke"))
    latency = section(render(tiny), "Latency")
    assert latency.strip().startswith("No latency result for these weights.")
    assert "Smoke runs (too small to compare: one process, a few repeats; not results):" in latency
    assert "| Backend | Batch |" not in latency and "[" not in latency


def test_missing_value_is_an_error_naming_it(tiny: Path, tmp_path: Path) -> None:
    template = tmp_path / "mine.md.j2"
    template.write_text("# {{ m.model }}\n\n{{ m.facts.n_layer }}\n{{ m.facts.flops_per_token }}\n")
    with pytest.raises(TemplateError, match=r"mine\.md\.j2 \(line 4\): missing value: .*flops_per_token"):
        card_command(resolve_spec("tiny-gpt2", CONFIGS), root=tiny, template=template)
    assert not (tiny / "tiny-gpt2" / "README.md").exists()
    result = CliRunner().invoke(cli, ["card", "tiny-gpt2", "--out", str(tiny), "--template", str(template)])
    assert result.exit_code == 2 and "missing value" in result.output and "Traceback" not in result.output


def test_user_template(tiny: Path, tmp_path: Path) -> None:
    template = tmp_path / "short.md.j2"
    template.write_text("# {{ m.model }}: {{ m.facts.parameters | commas }} parameters\n")
    assert render(tiny, template=template).endswith("# tiny-gpt2: 102,714 parameters\n")


def test_check_flag_and_json(tiny: Path) -> None:
    runner = CliRunner()
    args = ["card", "tiny-gpt2", "--out", str(tiny)]
    assert runner.invoke(cli, [*args, "--check"]).exit_code == 1  # no card yet
    assert runner.invoke(cli, args).exit_code == 0
    checked = runner.invoke(cli, [*args, "--check", "--json"])
    assert checked.exit_code == 0 and json.loads(checked.stdout)[0]["status"] == "current"
    # A new verification (another verdict) makes the card stale.
    folder = tiny / "tiny-gpt2"
    verification(folder, statuses={"sdpa": "crashed"}).write(folder / "verification.json")
    stale = runner.invoke(cli, [*args, "--check"])
    assert stale.exit_code == 1 and "out of date" in stale.output


def test_unbuilt_model_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["card", "gpt2-25m", "--out", str(tmp_path)])
    assert result.exit_code == 3
    assert "is not built; run `hubtool build gpt2-25m` first" in result.output


def test_a_copy_stays_fresh_and_one_changed_byte_stales_every_gate(tiny: Path, tmp_path: Path) -> None:
    from hubtool.bench.harness import fresh_verification
    from hubtool.folder.hashing import folder_identity

    render(tiny)
    copy = tmp_path / "copied"
    shutil.copytree(tiny, copy)  # new file times everywhere
    folder = copy / "tiny-gpt2"
    os.utime(folder / "README.md", (1, 1))  # a card older than everything: times play no part
    assert card_problems(folder, name="tiny-gpt2", repo_id="Crusadersk/tiny-gpt2") == []
    assert card_command(resolve_spec("tiny-gpt2", CONFIGS), root=copy, check=True).status == "current"
    assert fresh_verification(folder, folder_identity(folder)) is not None
    assert audit_card(folder)["status"] == "passed"
    for name in ("model.safetensors", "config.json"):
        target = copy / name
        shutil.copytree(tiny, target)
        path = target / "tiny-gpt2" / name
        before = path.stat()
        raw = bytearray(path.read_bytes())
        at = raw.index(b"1e-05") + 4 if name == "config.json" else len(raw) - 2  # still valid JSON
        raw[at] ^= 0x03  # one byte, and the old file time restored
        path.unlink()
        path.write_bytes(bytes(raw))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        changed = target / "tiny-gpt2"
        problems = card_problems(changed, name="tiny-gpt2")
        assert problems == [f"README.md was rendered for other files ({name} changed); run `hubtool card tiny-gpt2`"]
        assert card_command(resolve_spec("tiny-gpt2", CONFIGS), root=target, check=True).status == "stale"
        assert fresh_verification(changed, folder_identity(changed)) is None
        assert audit_card(changed)["status"] == "failed"


def test_train_then_card_shows_no_old_measurement(tiny: Path, tmp_path: Path) -> None:
    from hubtool.train.loop import train_model

    folder = tiny / "tiny-gpt2"
    old = render(tiny)
    assert "| vLLM | No |" in old and "### AMD EPYC" in old
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.unlink()
    weights.write_bytes(data)  # un-share the hard link before training rewrites it
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog. " * 400)
    train_model(folder, corpus=[str(corpus)], steps=3, seq_len=32, batch_size=2, lr=1e-2)
    assert card_problems(folder, name="tiny-gpt2")[0].startswith("README.md was rendered for other files "
                                                                 "(model.safetensors changed)")
    result = card_command(resolve_spec("tiny-gpt2", CONFIGS), root=tiny)
    text = (folder / "README.md").read_text()
    assert "| Yes |" not in text and "### AMD EPYC" not in text
    assert section(text, "Compatibility").strip() == "Not measured for these weights. Run `hubtool verify tiny-gpt2`."
    assert "No latency result for these weights." in section(text, "Latency")
    assert any("verification.json: made for other bytes (model.safetensors changed)" in w for w in result.warnings)
    assert "Trained for 3 steps on 192 tokens" in section(text, "Training")
    assert "- trained\n" in text and "random-weights" not in text
    m = CardMeasurements.from_file(folder / "measurements.json")
    assert m.measured_sections == ["Model details", "Training"]
    assert card_problems(folder, name="tiny-gpt2") == []  # the new card is the card of these files
    audit = audit_card(folder)
    assert audit["status"] == "passed", contradiction_lines(audit)


FABRICATED = [
    ("decode 10x faster", lambda t: t.replace("| transformers (eager attention) | 1 | 1.5 [1.47, 1.54] | 0.5 ",
                                              "| transformers (eager attention) | 1 | 1.5 [1.47, 1.54] | 0.05 ")),
    ("1,000 tokens/s", lambda t: t.replace("| 2,000 | 12.5x |", "| 1,000 tokens/s | 12.5x |", 1)),
    ("vLLM: Yes", lambda t: t.replace("| vLLM | No |", "| vLLM | Yes |")),
    ("head_dim", lambda t: t.replace("| Head dimension | 1 |", "| Head dimension | 2 |")),
    ("activation", lambda t: t.replace("| Activation | gelu_new |", "| Activation | relu |")),
    ("tying", lambda t: t.replace("| Tied input/output embeddings | yes |", "| Tied input/output embeddings | no |")),
]


@pytest.mark.parametrize("what, edit", FABRICATED, ids=[f[0] for f in FABRICATED])
def test_every_fabricated_number_is_caught(tiny: Path, what: str, edit) -> None:
    text = render(tiny)
    forged = edit(text)
    assert forged != text, what
    (tiny / "tiny-gpt2" / "README.md").write_text(forged)
    audit = audit_card(tiny / "tiny-gpt2")
    assert audit["status"] == "failed", what
    (changed,) = [i + 1 for i, (a, b) in enumerate(zip(text.splitlines(), forged.splitlines(), strict=True)) if a != b]
    assert [d["line"] for d in audit["recheck"]["lines"]] == [changed]
    assert any(line.startswith(f"README.md:{changed}: ") for line in contradiction_lines(audit))


def test_a_yes_for_a_backend_the_evidence_never_ran_is_caught(tiny: Path) -> None:
    folder = tiny / "tiny-gpt2"
    verification(folder, statuses={"compile": "absent"}).write(folder / "verification.json")
    text = render(tiny)
    assert "| torch.compile (Inductor) | Not tested | not run by this verification |" in text
    (folder / "README.md").write_text(text.replace("| torch.compile (Inductor) | Not tested |",
                                                   "| torch.compile (Inductor) | Yes |"))
    audit = audit_card(folder, backends=verification(folder, statuses={"compile": "absent"}).model_dump()["backends"])
    assert audit["status"] == "failed"
    claims = [c for c in audit["claims"] if c["status"] == "contradiction"]
    assert [(c["claim"], c["detail"]) for c in claims] == [("backend:compile", "the verification never ran compile")]


def test_a_false_superlative_is_caught(tiny: Path) -> None:
    render(tiny)
    card = tiny / "tiny-gpt2" / "README.md"
    card.write_text(card.read_text() + "\nThe deepest model of the family.\n")
    audit = audit_card(tiny / "tiny-gpt2")
    assert audit["superlatives"] == [{"line": len(card.read_text().splitlines()), "claim": "The deepest",
                                      "detail": "tiny-gpt2 has n_layer 2; gpt2-5m has 12"}]


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

Decode: 0.12 ms per token, 8,000 tokens/s.
"""


def test_audit_catches_a_hand_written_card(tiny: Path) -> None:
    folder = tiny / "tiny-gpt2"
    (folder / "README.md").write_text(HAND_WRITTEN)
    (folder / "measurements.json").unlink(missing_ok=True)
    audit = audit_card(folder, backends=verification(folder).model_dump()["backends"])
    assert audit["status"] == "failed" and audit["recheck"] is None
    bad = {(c["claim"], c["line"]): c for c in audit["claims"] if c["status"] == "contradiction"}
    assert set(bad) == {("trained", 8), ("parameters", 8), ("parameters", 12), ("n_layer", 13),
                        ("model_size", 15), ("backend:vllm", 21)}
    assert bad[("parameters", 12)]["measured"] == 102_714
    assert bad[("n_layer", 13)]["detail"] == "config.json has n_layer = 2"
    assert "vLLM's CPU attention does not run head size 1" in bad[("backend:vllm", 21)]["detail"]
    lines = contradiction_lines(audit)
    assert "README.md:12: parameters '4.6M' contradicts the files: measured 102,714 parameters" in lines
    ok = {c["claim"] for c in audit["claims"] if c["status"] == "ok"}
    assert {"n_embd", "precision", "backend:eager"} <= ok
    # Latency and throughput with no measurement file behind them: unverified, said so.
    assert audit["unverified"] == [{"line": 24, "text": "Decode: 0.12 ms per token, 8,000 tokens/s.",
                                    "values": ["0.12 ms", "8,000 tokens/s"]}]


@pytest.mark.parametrize(
    ("stated", "ok"),
    [("25M", True), ("25.0M", True), ("25,016,064", True), ("0.025B", True), ("24M", False), ("2.5M", False),
     ("250M", False), ("25,016,065", False)],
)
@pytest.mark.family
def test_parameter_rounding(gpt2_25m_dir: Path, tmp_path: Path, stated: str, ok: bool) -> None:
    folder = copy_family(gpt2_25m_dir.parent, tmp_path / "a", ["gpt2-25m"]) / "gpt2-25m"
    (folder / "README.md").write_text(f"# x\n\n| Parameters | {stated} |\n")
    assert audit_card(folder)["status"] == ("passed" if ok else "failed")


def test_card_without_claims_is_reported(tiny: Path) -> None:
    folder = tiny / "tiny-gpt2"
    (folder / "README.md").write_text("# tiny-gpt2\n\nA model.\n")
    assert audit_card(folder)["status"] == "no-claims"
    (folder / "README.md").unlink()
    assert audit_card(folder)["status"] == "no-card"


def test_family_row_of_an_unbuilt_model_says_where_its_count_comes_from(tiny: Path) -> None:
    text = render(tiny)
    assert "| gpt2-100m | 8 | 768 | 2 | 384 | 96,088,320 (from spec, not built) |" in text
    assert "| **tiny-gpt2** | 2 | 2 | 2 | 1 | 102,714 |" in text


def test_namespace_names_the_repo_pushed_to(tiny: Path) -> None:
    text = render(tiny, namespace="my-org")
    assert 'from_pretrained("my-org/tiny-gpt2")' in text and "Crusadersk/tiny-gpt2" not in text.split("## Citation")[0]
    folder = tiny / "tiny-gpt2"
    assert card_problems(folder, name="tiny-gpt2", repo_id="my-org/tiny-gpt2") == []
    assert card_problems(folder, name="tiny-gpt2", repo_id="Crusadersk/tiny-gpt2") == [
        "README.md names my-org/tiny-gpt2 but the push goes to Crusadersk/tiny-gpt2; "
        "run `hubtool card tiny-gpt2 --namespace Crusadersk`"]



def test_yml_specs_work_like_yaml(tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(CONFIGS / "family.yaml", configs / "family.yaml")
    shutil.copy(CONFIGS / "tiny-gpt2.yaml", configs / "tiny-gpt2.yml")
    shutil.copy(CONFIGS / "gpt2-25m.yaml", configs / "gpt2-25m.yml")
    monkeypatch.setenv("HUBTOOL_CONFIGS", str(configs))
    root = copy_family(tiny_dir.parent, tmp_path / "artifacts", ["tiny-gpt2"])
    result = CliRunner().invoke(cli, ["card", "tiny-gpt2", "--out", str(root)])
    assert result.exit_code == 0, result.output
    text = (root / "tiny-gpt2" / "README.md").read_text()
    assert "| gpt2-25m | 3 | 384 | 2 | 192 | 25,016,064 (from spec, not built) |" in text
