"""``hubtool report``: the family's depth-versus-width latency table and plots, per machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hubtool.cli.options import EXIT_CODES_HELP, all_option, echo_json, json_option, names_argument, out_option
from hubtool.errors import display_path


@click.command("report", epilog=EXIT_CODES_HELP)
@names_argument
@all_option
@out_option
@json_option
def report_cmd(names: tuple[str, ...], all_: bool, out: Path | None, as_json: bool) -> None:
    """Tabulate and plot benchmark results across the family, per machine.

    Reads OUT/NAME/benchmarks/*.json of each model (every spec when no NAME is given),
    using only results measured on the models' current files, and writes OUT/report/:
    report.md (per machine: median and 95% interval per phase and backend, decode
    latency against the memory-bandwidth limit, Spearman's rho of decode latency with
    depth and with parameters with a permutation p-value), report.json, and PNG plots
    of decode ms/token against n_layer and against parameters for each machine. It
    also says whether the family's design can separate depth from parameter count.

    \b
    Examples:
      hubtool report
      hubtool report tiny-gpt2 gpt2-25m --out /tmp/family
    """
    from hubtool.report.family import family_report
    from hubtool.spec.catalog import artifacts_root, resolve_targets

    specs = resolve_targets(names, all_=all_ or not names)
    result = family_report(specs, root=artifacts_root(out))
    if as_json:
        echo_json(result.data)
        return
    click.echo(f"design: {result.data['design']['sentence']}")
    def rho(t: dict[str, Any]) -> str:
        return "-" if t["rho"] is None else f"{t['rho']:+.2f} (p {t['p_value']:.2f})"

    for c in result.data["spearman"]:
        click.echo(f"{c['machine']} {c['backend']} batch {c['batch_size']}: decode Spearman with n_layer "
                   f"{rho(c['n_layer'])}, with parameters {rho(c['parameters'])} ({len(c['models'])} models)")
    for path in result.paths.values():
        click.echo(display_path(path))
