"""``hubtool hub``: a local staging hub that speaks the Hugging Face Hub's HTTP API."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("hub")
def hub_group() -> None:
    """A local staging hub, so push/pull/verify run with no account and no network.

    \b
    Example:
      hubtool hub serve --port 8000 &
      hubtool push --all --endpoint http://127.0.0.1:8000
    """


@hub_group.command("serve")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), envvar="HUBTOOL_HUB_ROOT",
              show_envvar=True, default=None, help="Folder holding the repos (default: ./staging-hub).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0 picks a free one).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File of accepted tokens, one per line: writes then need one, private repos are hidden.")
def serve_cmd(root: Path | None, host: str, port: int, token_file: Path | None) -> None:
    """Serve model repos from ROOT over the Hub's HTTP API until Ctrl-C.

    Works with huggingface_hub (HfApi(endpoint=...), snapshot_download) and the `hf`
    CLI (HF_ENDPOINT=... HF_HUB_DISABLE_XET=1 hf upload/download). Commits are
    all-or-nothing and survive restarts. One log line per request on stderr.

    \b
    Example:
      hubtool hub serve --root /tmp/hub --port 8000 --token-file tokens.txt
    """
    from hubtool.errors import display_path
    from hubtool.hub.server import StagingHub, default_root, is_loopback

    root = root or default_root()
    hub = StagingHub(root, host=host, port=port, token_file=token_file)
    if not is_loopback(host):
        click.echo(f"Warning: listening on {host}, reachable from other machines.", err=True)
    auth = "writes need a token from the token file" if token_file else "anyone may write (no --token-file)"
    click.echo(f"Staging hub at {hub.url} serving {display_path(root)}; {auth}. Ctrl-C stops it.", err=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        click.echo("Staging hub stopped.", err=True)
    finally:
        hub.httpd.server_close()
