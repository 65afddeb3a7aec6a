"""``hubtool push``: built model folders -> Hub repos (or a staging hub)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from hubtool.cli.options import EXIT_CODES_HELP, all_option, echo_json, json_option, names_argument, out_option
from hubtool.errors import UsageError
from hubtool.runtime.progress import Progress, Stage, format_count
from hubtool.spec.catalog import family_for, model_dir, resolve_targets


def format_changes(changes) -> list[str]:
    """One line per file: action, path, size (and the remote size of an update)."""
    width = max((len(c.path) for c in changes), default=0)
    lines = []
    for c in changes:
        size = c.size if c.size is not None else c.remote_size
        line = f"  {c.action:<11} {c.path:<{width}}  {size:>13,} bytes"
        if c.action == "update":
            line += f" (remote {c.remote_size:,})" if c.remote_size is not None else ""
        lines.append(line)
    return lines


def counts(result) -> str:
    labels = (("add", "to add"), ("update", "to update"), ("unchanged", "unchanged"), ("remote-only", "remote-only"))
    return ", ".join(f"{result.count(action)} {label}" for action, label in labels)


@click.command("push", epilog=EXIT_CODES_HELP)
@names_argument
@all_option
@click.option("--repo-id", help="Target repo ORG/NAME (one model only; default: family namespace/NAME).")
@click.option("--namespace", help="Push to ORG/NAME instead of the family's namespace.")
@click.option("--endpoint", envvar="HF_ENDPOINT", show_envvar=True, help="Hub URL (default: the Hugging Face Hub).")
@click.option("--private", is_flag=True, help="Create the repo private (when it does not exist yet).")
@click.option("--revision", help="Branch to push to; created from main when missing.")
@click.option("--create-pr", is_flag=True, help="Open a pull request against main instead of committing to it.")
@click.option("--tag", help="Tag the pushed commit (when nothing changed: the branch's current head).")
@click.option("--commit-message", help="Commit message (default names the hubtool version and spec hash).")
@click.option("--dry-run", is_flag=True, help="Show what would be added/updated/left; change nothing.")
@click.option("--force", is_flag=True,
              help="Push even when README.md is not the card rendered for these exact files (not recommended).")
@json_option
@out_option
def push_cmd(names: tuple[str, ...], all_: bool, repo_id: str | None, namespace: str | None,
             endpoint: str | None, private: bool, revision: str | None, create_pr: bool, tag: str | None,
             commit_message: str | None, dry_run: bool, force: bool, as_json: bool, out: Path | None) -> None:
    """Push built model folders to the Hub, one commit per model.

    Only added or changed files are uploaded; an unchanged folder makes no commit.
    After a commit every remote file's size and sha256 is checked against the local
    file. The token comes from HF_TOKEN or `hf auth login`. A folder is refused unless
    its README.md is the card `hubtool card NAME` rendered for exactly these files
    (measurements.json records the sha256 of the card, the model files and every
    report it used) and names the repo being pushed to.

    \b
    Examples:
      hubtool push gpt2-50m --dry-run
      hubtool push --all
      hubtool push tiny-gpt2 --endpoint http://127.0.0.1:8000 --revision staging
      hubtool push gpt2-50m --tag v1.0
    """
    from hubtool.errors import ArtifactError, display_path
    from hubtool.hub.push import check_card, push_model

    specs = resolve_targets(names, all_=all_)
    if repo_id and (namespace or len(specs) != 1):
        raise UsageError("--repo-id takes exactly one model and no --namespace")
    summaries = []
    with Progress() as progress, _hub_bars_off():
        for spec in specs:
            target = repo_id or (f"{namespace}/{spec.name}" if namespace else family_for(spec).repo_id(spec.name))
            folder = model_dir(spec.name, out)
            if not folder.is_dir():
                raise ArtifactError(f"{display_path(folder)} does not exist; run `hubtool build {spec.name}` first")
            if not force:  # refused with its one-line error before anything starts
                check_card(folder, name=spec.name, repo_id=target)
            push: dict[str, Any] = dict(
                repo_id=target, endpoint=endpoint, private=private, revision=revision, create_pr=create_pr,
                commit_message=commit_message, dry_run=dry_run, force=True,  # the card was checked above
                tag=tag)
            if dry_run:
                result = push_model(folder, **push)
            else:
                with progress.stage(spec.name, "push", unit="B") as stage:
                    stage.update(detail=_folder_size(folder))
                    result = push_model(folder, **push, on_bytes=_bytes_of(stage))
            summaries.append({"model": spec.name, "repo_id": result.repo_id, "endpoint": result.endpoint,
                              "revision": result.revision, "status": result.status, "commit": result.commit_oid,
                              "changes": [c.__dict__ for c in result.changes], "verified": result.verified,
                              "tag": result.tag})
            if not as_json:
                _report(spec.name, result, dry_run=dry_run)
    if as_json:
        echo_json(summaries)


def _bytes_of(stage: Stage) -> Callable[[int, int | None], None]:
    """The push stage's count: bytes of the changed files read for the upload, of all to send."""
    def on_bytes(done: int, total: int | None) -> None:
        stage.update(done=done, total=total)

    return on_bytes


def _folder_size(folder: Path) -> str:
    from hubtool.hub.push import repo_files

    files = repo_files(folder)
    return f"{len(files)} files, {format_count(sum(p.stat().st_size for p in files), None, 'B')}"


@contextmanager
def _hub_bars_off() -> Iterator[None]:
    """huggingface_hub's own tqdm bars off while pushing: they draw with carriage returns even into
    a log, and would fight the live display. The push stage counts the bytes read instead."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    were_off = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not were_off:
            enable_progress_bars()


def _report(name: str, result, *, dry_run: bool) -> None:
    where = f"{result.repo_id}@{result.revision}"
    click.echo(f"{name} -> {where} at {result.endpoint}{' (dry run)' if dry_run else ''}")
    for line in format_changes(result.changes):
        click.echo(line)
    if result.status == "dry-run":
        click.echo(f"{name}: {counts(result)}; nothing was changed")
    elif result.status == "up-to-date":
        click.echo(f"{name}: {where} is up to date ({result.count('unchanged')} files unchanged); no commit")
    else:
        sent = result.count("add") + result.count("update")
        click.echo(
            f"{name}: committed {sent} file(s) in {result.seconds:.1f}s; "
            f"verified {len(result.verified)} remote files (size + sha256)"
        )
        click.echo(f"  commit: {result.commit_url}")
        if result.pr_url:
            click.echo(f"  pull request: {result.pr_url}")
    if result.tag:
        click.echo(f"  tag: {result.tag} -> {result.commit_oid}")
