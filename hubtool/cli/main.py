"""The ``hubtool`` command group.

Subcommands are imported only when invoked (or listed by --help), and none of them
imports torch or transformers at module level, so ``hubtool --help`` is instant.
"""

from __future__ import annotations

import importlib
import sys

import click

from hubtool.errors import HubtoolError
from hubtool.runtime.environment import hubtool_version

# command name -> "module:attribute" under hubtool.cli
COMMANDS: dict[str, str] = {
    "init": "init:init_cmd",
    "list": "list_:list_cmd",
    "build": "build:build_cmd",
    "card": "card:card_cmd",
    "push": "push:push_cmd",
    "hub": "hub:hub_group",
    "train": "train:train_cmd",
    "verify": "verify:verify_cmd",
    "bench": "bench:bench_cmd",
    "report": "report:report_cmd",
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(click.Group):
    """A group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"hubtool.cli.{module}"), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HubtoolError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(hubtool_version(), "-V", "--version", prog_name="hubtool")
def cli() -> None:
    """Build, verify, benchmark and publish GPT-2 checkpoint families whose model
    cards match their weights.

    \b
    Typical session:
      hubtool list                     # the specs in model_configs/
      hubtool build --all              # -> artifacts/NAME/
      hubtool verify --all             # weight + output parity per backend
      hubtool bench --all --quick      # phase-separated latency
      hubtool card --all               # README.md from the measurements
      hubtool push --all               # to the Hub (or --endpoint a staging hub)
      hubtool verify Crusadersk/tiny-gpt2   # re-check any published repo and its card
    """


def main() -> None:
    """Entry point: Ctrl-C and SIGTERM exit 130 with nothing half-written, wherever they land."""
    from hubtool.runtime import interrupt

    interrupt.install()  # SIGTERM becomes KeyboardInterrupt too, so temporary folders are cleaned up
    try:
        # Not standalone: click hands back the exit code (ctx.exit(n) returns n) and lets
        # KeyboardInterrupt through, so it is handled here, once, wherever it was raised.
        returned = cli(prog_name="hubtool", standalone_mode=False)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as done:
        code = done.exit_code
    except click.ClickException as exc:  # usage errors found while parsing, before any command ran
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    else:
        code = returned if isinstance(returned, int) else 0
    if interrupt.requested():  # a signal some library swallowed: the command did not finish as asked
        if code != 130:  # 130: the command group has said "Interrupted." already
            click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
