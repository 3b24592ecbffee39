"""`liteshift promote` through the real CLI entry point, real SQLite file, real Postgres."""

from __future__ import annotations

from pathlib import Path

import apsw
import psycopg
from click.testing import CliRunner, Result

from liteshift.cli import main
from liteshift.local.ports import free_port
from tests.promotion.conftest import fill_store


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_promote_copies_verifies_and_reports(tmp_path: Path, postgres_dsn: str) -> None:
    db = tmp_path / "app.db"
    fill_store(db, rows=12)
    result = run("promote", "--from", f"sqlite://{db}", "--to", postgres_dsn)
    assert result.exit_code == 0, result.output
    for table in ("messages", "proposals", "events", "agent_messages", "embeddings"):
        assert table in result.stdout
    assert "every table verified" in result.stdout
    assert "rows/s" in result.stdout
    assert " NO " not in result.stdout
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (12,)
    # A second run refuses: the target is no longer empty.
    again = run("promote", "--from", f"sqlite://{db}", "--to", postgres_dsn)
    assert again.exit_code == 1
    assert "error: the target Postgres already has rows" in again.stderr
    assert "Traceback" not in again.output


def test_dry_run_writes_nothing_and_lists_loose_rows(tmp_path: Path, postgres_dsn: str) -> None:
    db = tmp_path / "app.db"
    fill_store(db, rows=5)
    clean = run("promote", "--from", f"sqlite://{db}", "--to", postgres_dsn, "--dry-run")
    assert clean.exit_code == 0, clean.output
    assert "dry run: ready" in clean.stdout
    with psycopg.connect(postgres_dsn) as conn:
        exists = conn.execute("SELECT to_regclass('messages')").fetchone()
    assert exists == (None,)  # a dry run does not even migrate

    conn2 = apsw.Connection(str(db))
    conn2.execute("UPDATE messages SET content = CAST(x'ff' AS TEXT) WHERE rowid = 2")
    key = conn2.execute("SELECT id FROM messages WHERE rowid = 2").fetchone()[0]
    conn2.close()
    loose = run("promote", "--from", f"sqlite://{db}", "--to", postgres_dsn, "--dry-run")
    assert loose.exit_code == 1
    assert key[:8] in loose.stdout and "invalid UTF-8" in loose.stdout
    assert "error: dry run: a promotion would refuse" in loose.stderr
    real = run("promote", "--from", f"sqlite://{db}", "--to", postgres_dsn)
    assert real.exit_code == 1
    assert "error: 1 value(s) SQLite accepted that Postgres would reject" in real.stderr
    assert "Traceback" not in real.output


def test_unreachable_postgres_and_bad_urls_are_one_line_errors(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    fill_store(db, rows=1)
    down = run(
        "promote", "--from", f"sqlite://{db}",
        "--to", f"postgresql://x:secret@127.0.0.1:{free_port()}/db",
    )  # fmt: skip
    assert down.exit_code == 1
    assert down.stderr.startswith("error: Postgres is not ready: reachable:")
    assert "secret" not in down.output
    swapped = run("promote", "--from", "postgresql://h/db", "--to", f"sqlite://{db}")
    assert swapped.exit_code == 1 and "--from must be a sqlite" in swapped.stderr
    missing = run("promote", "--from", f"sqlite://{tmp_path}/nope.db", "--to", "postgresql://h/d")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ")
    assert "Traceback" not in missing.output
