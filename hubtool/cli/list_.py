"""``hubtool list``: the specs and their derived figures, without building anything."""

from __future__ import annotations

import click

from hubtool.cli.options import EXIT_CODES_HELP, echo_json, format_table, json_option
from hubtool.spec.catalog import resolve_targets

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


BACKEND_COLUMNS = [
    ("name", "backend"),
    ("engine", "engine"),
    ("devices", "devices"),
    ("verify", "verify"),
    ("bench", "bench"),
    ("label", "label"),
]


@click.command("list", epilog=EXIT_CODES_HELP)
@click.option("--backends", is_flag=True, help="List the backends verify and bench know, instead of the specs.")
@json_option
def list_cmd(backends: bool, as_json: bool) -> None:
    """List the model specs with their derived figures (or, with --backends, the backends).

    Parameters and weight bytes (the exact size of model.safetensors) are computed
    from the spec alone; `hubtool build` produces exactly these.

    \b
    Examples:
      hubtool list --json
      hubtool list --backends
    """
    if backends:
        from hubtool.backends import registry

        rows = [{"name": b.name, "engine": b.engine, "devices": ",".join(b.devices), "verify": b.verify,
                 "bench": b.bench, "label": b.label, "summary": b.summary} for b in registry.all_backends()]
        if as_json:
            echo_json(rows)
        else:
            click.echo(format_table(rows, BACKEND_COLUMNS))
        return
    rows = [spec.summary() for spec in resolve_targets([], all_=True)]
    if as_json:
        echo_json(rows)
    else:
        click.echo(format_table(rows, COLUMNS))
