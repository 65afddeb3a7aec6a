"""``hubtool init``: start a family of your own (family metadata + example specs)."""

from __future__ import annotations

from pathlib import Path

import click

from hubtool.errors import display_path
from hubtool.spec.scaffold import scaffold_family


@click.command("init")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=True, path_type=Path))
@click.option("--namespace", required=True, metavar="ORG", help="Hub user or organisation the models are pushed to.")
@click.option("--author", default=None, help="Author named on the cards (default: ORG).")
@click.option("--license", "license_id", default="mit", show_default=True, metavar="ID",
              help="Hub license id for every model (mit, apache-2.0, cc-by-4.0, ...).")
@click.option("--force", is_flag=True, help="Write into a non-empty DIR (files of the same names are replaced).")
def init_cmd(folder: Path, namespace: str, author: str | None, license_id: str, force: bool) -> None:
    """Scaffold a new family: family.yaml and two commented example specs.

    DIR becomes your configs folder (point HUBTOOL_CONFIGS at it). Each model
    goes to ORG/<spec name> on the Hub. Values only you can supply are marked
    TODO in family.yaml; the next commands are printed at the end.

    \b
    Example:
      hubtool init my-family --namespace my-lab --author "Ada Lovelace" --license apache-2.0
    """
    result = scaffold_family(folder, namespace=namespace, author=author, license_id=license_id, force=force)
    for path in result.files:
        click.echo(f"wrote {display_path(path)}")
    click.echo(f"\nEdit {display_path(result.folder / 'family.yaml')}: replace each TODO. Then:\n")
    for command in result.next_commands:
        click.echo(f"  {command}")
