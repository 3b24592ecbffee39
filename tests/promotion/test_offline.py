"""The offline promotion path end to end: readiness, scan, copy, verification."""

from __future__ import annotations

from pathlib import Path

from liteshift.promotion.offline import promote_offline


def test_offline_promotion_end_to_end(filled_sqlite: Path, postgres_dsn: str) -> None:
    phases: list[str] = []
    report = promote_offline(str(filled_sqlite), postgres_dsn, on_phase=phases.append)
    assert phases == ["readiness", "scan", "copy", "verify"]
    assert report.readiness.ok
    assert report.copy is not None and report.copy.total_rows == 6 * 40
    assert report.verification is not None and report.verification.ok
    assert set(report.seconds) == {"readiness", "scan", "copy", "verify"}
