"""`liteshift demo`: a real sidecar, Postgres and Prometheus on this machine, to Promoted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

LITESHIFT = Path(sys.executable).parent / "liteshift"


def _row(output: str, label: str) -> str:
    """The value of a row of the summary (the last table printed)."""
    summary = output.rsplit("liteshift demo: summary", 1)[-1]
    match = re.search(rf"│ {re.escape(label)}\s+│\s+(.+?)\s+│", summary)
    assert match, f"no row {label!r} in:\n{output[-3000:]}"
    return match.group(1)


@pytest.mark.slow
def test_demo_runs_to_the_summary(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [str(LITESHIFT), "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert elapsed < 180, f"the demo took {elapsed:.0f}s (must finish in under 3 minutes)"
    assert "promote: sustained: lockWaitP95" in output
    assert "│ state" in output and "Promoted" in output
    assert _row(output, "engine now") == "postgres"
    assert _row(output, "failed requests") == "0"
    acknowledged = int(_row(output, "writes acknowledged"))
    assert acknowledged > 0
    assert int(_row(output, "acknowledged writes read back from Postgres")) == acknowledged
    ok, total = _row(output, "checksums ok").split("/")
    assert ok == total and int(total) > 0
    assert int(_row(output, "rows verified: messages")) > 0
    pause = float(_row(output, "write pause").removesuffix(" ms"))
    assert 0 < pause < 2000
    # The SQLite file stays behind as the rollback point.
    assert (tmp_path / "demo" / "demo.db").is_file()


def test_an_used_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "demo.db").write_bytes(b"")
    result = subprocess.run(
        [str(LITESHIFT), "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'demo.db'} exists: give an empty --dir"
