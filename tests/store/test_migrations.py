"""Migrations (liteshift/store/migrations.py): round trips, checksums, overrides, packaging."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import apsw
import psycopg
import pytest

from liteshift.store.errors import MigrationError
from liteshift.store.migrations import MigrationRunner, discover, migrations_root
from liteshift.store.urls import parse_url

REPO = Path(__file__).resolve().parents[2]
CORE_TABLES = {"messages", "proposals", "events", "agent_messages", "embeddings", "etl_cursors"}


def introspect(url: str) -> dict[str, Any]:
    """Tables, columns, types, constraints and indexes, as the database itself reports them."""
    parsed = parse_url(url)
    if parsed.engine == "sqlite":
        conn = apsw.Connection(parsed.target)
        try:
            objects = sorted(
                tuple(r)
                for r in conn.execute(
                    "SELECT type, name, tbl_name, sql FROM sqlite_schema "
                    "WHERE name NOT LIKE 'sqlite_%'"
                )
            )
            columns = {
                name: [tuple(c) for c in conn.execute(f"PRAGMA table_xinfo('{name}')")]
                for (kind, name, _, _) in objects
                if kind == "table"
            }
        finally:
            conn.close()
        return {"objects": objects, "columns": columns}
    with psycopg.connect(parsed.target) as pg:
        columns_pg = pg.execute(
            "SELECT table_name, ordinal_position, column_name, data_type, udt_name, "
            "is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
        indexes = pg.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public' ORDER BY 1, 2"
        ).fetchall()
        constraints = pg.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        ).fetchall()
    return {"columns": columns_pg, "indexes": indexes, "constraints": constraints}


def _tables(schema: dict[str, Any]) -> set[str]:
    if "objects" in schema:
        return {o[1] for o in schema["objects"] if o[0] == "table"}
    return {c[0] for c in schema["columns"]}


def test_up_down_up_leaves_an_identical_schema(store_url: str) -> None:
    url = parse_url(store_url)
    with MigrationRunner(url) as runner:
        assert [m.label for m in runner.up()] == ["0001_core", "0002_indexes"]
        assert runner.up() == []  # idempotent
    applied = introspect(store_url)
    assert _tables(applied) >= CORE_TABLES

    with MigrationRunner(url) as runner:
        assert [m.label for m in runner.down(1)] == ["0002_indexes"]
        assert runner.current_version() == 1
        assert [m.label for m in runner.down(0)] == ["0001_core"]
        assert [s.state for s in runner.status()] == ["pending", "pending"]
    assert _tables(introspect(store_url)) == {"schema_migrations"}

    with MigrationRunner(url) as runner:
        runner.up()
        assert [s.state for s in runner.status()] == ["applied", "applied"]
    assert introspect(store_url) == applied


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(migrations_root(), target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_a_changed_applied_file_is_refused(store_url: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    url = parse_url(store_url)
    with MigrationRunner(url, directory=directory) as runner:
        runner.up()
    changed = directory / "0002_indexes.up.sql"
    changed.write_text(changed.read_text() + "\n-- an innocent-looking edit\n")
    with MigrationRunner(url, directory=directory) as runner:
        assert [s.state for s in runner.status()] == ["applied", "changed"]
        with pytest.raises(MigrationError) as refused:
            runner.up()
        assert str(changed) in str(refused.value)
        assert "0002_indexes was changed after it was applied" in str(refused.value)
        with pytest.raises(MigrationError, match="changed after it was applied"):
            runner.down(0)
        assert runner.current_version() == 2


def test_a_missing_applied_file_is_refused(store_url: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    url = parse_url(store_url)
    with MigrationRunner(url, directory=directory) as runner:
        runner.up()
    (directory / "0002_indexes.up.sql").unlink()
    (directory / "0002_indexes.down.sql").unlink()
    with MigrationRunner(url, directory=directory) as runner:
        assert [s.state for s in runner.status()] == ["applied", "missing"]
        with pytest.raises(MigrationError, match="0002_indexes has no file"):
            runner.up()


def test_a_failing_migration_changes_nothing(store_url: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    (directory / "0003_broken.up.sql").write_text(
        "CREATE TABLE half_done (id TEXT PRIMARY KEY);\nCREATE TABLE oops (;\n"
    )
    (directory / "0003_broken.down.sql").write_text("DROP TABLE half_done;\n")
    url = parse_url(store_url)
    with MigrationRunner(url, directory=directory) as runner:
        with pytest.raises(MigrationError) as failed:
            runner.up()
        assert "migration 0003_broken failed" in str(failed.value)
        assert str(directory / "0003_broken.up.sql") in str(failed.value)
        assert runner.current_version() == 2  # the earlier ones, each in its own transaction
    assert "half_done" not in _tables(introspect(store_url))


def test_discover_picks_the_engine_override(tmp_path: Path) -> None:
    for engine in ("sqlite", "postgres"):
        core = discover(migrations_root(), engine)[0]
        assert core.up.name == f"0001_core.{engine}.up.sql"
        assert core.down.name == "0001_core.down.sql"
    only_pg = tmp_path / "m"
    only_pg.mkdir()
    (only_pg / "0001_x.postgres.up.sql").write_text("SELECT 1;")
    (only_pg / "0001_x.down.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="no up file for sqlite"):
        discover(only_pg, "sqlite")
    assert discover(only_pg, "postgres")[0].label == "0001_x"
    (only_pg / "0002_y.up.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"0002_y has no down file .*0002_y\.down\.sql"):
        discover(only_pg, "postgres")
    (only_pg / "0002_y.up.sql").unlink()
    (only_pg / "2_bad-name.up.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="must be NNNN_name"):
        discover(only_pg, "postgres")
    with pytest.raises(MigrationError, match="does not exist"):
        discover(tmp_path / "nowhere", "sqlite")


def test_media_migrations_are_postgres_only(postgres_dsn: str, tmp_path: Path) -> None:
    with MigrationRunner(parse_url(postgres_dsn), "media") as runner:
        assert [m.label for m in runner.up()] == ["0001_media"]
    schema = introspect(postgres_dsn)
    assert {"attachments", "extractions", "media_schema_migrations"} <= _tables(schema)
    assert not CORE_TABLES & _tables(schema)
    with MigrationRunner(parse_url(postgres_dsn), "media") as runner:
        runner.down(0)
    assert _tables(introspect(postgres_dsn)) == {"media_schema_migrations"}
    with pytest.raises(MigrationError, match="Postgres only"):
        MigrationRunner(parse_url(f"sqlite://{tmp_path}/m.db"), "media")


def test_the_wheel_ships_the_migrations(tmp_path: Path) -> None:
    """Build the wheel; the SQL files are inside and found from an install of it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(REPO),
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("liteshift-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    for path in sorted((REPO / "migrations").rglob("*.sql")):
        assert f"liteshift/_migrations/{path.relative_to(REPO / 'migrations')}" in names
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from liteshift.store.migrations import migrations_root; print(migrations_root())",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert found == str(tmp_path / "site" / "liteshift" / "_migrations")


def test_concurrent_runners_take_turns(store_url: str) -> None:
    """Replicas starting at once (each with migrate on start) apply every migration once."""
    url = parse_url(store_url)
    results: list[object] = []

    def run() -> None:
        try:
            with MigrationRunner(url) as runner:
                results.append(len(runner.up()))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 2  # type: ignore[arg-type]
    with MigrationRunner(url) as runner:
        assert [s.state for s in runner.status()] == ["applied", "applied"]
