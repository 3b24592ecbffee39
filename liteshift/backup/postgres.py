"""Postgres backups: `pg_dump -Fc` from an exported snapshot, `pg_restore` into an empty database.

The dump and the manifest's row counts come from the same snapshot (`pg_dump --snapshot`), so a
restore can be checked table by table. Passwords travel in PGPASSWORD, never on a command line
other local users could read.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from liteshift.backup.errors import IntegrityCheckFailed, ToolFailed
from liteshift.store.snapshot import PostgresSnapshot, export_snapshot


def find_tool(name: str) -> Path:
    """`pg_dump`/`pg_restore`: $LITESHIFT_PG_BINDIR, the newest /usr/lib/postgresql/*/bin, $PATH.

    The newest major version first: pg_dump refuses servers newer than itself.
    """
    override = os.environ.get("LITESHIFT_PG_BINDIR")
    if override:
        candidate = Path(override) / name
        if candidate.is_file():
            return candidate
        raise ToolFailed(name, f"not found in LITESHIFT_PG_BINDIR={override}")
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1])
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise ToolFailed(name, "not installed (Debian package postgresql-client)")


def _split_password(dsn: str) -> tuple[str, dict[str, str]]:
    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


def _run(tool: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(find_tool(tool)), *args], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise ToolFailed(tool, lines[-1] if lines else f"exit status {result.returncode}")
    return result


def dump(dsn: str, display: str, dest: Path, *, compress: bool) -> PostgresSnapshot:
    """`pg_dump -Fc` into `dest` from one snapshot; return that snapshot's counts and version.

    `compress=False` writes an uncompressed archive (`-Z 0`) for liteshift to compress itself.
    """
    conninfo, env = _split_password(dsn)
    with export_snapshot(dsn, display) as snap:
        args = [
            "--format=custom",
            f"--snapshot={snap.snapshot_id}",
            "--no-owner",
            "--no-privileges",
            f"--file={dest}",
            f"--dbname={conninfo}",
        ]
        if not compress:
            args.append("--compress=0")
        _run("pg_dump", args, env)
    return snap


def check_archive(path: Path) -> int:
    """`pg_restore --list`: the archive's table of contents parses; return its entry count."""
    try:
        result = _run("pg_restore", ["--list", str(path)], dict(os.environ))
    except ToolFailed as exc:
        raise IntegrityCheckFailed(path, "pg_restore --list", exc.reason) from exc
    return sum(1 for line in result.stdout.splitlines() if line and not line.startswith(";"))


def restore(path: Path, dsn: str, *, clean: bool) -> None:
    """`pg_restore` the archive into `dsn` in one transaction (all or nothing)."""
    conninfo, env = _split_password(dsn)
    args = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    if clean:
        args += ["--clean", "--if-exists"]
    _run("pg_restore", [*args, f"--dbname={conninfo}", str(path)], env)
