"""Comparing per-table row counts with the manifest's, engine-neutral."""

from __future__ import annotations

from liteshift.backup.errors import RowCountMismatch


def compare_counts(where: str, expected: dict[str, int], actual: dict[str, int]) -> None:
    """Raise RowCountMismatch listing every table whose count differs (or exists on one side)."""
    differences = {
        table: (expected.get(table), actual.get(table))
        for table in set(expected) | set(actual)
        if expected.get(table) != actual.get(table)
    }
    if differences:
        raise RowCountMismatch(where, differences)
