"""crds/datastores.liteshift.io.yaml: structural, valid, and in step with the operator's model."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from liteshift.operator.model import Datastore, DatastoreSpec, InvalidSpecError
from tests.crds.schema import (
    CRDS,
    ROOT,
    apply_defaults,
    cel_rules,
    evaluate_cel,
    load_crd,
    structural_problems,
    validate,
    version_schema,
    walk,
)


def cr(spec: dict[str, Any], name: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "liteshift.io/v1alpha1",
        "kind": "Datastore",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": spec,
    }


def examples(kind: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc["kind"] == kind]
    return found


@pytest.mark.parametrize("kind", sorted(CRDS))
@pytest.mark.parametrize("version", ["1.30", "1.37"])
def test_crd_validates_as_apiextensions_v1(kind: str, version: str) -> None:
    kubernetes_validate.validate(load_crd(kind), version, strict=True)


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_crd_schema_is_structural(kind: str) -> None:
    assert structural_problems(version_schema(load_crd(kind))) == []


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_printer_columns_point_at_schema_fields(kind: str) -> None:
    (version,) = load_crd(kind)["spec"]["versions"]
    paths = {path for path, _ in walk(version["schema"]["openAPIV3Schema"])}
    for column in version["additionalPrinterColumns"]:
        json_path = column["jsonPath"].split("[")[0]
        if json_path.startswith(".metadata"):
            continue
        assert json_path in paths, column


def test_datastore_printer_columns_and_names() -> None:
    crd = load_crd("Datastore")
    (version,) = crd["spec"]["versions"]
    names = [column["name"] for column in version["additionalPrinterColumns"]]
    assert names == ["Engine", "Phase", "Ready", "Size", "Last Backup", "Age"]
    assert version["subresources"] == {"status": {}}
    assert "ds" in crd["spec"]["names"]["shortNames"]


def test_model_defaults_equal_crd_defaults() -> None:
    # What the API server fills in and what the operator assumes must be the same spec.
    schema = version_schema(load_crd("Datastore"))
    defaulted = apply_defaults(schema, cr({}))["spec"]
    assert DatastoreSpec.model_validate(defaulted) == DatastoreSpec.model_validate({})
    # …and every default in the CRD is set in the defaulted object (none forgotten).
    spec_schema = schema["properties"]["spec"]
    for path, node in walk(spec_schema):
        if "default" in node and "[]" not in path and "{}" not in path:
            *parents, leaf = path.strip(".").split(".")
            parent: Any = defaulted
            for part in parents:
                parent = parent.get(part) if isinstance(parent, dict) else None
            if parent is None:
                continue  # under an optional object without a default (postgres.external)
            assert leaf in parent, path
            assert parent[leaf] == node["default"] or isinstance(node["default"], dict), path


GOOD = [
    {},
    {"replicas": 3, "engine": "postgres", "postgres": {"mode": "managed"}},
    {"replicas": 2, "promotion": {"policy": "manual"}},
    {"sqlite": {"storage": {"size": 1073741824}}},
    {"backup": {"schedule": "@hourly", "retention": {"maxAge": "30d"}}},
    {
        "postgres": {"mode": "external", "external": {"dsnSecretRef": {"name": "pg"}}},
        "media": {"enabled": True},
    },
    {"promotion": {"policy": "auto", "prometheus": {"url": "http://prom:9090"}, "window": "1h30m"}},
    {"resources": {"requests": {"cpu": "0.5", "memory": "256Mi"}, "limits": {"cpu": 2}}},
]

BAD = [
    ({"engine": "mysql"}, "engine"),
    ({"replicas": 0}, "replicas"),
    ({"sqlite": {"storage": {"size": "lots"}}}, "size"),
    ({"sqlite": {"synchronous": "OFF"}}, "synchronous"),
    ({"backup": {"schedule": "every day"}}, "schedule"),
    ({"promotion": {"window": "10 minutes"}}, "window"),
    ({"promotion": {"prometheus": {"url": "prom:9090"}}}, "url"),
    ({"reclaimPolicy": "Recycle"}, "reclaimPolicy"),
    ({"resources": {"requests": {"cpu": "fast"}}}, "cpu"),
    ({"unknownField": True}, "unknownField"),
    ({"auth": {"secretRef": {"name": "Not_A_Name"}}}, "name"),
    # The CEL rules, one sample each.
    ({"replicas": 3, "promotion": {"policy": "off"}}, "replicas > 1 needs Postgres"),
    ({"postgres": {"mode": "external"}}, "requires postgres.external.dsnSecretRef"),
    ({"media": {"enabled": True}}, "media.enabled requires postgres.mode"),
    ({"promotion": {"policy": "auto"}}, "requires promotion.prometheus.url"),
]


@pytest.mark.parametrize("spec", GOOD, ids=[str(i) for i in range(len(GOOD))])
def test_good_samples_pass_schema_cel_and_model(spec: dict[str, Any]) -> None:
    assert validate("Datastore", cr(spec)) == []
    Datastore.parse(cr(spec))


@pytest.mark.parametrize("spec,expected", BAD, ids=[expected for _, expected in BAD])
def test_bad_samples_fail_schema_or_cel_and_model(spec: dict[str, Any], expected: str) -> None:
    problems = validate("Datastore", cr(spec))
    assert problems, spec
    assert any(expected in problem for problem in problems), problems
    with pytest.raises(InvalidSpecError) as raised:
        Datastore.parse(cr(spec))
    assert expected in str(raised.value)


def test_every_cel_rule_has_a_failing_sample() -> None:
    schema = version_schema(load_crd("Datastore"))
    messages = [rule["message"] for _, rule, _ in cel_rules(schema)]
    assert len(messages) == 4
    for message in messages:
        assert any(
            expected in message for _, expected in BAD if "requires" in expected or ">" in expected
        ), message


def test_cel_rules_and_model_agree_on_a_grid() -> None:
    # Every combination of the fields the rules span: CEL (cel-python) and the model must
    # accept and refuse the same specs.
    schema = version_schema(load_crd("Datastore"))
    for replicas in (1, 3):
        for engine in ("sqlite", "postgres"):
            for policy in ("auto", "manual", "off"):
                for mode in ("none", "managed", "external"):
                    for media in (False, True):
                        for url in (None, "http://prom:9090"):
                            promotion: dict[str, Any] = {"policy": policy}
                            if url:
                                promotion["prometheus"] = {"url": url}
                            spec = {
                                "replicas": replicas,
                                "engine": engine,
                                "promotion": promotion,
                                "postgres": {"mode": mode},
                                "media": {"enabled": media},
                            }
                            defaulted = apply_defaults(schema, cr(spec))["spec"]
                            cel_ok = all(
                                evaluate_cel(rule["rule"], defaulted)
                                for _, rule, _ in cel_rules(schema)
                            )
                            try:
                                Datastore.parse(cr(spec))
                                model_ok = True
                            except InvalidSpecError:
                                model_ok = False
                            assert cel_ok == model_ok, spec


def test_examples_are_valid() -> None:
    datastores = examples("Datastore")
    assert len(datastores) == 3
    for doc in datastores:
        assert validate("Datastore", doc) == [], doc["metadata"]["name"]
        Datastore.parse(doc)


def test_datastore_backup_samples() -> None:
    (backup,) = examples("DatastoreBackup")
    assert validate("DatastoreBackup", backup) == []
    bad = {**backup, "spec": {"datastore": "Billing!"}}
    assert any("datastore" in p for p in validate("DatastoreBackup", bad))
    missing = {**backup, "spec": {}}
    assert any("datastore" in p for p in validate("DatastoreBackup", missing))
    changed = {**backup, "spec": {**backup["spec"], "verify": "quick"}}
    assert any("immutable" in p for p in validate("DatastoreBackup", changed, old=backup))
    assert validate("DatastoreBackup", backup, old=backup) == []


def test_name_length_is_limited() -> None:
    with pytest.raises(InvalidSpecError, match="longer than 52"):
        Datastore.parse(cr({}, name="a" * 53))
