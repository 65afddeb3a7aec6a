"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path

import click

out_option = click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="HUBTOOL_ARTIFACTS",
    show_envvar=True,
    default=None,
    help="Root folder of built models (default: ./artifacts).",
)
names_argument = click.argument("names", nargs=-1, metavar="NAME...")
all_option = click.option("--all", "all_", is_flag=True, help="Every spec in model_configs/.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print the result as JSON on stdout (messages stay on stderr).")
output_option = click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                             help="Write the report to this file instead of its default place.")

EXIT_CODES_HELP = "Exit codes: 0 ok, 1 checked and found wrong, 2 usage error, 3 could not run."
CACHE_HELP = ("Compile caches (shared by verify and bench, so a model compiled once loads its kernels "
              "after) live in HUBTOOL_CACHE, default ~/.cache/hubtool. " + EXIT_CODES_HELP)


def echo_json(data: object) -> None:
    """The one way a command prints machine-readable output: JSON on stdout."""
    import json

    click.echo(json.dumps(data, indent=2, sort_keys=True))


def format_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain aligned text table; numbers right-aligned with thousands separators."""

    def cell(value: object) -> str:
        if isinstance(value, bool) or value is None:
            return "-" if value is None else str(value)
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    cells = [[cell(r[key]) for key, _ in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]
    numeric = [all(isinstance(r[key], (int, float)) for r in rows) for key, _ in columns]

    def line(values: list[str]) -> str:
        padded = (v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))
        return "  ".join(padded).rstrip()

    return "\n".join([line([h for _, h in columns]), *(line(c) for c in cells)])
