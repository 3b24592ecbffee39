"""The ADR-0001 promotion criteria, made executable, and the decision they lead to.

Four criteria (DESIGN.md "Promotion"):

1. write contention — `lockWaitP95`, `writeLatencyP99`, `busyErrors`, as PromQL over the
   sidecar's metrics;
2. horizontal scale — `horizontalScale`: `spec.replicas > 1`;
3. operational needs — `operationalNeeds`: `spec.engine: postgres`;
4. data size — `databaseSize`, as PromQL.

A metric criterion is *sustained* when a range query over the whole `window` has a sample at
every step and every sample is above the threshold: one missing step (a scrape gap, a sidecar
restart) or one step below it and the window starts again. Prometheus unreachable, or any
metric query without data, means no metric-driven promotion and `MetricsAvailable=False` with
the reason — never a guess. `evaluate` is pure apart from the queries: the caller (operator
timer, CLI) owns the clock and the previous evaluation (for hysteresis and cooldown).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from liteshift.promotion.errors import MetricsUnavailable
from liteshift.promotion.prometheus import PrometheusAPI, Series
from liteshift.promotion.thresholds import Policy, Thresholds

PROMOTE_ANNOTATION = "liteshift.io/promote"
_WRITE = 'kind="write"'
METRIC_CRITERIA = ("lockWaitP95", "writeLatencyP99", "busyErrors", "databaseSize")


class Action(StrEnum):
    NONE = "none"
    RECOMMEND = "recommend"
    PROMOTE = "promote"


@dataclass(frozen=True)
class Target:
    """Which sidecar's series to read: the `datastore` and `namespace` labels."""

    datastore: str
    namespace: str

    def selector(self, extra: str = "") -> str:
        labels = f'datastore="{_escape(self.datastore)}",namespace="{_escape(self.namespace)}"'
        return "{" + labels + (f",{extra}" if extra else "") + "}"


@dataclass(frozen=True)
class Request:
    """What the Datastore asks for: policy, replicas, engine and its annotations."""

    policy: Policy = "manual"
    replicas: int = 1
    engine: str = "sqlite"
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Previous:
    """What the last evaluation left behind: sustained criteria (hysteresis) and the time of
    the last promotion decision or rollback (cooldown)."""

    sustained: frozenset[str] = frozenset()
    decided_at: datetime | None = None


@dataclass(frozen=True)
class CriterionResult:
    """One criterion at one evaluation: the value seen last, and whether it held."""

    name: str
    query: str
    observed: float | None
    threshold: float | None
    met: bool
    sustained: bool
    since: datetime | None
    message: str

    def to_status(self) -> dict[str, Any]:
        """The `status.promotion.criteria[]` item (CRD field names; NaN/None left out)."""
        item: dict[str, Any] = {
            "name": self.name,
            "query": self.query,
            "met": self.met,
            "sustained": self.sustained,
            "message": self.message,
        }
        if self.observed is not None and math.isfinite(self.observed):
            item["observed"] = self.observed
        if self.threshold is not None:
            item["threshold"] = self.threshold
        if self.since is not None:
            item["since"] = _iso(self.since)
        return item


@dataclass(frozen=True)
class Decision:
    """The outcome of one evaluation: what to do, why, and every criterion's values."""

    action: Action
    #: "criteria", "annotation" or "engine" (status.promotion.trigger); None without action.
    trigger: str | None
    reason: str
    message: str
    criteria: tuple[CriterionResult, ...]
    #: False when Prometheus could not answer every query; None when it was not asked.
    metrics_available: bool | None
    metrics_reason: str
    metrics_message: str
    evaluated_at: datetime

    @property
    def sustained(self) -> frozenset[str]:
        return frozenset(c.name for c in self.criteria if c.sustained)

    def criterion(self, name: str) -> CriterionResult:
        return next(c for c in self.criteria if c.name == name)

    def metrics_condition(self) -> dict[str, str]:
        """The `MetricsAvailable` condition for `status.conditions`."""
        status = {True: "True", False: "False", None: "Unknown"}[self.metrics_available]
        return {
            "type": "MetricsAvailable",
            "status": status,
            "reason": self.metrics_reason,
            "message": self.metrics_message,
        }


