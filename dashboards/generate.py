"""Generate the Grafana dashboard(s) in this directory from code (grafana-foundation-sdk).

    .venv/bin/python dashboards/generate.py          # rewrite dashboards/liteshift.json
    .venv/bin/python dashboards/generate.py --check  # exit 1 when the JSON is stale

Nothing here is typed twice: metric names are the contract of DESIGN.md ("Metrics"), the
promotion states come from `liteshift.sidecar.metrics.PROMOTION_STATES` (the gauge's index), and
the threshold lines are the defaults of `spec.promotion.thresholds` in
crds/datastores.liteshift.io.yaml, so a changed default moves the line with it.
The Helm chart ships this JSON through a symlink (charts/liteshift/dashboards/).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from liteshift.sidecar.metrics import PROMOTION_STATES

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "crds" / "datastores.liteshift.io.yaml"
OUTPUT = ROOT / "dashboards" / "liteshift.json"
UID = "liteshift-datastores"

#: Every series carries these labels; the template variables select on them.
SELECTOR = 'namespace=~"$namespace", datastore=~"$datastore"'
BY = "namespace, datastore"
LEGEND = "{{namespace}}/{{datastore}}"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")

_SUFFIX = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


@dataclass(frozen=True)
class Thresholds:
    """The promotion criteria's default thresholds, as the CRD declares them."""

    lock_wait_p95_seconds: float
    write_latency_p99_seconds: float
    busy_errors_per_second: float
    database_size_bytes: int


def quantity_bytes(value: str | int) -> int:
    """A Kubernetes quantity of the CRD's `databaseSize` pattern (e.g. 8Gi) in bytes."""
    if isinstance(value, int):
        return value
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(f"not a quantity: {value!r}")
    return int(Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""])


def crd_thresholds(path: Path = CRD) -> Thresholds:
    """Read the defaults of `spec.promotion.thresholds` from the Datastore CRD."""
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    fields = spec["properties"]["promotion"]["properties"]["thresholds"]["properties"]
    return Thresholds(
        lock_wait_p95_seconds=float(fields["lockWaitP95Seconds"]["default"]),
        write_latency_p99_seconds=float(fields["writeLatencyP99Seconds"]["default"]),
        busy_errors_per_second=float(fields["busyErrorsPerSecond"]["default"]),
        database_size_bytes=quantity_bytes(fields["databaseSize"]["default"]),
    )


def query(expr: str, legend: str = LEGEND, ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).range()


def quantile(q: float, histogram: str, extra: str = "", by: str = BY) -> str:
    selector = f"{SELECTOR}, {extra}" if extra else SELECTOR
    return (
        f"histogram_quantile({q}, sum by ({by}, le) "
        f"(rate({histogram}_bucket{{{selector}}}[$__rate_interval])))"
    )


def threshold_line(value: float) -> dash.ThresholdsConfig:
    """Field thresholds drawn as a dashed red line at `value` (the promotion threshold)."""
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(
            [model.Threshold(value=None, color="green"), model.Threshold(value=value, color="red")]
        )
    )


def graph(title: str, unit: str, description: str) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .height(8)
        .span(12)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )


def with_threshold(panel: timeseries.Panel, value: float) -> timeseries.Panel:
    return panel.thresholds(threshold_line(value)).thresholds_style(
        common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
    )


def engine_panel() -> stat.Panel:
    return (
        stat.Panel()
        .title("Engine")
        .description("The engine serving each data store (liteshift_engine_info).")
        .datasource(DATASOURCE)
        .with_target(
            query(
                f"max by ({BY}, engine) (liteshift_engine_info{{{SELECTOR}}}) == 1",
                "{{namespace}}/{{datastore}}: {{engine}}",
            )
        )
        .text_mode(common.BigValueTextMode.NAME)
        .color_mode(common.BigValueColorMode.NONE)
        .graph_mode(common.BigValueGraphMode.NONE)
        .height(4)
        .span(12)
    )


def promotion_panel() -> stat.Panel:
    mapping = model.ValueMap(
        options={
            str(index): model.ValueMappingResult(text=name, index=index)
            for index, name in enumerate(PROMOTION_STATES)
        },
    )
    return (
        stat.Panel()
        .title("Promotion state")
        .description(
            "Where the promotion state machine stands (liteshift_promotion_state): "
            + " → ".join(PROMOTION_STATES[:-1])
            + ", or RolledBack."
        )
        .datasource(DATASOURCE)
        .with_target(query(f"max by ({BY}) (liteshift_promotion_state{{{SELECTOR}}})"))
        .mappings([mapping])
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .color_mode(common.BigValueColorMode.NONE)
        .graph_mode(common.BigValueGraphMode.NONE)
        .height(4)
        .span(12)
    )


def lock_wait_panel(limits: Thresholds) -> timeseries.Panel:
    panel = graph(
        "Lock wait p50 / p95 / p99",
        "s",
        "Time a write waited for the writer (liteshift_lock_wait_seconds). The dashed line is "
        "the default promotion threshold for p95 (spec.promotion.thresholds.lockWaitP95Seconds).",
    )
    for ref, q in (("A", 0.5), ("B", 0.95), ("C", 0.99)):
        panel = panel.with_target(
            query(quantile(q, "liteshift_lock_wait_seconds"), f"p{round(q * 100)} {LEGEND}", ref)
        )
    return with_threshold(panel, limits.lock_wait_p95_seconds)


