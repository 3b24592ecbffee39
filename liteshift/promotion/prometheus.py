"""A minimal client of the Prometheus HTTP API: range queries, with typed failures.

Every failure (connection refused, timeout, HTTP error, PromQL error, a body that is not the
API's JSON) becomes `MetricsUnavailable` with a reason a condition can carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from liteshift.promotion.errors import MetricsUnavailable


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and (unix time, value) samples in time order."""

    labels: dict[str, str]
    samples: tuple[tuple[float, float], ...]


class PrometheusAPI:
    """Range queries against one Prometheus (`url` is the base, e.g. http://prom:9090)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Evaluate `promql` at start, start+step, … end; raises MetricsUnavailable."""
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}"}
        try:
            response = httpx.get(
                f"{self.url}/api/v1/query_range", params=params, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(
                "PrometheusUnreachable", f"Prometheus at {self.url} is unreachable: {exc}"
            ) from exc
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else response.text[:200]
            raise MetricsUnavailable(
                "QueryFailed",
                f"Prometheus at {self.url} answered HTTP {response.status_code} "
                f"to {promql!r}: {detail}",
            )
        data = body.get("data") or {}
        if data.get("resultType") != "matrix":
            raise MetricsUnavailable(
                "QueryFailed", f"{promql!r} returned {data.get('resultType')}, not a range"
            )
        result: list[Series] = []
        for item in data.get("result") or []:
            # Prometheus encodes NaN and ±Inf as "NaN", "+Inf", "-Inf": float() reads them.
            samples = tuple((float(ts), float(raw)) for ts, raw in item.get("values") or [])
            result.append(Series(dict(item.get("metric") or {}), samples))
        return result
