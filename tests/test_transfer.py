"""Bytes moved by push and pull, counted in place of huggingface_hub's own bars: the counts are
checked against the files themselves, through a real staging hub on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from hubtool.hub.pull import fetch_repo
from hubtool.hub.push import push_model, repo_files
from hubtool.hub.transfer import UploadCounter
from tests.hub_fixtures import hf_home, hub, models, run_cli  # noqa: F401 - fixtures
from tests.test_progress import stage_lines


def _monotonic(reports: list[tuple[int, int | None]]) -> bool:
    done = [d for d, _ in reports]
    return done == sorted(done)


def test_a_file_read_twice_counts_once_and_never_past_the_total(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    (tmp_path / "a.bin").write_bytes(data)
    (tmp_path / "b.bin").write_bytes(data[:1000])
    reports: list[tuple[int, int | None]] = []
    counter = UploadCounter(len(data) + 1000, lambda done, total: reports.append((done, total)))
    with counter.reader(tmp_path / "a.bin") as a, counter.reader(tmp_path / "b.bin") as b:
        assert a.read(4096) == data[:4096]
        assert reports[-1] == (4096, 11240)
        a.seek(0)
        assert a.read() == data  # a digest, then the upload: the same bytes again
        a.seek(0)
        assert a.read() == data
        assert reports[-1] == (10240, 11240)
        assert b.read() == data[:1000]
    assert reports[0] == (0, 11240) and reports[-1] == (11240, 11240)
    assert _monotonic(reports)


def test_push_reports_the_bytes_of_the_files_it_sends(models: Path, hub) -> None:
    folder = models / "tiny-gpt2"
    reports: list[tuple[int, int | None]] = []
    result = push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True,
                        on_bytes=lambda done, total: reports.append((done, total)))
    size = sum(p.stat().st_size for p in repo_files(folder))
    assert result.status == "pushed" and size > 400_000
    assert reports[0] == (0, size) and reports[-1] == (size, size) and _monotonic(reports)
    assert len(reports) > 3  # counted as read, not once at the end
    # uploaded from the counting readers, and still every remote file's size and sha256 match
    assert sorted(result.verified) == sorted(p.relative_to(folder).as_posix() for p in repo_files(folder))

    card = folder / "README.md"
    card.write_text(card.read_text() + "\nOne more line.\n")
    reports.clear()
    again = push_model(folder, repo_id="org/tiny", endpoint=hub.url, force=True,
                       on_bytes=lambda done, total: reports.append((done, total)))
    assert [c.path for c in again.changes if c.action == "update"] == ["README.md"]
    assert reports[0] == (0, card.stat().st_size) and reports[-1] == (card.stat().st_size,) * 2


def test_pull_reports_the_bytes_it_downloads_and_draws_no_bar(models: Path, hub, capfd) -> None:
    push_model(models / "tiny-gpt2", repo_id="org/tiny", endpoint=hub.url, force=True)
    capfd.readouterr()
    reports: list[tuple[int, int | None]] = []
    pulled = fetch_repo("org/tiny", endpoint=hub.url, on_bytes=lambda done, total: reports.append((done, total)))
    size = sum(p.stat().st_size for p in pulled.folder.iterdir() if p.is_file())
    assert size == sum(p.stat().st_size for p in repo_files(models / "tiny-gpt2"))
    assert reports[0] == (0, None)
    assert reports[-1] == (size, size) and _monotonic(reports)
    err = capfd.readouterr().err
    assert "\r" not in err and "Fetching" not in err and "\x1b" not in err

    reports.clear()
    fetch_repo("org/tiny", endpoint=hub.url, on_bytes=lambda done, total: reports.append((done, total)))
    assert max(done for done, _ in reports) == 0  # every file was in the cache: nothing moved


def test_verify_of_a_repo_shows_its_download_as_a_stage(models: Path, hub, tmp_path: Path) -> None:
    """A real process, not a terminal: the download is a stage of its own, with no control codes."""
    push_model(models / "tiny-gpt2", repo_id="org/tiny", endpoint=hub.url, force=True)
    done = run_cli("verify", "org/tiny", "--backend", "eager", "--endpoint", hub.url, "--out", str(tmp_path / "art"),
                   env={"HUBTOOL_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    assert stage_lines(done.stderr)[:3] == [

        ("org/tiny", "fetch files", "started"), ("org/tiny", "fetch files", "done in"),
        ("org/tiny", "verify reference (eager, float64, probe)", "started")]
