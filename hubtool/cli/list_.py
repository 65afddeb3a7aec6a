"""``hubtool list``: the specs and their derived figures, without building anything."""

from __future__ import annotations

import json

import click

from hubtool.spec.catalog import resolve_targets
from hubtool.cli.options import format_table, json_option

COLUMNS = [
    ("name", "name"),
    ("n_layer", "n_layer"),
    ("n_embd", "n_embd"),
    ("n_head", "n_head"),
    ("head_dim", "head_dim"),
    ("n_inner", "n_inner"),
    ("parameters", "parameters"),
    ("weight_bytes", "weight bytes"),
]


@click.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """List the model specs with their derived figures.

    Parameters and weight bytes (the exact size of model.safetensors) are computed
    from the spec alone; `hubtool build` produces exactly these.

    \b
    Example:
      hubtool list --json
    """
    rows = [spec.summary() for spec in resolve_targets([], all_=True)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_table(rows, COLUMNS))
