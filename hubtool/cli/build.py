"""``hubtool build``: specs -> Hub-ready model folders."""

from __future__ import annotations

from pathlib import Path

import click

from hubtool.build.folder import build_model, check_output_root, needs_build
from hubtool.cli.options import EXIT_CODES_HELP, all_option, echo_json, json_option, names_argument, out_option
from hubtool.errors import display_path
from hubtool.runtime.progress import Progress
from hubtool.spec.catalog import artifacts_root, resolve_targets


@click.command("build", epilog=EXIT_CODES_HELP)
@names_argument
@all_option
@out_option
@click.option("--force", is_flag=True, help="Rebuild even when the folder is up to date.")
@json_option
def build_cmd(names: tuple[str, ...], all_: bool, out: Path | None, force: bool, as_json: bool) -> None:
    """Build model folders: config, seeded weights, GPT-2 tokenizer, provenance.

    NAME is a spec name from model_configs/ or a path to a spec file. Each model
    goes to OUT/NAME/ and loads offline with AutoModelForCausalLM.from_pretrained.
    The same spec and seed always give byte-identical weights; rebuilding an
    unchanged spec does nothing unless --force.

    \b
    Examples:
      hubtool build gpt2-50m
      hubtool build --all --out /tmp/family
    """
    specs = resolve_targets(names, all_=all_)
    root = artifacts_root(out)
    check_output_root(root)
    results = []
    with Progress() as progress:
        for spec in specs:
            if needs_build(spec, root=root, force=force):
                # The first build of a process also pays for importing torch and transformers.
                with progress.stage(spec.name, "build") as stage:
                    stage.update(detail=f"{spec.parameters:,} parameters")
                    result = build_model(spec, root=root, force=force)
            else:
                result = build_model(spec, root=root, force=force)
            results.append({"model": spec.name, "path": str(result.path), "status": result.status,
                            "seconds": round(result.seconds, 3)})
            where = display_path(result.path)
            if as_json:
                continue
            if result.status == "up-to-date":
                click.echo(f"{spec.name}: up to date, nothing to do (--force rebuilds) -> {where}")
            else:
                click.echo(f"{spec.name}: {result.status} in {result.seconds:.1f}s -> {where}")
    if as_json:
        echo_json(results)
