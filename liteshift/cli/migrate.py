"""`liteshift migrate up|down|status --db URL`: schema migrations by hand."""

from __future__ import annotations

from pathlib import Path

import click

from liteshift.store.migrations import MigrationRunner, MigrationSet
from liteshift.store.urls import parse_url

DB_OPTION = click.option(
    "--db",
    "db_url",
    envvar="LITESHIFT_DB_URL",
    required=True,
    help="sqlite:///path or postgresql://… (env LITESHIFT_DB_URL)",
)
MEDIA_OPTION = click.option(
    "--media",
    is_flag=True,
    help="The media store's migrations (attachments, extractions; Postgres only).",
)
DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Migration files to use instead of the ones shipped with liteshift.",
)


def _runner(db_url: str, media: bool, directory: Path | None, *, create: bool) -> MigrationRunner:
    which: MigrationSet = "media" if media else "primary"
    if directory is not None and media:
        directory = directory / "media"
    return MigrationRunner(parse_url(db_url), which, directory=directory, create=create)


@click.group()
def migrate() -> None:
    """Apply, revert and inspect schema migrations (docs/migrations.md)."""


@migrate.command()
@DB_OPTION
@MEDIA_OPTION
@DIR_OPTION
@click.option("--to", "to", type=int, default=None, help="Stop after this version.")
def up(db_url: str, media: bool, directory: Path | None, to: int | None) -> None:
    """Apply every pending migration, each in its own transaction."""
    with _runner(db_url, media, directory, create=True) as runner:
        applied = runner.up(to)
        for migration in applied:
            click.echo(f"applied  {migration.label}")
        click.echo(f"at version {runner.current_version()} ({len(applied)} applied)")


@migrate.command()
@DB_OPTION
@MEDIA_OPTION
@DIR_OPTION
@click.option("--to", "to", type=int, required=True, help="Revert every version above this.")
def down(db_url: str, media: bool, directory: Path | None, to: int) -> None:
    """Revert applied migrations above version --to, newest first."""
    with _runner(db_url, media, directory, create=False) as runner:
        reverted = runner.down(to)
        for migration in reverted:
            click.echo(f"reverted {migration.label}")
        click.echo(f"at version {runner.current_version()} ({len(reverted)} reverted)")


@migrate.command()
@DB_OPTION
@MEDIA_OPTION
@DIR_OPTION
def status(db_url: str, media: bool, directory: Path | None) -> None:
    """List every migration with its state: applied, pending, changed or missing."""
    url = parse_url(db_url)
    with _runner(db_url, media, directory, create=False) as runner:
        note = "" if runner.conn.exists else " (the file does not exist yet)"
        click.echo(f"{url.display()}: version {runner.current_version()}{note}")
        for state in runner.status():
            when = state.applied_at or ""
            click.echo(f"{state.version:04d}_{state.name:<24} {state.state:<8} {when}".rstrip())
