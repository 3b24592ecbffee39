"""Promotion settings: policy, thresholds, window, cooldown, hysteresis (`spec.promotion`).

Durations use the CRD's syntax (`10m`, `1h30m`, `45s`), sizes Kubernetes quantities (`8Gi`).
A criterion whose threshold is None is not evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from liteshift.promotion.errors import BadPromotionSetting

Policy = Literal["auto", "manual", "off"]
POLICIES: tuple[Policy, ...] = ("auto", "manual", "off")

_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_QUANTITY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_SUFFIX = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def parse_duration(field: str, text: str) -> float:
    """`1h30m` → 5400.0 seconds; raises BadPromotionSetting."""
    match = _DURATION_RE.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise BadPromotionSetting(field, f"{text!r} is not a duration like 30s, 10m or 1h30m")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise BadPromotionSetting(field, "must be longer than 0s")
    return float(total)


def parse_quantity(field: str, value: str | int | float) -> int:
    """`8Gi` → 8589934592 bytes; raises BadPromotionSetting."""
    if isinstance(value, bool):
        raise BadPromotionSetting(field, "must be a size like 8Gi")
    if isinstance(value, int | float):
        if value < 0:
            raise BadPromotionSetting(field, "must not be negative")
        return int(value)
    match = _QUANTITY_RE.match(value.strip())
    if not match:
        raise BadPromotionSetting(field, f"{value!r} is not a size like 512Mi or 8Gi")
    return int(float(match.group(1)) * _SUFFIX[match.group(2)])


@dataclass(frozen=True)
class Thresholds:
    """When a criterion is met, and for how long it must hold.

    `hysteresis`: once a criterion was sustained, it keeps counting as met until it falls
    below `threshold * (1 - hysteresis)`, so a value hovering at the threshold does not flap
    between Recommended and Idle. `rate_interval_seconds` is the range of `rate()` in the
    queries; `step_seconds` the resolution at which "held at every step" is checked.
    """

    lock_wait_p95_seconds: float | None = 0.05
    write_latency_p99_seconds: float | None = 0.25
    busy_errors_per_second: float | None = 1.0
    database_size_bytes: int | None = 8 * 2**30
    window_seconds: float = 600.0
    cooldown_seconds: float = 1800.0
    step_seconds: float = 15.0
    rate_interval_seconds: float = 60.0
    hysteresis: float = 0.1

    def __post_init__(self) -> None:
        for name in (
            "lock_wait_p95_seconds",
            "write_latency_p99_seconds",
            "busy_errors_per_second",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise BadPromotionSetting(name, "must not be negative")
        if self.database_size_bytes is not None and self.database_size_bytes < 0:
            raise BadPromotionSetting("database_size_bytes", "must not be negative")
        if self.step_seconds <= 0 or self.rate_interval_seconds <= 0:
            raise BadPromotionSetting("step_seconds", "step and rate interval must be positive")
        if self.window_seconds < self.step_seconds:
            raise BadPromotionSetting("window", "must be at least one evaluation step long")
        if self.cooldown_seconds < 0:
            raise BadPromotionSetting("cooldown", "must not be negative")
        if not 0 <= self.hysteresis < 1:
            raise BadPromotionSetting("hysteresis", "must be in [0, 1)")

    @classmethod
    def from_spec(cls, promotion: Mapping[str, Any]) -> Thresholds:
        """From a `spec.promotion` mapping (camelCase, as in the CRD); defaults as the CRD's."""
        raw = promotion.get("thresholds") or {}
        size = raw.get("databaseSize", "8Gi")
        window = parse_duration("spec.promotion.window", promotion.get("window", "10m"))
        # At most 120 steps per window: a fine grid for short windows, a bounded query for long.
        step = max(1.0, window / 120)
        return cls(
            lock_wait_p95_seconds=_number(raw, "lockWaitP95Seconds", 0.05),
            write_latency_p99_seconds=_number(raw, "writeLatencyP99Seconds", 0.25),
            busy_errors_per_second=_number(raw, "busyErrorsPerSecond", 1.0),
            database_size_bytes=(
                None
                if size is None
                else parse_quantity("spec.promotion.thresholds.databaseSize", size)
            ),
            window_seconds=window,
            cooldown_seconds=parse_duration(
                "spec.promotion.cooldown", promotion.get("cooldown", "30m")
            ),
            step_seconds=step,
            rate_interval_seconds=max(60.0, 4 * step),
        )


def _number(raw: Mapping[str, Any], key: str, default: float) -> float | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadPromotionSetting(f"spec.promotion.thresholds.{key}", "must be a number")
    return float(value)


def parse_policy(value: object) -> Policy:
    for policy in POLICIES:
        if value == policy:
            return policy
    raise BadPromotionSetting("spec.promotion.policy", f"{value!r} is not auto, manual or off")
