"""The loose-data scan: every value SQLite accepted that Postgres would reject or change.

SQLite is forgiving (a non-STRICT table keeps text in an INTEGER column, TEXT may hold invalid
UTF-8 or NUL, JSON is just text); Postgres is not, or silently changes the value (jsonb keeps
the last of duplicate keys). The scan reads every row of the snapshot BEFORE any data moves and
reports each bad value as (table, key, column, reason); a non-empty report makes the promotion
refuse instead of dropping or altering data. The same pass computes the SQLite side of the
verification checksums (`liteshift.store.checksum`), from the same snapshot the copy reads.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from liteshift.promotion.errors import LooseData
from liteshift.store.checksum import (
    MODULUS,
    NULL,
    SEPARATOR,
    TableChecksum,
    canonical_text,
    clean_jsonb_text,
    jsonb_text,
    numeric_token,
    row_hash,
    vector_hex,
)
from liteshift.store.transfer import (
    DOMAIN_TABLES,
    Column,
    Progress,
    SqliteSnapshot,
    TableSpec,
    canonical_timestamp,
    is_canonical_timestamp_text,
)

#: Problems kept in the report (all are counted); enough to show the pattern.
MAX_LISTED = 1000
INT32 = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class LooseValue:
    table: str
    key: str
    column: str
    reason: str

    def to_status(self) -> dict[str, str]:
        return {"table": self.table, "key": self.key, "column": self.column, "reason": self.reason}


@dataclass
class LooseDataReport:
    """Every value that cannot move unchanged; `total` counts them all, `values` lists some."""

    values: list[LooseValue] = field(default_factory=list)
    total: int = 0
    rows_scanned: int = 0

    @property
    def ok(self) -> bool:
        return self.total == 0

    def add(self, value: LooseValue) -> None:
        self.total += 1
        if len(self.values) < MAX_LISTED:
            self.values.append(value)

    def summary(self) -> str:
        if self.ok:
            return f"{self.rows_scanned} rows scanned, every value moves unchanged"
        first = self.values[0]
        return (
            f"{self.total} value(s) SQLite accepted that Postgres would reject or change, "
            f"e.g. {first.table} {first.key!r} column {first.column}: {first.reason}; "
            "fix them in SQLite first (`liteshift promote --dry-run` lists them)"
        )

    def raise_if_loose(self) -> None:
        if not self.ok:
            raise LooseData(self, self.summary())


@dataclass
class ScanResult:
    report: LooseDataReport
    #: The SQLite side of the verification, per table, from the scanned snapshot.
    checksums: dict[str, TableChecksum]
    #: Tables whose every value is already in the form the copy writes (every row took the
    #: scan's fast path: text, JSON, canonical timestamps): the copy need not check them again.
    canonical_tables: frozenset[str] = frozenset()


class _Problem(Exception):
    pass


def _pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in items:
        if key in seen:
            raise _Problem(f"duplicate JSON key {key!r} (jsonb keeps only the last one)")
        seen[key] = value
    return seen


def _constant(token: str) -> Any:
    raise _Problem(f"JSON {token} (jsonb has no NaN or Infinity)")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_constant=_constant, parse_float=numeric_token
)


def _text(typ: str, raw: Any, what: str = "text") -> str:
    if typ != "text":
        shown = raw if not isinstance(raw, bytes) else f"x'{raw[:16].hex()}'"
        raise _Problem(f"{typ} value {str(shown)[:40]!r} in a {what} column")
    if type(raw) is str:
        value = raw
    else:
        try:
            value = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Problem(f"invalid UTF-8 at byte {exc.start}") from None
    if "\x00" in value:
        raise _Problem(f"NUL character (\\x00) at position {value.index(chr(0))}")
    return value


def _checker(
    column: Column, dimension_index: int | None
) -> Callable[[str, Any, Sequence[Any]], str]:
    """A function (typeof, raw value, whole typed row) → canonical text; raises _Problem."""
    nullable = column.nullable

    def null() -> str:
        if nullable:
            return NULL
        raise _Problem("NULL, but the Postgres column is NOT NULL")

    if column.kind == "text":

        def text(typ: str, raw: Any, row: Sequence[Any]) -> str:
            if typ == "text" and type(raw) is str and "\x00" not in raw:
                return f"{len(raw)}:{raw}"
            return null() if typ == "null" else canonical_text(_text(typ, raw))

        return text
    if column.kind == "integer":

        def integer(typ: str, raw: Any, row: Sequence[Any]) -> str:
            if typ == "null":
                return null()
            if typ != "integer":
                shown = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                raise _Problem(f"{typ} value {str(shown)[:40]!r} in an integer column")
            if not INT32[0] <= raw <= INT32[1]:
                raise _Problem(f"{raw} is outside the Postgres integer range")
            return str(raw)

        return integer
    if column.kind == "timestamp":

        def timestamp(typ: str, raw: Any, row: Sequence[Any]) -> str:
            if typ == "null":
                return null()
            value = _text(typ, raw, "timestamp")
            canonical = canonical_timestamp(value)
            if canonical is None:
                raise _Problem(
                    f"{value[:40]!r} is not an ISO-8601 timestamp with a UTC offset "
                    "in the years 1..9999"
                )
            return canonical

        return timestamp
    if column.kind == "json":

        def json_column(typ: str, raw: Any, row: Sequence[Any]) -> str:
            if typ == "null":
                return null()
            value = _text(typ, raw, "JSON")
            if "\\u0000" in value:
                raise _Problem("JSON \\u0000 escape (jsonb rejects it)")
            try:
                parsed = _DECODER.decode(value)
            except _Problem:
                raise
            except (ValueError, RecursionError) as exc:
                raise _Problem(f"not valid JSON: {str(exc)[:80]}") from None
            canonical = jsonb_text(parsed)
            try:
                canonical.encode("utf-8")
            except UnicodeEncodeError:
                raise _Problem("JSON string with a lone surrogate escape") from None
            return canonical

        return json_column

    def vector(typ: str, raw: Any, row: Sequence[Any]) -> str:
        if typ == "null":
            return null()
        if typ != "blob":
            raise _Problem(f"{typ} value in a vector (float32 BLOB) column")
        blob = bytes(raw)
        if len(blob) % 4:
            raise _Problem(f"{len(blob)} bytes is not a whole number of float32 values")
        if dimension_index is not None:
            dim = row[dimension_index]
            if type(dim) is int and len(blob) != 4 * dim:
                raise _Problem(f"{len(blob) // 4} values, but the row's dimension is {dim}")
        values = struct.unpack(f"<{len(blob) // 4}f", blob)
        if not all(map(math.isfinite, values)):
            raise _Problem("NaN or Infinity in the vector (distances would be undefined)")
        return vector_hex(blob)

    return vector


_TYPES: dict[type, str] = {
    str: "text",
    bytes: "blob",
    int: "integer",
    float: "real",
    type(None): "null",
}


def scan(
    snapshot: SqliteSnapshot,
    tables: Sequence[TableSpec] = DOMAIN_TABLES,
    *,
    progress: Progress | None = None,
) -> ScanResult:
    """Check every value of every table in the snapshot; compute the source checksums."""
    report = LooseDataReport()
    checksums: dict[str, TableChecksum] = {}
    canonical: set[str] = set()
    for spec in tables:
        checksums[spec.name], all_fast = _scan_table(snapshot, spec, report, progress)
        if all_fast:
            canonical.add(spec.name)
    return ScanResult(report, checksums, frozenset(canonical))


class RowChecker:
    """The scan's check of one row of `spec`, for callers that read rows one by one.

    `check(types, values, report)` takes the storage class of each column (`typeof()`) and
    the raw values (text may be bytes), adds every loose value to `report`, and returns the
    row's canonical column texts (`liteshift.store.checksum`), or None if a value is loose.
    """

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        names = spec.column_names
        dimension = names.index("dimension") if "dimension" in names else None
        self._checkers = list(
            zip(names, [_checker(c, dimension) for c in spec.columns], strict=True)
        )
        self._key_index = names.index(spec.key)

    def check(
        self, types: Sequence[str], values: Sequence[Any], report: LooseDataReport
    ) -> list[str] | None:
        canonical: list[str] = []
        for (name, checker), typ, raw in zip(self._checkers, types, values, strict=True):
            try:
                canonical.append(checker(typ, raw, values))
            except _Problem as problem:
                report.add(
                    LooseValue(self.spec.name, _key(values[self._key_index]), name, str(problem))
                )
        return canonical if len(canonical) == len(self._checkers) else None


def _scan_table(
    snapshot: SqliteSnapshot,
    spec: TableSpec,
    report: LooseDataReport,
    progress: Progress | None,
) -> tuple[TableChecksum, bool]:
    """The table's checksum, and whether every row took the fast path."""
    checker = RowChecker(spec)
    fast = fast_row(spec)
    slow_rows = 0
    md5 = hashlib.md5
    from_bytes = int.from_bytes
    rows = 0
    total = 0
    count = snapshot.count(spec)
    if progress:
        progress(spec.name, 0, count)

    def slow(types: Sequence[str], values: Sequence[Any]) -> None:
        nonlocal rows, total, slow_rows
        slow_rows += 1
        canonical = checker.check(types, values, report)
        if canonical is not None:
            rows += 1
            total += row_hash(SEPARATOR.join(canonical))

    done = 0
    last: int | None = None
    while True:
        try:
            for row in snapshot.raw_rows(spec, last):
                encoded = fast(row)
                if encoded is None:
                    values = row[1:]
                    slow([_TYPES[type(v)] for v in values], values)
                else:
                    # row_hash, inlined: this loop runs once per row of every table.
                    total += from_bytes(
                        md5(encoded, usedforsecurity=False).digest()[:8], "big", signed=True
                    )
                    rows += 1
                last = row[0]
                done += 1
                if progress and not done % 10_000:
                    progress(spec.name, done, count)
            break
        except UnicodeDecodeError:
            # Text that is not UTF-8: read that one row with text as bytes, go on after it.
            typed = snapshot.typed_row(spec, last)
            if typed is None:
                break
            slow(typed[1::2], typed[2::2])
            last = typed[0]
            done += 1
    if progress:
        progress(spec.name, done, count)
    report.rows_scanned += done
    return TableChecksum(spec.name, rows, total % MODULUS), slow_rows == 0


