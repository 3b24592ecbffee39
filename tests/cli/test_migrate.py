"""`liteshift migrate up|down|status` through the real CLI, on both engines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from liteshift.cli import main

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/cli.db"
    return str(request.getfixturevalue("postgres_dsn"))


def test_up_status_down(db_url: str) -> None:
    before = run("migrate", "status", "--db", db_url)
    assert before.exit_code == 0, before.output
    assert "version 0" in before.stdout
    assert "0001_core" in before.stdout and "pending" in before.stdout

    up = run("migrate", "up", "--db", db_url)
    assert up.exit_code == 0, up.output
    assert up.stdout.splitlines() == [
        "applied  0001_core",
        "applied  0002_indexes",
        "at version 2 (2 applied)",
    ]
    status = run("migrate", "status", "--db", db_url)
    assert [line.split()[:2] for line in status.stdout.splitlines()[1:]] == [
        ["0001_core", "applied"],
        ["0002_indexes", "applied"],
    ]
    down = run("migrate", "down", "--to", "1", "--db", db_url)
    assert down.exit_code == 0, down.output
    assert down.stdout.splitlines() == ["reverted 0002_indexes", "at version 1 (1 reverted)"]
    again = run("migrate", "up", "--db", db_url)
    assert again.stdout.splitlines()[-1] == "at version 2 (1 applied)"


def test_status_of_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    """`liteshift migrate status --db sqlite:///tmp/x.db` before anything created the file."""
    target = tmp_path / "x.db"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "liteshift"), "migrate", "status", "--db",
         f"sqlite://{target}"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"sqlite file {target}: version 0 (the file does not exist yet)" in result.stdout
    assert not target.exists()  # status does not create the database


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--db", "mysql://x/y"], "unknown scheme 'mysql'"),
        (["--db", "sqlite:relative.db"], "bad database URL"),
        (["--db", "sqlite:///:memory:"], "in-memory SQLite"),
        (["--db", "postgresql://a b=c"], "bad database URL"),
        (["--db", "sqlite:///no/such/dir/x.db"], "directory /no/such/dir does not exist"),
        (["--db", "postgresql://u:secret@127.0.0.1:1/db"], "127.0.0.1"),
        (["--db", "sqlite:///tmp/x.db", "--dir", "/no/such/migrations"], "does not exist"),
    ],
)
def test_user_mistakes_are_one_line(args: list[str], expected: str) -> None:
    line = _one_line_error(run("migrate", "status", *args))
    assert expected in line
    assert "secret" not in line


def test_changed_file_refused_by_the_cli(tmp_path: Path) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "0001_t.up.sql").write_text("CREATE TABLE t (id TEXT);\n")
    (directory / "0001_t.down.sql").write_text("DROP TABLE t;\n")
    url = f"sqlite://{tmp_path}/c.db"
    assert run("migrate", "up", "--db", url, "--dir", str(directory)).exit_code == 0
    (directory / "0001_t.up.sql").write_text("CREATE TABLE t (id TEXT, x TEXT);\n")
    line = _one_line_error(run("migrate", "up", "--db", url, "--dir", str(directory)))
    assert "0001_t was changed after it was applied" in line
    assert str(directory / "0001_t.up.sql") in line
    status = run("migrate", "status", "--db", url, "--dir", str(directory))
    assert "changed" in status.stdout


def test_down_requires_to() -> None:
    result = run("migrate", "down", "--db", "sqlite:///tmp/x.db")
    assert result.exit_code == 2
    assert "--to" in result.output


def test_media_set(postgres_dsn: str) -> None:
    up = run("migrate", "up", "--media", "--db", postgres_dsn)
    assert up.exit_code == 0, up.output
    assert "applied  0001_media" in up.stdout
    line = _one_line_error(run("migrate", "up", "--media", "--db", "sqlite:///tmp/x.db"))
    assert "Postgres only" in line
