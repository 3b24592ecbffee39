"""dashboards/generate.py: the committed JSON is current, complete and loads into Grafana's models.

"Imports into Grafana's schema" is checked by decoding the JSON with grafana-foundation-sdk's
models (generated from Grafana's own schema) and encoding it back: a key the schema does not
know, or a required field missing, changes the result. Enum values inside panel options are not
checked by that round trip; the structural tests below cover what the dashboard relies on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from dashboards import generate
from dashboards.generate import Thresholds, build, crd_thresholds, expressions, panels
from liteshift.operator.model import Datastore
from liteshift.sidecar.metrics import PROMOTION_STATES

ROOT = Path(__file__).resolve().parents[2]

METRICS = (
    "liteshift_engine_info",
    "liteshift_promotion_state",
    "liteshift_lock_wait_seconds_bucket",
    "liteshift_query_duration_seconds_bucket",
    "liteshift_writes_total",
    "liteshift_busy_errors_total",
    "liteshift_database_size_bytes",
    "liteshift_wal_size_bytes",
    "liteshift_backup_last_success_timestamp_seconds",
)


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "dashboards" / "liteshift.json").read_text())
    return loaded


def test_committed_json_is_what_the_generator_writes(board: dict[str, Any]) -> None:
    assert generate.main(["generate.py", "--check"]) == 0, "run dashboards/generate.py"
    assert board == build()


def test_round_trips_through_grafanas_dashboard_model(board: dict[str, Any]) -> None:
    plugins.register_default_plugins()
    decoded = model.Dashboard.from_json(board)
    assert json.loads(json.dumps(decoded, cls=JSONEncoder)) == board


def test_round_trip_notices_unknown_keys(board: dict[str, Any]) -> None:
    # The check above can fail: a key outside Grafana's schema does not survive it.
    plugins.register_default_plugins()
    broken = {**board, "panels": [{**board["panels"][1], "colour": "red"}]}
    decoded = model.Dashboard.from_json(broken)
    assert json.loads(json.dumps(decoded, cls=JSONEncoder)) != broken


def test_thresholds_are_the_crds_defaults() -> None:
    # The operator's model repeats the CRD defaults; both must agree with what the lines show.
    spec = Datastore.parse(
        {"metadata": {"name": "x", "namespace": "y", "uid": "u", "generation": 1}, "spec": {}}
    ).spec
    limits = crd_thresholds()
    model_limits = spec.promotion.thresholds
    assert limits.lock_wait_p95_seconds == model_limits.lock_wait_p95_seconds
    assert limits.write_latency_p99_seconds == model_limits.write_latency_p99_seconds
    assert limits.busy_errors_per_second == model_limits.busy_errors_per_second
    assert limits.database_size_bytes == 8 * 2**30


def threshold_of(board: dict[str, Any], title: str) -> float:
    (panel,) = [p for p in panels(board) if p["title"] == title]
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["custom"]["thresholdsStyle"] == {"mode": "dashed"}
    base, line = defaults["thresholds"]["steps"]
    assert base["value"] is None
    value: float = line["value"]
    return value


def test_threshold_lines_sit_on_the_panels_they_apply_to(board: dict[str, Any]) -> None:
    limits = crd_thresholds()
    assert threshold_of(board, "Lock wait p50 / p95 / p99") == limits.lock_wait_p95_seconds
    assert threshold_of(board, "Write latency p99") == limits.write_latency_p99_seconds
    assert threshold_of(board, "Busy errors") == limits.busy_errors_per_second
    assert threshold_of(board, "Database and WAL size") == limits.database_size_bytes


def test_threshold_lines_follow_the_given_thresholds() -> None:
    moved = build(Thresholds(0.5, 2.0, 7.0, 1234))
    assert threshold_of(moved, "Lock wait p50 / p95 / p99") == 0.5
    assert threshold_of(moved, "Write latency p99") == 2.0
    assert threshold_of(moved, "Busy errors") == 7.0
    assert threshold_of(moved, "Database and WAL size") == 1234


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8Gi", 8 * 2**30), ("1.5G", 1_500_000_000), ("512", 512), (4096, 4096), ("2Ki", 2048)],
)
def test_quantity_bytes(text: str | int, expected: int) -> None:
    assert generate.quantity_bytes(text) == expected


def test_quantity_bytes_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        generate.quantity_bytes("8 gigs")


def test_every_metric_of_the_contract_is_shown(board: dict[str, Any]) -> None:
    text = "\n".join(expressions(board))
    for metric in METRICS:
        assert metric in text, metric
    assert "time() - " in text  # backup age, not the raw timestamp
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (namespace, datastore, le) " in text


def test_panels_select_on_the_template_variables(board: dict[str, Any]) -> None:
    names = {variable["name"] for variable in board["templating"]["list"]}
    assert {"datasource", "namespace", "datastore"} <= names
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert 'namespace=~"$namespace"' in target["expr"]
            assert 'datastore=~"$datastore"' in target["expr"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)) >= 1


def test_promotion_state_names_come_from_the_gauge(board: dict[str, Any]) -> None:
    (panel,) = [p for p in panels(board) if p["title"] == "Promotion state"]
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    assert mapping["type"] == "value"
    shown = {int(k): v["text"] for k, v in mapping["options"].items()}
    assert shown == dict(enumerate(PROMOTION_STATES))


def test_layout_fits_the_grid_without_overlaps(board: dict[str, Any]) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, panel["title"]
        cells |= area
    assert board["uid"] == generate.UID
