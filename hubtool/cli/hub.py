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
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (other than loopback only with --token-file).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0 picks a free one).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Users and their tokens, one 'TOKEN USER [ORG1,ORG2]' per line (see below).")
def serve_cmd(root: Path | None, host: str, port: int, token_file: Path | None) -> None:
    """Serve model repos from ROOT over the Hub's HTTP API until Ctrl-C.

    Works with huggingface_hub (HfApi(endpoint=...), snapshot_download) and the `hf`
    CLI (HF_ENDPOINT=... HF_HUB_DISABLE_XET=1 hf upload/download). Commits are
    all-or-nothing and durable once acknowledged; branches, tags (download by
    revision=TAG) and pull requests (open, list, merge) work as on the Hub, and a
    40-hex revision is always a commit. One server per ROOT: a second one refuses
    to start and names the first. One log line per request on stderr.

    \b
    Token file: one user per line, '#' starts a comment:
      TOKEN  USER  [ORG1,ORG2,...]
      hf_alice_0123456789abcdef  alice  research,Crusadersk
      hf_bob_0123456789abcdef    bob
      hf_ci_0123456789abcdef     ci     *
    A token writes to its user's namespace and its organisations' ('*': all);
    private repos are visible to those only; requests without a token read public
    repos and write nothing. A line with a token alone acts as user 'staging' with
    '*'. Without --token-file any token (or none) is the one user 'staging', who
    may write everywhere, and the hub listens on loopback only.

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
    if token_file:
        auth = f"users and tokens from {display_path(token_file)}"
    else:
        auth = "no --token-file: any token, or none, acts as the one user 'staging' who may write everywhere"
    click.echo(f"Staging hub at {hub.url} serving {display_path(root)}; {auth}. Ctrl-C stops it.", err=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM is how a server is told to stop
        from hubtool.runtime import interrupt

        interrupt.handled()
        click.echo("Staging hub stopped.", err=True)
    finally:
        hub.close()
