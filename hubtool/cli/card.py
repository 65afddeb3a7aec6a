"""``hubtool card``: render model cards from measurements."""

from __future__ import annotations

from pathlib import Path

import click

from hubtool.cli.options import EXIT_CODES_HELP, all_option, echo_json, json_option, names_argument, out_option
from hubtool.errors import display_path


@click.command("card", epilog=EXIT_CODES_HELP)
@names_argument
@all_option
@out_option
@click.option("--template", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Jinja template to render (default: the bundled model_card.md.j2).")
@click.option("--namespace", default=None, metavar="ORG",
              help="The Hub namespace the card's usage snippet names (default: the family's).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a card on disk differs from a fresh render.")
@json_option
def card_cmd(names: tuple[str, ...], all_: bool, out: Path | None, template: Path | None, namespace: str | None,
             check: bool, as_json: bool) -> None:
    """Render README.md model cards whose every number is measured from the exact files.

    Each section reads only evidence made for the folder's current bytes (the sha256
    of weights, config and tokenizer): a verification or benchmark made before a
    `train`, an edit or a restore is not shown, and the section says which command
    measures it. The numbers are saved beside the card as measurements.json, with the
    sha256 of every report they came from. Rendering is deterministic.

    \b
    Examples:
      hubtool card gpt2-25m
      hubtool card --all --check
      hubtool card tiny-gpt2 --namespace my-org
    """
    from hubtool.card.render import card_command
    from hubtool.spec.catalog import artifacts_root, resolve_targets

    root = artifacts_root(out)
    stale, results = [], []
    for spec in resolve_targets(names, all_=all_):
        result = card_command(spec, root=root, template=template, check=check, namespace=namespace)
        for warning in result.warnings:
            click.echo(f"Warning: {warning}", err=True)
        where = display_path(result.path)
        results.append({"model": spec.name, "path": str(result.path), "status": result.status,
                        "warnings": result.warnings})
        if result.status == "stale":
            stale.append(spec.name)
            if not as_json:
                click.echo(f"{spec.name}: {where} is out of date (run `hubtool card {spec.name}`)")
        elif not as_json:
            click.echo(f"{spec.name}: {where} {result.status}")
    if as_json:
        echo_json(results)
    if stale:
        raise click.exceptions.Exit(1)
