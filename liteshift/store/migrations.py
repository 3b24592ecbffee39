"""Versioned schema migrations: discovery, checksums, `up`, `down --to N`, `status`.

Files are `NNNN_name.up.sql` / `NNNN_name.down.sql` (portable), with per-engine overrides
`NNNN_name.<sqlite|postgres>.up.sql` that win for that engine. Two sets: the primary store
(`migrations/`, table `schema_migrations`) and the media store (`migrations/media/`, table
`media_schema_migrations`, Postgres only). Each migration runs in its own transaction together
with its bookkeeping row; the recorded sha256 of the applied up file must still match the file,
or every command refuses (naming the file). See docs/migrations.md.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import apsw
import psycopg
from psycopg import sql

import liteshift
from liteshift.store.connect import pg_connect, sqlite_connect
from liteshift.store.errors import MigrationError, StoreUnavailable
from liteshift.store.urls import DatabaseURL

MigrationSet = Literal["primary", "media"]
TABLES: dict[str, str] = {"primary": "schema_migrations", "media": "media_schema_migrations"}
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.(up|down)\.sql$")


def migrations_root() -> Path:
    """The migration files: inside the wheel (`liteshift/_migrations`) or the source tree."""
    package = Path(liteshift.__file__).resolve().parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationError("migration files not found", str(package / "_migrations"))


def migrations_dir(which: MigrationSet = "primary", root: Path | None = None) -> Path:
    base = root if root is not None else migrations_root()
    return base / "media" if which == "media" else base


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: Path
    down: Path

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.up.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    version: int
    name: str
    #: "applied", "pending", "changed" (file differs from what was applied) or "missing"
    #: (applied, but no file any more).
    state: str
    applied_at: str | None


def discover(directory: Path, engine: str) -> list[Migration]:
    """The migrations in `directory` for `engine`, in version order; raises MigrationError."""
    if not directory.is_dir():
        raise MigrationError("migrations directory does not exist", str(directory))
    found: dict[int, dict[str, Path]] = {}
    names: dict[int, str] = {}
    for path in sorted(directory.iterdir()):
        if path.is_dir() or not path.name.endswith(".sql"):
            continue
        match = _FILE_RE.match(path.name)
        if not match:
            raise MigrationError(
                "migration file name must be NNNN_name[.sqlite|.postgres].up|down.sql", str(path)
            )
        version, name, flavour, direction = match.groups()
        number = int(version)
        if names.setdefault(number, name) != name:
            raise MigrationError(f"two names for migration {version}", str(path))
        if flavour in (None, engine):
            key = direction if flavour is None else f"{direction}!"
            found.setdefault(number, {})[key] = path
        else:
            found.setdefault(number, {})
    result: list[Migration] = []
    for number in sorted(found):
        files = found[number]
        label = f"{number:04d}_{names[number]}"
        up = files.get("up!") or files.get("up")
        down = files.get("down!") or files.get("down")
        if up is None:
            raise MigrationError(
                f"migration {label} has no up file for {engine}", str(directory / f"{label}.up.sql")
            )
        if down is None:
            raise MigrationError(
                f"migration {label} has no down file for {engine}",
                str(directory / f"{label}.down.sql"),
            )
        result.append(Migration(number, names[number], up, down))
    return result


class _Conn:
    """The few things the runner needs from a connection, for APSW and psycopg."""

    def __init__(self, url: DatabaseURL, *, create: bool) -> None:
        self.engine = url.engine
        self.sqlite: apsw.Connection | None = None
        self.pg: psycopg.Connection[Any] | None = None
        self.exists = True
        if url.engine == "sqlite":
            if not create and not Path(url.target).exists():
                if not Path(url.target).parent.is_dir():
                    raise StoreUnavailable(
                        f"sqlite file {url.target}",
                        f"directory {Path(url.target).parent} does not exist",
                    )
                self.exists = False
                return
            self.sqlite = sqlite_connect(url.target, create=create)
        else:
            self.pg = pg_connect(url.target)

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.pg is not None:
            self.pg.close()

    @contextmanager
    def transaction(self, table: str) -> Iterator[None]:
        if self.sqlite is not None:
            self.sqlite.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.sqlite.execute("ROLLBACK")
                raise
            self.sqlite.execute("COMMIT")
        else:
            assert self.pg is not None
            with self.pg.transaction():
                # Two runners at once (a sidecar starting, a person running the CLI) take
                # turns; each re-reads what is applied after getting the lock.
                self.pg.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"liteshift:{table}",)
                )
                yield

    def script(self, text: str) -> None:
        if self.sqlite is not None:
            self.sqlite.execute(text)
        else:
            assert self.pg is not None
            self.pg.execute(text.encode())  # bytes: no placeholder parsing of the script

    def ensure_table(self, table: str) -> None:
        ddl = (
            "CREATE TABLE IF NOT EXISTS {} (version INTEGER PRIMARY KEY NOT NULL, "
            "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        if self.sqlite is not None:
            self.sqlite.execute(ddl.format(_sqlite_ident(table)))
        else:
            assert self.pg is not None
            with self.pg.transaction():
                # Concurrent CREATE TABLE IF NOT EXISTS can still collide in Postgres' catalog.
                self.pg.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"liteshift:{table}",)
                )
                self.pg.execute(sql.SQL(ddl).format(sql.Identifier(table)))

    def applied(self, table: str) -> dict[int, tuple[str, str, str]]:
        query = "SELECT version, name, checksum, applied_at FROM {} ORDER BY version"
        if self.sqlite is not None:
            exists = self.sqlite.execute(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)
            ).fetchall()
            if not exists:
                return {}
            rows = list(self.sqlite.execute(query.format(_sqlite_ident(table))))
        elif self.pg is not None:
            reg = self.pg.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            if reg is None or reg[0] is None:
                self.pg.rollback()
                return {}
            rows = self.pg.execute(sql.SQL(query).format(sql.Identifier(table))).fetchall()
            self.pg.rollback()
        else:
            return {}
        return {int(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in rows}

    def record(self, table: str, migration: Migration) -> None:
        insert = "INSERT INTO {} (version, name, checksum, applied_at) VALUES "
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        values = (migration.version, migration.name, migration.checksum, now)
        if self.sqlite is not None:
            self.sqlite.execute(insert.format(_sqlite_ident(table)) + "(?, ?, ?, ?)", values)
        else:
            assert self.pg is not None
            self.pg.execute(
                sql.SQL(insert + "(%s, %s, %s, %s)").format(sql.Identifier(table)),
                values,
            )

    def unrecord(self, table: str, version: int) -> None:
        delete = "DELETE FROM {} WHERE version = "
        if self.sqlite is not None:
            self.sqlite.execute(delete.format(_sqlite_ident(table)) + "?", (version,))
        else:
            assert self.pg is not None
            self.pg.execute(
                sql.SQL(delete + "%s").format(sql.Identifier(table)),
                (version,),
            )


def _sqlite_ident(name: str) -> str:
    if name not in TABLES.values():
        raise ValueError(name)
    return '"' + name + '"'


class MigrationRunner:
    """Applies one migration set to one database. Use as a context manager or call close()."""

    def __init__(
        self,
        url: DatabaseURL,
        which: MigrationSet = "primary",
        *,
        directory: Path | None = None,
        create: bool = True,
    ) -> None:
        if which == "media" and url.engine != "postgres":
            raise MigrationError("the media store is Postgres only")
        self.table = TABLES[which]
        self.migrations = discover(
            directory if directory is not None else migrations_dir(which), url.engine
        )
        self.conn = _Conn(url, create=create)

    def __enter__(self) -> MigrationRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def status(self) -> list[MigrationState]:
        """Every known migration (files and recorded rows), with its state."""
        applied = self.conn.applied(self.table) if self.conn.exists else {}
        by_version = {m.version: m for m in self.migrations}
        states: list[MigrationState] = []
        for version in sorted(set(by_version) | set(applied)):
            migration = by_version.get(version)
            row = applied.get(version)
            if row is None:
                assert migration is not None
                states.append(MigrationState(version, migration.name, "pending", None))
            elif migration is None:
                states.append(MigrationState(version, row[0], "missing", row[2]))
            elif migration.checksum != row[1]:
                states.append(MigrationState(version, row[0], "changed", row[2]))
            else:
                states.append(MigrationState(version, row[0], "applied", row[2]))
        return states

    def current_version(self) -> int:
        applied = self.conn.applied(self.table) if self.conn.exists else {}
        return max(applied, default=0)

    def _verify(self, applied: dict[int, tuple[str, str, str]]) -> None:
        by_version = {m.version: m for m in self.migrations}
        for version, (name, checksum, _) in sorted(applied.items()):
            migration = by_version.get(version)
            if migration is None:
                raise MigrationError(
                    f"applied migration {version:04d}_{name} has no file any more; "
                    "restore it before migrating"
                )
            if migration.checksum != checksum:
                raise MigrationError(
                    f"migration {migration.label} was changed after it was applied "
                    f"(sha256 {migration.checksum[:12]}… != recorded {checksum[:12]}…); "
                    "restore the file or add a new migration",
                    str(migration.up),
                )

    def up(self, to: int | None = None) -> list[Migration]:
        """Apply pending migrations (up to version `to`), each in its own transaction."""
        self.conn.ensure_table(self.table)
        self._verify(self.conn.applied(self.table))
        done: list[Migration] = []
        for migration in self.migrations:
            if to is not None and migration.version > to:
                break
            with self.conn.transaction(self.table):
                if migration.version in self._applied_in_tx():
                    continue
                self._run(migration, migration.up)
                self.conn.record(self.table, migration)
            done.append(migration)
        return done

    def down(self, to: int) -> list[Migration]:
        """Revert applied migrations above version `to`, newest first, each in a transaction."""
        if to < 0:
            raise MigrationError(f"--to must be 0 or more, not {to}")
        applied = self.conn.applied(self.table) if self.conn.exists else {}
        self._verify(applied)
        by_version = {m.version: m for m in self.migrations}
        done: list[Migration] = []
        for version in sorted(applied, reverse=True):
            if version <= to:
                break
            migration = by_version[version]
            with self.conn.transaction(self.table):
                if version not in self._applied_in_tx():
                    continue
                self._run(migration, migration.down)
                self.conn.unrecord(self.table, version)
            done.append(migration)
        return done

    def _applied_in_tx(self) -> set[int]:
        if self.conn.sqlite is not None:
            rows = self.conn.sqlite.execute(f"SELECT version FROM {_sqlite_ident(self.table)}")
            return {int(r[0]) for r in rows}
        assert self.conn.pg is not None
        rows2 = self.conn.pg.execute(
            sql.SQL("SELECT version FROM {}").format(sql.Identifier(self.table))
        ).fetchall()
        return {int(r[0]) for r in rows2}

    def _run(self, migration: Migration, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MigrationError(f"cannot read migration: {exc.strerror}", str(path)) from exc
        try:
            self.conn.script(text)
        except (apsw.Error, psycopg.Error) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MigrationError(f"migration {migration.label} failed: {first}", str(path)) from exc


def migrate_up(url: DatabaseURL, which: MigrationSet = "primary") -> list[Migration]:
    """Apply every pending migration of `which` to `url` (what `open_store(migrate=True)` does)."""
    with MigrationRunner(url, which) as runner:
        return runner.up()
