"""Output sets written as one (gamdss.util.atomic.output_set): what a failed or killed writer
leaves, and what the next writer of the same folder removes.

Oracles: the files on disk after a block fails, and after a real writer process is killed
with SIGKILL half-way through its set."""

from __future__ import annotations

import select
import signal
import subprocess
import sys

import pytest

from gamdss.util import atomic
from process_helpers import python_env

WRITER = """
import sys, time
from pathlib import Path
from gamdss.util import atomic
with atomic.output_set(sys.argv[1]) as staging:
    (staging / "half.csv").write_text("a,b")
    print(staging.name, flush=True)
    time.sleep(600)
"""


def test_a_set_reaches_its_folder_only_when_the_block_succeeds(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), atomic.output_set(out) as staging:
        (staging / "a.csv").write_text("1")
        raise RuntimeError("stop")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with atomic.output_set(out, last=["settings.yaml"]) as staging:
        (staging / "settings.yaml").write_text("x: 1")
        (staging / "a.csv").write_text("1")
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "settings.yaml"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left


def _first_line(stream, timeout: float = 120.0) -> str:
    """The first line the writer prints, or a failure after ``timeout`` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"the writer printed nothing in {timeout} s"
    return stream.readline().strip()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_the_staging_folder_of_a_killed_writer_is_removed_by_the_next(tmp_path):
    out = tmp_path / "run"
    env = python_env()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        staging_name = _first_line(writer.stdout)
        assert staging_name.startswith(".run.partial-"), staging_name
        live = tmp_path / staging_name
        assert (live / "half.csv").is_file()
        # A second writer while the first still runs leaves the first's staging alone.
        with atomic.output_set(tmp_path / "run") as staging:
            (staging / "a.csv").write_text("1")
        assert (live / "half.csv").is_file()
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=60) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(timeout=60)
        writer.stdout.close()
    assert live.is_dir()  # a process killed outright cannot clean up after itself
    # Left alone: a staging folder with no lock file (its writer may not have locked it yet),
    # and one of another output whose name starts like this one's.
    unlocked = tmp_path / ".run.partial-abcd1234"
    unlocked.mkdir()
    other_output = tmp_path / ".run.partial-x.partial-abcd1234"
    other_output.mkdir()
    (other_output / atomic.STAGING_LOCK).write_text("")
    with atomic.output_set(out) as staging:
        (staging / "b.csv").write_text("2")
    assert not live.exists()
    assert unlocked.is_dir() and other_output.is_dir()
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv"]  # the lock file is not part of the set
