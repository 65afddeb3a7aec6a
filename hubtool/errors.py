"""Every error hubtool raises on purpose, and the exit code each one means.

Each carries the context a user needs to fix it (file, key, repo id). The CLI is the
single boundary that turns them into a one-line message and an exit code; library code
raises, never prints or exits. Exit codes:

    0  ok
    1  checked and found wrong (a failed verification, a stale card, evidence for other bytes)
    2  usage: the command line, a spec or a template is wrong
    3  could not run (missing build, unreachable hub, unwritable folder, a crashed backend)

Anything else (a Python traceback) is a bug in hubtool, never a user's mistake.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK, EXIT_FOUND_WRONG, EXIT_USAGE, EXIT_COULD_NOT_RUN = 0, 1, 2, 3


class HubtoolError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_COULD_NOT_RUN


class UsageError(HubtoolError):
    """The command line itself is wrong (unknown name, conflicting options)."""

    exit_code = EXIT_USAGE


class FoundWrong(HubtoolError):
    """Something was checked and is wrong: a card for other bytes, evidence that does not match."""

    exit_code = EXIT_FOUND_WRONG


class SpecError(HubtoolError):
    """A model spec or family file is invalid. Names the file and, where known, the key."""

    exit_code = EXIT_USAGE

    def __init__(self, path: Path | str, message: str, *, key: str | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self.message = message
        super().__init__(f"{display_path(self.path)}: {message}")


class BuildError(HubtoolError):
    """Building a model folder failed (unwritable output, bad tokenizer source, ...)."""


class TokenizerError(BuildError):
    """The tokenizer files are missing, altered or do not encode as GPT-2 does."""


class ArtifactError(HubtoolError):
    """A model folder is missing or incomplete (run ``hubtool build`` first)."""


class CardError(HubtoolError):
    """A model card cannot be rendered (unbuilt model)."""


class TemplateError(CardError):
    """A card template is wrong: it needs a value the measurements do not have, or does not parse."""

    exit_code = EXIT_USAGE


class CorpusError(HubtoolError):
    """Training text is missing, empty, binary or too short. Names the file or source."""

    exit_code = EXIT_USAGE


class TrainError(HubtoolError):
    """A training run cannot start or resume (no checkpoint, options differ from it, ...)."""

    exit_code = EXIT_USAGE


class HubError(HubtoolError):
    """Talking to a hub failed: auth, missing repo, unreachable endpoint."""


def display_path(path: Path | str) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)
