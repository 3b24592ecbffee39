"""The real API server enforces the Datastore CRD: CEL rules, schema, defaults, status subresource.

kmock's emulator stores whatever JSON it is given; these checks need kube-apiserver.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.kube import Kubectl, api_message

pytestmark = pytest.mark.e2e

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "datastores.liteshift.io.yaml"
GROUP, VERSION, PLURAL = "liteshift.io", "v1alpha1", "datastores"


def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def rule_message(field_path: str) -> str:
    """The message the CRD itself gives for its spec-level CEL rule on `field_path`."""
    for rule in spec_schema()["x-kubernetes-validations"]:
        if rule.get("fieldPath") == field_path:
            return str(rule["message"])
    raise AssertionError(f"the CRD has no spec-level CEL rule with fieldPath {field_path}")


def datastore(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Datastore",
        "metadata": {"name": name},
        "spec": spec,
    }


def create(api_client: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    return result


def test_cel_rule_rejects_replicas_on_sqlite_with_the_crds_message(
    crds: list[str], kubectl: Kubectl, namespace: str
) -> None:
    bad = datastore("too-many", replicas=3, engine="sqlite", promotion={"policy": "off"})
    result = kubectl.run(
        "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(bad), check=False
    )
    assert result.returncode != 0
    assert "is invalid" in result.stderr
    assert rule_message(".replicas") in result.stderr
    # The field the rule names is the one reported, as `kubectl explain` users expect.
    assert "spec.replicas" in result.stderr
    assert kubectl.run("get", "datastores", "-n", namespace, "-o", "name").stdout == ""


def test_same_spec_is_accepted_once_the_rule_holds(
    crds: list[str], api_client: client.ApiClient, namespace: str
) -> None:
    good = datastore("scaled", replicas=3, engine="postgres", promotion={"policy": "off"})
    created = create(api_client, namespace, good)
    assert created["spec"]["replicas"] == 3


def test_schema_rejects_unknown_enum_value_with_the_supported_values(
    crds: list[str], api_client: client.ApiClient, namespace: str
) -> None:
    with pytest.raises(ApiException) as caught:
        create(api_client, namespace, datastore("mysql", engine="mysql"))
    assert caught.value.status == 422
    allowed = spec_schema()["properties"]["engine"]["enum"]
    body = api_message(caught.value)
    assert 'spec.engine: Unsupported value: "mysql"' in body
    for value in allowed:
        assert f'"{value}"' in body


def test_unknown_fields_are_pruned_and_defaults_filled_in_by_the_server(
    crds: list[str], api_client: client.ApiClient, namespace: str
) -> None:
    body = datastore("defaults")
    body["spec"]["notAField"] = "dropped"
    created = create(api_client, namespace, body)
    schema = spec_schema()["properties"]
    assert "notAField" not in created["spec"]
    assert created["spec"]["engine"] == schema["engine"]["default"]
    assert created["spec"]["reclaimPolicy"] == schema["reclaimPolicy"]["default"]
    policy = schema["promotion"]["properties"]["policy"]["default"]
    assert created["spec"]["promotion"]["policy"] == policy


def test_status_is_a_subresource(
    crds: list[str], api_client: client.ApiClient, namespace: str
) -> None:
    api = client.CustomObjectsApi(api_client)
    created = create(api_client, namespace, datastore("status"))
    assert created["metadata"]["generation"] == 1

    # A status written through the main resource is dropped by the server...
    with_status = copy.deepcopy(created)
    with_status["status"] = {"phase": "Ready"}
    replaced = api.replace_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "status", with_status
    )
    assert "status" not in replaced

    # ...and one written through /status does not bump the spec's generation.
    patched = api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "status", {"status": {"phase": "Ready"}}
    )
    assert patched["status"]["phase"] == "Ready"
    assert patched["metadata"]["generation"] == 1

    # The status schema is enforced too.
    with pytest.raises(ApiException) as caught:
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, "status", {"status": {"phase": "Sleeping"}}
        )
    assert caught.value.status == 422
    assert 'status.phase: Unsupported value: "Sleeping"' in api_message(caught.value)