def evaluate(
    target: Target,
    request: Request,
    thresholds: Thresholds,
    prometheus: PrometheusAPI | None,
    *,
    now: datetime | None = None,
    previous: Previous | None = None,
) -> Decision:
    """Evaluate every criterion and decide: none, recommend (policy manual) or promote."""
    now = now or datetime.now(UTC)
    previous = previous or Previous()
    declared = _declared_criteria(request)
    if request.policy == "off":
        return Decision(
            Action.NONE,
            None,
            "PolicyOff",
            "promotion.policy is off: criteria are not evaluated and nothing promotes",
            declared,
            None,
            "PolicyOff",
            "promotion.policy is off",
            now,
        )
    measured, available, m_reason, m_message = _metric_criteria(
        target, thresholds, prometheus, now, previous
    )
    criteria = (*measured, *declared)

    def decide(action: Action, trigger: str | None, reason: str, message: str) -> Decision:
        return Decision(
            action, trigger, reason, message, criteria, available, m_reason, m_message, now
        )

    if request.annotations.get(PROMOTE_ANNOTATION) == "now":
        return decide(
            Action.PROMOTE, "annotation", "PromoteRequested", f"annotation {PROMOTE_ANNOTATION}=now"
        )
    if previous.decided_at is not None:
        elapsed = (now - previous.decided_at).total_seconds()
        if elapsed < thresholds.cooldown_seconds:
            return decide(
                Action.NONE,
                None,
                "CoolingDown",
                f"last decision {elapsed:.0f}s ago; cooldown is {thresholds.cooldown_seconds:.0f}s",
            )
    if request.engine == "postgres":
        return decide(Action.PROMOTE, "engine", "EngineRequested", "spec.engine is postgres")
    held = [c for c in criteria if c.sustained]
    if not available:
        # Declared criteria (replicas) still recommend; metric ones are unknown, not "false".
        held = [c for c in held if c.name not in METRIC_CRITERIA]
    if not held:
        if not available:
            return decide(Action.NONE, None, "MetricsUnavailable", m_message)
        return decide(Action.NONE, None, "NoCriterionSustained", "no criterion is sustained")
    names = ", ".join(c.name for c in held)
    if request.policy == "auto":
        return decide(Action.PROMOTE, "criteria", "CriteriaSustained", f"sustained: {names}")
    return decide(
        Action.RECOMMEND,
        "criteria",
        "CriteriaSustained",
        f"sustained: {names}; policy manual: annotate {PROMOTE_ANNOTATION}=now to promote",
    )


def queries(target: Target, thresholds: Thresholds) -> dict[str, str]:
    """The PromQL of each metric criterion for `target`."""
    r = f"[{int(thresholds.rate_interval_seconds)}s]"
    return {
        "lockWaitP95": (
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(liteshift_lock_wait_seconds_bucket{target.selector()}{r})))"
        ),
        "writeLatencyP99": (
            "histogram_quantile(0.99, sum by (le) (rate(liteshift_query_duration_seconds_bucket"
            f"{target.selector(_WRITE)}{r})))"
        ),
        "busyErrors": f"sum(rate(liteshift_busy_errors_total{target.selector()}{r}))",
        # min_over_time: "held" must hold between samples too, and one missed scrape (a
        # staleness marker) must not open a gap in the window.
        "databaseSize": f"max(min_over_time(liteshift_database_size_bytes{target.selector()}{r}))",
    }


def sustained_over(
    samples: tuple[tuple[float, float], ...],
    threshold: float,
    start: float,
    end: float,
    step: float,
) -> tuple[bool, float | None]:
    """(held at every step from start to end, the first time of the current unbroken run).

    NaN (a quantile of no observations) counts as not above the threshold.
    """
    by_time = {round(ts, 3): value for ts, value in samples}
    expected = [round(start + i * step, 3) for i in range(int((end - start) / step + 1e-9) + 1)]
    run_start: float | None = None
    for ts in expected:
        value = by_time.get(ts)
        if value is not None and not math.isnan(value) and value > threshold:
            if run_start is None:
                run_start = ts
        else:
            run_start = None
    held = run_start is not None and run_start == expected[0]
    return held, run_start


