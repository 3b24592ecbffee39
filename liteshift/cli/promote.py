"""`liteshift promote --from sqlite:///app.db --to postgresql://…`: the offline promotion.

Readiness checks → loose-data scan → copy → verification (liteshift.promotion.offline), with a
progress bar per table and a final report. `--dry-run` stops after the scan and writes nothing.
Exits 1 with the reason on any failure; loose data is listed row by row first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.progress import TimeElapsedColumn as Elapsed
from rich.table import Table

from liteshift.promotion.errors import LooseData, PromotionError
from liteshift.promotion.loose import LooseDataReport
from liteshift.promotion.offline import OfflineReport, PhaseProgress, promote_offline
from liteshift.promotion.readiness import ReadinessReport
from liteshift.store.errors import BadURL
from liteshift.store.urls import parse_url

#: Loose values printed before "… and N more".
SHOWN = 50


@contextmanager
def _bars(console: Console) -> Iterator[PhaseProgress]:
    bars = Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        Elapsed(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    tasks: dict[tuple[str, str], TaskID] = {}

    def report(phase: str, table: str, done: int, total: int) -> None:
        key = (phase, table)
        if key not in tasks:
            tasks[key] = bars.add_task(f"{phase} {table}", total=total)
        bars.update(tasks[key], completed=done, total=total)

    with bars:
        yield report


def _readiness_table(readiness: ReadinessReport) -> Table:
    table = Table(title="readiness")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check in readiness.checks:
        table.add_row(check.name, check.status, check.message)
    return table


def _loose_table(report: LooseDataReport) -> Table:
    table = Table(title=f"loose data: {report.total} value(s) Postgres would reject or change")
    for column in ("table", "key", "column", "reason"):
        table.add_column(column)
    for value in report.values[:SHOWN]:
        table.add_row(value.table, value.key, value.column, value.reason)
    if report.total > SHOWN:
        table.add_row("…", f"and {report.total - SHOWN} more", "", "")
    return table


def _final_table(report: OfflineReport) -> Table:
    assert report.verification is not None
    table = Table(title="promotion")
    for column in ("table", "rows", "checksum SQLite", "checksum Postgres", "equal"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for item in report.verification.tables:
        table.add_row(
            item.table,
            str(item.target.rows),
            item.source.hex,
            item.target.hex,
            "yes" if item.ok else "NO",
        )
    return table


def _timings(report: OfflineReport) -> str:
    assert report.copy is not None
    seconds = report.seconds["copy"]
    total = report.copy.total_rows
    rate = total / seconds if seconds > 0 else 0.0
    return (
        f"{total} rows; readiness {report.seconds['readiness']:.2f}s, scan "
        f"{report.seconds['scan']:.2f}s, copy {seconds:.2f}s ({rate:,.0f} rows/s), "
        f"verify {report.seconds['verify']:.2f}s"
    )


@click.command()
@click.option("--from", "source", required=True, help="The SQLite store: sqlite:///path/app.db")
@click.option("--to", "target", required=True, help="The Postgres: postgresql://user@host/db")
@click.option("--dry-run", is_flag=True, help="Readiness checks and loose-data scan only.")
def promote(source: str, target: str, dry_run: bool) -> None:
    """Copy a SQLite store into an empty Postgres, verified table by table (offline).

    Stop the writers first: rows written after the copy's snapshot are not copied.
    """
    src = parse_url(source)
    dst = parse_url(target)
    if src.engine != "sqlite":
        raise BadURL(source, "--from must be a sqlite:/// URL")
    if dst.engine != "postgres":
        raise BadURL(target, "--to must be a postgresql:// URL")
    out = Console()
    err = Console(stderr=True)
    try:
        with _bars(err) as progress:
            report = promote_offline(
                src.target,
                dst.target,
                dry_run=dry_run,
                progress=progress,
                on_phase=lambda p: err.print(f"[bold]{p}[/bold]…") if err.is_terminal else None,
            )
    except LooseData as exc:
        if isinstance(exc.report, LooseDataReport):
            out.print(_loose_table(exc.report))
        raise
    if dry_run:
        out.print(_readiness_table(report.readiness))
        assert report.scan is not None
        if not report.scan.report.ok:
            out.print(_loose_table(report.scan.report))
        problems = [c.name for c in report.readiness.checks if c.failed]
        if problems or not report.scan.report.ok:
            reasons = []
            if problems:
                reasons.append(f"failed checks: {', '.join(problems)}")
            if not report.scan.report.ok:
                reasons.append(report.scan.report.summary())
            raise PromotionError("dry run: a promotion would refuse: " + "; ".join(reasons))
        click.echo(f"dry run: ready; {report.scan.report.summary()}")
        return
    out.print(_final_table(report))
    click.echo(_timings(report))
    click.echo(f"promoted {src.display()} to {dst.display()}: every table verified")