#: `fast_row(spec)(row)`: the UTF-8 canonical text of a (rowid, c1, c2, …) row whose values
#: are all of the expected kind and clean, or None, and then the row takes the checked path
#: (`RowChecker`), which reports what is wrong. Same canonical text either way.
FastRow = Callable[[Sequence[Any]], bytes | None]


def fast_row(spec: TableSpec) -> FastRow:
    """A function specialised to `spec`'s columns: no per-value call or loop for the common
    text/JSON/timestamp columns (the scan's per-row cost is the promotion's largest)."""
    dimension = spec.column_names.index("dimension") if "dimension" in spec.column_names else None
    env: dict[str, Any] = {
        "_json": clean_jsonb_text,
        "_ts": is_canonical_timestamp_text,
        "_iso": datetime.fromisoformat,
        "_str": str,
        "_Problem": _Problem,
        "_NULL": NULL,
        "_SEP": SEPARATOR,
    }
    body: list[str] = []
    parts: list[str] = []
    for i, column in enumerate(spec.columns, start=1):
        v, t = f"v{i}", f"t{i}"
        body.append(f"{v} = row[{i}]")
        if column.nullable:
            body.extend([f"if {v} is None:", f"    {t} = _NULL", "else:"])
            indent = "    "
        else:
            indent = ""
        lines: list[str]
        if column.kind == "text":
            lines = [
                f"if type({v}) is not _str or '\\x00' in {v}:",
                "    return None",
                f"{t} = f'{{len({v})}}:{{{v}}}'",
            ]
        elif column.kind == "json":
            lines = [
                f"if type({v}) is not _str or '\\x00' in {v}:",
                "    return None",
                f"{t} = _json({v})",
                f"if {t} is None:",
                "    return None",
            ]
        elif column.kind == "timestamp":
            lines = [
                f"if type({v}) is not _str or _ts({v}) is None:",
                "    return None",
                "try:",
                f"    _iso({v})",
                "except ValueError:",
                "    return None",
                f"{t} = {v}",
            ]
        else:
            # integer and vector columns: the checked path's own checker (rare, small tables).
            env[f"_check{i}"] = _checker(column, dimension)
            lines = [
                "try:",
                f"    {t} = _check{i}(_TYPE[type({v})], {v}, row[1:])",
                "except (_Problem, KeyError):",
                "    return None",
            ]
            env["_TYPE"] = _TYPES
        body.extend(indent + line for line in lines)
        parts.append(t)
    joined = " + _SEP + ".join(parts)
    body.append("try:")
    body.append(f"    return ({joined}).encode('utf-8')")
    body.append("except UnicodeEncodeError:")
    body.append("    return None  # a lone surrogate from a JSON escape: the checked path")
    source = "def fast(row):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(source, f"<fast_row {spec.name}>", "exec"), env)  # noqa: S102
    fast: FastRow = env["fast"]
    return fast


def _key(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "backslashreplace")
    return "NULL" if raw is None else str(raw)