def _metric_criteria(
    target: Target,
    thresholds: Thresholds,
    prometheus: PrometheusAPI | None,
    now: datetime,
    previous: Previous,
) -> tuple[list[CriterionResult], bool, str, str]:
    limits: dict[str, float | None] = {
        "lockWaitP95": thresholds.lock_wait_p95_seconds,
        "writeLatencyP99": thresholds.write_latency_p99_seconds,
        "busyErrors": thresholds.busy_errors_per_second,
        "databaseSize": (
            None
            if thresholds.database_size_bytes is None
            else float(thresholds.database_size_bytes)
        ),
    }
    promql = queries(target, thresholds)
    results: list[CriterionResult] = []
    if prometheus is None:
        for name in METRIC_CRITERIA:
            results.append(
                CriterionResult(
                    name, promql[name], None, limits[name], False, False, None, "no Prometheus"
                )
            )
        return results, False, "NoPrometheus", "no promotion.prometheus.url is configured"
    step = thresholds.step_seconds
    end = math.floor(now.timestamp() / step) * step
    start = end - math.floor(thresholds.window_seconds / step) * step
    missing: list[str] = []
    for name in METRIC_CRITERIA:
        threshold = limits[name]
        if threshold is None:
            results.append(
                CriterionResult(name, promql[name], None, None, False, False, None, "disabled")
            )
            continue
        try:
            series = prometheus.query_range(promql[name], start, end, step)
        except MetricsUnavailable as exc:
            results.append(
                CriterionResult(name, promql[name], None, threshold, False, False, None, str(exc))
            )
            return [*results, *_rest(name, promql, limits)], False, exc.reason, str(exc)
        results.append(_judge(name, promql[name], series, threshold, start, end, step, previous,
                              thresholds.hysteresis))  # fmt: skip
        if not series or not series[0].samples:
            missing.append(name)
    if missing:
        return (
            results,
            False,
            "NoData",
            f"no data in Prometheus for {', '.join(missing)} of datastore "
            f"{target.namespace}/{target.datastore} (is the sidecar scraped?)",
        )
    return results, True, "QueriesAnswered", "every criterion query returned data"


def _judge(  # noqa: PLR0917 - one private call site, every value is needed
    name: str,
    query: str,
    series: list[Series],
    threshold: float,
    start: float,
    end: float,
    step: float,
    previous: Previous,
    hysteresis: float,
) -> CriterionResult:
    samples: tuple[tuple[float, float], ...] = series[0].samples if series else ()
    if not samples:
        return CriterionResult(name, query, None, threshold, False, False, None, "no data")
    # Hysteresis: a criterion that held last time keeps holding down to a lower bar.
    effective = threshold * (1 - hysteresis) if name in previous.sustained else threshold
    held, run_start = sustained_over(samples, effective, start, end, step)
    last_ts, observed = samples[-1]
    met = last_ts >= end - 1e-6 and not math.isnan(observed) and observed > effective
    since = datetime.fromtimestamp(run_start, UTC) if run_start is not None else None
    if held:
        message = f"above {effective:g} at every step of the window"
    elif met:
        message = (
            f"above {effective:g} since {_iso(since) if since else 'now'}, window not complete"
        )
    else:
        message = f"not above {effective:g}"
    return CriterionResult(name, query, observed, threshold, met, held, since, message)


def _rest(
    failed: str, promql: dict[str, str], limits: Mapping[str, float | None]
) -> list[CriterionResult]:
    after = METRIC_CRITERIA[METRIC_CRITERIA.index(failed) + 1 :]
    return [
        CriterionResult(n, promql[n], None, limits[n], False, False, None, "not evaluated")
        for n in after
    ]


def _declared_criteria(request: Request) -> tuple[CriterionResult, ...]:
    scale = request.replicas > 1
    needs = request.engine == "postgres"
    return (
        CriterionResult(
            "horizontalScale",
            "",
            float(request.replicas),
            1.0,
            scale,
            scale,
            None,
            f"spec.replicas is {request.replicas}",
        ),
        CriterionResult(
            "operationalNeeds",
            "",
            1.0 if needs else 0.0,
            None,
            needs,
            needs,
            None,
            f"spec.engine is {request.engine}",
        ),
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
