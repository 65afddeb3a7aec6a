"""``hubtool card``: render model cards from measurements."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hubtool.card.render import card_command
from hubtool.spec.catalog import artifacts_root, resolve_targets
from hubtool.cli.options import all_option, names_argument, out_option
from hubtool.errors import display_path


@click.command("card")
@names_argument
@all_option
@out_option
@click.option("--template", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Jinja template to render (default: templates/model_card.md.j2).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a card on disk differs from a fresh render.")
def card_cmd(names: tuple[str, ...], all_: bool, out: Path | None, template: Path | None, check: bool) -> None:
    """Render README.md model cards whose every number is measured.

    Numbers come from the model folder's files and reports (config.json,
    model.safetensors, provenance.json, verification.json, benchmark.json) and are
    saved beside the card as measurements.json. A value the template needs but the
    reports lack is an error, never an empty cell. Rendering is deterministic.

    \b
    Examples:
      hubtool card gpt2-25m
      hubtool card --all --check
    """
    root = artifacts_root(out)
    stale = []
    for spec in resolve_targets(names, all_=all_):
        result = card_command(spec, root=root, template=template, check=check)
        where = display_path(result.path)
        if result.status == "stale":
            stale.append(spec.name)
            click.echo(f"{spec.name}: {where} is out of date (run `hubtool card {spec.name}`)")
        else:
            click.echo(f"{spec.name}: {where} {result.status}")
    if stale:
        sys.exit(1)
