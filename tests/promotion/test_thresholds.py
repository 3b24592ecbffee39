"""Promotion settings from `spec.promotion`: durations, quantities, defaults, refusals."""

from __future__ import annotations

import pytest

from liteshift.promotion.errors import BadPromotionSetting
from liteshift.promotion.thresholds import (
    Thresholds,
    parse_duration,
    parse_policy,
    parse_quantity,
)


def test_defaults_match_the_crd() -> None:
    t = Thresholds.from_spec({})
    assert t.window_seconds == 600 and t.cooldown_seconds == 1800
    assert t.lock_wait_p95_seconds == 0.05 and t.write_latency_p99_seconds == 0.25
    assert t.busy_errors_per_second == 1.0 and t.database_size_bytes == 8 * 2**30
    assert t.step_seconds == 5.0 and t.rate_interval_seconds == 60.0


def test_from_spec_reads_camel_case_fields() -> None:
    t = Thresholds.from_spec(
        {
            "window": "1h30m",
            "cooldown": "45s",
            "thresholds": {"lockWaitP95Seconds": 0.2, "databaseSize": "512Mi"},
        }
    )
    assert t.window_seconds == 5400 and t.cooldown_seconds == 45
    assert t.lock_wait_p95_seconds == 0.2 and t.database_size_bytes == 512 * 2**20
    assert t.step_seconds == 45.0 and t.rate_interval_seconds == 180.0


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1h1m1s", 3661)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration("w", text) == seconds


@pytest.mark.parametrize("text", ["", "10", "5d", "0s", "m", "-1m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(BadPromotionSetting, match="invalid w"):
        parse_duration("w", text)


def test_quantities_and_policies() -> None:
    assert parse_quantity("q", "8Gi") == 8 * 2**30
    assert parse_quantity("q", "1.5G") == 1_500_000_000
    assert parse_quantity("q", 1024) == 1024
    for bad in ("8 GiB", "lots", -1, True):
        with pytest.raises(BadPromotionSetting):
            parse_quantity("q", bad)  # type: ignore[arg-type]
    assert parse_policy("auto") == "auto"
    with pytest.raises(BadPromotionSetting, match="auto, manual or off"):
        parse_policy("sometimes")


def test_inconsistent_settings_are_refused() -> None:
    with pytest.raises(BadPromotionSetting, match="window"):
        Thresholds(window_seconds=1, step_seconds=5)
    with pytest.raises(BadPromotionSetting, match="hysteresis"):
        Thresholds(hysteresis=1.0)
    with pytest.raises(BadPromotionSetting, match="lock_wait_p95_seconds: must not be negative"):
        Thresholds(lock_wait_p95_seconds=-1)
    with pytest.raises(BadPromotionSetting, match="lockWaitP95Seconds"):
        Thresholds.from_spec({"thresholds": {"lockWaitP95Seconds": "fast"}})
