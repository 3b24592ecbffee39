"""The schedule arithmetic and BackupsHealthy from status, with the time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from liteshift.operator import backup_schedule as bs


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_next_fire_and_period() -> None:
    assert bs.next_fire("0 3 * * *", at("2026-05-01T02:59:59")) == at("2026-05-01T03:00:00")
    # Strictly after: a backup started at the fire time is not due again at once.
    assert bs.next_fire("0 3 * * *", at("2026-05-01T03:00:00")) == at("2026-05-02T03:00:00")
    assert bs.next_fire("@hourly", at("2026-05-01T03:10:00")) == at("2026-05-01T04:00:00")
    assert bs.period("* * * * *", at("2026-05-01T03:10:30")) == timedelta(minutes=1)
    assert bs.period("0 3 * * *", at("2026-05-01T12:00:00")) == timedelta(days=1)
    assert bs.period("@weekly", at("2026-05-01T12:00:00")) == timedelta(weeks=1)


def test_due_from_the_anchor() -> None:
    anchor = at("2026-05-01T03:00:00")
    assert not bs.is_due("0 3 * * *", anchor, at("2026-05-02T02:59:59"))
    assert bs.is_due("0 3 * * *", anchor, at("2026-05-02T03:00:00"))
    # Three missed days while the operator was down: one backup, due now.
    assert bs.is_due("0 3 * * *", anchor, at("2026-05-05T12:00:00"))
    assert bs.next_run("0 3 * * *", anchor) == at("2026-05-02T03:00:00")
    # Every minute: due a minute after the anchor's minute.
    assert not bs.is_due("* * * * *", at("2026-05-01T03:00:10"), at("2026-05-01T03:00:59"))
    assert bs.is_due("* * * * *", at("2026-05-01T03:00:10"), at("2026-05-01T03:01:00"))


def test_a_failed_attempt_is_retried_before_the_next_fire_time() -> None:
    anchor = at("2026-05-01T03:00:00")
    retry = timedelta(minutes=5)
    assert bs.next_run("0 3 * * *", anchor, last_attempt_failed=True, retry_after=retry) == at(
        "2026-05-01T03:05:00"
    )
    assert not bs.is_due("0 3 * * *", anchor, at("2026-05-01T03:04:59"),
                         last_attempt_failed=True, retry_after=retry)  # fmt: skip
    assert bs.is_due("0 3 * * *", anchor, at("2026-05-01T03:05:00"),
                     last_attempt_failed=True, retry_after=retry)  # fmt: skip
    # The next fire time wins when it comes first.
    assert bs.next_run("* * * * *", anchor, last_attempt_failed=True, retry_after=retry) == at(
        "2026-05-01T03:01:00"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-01T03:00:00Z", at("2026-05-01T03:00:00")),
        ("2026-05-01T03:00:00+02:00", at("2026-05-01T01:00:00")),
        ("", None),
        ("yesterday", None),
        (None, None),
        (5, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert bs.parse_time(value) == expected


LAST_OK = {
    "name": "shop-20260501T030000Z-abc123",
    "succeeded": True,
    "completedAt": "2026-05-01T03:00:05Z",
    "sizeBytes": 4096,
    "location": "/backups/shop-20260501T030000Z-abc123",
}


def test_health_is_true_until_two_periods_pass_then_stale() -> None:
    fresh = bs.stale_or_fresh("0 3 * * *", LAST_OK, at("2026-05-03T03:00:05"))
    assert fresh is not None
    assert (fresh.type, fresh.status, fresh.reason) == ("BackupsHealthy", "True", "BackupSucceeded")
    assert "shop-20260501T030000Z-abc123" in fresh.message
    stale = bs.stale_or_fresh("0 3 * * *", LAST_OK, at("2026-05-03T03:00:06"))
    assert stale is not None
    assert (stale.status, stale.reason) == ("False", "BackupsStale")
    assert "2026-05-01T03:00:05Z" in stale.message
    assert "operator is running" in stale.message
    # Every minute: stale after two minutes.
    assert bs.stale_or_fresh("* * * * *", LAST_OK, at("2026-05-01T03:02:06")).status == "False"  # type: ignore[union-attr]


def test_health_leaves_failures_and_first_runs_alone() -> None:
    assert bs.stale_or_fresh("0 3 * * *", {}, at("2026-05-03T03:00:00")) is None
    failed = {"succeeded": False, "completedAt": "2026-05-01T03:00:05Z"}
    assert bs.stale_or_fresh("0 3 * * *", failed, at("2026-06-01T00:00:00")) is None
