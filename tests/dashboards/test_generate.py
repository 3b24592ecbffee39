"""dashboards/generate.py: the committed JSON is current, complete and loads into Grafana's models.

"Imports into Grafana's schema" is checked with grafana-foundation-sdk's models, generated from
Grafana's own schema (the dashboard kind and each panel plugin's options): decoding the JSON and
encoding it back must give the same JSON (a key the schema does not know, or a required field
missing, changes the result), and every decoded field must have its declared type (enum values
included), checked against the models' type hints. This is not Grafana itself: no Grafana runs
here.
"""

from __future__ import annotations

import enum
import json
import types
import typing
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
    "liteshift_cross_store_write_failures_total",
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


def type_errors(value: Any, hint: Any, path: str) -> list[str]:
    """Where `value` does not have the type `hint` (a model field's annotation) says."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        options = [arg for arg in args if arg is not type(None)]
        # A model matching one member by class is checked against that member alone (errors
        # then point inside it, not at the whole union).
        classes = [arg for arg in options if isinstance(arg, type) and isinstance(value, arg)]
        if len(options) == 1 or classes:
            return type_errors(value, (classes or options)[0], path)
        tries = [type_errors(value, arg, path) for arg in options]
        return [] if any(not t for t in tries) else [f"{path}: {value!r} is none of {hint}"]
    if hint is type(None):
        return [] if value is None else [f"{path}: {value!r} is not null"]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} not in {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [
            e for i, item in enumerate(value) for e in type_errors(item, args[0], f"{path}[{i}]")
        ]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        return [e for k, item in value.items() for e in type_errors(item, args[1], f"{path}.{k}")]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = {member.value for member in hint}
        return [] if value in allowed else [f"{path}: {value!r} not one of {sorted(allowed)}"]
    if hint is bool:
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean"]
    if hint in (int, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not a number"]
    if hint is str:
        return [] if isinstance(value, str) else [f"{path}: {value!r} is not a string"]
    if type(value).__module__.startswith("grafana_foundation_sdk.models"):
        if isinstance(hint, type) and hint is not object and not isinstance(value, hint):
            return [f"{path}: {type(value).__name__} is not {hint.__name__}"]
        return model_errors(value, path)
    if hint is object or hint is Any:
        return []
    return [f"{path}: {value!r} is not {hint}"]


def model_errors(obj: Any, path: str) -> list[str]:
    hints = typing.get_type_hints(type(obj))
    return [
        e
        for name, hint in hints.items()
        for e in type_errors(getattr(obj, name), hint, f"{path}.{name}")
    ]


def test_every_field_has_the_type_grafanas_schema_declares(board: dict[str, Any]) -> None:
    plugins.register_default_plugins()
    assert model_errors(model.Dashboard.from_json(board), "dashboard") == []


def test_type_check_notices_a_bad_enum_value(board: dict[str, Any]) -> None:
    plugins.register_default_plugins()
    graph = next(p for p in board["panels"] if p["type"] == "timeseries")
    legend = {**graph["options"]["legend"], "displayMode": "sideways"}
    broken = {**board, "panels": [{**graph, "options": {**graph["options"], "legend": legend}}]}
    errors = model_errors(model.Dashboard.from_json(broken), "dashboard")
    assert len(errors) == 1
    assert "options.legend.display_mode: 'sideways' not one of" in errors[0]


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
