"""docs/crd-reference.md is generated from crds/ and must not drift from it."""

from __future__ import annotations

import subprocess
import sys

from tests.crds.schema import ROOT


def test_crd_reference_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_crd_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_crd_reference_mentions_every_spec_field_and_rule() -> None:
    text = (ROOT / "docs" / "crd-reference.md").read_text()
    for field in ("spec.promotion.thresholds.lockWaitP95Seconds", "spec.reclaimPolicy",
                  "status.promotion.writePauseSeconds", "spec.datastore"):  # fmt: skip
        assert f"`{field}`" in text
    assert "replicas > 1 needs Postgres" in text
