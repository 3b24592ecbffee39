"""`liteshift backup`: create, list, verify, restore and prune backups by hand.

The same library calls the sidecar's `/admin/backups` and the operator's schedule make
(liteshift.backup); this module only parses options and draws progress and tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from liteshift.backup import (
    BackupOptions,
    create_backup,
    list_backups,
    parse_age,
    parse_compression,
    prune_backups,
    restore_backup,
    verify_backup,
)
from liteshift.backup.progress import Progress as ProgressFn

_LABELS = {
    "copy": "copying pages",
    "dump": "pg_dump",
    "check": "checking",
    "hash": "sha256",
    "compress": "compressing",
    "restore": "writing",
}


@contextmanager
def _progress(console: Console) -> Iterator[ProgressFn]:
    """A rich progress bar per phase; silent when stderr is not a terminal."""
    bars = Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    tasks: dict[str, TaskID] = {}

    def report(phase: str, done: int, total: int | None) -> None:
        if phase not in tasks:
            tasks[phase] = bars.add_task(_LABELS.get(phase, phase), total=total)
        bars.update(tasks[phase], completed=done, total=total)

    with bars:
        yield report


def _err_console() -> Console:
    return Console(stderr=True)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns at GiB


@click.group()
def backup() -> None:
    """Online, verified backups of a store, and their restore and retention."""


@backup.command()
@click.option("--db", "db_url", envvar="LITESHIFT_DB_URL", required=True, help="Store URL.")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="LITESHIFT_BACKUP_DIR",
    required=True,
    help="Directory the backup directory is created in.",
)
@click.option("--compress", type=click.Choice(["none", "zstd", "gzip"]), default="none")
@click.option("--full-check", is_flag=True, help="integrity_check instead of quick_check.")
@click.option("--datastore", envvar="LITESHIFT_DATASTORE", default="local", show_default=True)
@click.option("--namespace", envvar="LITESHIFT_NAMESPACE", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def create(
    *,
    db_url: str,
    dest: Path,
    compress: str,
    full_check: bool,
    datastore: str,
    namespace: str,
    as_json: bool,
) -> None:
    """Back up the store at --db into a new directory under --dest (writers keep going)."""
    options = BackupOptions(
        datastore=datastore,
        namespace=namespace,
        compression=parse_compression(compress),
        full_check=full_check,
    )
    with _progress(_err_console()) as progress:
        manifest = create_backup(db_url, dest, options, progress)
    if as_json:
        click.echo(manifest.dumps(), nl=False)
        return
    rows = sum(manifest.row_counts.values())
    click.echo(
        f"backup {dest / manifest.id}: {_size(manifest.size)}, {rows} rows in "
        f"{len(manifest.row_counts)} tables, {manifest.check} {manifest.check_result}, "
        f"{manifest.duration_seconds:.1f} s"
    )


@backup.command(name="list")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--datastore", default=None, help="Only this datastore's backups.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per backup.")
def list_command(directory: Path, datastore: str | None, as_json: bool) -> None:
    """List the backups in DIRECTORY, oldest first; incomplete ones say why."""
    entries = list_backups(directory, datastore)
    if as_json:
        for entry in entries:
            click.echo(
                json.dumps(
                    {
                        "path": str(entry.path),
                        "complete": entry.complete,
                        "problem": entry.problem,
                        "newer_format": entry.newer_format,
                        "manifest": entry.manifest.to_json() if entry.manifest else None,
                    }
                )
            )
        return
    table = Table(title=f"backups in {directory}")
    for column in ("backup", "created (UTC)", "engine", "size", "rows", "schema", "status"):
        table.add_column(column)
    for entry in entries:
        created = entry.created_at.strftime("%Y-%m-%d %H:%M:%S")
        m = entry.manifest
        if m is None:
            status = (
                f"newer liteshift: {entry.problem}"
                if entry.newer_format
                else f"incomplete: {entry.problem}"
            )
            table.add_row(entry.name, created, "-", "-", "-", "-", status)
            continue
        table.add_row(
            entry.name,
            created,
            m.engine,
            _size(m.size) + ("" if m.compression == "none" else f" ({m.compression})"),
            str(sum(m.row_counts.values())),
            "-" if m.schema_version is None else str(m.schema_version),
            f"complete, {m.check} {m.check_result}",
        )
    Console(width=200).print(table)


@backup.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--full", is_flag=True, help="integrity_check instead of quick_check (≈20x slower).")
def verify(path: Path, full: bool) -> None:
    """Verify the backup at PATH: manifest, size, sha256, integrity check, row counts."""
    with _progress(_err_console()) as progress:
        result = verify_backup(path, full=full, progress=progress)
    click.echo(f"ok: {result.path} ({result.check} {result.check_result}, sha256 matches)")


@backup.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--db", "db_url", required=True, help="Where to restore (sqlite:///… or postgresql://…)."
)
@click.option("--force", is_flag=True, help="Replace an existing database (never one in use).")
@click.option("--full-check", is_flag=True, help="integrity_check the restored file.")
@click.option(
    "--as-sqlite-primary",
    is_flag=True,
    help="A backup taken after a promotion to Postgres: remove its promoted marker so SQLite "
    "is the primary again (writes made on Postgres since the cutover are not in it).",
)
def restore(
    path: Path, db_url: str, force: bool, full_check: bool, as_sqlite_primary: bool
) -> None:
    """Restore the backup at PATH into --db, verified before and checked after."""
    with _progress(_err_console()) as progress:
        result = restore_backup(
            path,
            db_url,
            force=force,
            full_check=full_check,
            as_sqlite_primary=as_sqlite_primary,
            progress=progress,
        )
    rows = sum(result.manifest.row_counts.values())
    click.echo(
        f"restored {result.manifest.id} into {result.target}: {result.check} ok, "
        f"{rows} rows in {len(result.manifest.row_counts)} tables match the manifest"
    )
    if result.promotion is not None:
        click.echo(result.promotion.describe())


@backup.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--keep-last", type=int, default=None, help="Keep the newest N per datastore.")
@click.option("--max-age", default=None, help="Delete backups older than this (12h, 7d, 2w).")
@click.option("--datastore", default=None, help="Only prune this datastore's backups.")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted.")
def prune(
    directory: Path,
    keep_last: int | None,
    max_age: str | None,
    datastore: str | None,
    dry_run: bool,
) -> None:
    """Apply retention to DIRECTORY; the newest complete backup is always kept."""
    result = prune_backups(
        directory,
        keep_last=keep_last,
        max_age=parse_age(max_age) if max_age else None,
        datastore=datastore,
        dry_run=dry_run,
        now=datetime.now(UTC),
    )
    verb = "would delete" if dry_run else "deleted"
    for deletion in result.deleted:
        click.echo(f"{verb} {deletion.path.name} ({deletion.reason})")
    click.echo(f"{len(result.kept)} kept, {len(result.deleted)} {verb}")
