"""When a scheduled backup is due, and whether a Datastore's backups are healthy. Pure: the
caller passes the time, so tests cover a month of schedule in microseconds.

Schedules are cron expressions (five fields, or macros such as `@daily`) evaluated in UTC.
A backup is due at the first fire time after the *anchor*: the start of the last scheduled
attempt, or, before any, the Datastore's creation (or when the operator first saw it). Fire
times missed while the operator was down collapse into one backup, as a CronJob's would.
After a failed attempt the next one comes `retry_after` later when that is sooner than the
next fire time: a daily backup must not wait a day because a pod was restarting.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from liteshift.operator.status import BACKUPS_HEALTHY, Condition

#: How many schedule periods may pass after the last success before backups count as stale.
STALE_PERIODS = 2


def next_fire(schedule: str, after: datetime) -> datetime:
    """The first fire time of `schedule` strictly after `after` (UTC)."""
    fire: datetime = croniter(schedule, after.astimezone(UTC)).get_next(datetime)
    return fire.astimezone(UTC)


def period(schedule: str, around: datetime) -> timedelta:
    """The gap between the two fire times following `around` (a day for `0 3 * * *`)."""
    first = next_fire(schedule, around)
    return next_fire(schedule, first) - first


def next_run(
    schedule: str,
    anchor: datetime,
    *,
    last_attempt_failed: bool = False,
    retry_after: timedelta = timedelta(minutes=5),
) -> datetime:
    """When the next scheduled backup is due, counted from `anchor` (see the module doc)."""
    fire = next_fire(schedule, anchor)
    if last_attempt_failed:
        return min(fire, anchor + retry_after)
    return fire


def is_due(
    schedule: str,
    anchor: datetime,
    now: datetime,
    *,
    last_attempt_failed: bool = False,
    retry_after: timedelta = timedelta(minutes=5),
) -> bool:
    """Whether a scheduled backup should start at `now`."""
    due = next_run(
        schedule, anchor, last_attempt_failed=last_attempt_failed, retry_after=retry_after
    )
    return due <= now


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from status or metadata, or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def succeeded(name: str, completed: str, size: int, location: str) -> Condition:
    return Condition(
        BACKUPS_HEALTHY,
        "True",
        "BackupSucceeded",
        f"backup {name} ({size} bytes) completed at {completed}, verified; stored at {location}.",
    )


def stale_or_fresh(
    schedule: str, last_backup: Mapping[str, Any], now: datetime
) -> Condition | None:
    """BackupsHealthy from `status.lastBackup` when the last attempt succeeded: True while the
    success is recent, False once it is older than STALE_PERIODS periods. None when there was
    no attempt yet, or the last one failed (its failure condition stays: it says what to fix).
    """
    if last_backup.get("succeeded") is not True:
        return None
    completed = parse_time(last_backup.get("completedAt"))
    if completed is None:
        return None
    limit = STALE_PERIODS * period(schedule, completed)
    if now - completed > limit:
        return Condition(
            BACKUPS_HEALTHY,
            "False",
            "BackupsStale",
            f"the last successful backup ({last_backup.get('name')}) completed at"
            f" {last_backup.get('completedAt')}, more than {STALE_PERIODS} schedule periods"
            f" ({limit}) ago for schedule {schedule!r}; check that the operator is running"
            " and read its log and this Datastore's Events.",
        )
    return succeeded(
        str(last_backup.get("name")),
        str(last_backup.get("completedAt")),
        int(last_backup.get("sizeBytes") or 0),
        str(last_backup.get("location")),
    )
