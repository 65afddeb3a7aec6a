"""``hubtool report``: the family's depth-versus-width latency table and plots."""

from __future__ import annotations

from pathlib import Path

import click

from hubtool.spec.catalog import artifacts_root, resolve_targets
from hubtool.cli.options import all_option, names_argument, out_option
from hubtool.errors import display_path
from hubtool.report.family import family_report


@click.command("report")
@names_argument
@all_option
@out_option
def report_cmd(names: tuple[str, ...], all_: bool, out: Path | None) -> None:
    """Tabulate and plot benchmark results across the family.

    Reads OUT/NAME/benchmark.json of each model (every spec when no NAME is given)
    and writes OUT/report/: report.md (parameters, n_layer, n_embd, median and 95% CI
    per phase and backend, Spearman rank correlation of latency with depth and with
    parameters), report.json, and PNG plots of decode ms/token against n_layer and
    against parameters.

    \b
    Examples:
      hubtool report
      hubtool report tiny-gpt2 gpt2-25m --out /tmp/family
    """
    specs = resolve_targets(names, all_=all_ or not names)
    result = family_report(specs, root=artifacts_root(out))
    for backend, phases in result.data["spearman"].items():
        c = phases["decode"]
        rho = lambda v: "-" if v is None else f"{v:+.2f}"  # noqa: E731
        click.echo(f"{backend}: decode Spearman with n_layer {rho(c['n_layer'])}, "
                   f"with parameters {rho(c['parameters'])} ({c['n_models']} models)")
    for path in result.paths.values():
        click.echo(display_path(path))