def query_latency_panel() -> timeseries.Panel:
    by = f"{BY}, op, kind"
    return (
        graph(
            "Query latency p95 by operation",
            "s",
            "Duration of each store operation, queueing included "
            "(liteshift_query_duration_seconds), by operation and kind.",
        )
        .with_target(
            query(
                quantile(0.95, "liteshift_query_duration_seconds", by=by),
                "{{op}} ({{kind}}) " + LEGEND,
            )
        )
        .span(24)
    )


def write_latency_panel(limits: Thresholds) -> timeseries.Panel:
    panel = graph(
        "Write latency p99",
        "s",
        'p99 of write operations (liteshift_query_duration_seconds{kind="write"}). The dashed '
        "line is the default promotion threshold (writeLatencyP99Seconds).",
    ).with_target(query(quantile(0.99, "liteshift_query_duration_seconds", 'kind="write"')))
    return with_threshold(panel, limits.write_latency_p99_seconds)


def writes_panel() -> timeseries.Panel:
    return graph(
        "Write throughput",
        "wps",
        "Committed writes per second (liteshift_writes_total).",
    ).with_target(
        query(f"sum by ({BY}) (rate(liteshift_writes_total{{{SELECTOR}}}[$__rate_interval]))")
    )


def busy_panel(limits: Thresholds) -> timeseries.Panel:
    panel = graph(
        "Busy errors",
        "ops",
        "SQLITE_BUSY results per second (liteshift_busy_errors_total). The dashed line is the "
        "default promotion threshold (busyErrorsPerSecond).",
    ).with_target(
        query(f"sum by ({BY}) (rate(liteshift_busy_errors_total{{{SELECTOR}}}[$__rate_interval]))")
    )
    return with_threshold(panel, limits.busy_errors_per_second)


def size_panel(limits: Thresholds) -> timeseries.Panel:
    panel = (
        graph(
            "Database and WAL size",
            "bytes",
            "Size of the primary database (liteshift_database_size_bytes) and of the SQLite "
            "write-ahead log (liteshift_wal_size_bytes). The dashed line is the default "
            "promotion threshold for the database (databaseSize).",
        )
        .with_target(
            query(
                f"max by ({BY}) (liteshift_database_size_bytes{{{SELECTOR}}})",
                f"database {LEGEND}",
                "A",
            )
        )
        .with_target(
            query(f"max by ({BY}) (liteshift_wal_size_bytes{{{SELECTOR}}})", f"WAL {LEGEND}", "B")
        )
    )
    return with_threshold(panel, float(limits.database_size_bytes))


def backup_age_panel() -> timeseries.Panel:
    # The gauge is 0 until a sidecar has seen a verified backup; `> 0` keeps that out of the
    # age (it would read as 56 years).
    return graph(
        "Backup age",
        "s",
        "Time since the last verified backup (time() - "
        "liteshift_backup_last_success_timestamp_seconds); no line: no backup yet.",
    ).with_target(
        query(
            f"time() - max by ({BY}) "
            f"(liteshift_backup_last_success_timestamp_seconds{{{SELECTOR}}} > 0)"
        )
    )


def cross_store_panel() -> timeseries.Panel:
    return graph(
        "Cross-store write failures",
        "ops",
        "Media writes (attachments, extractions) that failed after the primary store accepted "
        "their parent (liteshift_cross_store_write_failures_total); 0 when media is off.",
    ).with_target(
        query(
            f"sum by ({BY}) "
            f"(rate(liteshift_cross_store_write_failures_total{{{SELECTOR}}}[$__rate_interval]))"
        )
    )


def variables() -> list[Any]:
    datasource = dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
    namespace = (
        dash.QueryVariable("namespace")
        .label("Namespace")
        .datasource(DATASOURCE)
        .query("label_values(liteshift_engine_info, namespace)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    datastore = (
        dash.QueryVariable("datastore")
        .label("Datastore")
        .datasource(DATASOURCE)
        .query('label_values(liteshift_engine_info{namespace=~"$namespace"}, datastore)')
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    return [datasource, namespace, datastore]


def build(limits: Thresholds | None = None) -> dict[str, Any]:
    """The dashboard as the JSON object Grafana imports."""
    limits = limits or crd_thresholds()
    board = (
        dash.Dashboard("liteshift: data stores")
        .uid(UID)
        .description(
            "Per data store: engine and promotion state, write contention against the "
            "promotion thresholds, latency, throughput, sizes, backup age and cross-store "
            "write failures."
        )
        .tags(["liteshift", "sqlite", "postgres"])
        .editable()
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .variables(variables())
        .with_row(dash.Row("State"))
        .with_panel(engine_panel())
        .with_panel(promotion_panel())
        .with_row(dash.Row("Write contention (promotion criteria)"))
        .with_panel(lock_wait_panel(limits))
        .with_panel(write_latency_panel(limits))
        .with_panel(busy_panel(limits))
        .with_panel(writes_panel())
        .with_row(dash.Row("Queries"))
        .with_panel(query_latency_panel())
        .with_row(dash.Row("Storage and backups"))
        .with_panel(size_panel(limits).span(8))
        .with_panel(backup_age_panel().span(8))
        .with_panel(cross_store_panel().span(8))
    )
    rendered: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return rendered


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' children included."""
    found: list[dict[str, Any]] = []
    for panel in board.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def expressions(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the panels' queries and of the query variables."""
    exprs = [
        target["expr"]
        for panel in panels(board)
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            exprs.append(str(variable["query"]))
    return exprs


def main(argv: list[str]) -> int:
    text = render(build())
    if argv[1:] == ["--check"]:
        if OUTPUT.read_text() != text:
            print(
                f"{OUTPUT.relative_to(ROOT)} is stale: run dashboards/generate.py", file=sys.stderr
            )
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
