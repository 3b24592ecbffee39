"""charts/liteshift rendered by the real helm binary, for a matrix of values.

Every Kubernetes object validates strictly against the 1.30 and 1.37 OpenAPI schemas
(kubernetes-validate). The PodMonitor is a Prometheus Operator custom resource those schemas do
not know: it is checked against the fields of monitoring.coreos.com/v1 it uses (see below).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from liteshift import __version__
from liteshift.operator.image import BUILTIN_IMAGE, SIDECAR_IMAGE_ENV
from tests.chart.helm import CHART, NAMESPACE, ROOT, HelmFailed, by_kind, lint, one, render

PROMETHEUS_OPERATOR = "monitoring.coreos.com/v1/PodMonitor"

CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "monitoring-on": {"monitoring": {"podMonitor": {"enabled": "true", "labels": {"a": "b"}}}},
    "monitoring-off": {"monitoring": {"podMonitor": {"enabled": False}}},
    "dashboards-off": {"dashboards": {"enabled": False}},
    "dashboards-elsewhere": {
        "dashboards": {"namespace": "grafana", "annotations": {"grafana_folder": "liteshift"}}
    },
    "custom-image": {
        "image": {"repository": "registry.example:5000/me/liteshift", "tag": "dev-1"},
        "imagePullSecrets": [{"name": "regcred"}],
    },
    "resources": {
        "operator": {
            "resources": {
                "requests": {"cpu": "100m", "memory": "200Mi"},
                "limits": {"cpu": 1, "memory": "1Gi"},
            }
        }
    },
    "existing-service-account": {"serviceAccount": {"create": False, "name": "ops"}},
    "namespaced": {"operator": {"watchNamespaces": ["apps", "shop"]}},
    "no-rbac": {"rbac": {"create": False}},
    "scheduling": {
        "operator": {
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "system-cluster-critical",
            "podAnnotations": {"example.com/owner": "platform"},
            "extraEnv": [{"name": "TZ", "value": "UTC"}],
            "logFormat": "text",
            "driftInterval": 30,
        }
    },
}


def values_file_case(name: str, tmp_path: Path) -> list[dict[str, Any]]:
    return render(CASES[name], tmp_path, api_versions=(PROMETHEUS_OPERATOR,))


@pytest.mark.parametrize("case", sorted(CASES))
def test_lint_strict(case: str, tmp_path: Path) -> None:
    assert "0 chart(s) failed" in lint(CASES[case], tmp_path)


# The PodMonitor fields of monitoring.coreos.com/v1 the chart uses, with their types there.
POD_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {
                                "type": "string",
                                "pattern": "^(0|(([0-9]+)(ms|s|m|h))+)$",
                            },
                            "scrapeTimeout": {
                                "type": "string",
                                "pattern": "^(0|(([0-9]+)(ms|s|m|h))+)$",
                            },
                            "honorLabels": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}


def validate(obj: dict[str, Any], version: str) -> None:
    if obj["kind"] == "PodMonitor":
        import jsonschema

        jsonschema.validate(obj, POD_MONITOR_SCHEMA)
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]},
            version,
            strict=True,
        )
        return
    kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("version", ["1.30", "1.37"])
def test_every_object_validates(case: str, version: str, tmp_path: Path) -> None:
    objects = render(CASES[case], tmp_path, api_versions=(PROMETHEUS_OPERATOR,),
                     kube_version=f"{version}.0")  # fmt: skip
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "CustomResourceDefinition"} <= kinds
    for obj in objects:
        # The CRDs do not depend on values (and are slow to validate): checked once, by default.
        if obj["kind"] != "CustomResourceDefinition" or case == "defaults":
            validate(obj, version)


def test_rendered_kinds_by_default() -> None:
    kinds = sorted(obj["kind"] for obj in render())
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Deployment",
        "ServiceAccount",
    ]


def test_crds_are_the_repository_crds_byte_for_byte() -> None:
    # The chart's crds/ holds symlinks to crds/ (helm packages their content): one source of
    # truth. This fails if someone replaces a link with a stale copy or adds a CRD on one side.
    ours = {path.name: path.read_bytes() for path in (ROOT / "crds").glob("*.yaml")}
    chart = {path.name: path.read_bytes() for path in (CHART / "crds").glob("*.yaml")}
    assert chart == ours, "charts/liteshift/crds drifted from crds/: link crds/*.yaml there"


def test_rendered_crds_are_the_repository_crds() -> None:
    rendered = by_kind(render(), "CustomResourceDefinition")
    ours = [yaml.safe_load(path.read_text()) for path in sorted((ROOT / "crds").glob("*.yaml"))]
    key = lambda crd: crd["metadata"]["name"]  # noqa: E731
    assert sorted(rendered, key=key) == sorted(ours, key=key)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {var["name"]: var["value"] for var in container["env"]}


def test_default_image_is_the_operators_default_sidecar_image() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    assert chart["version"] == __version__
    (container,) = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == BUILTIN_IMAGE
    assert env_of(container)[SIDECAR_IMAGE_ENV] == BUILTIN_IMAGE


def test_custom_image(tmp_path: Path) -> None:
    # The chart's image reaches the operator as its default sidecar image (what the operator
    # does with it: tests/operator/test_image.py).
    deployment = one(values_file_case("custom-image", tmp_path), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example:5000/me/liteshift:dev-1"
    assert env_of(pod["containers"][0])[SIDECAR_IMAGE_ENV] == (
        "registry.example:5000/me/liteshift:dev-1"
    )
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]


def test_image_tag_alone_keeps_the_repository(tmp_path: Path) -> None:
    (container,) = one(render({"image": {"tag": "1.2.3-rc1"}}, tmp_path), "Deployment")["spec"][
        "template"
    ]["spec"]["containers"]
    assert container["image"] == "ghcr.io/liteshift/liteshift:1.2.3-rc1"
    assert env_of(container)[SIDECAR_IMAGE_ENV] == container["image"]


def test_operator_pod_is_hardened() -> None:
    deployment = one(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert set(container["resources"]) == {"requests", "limits"}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    assert container["args"][0] == "operator"
    assert "--log-format=json" in container["args"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    # kopf runs without peering: a second replica would handle every event twice.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_resources_and_scheduling_values(tmp_path: Path) -> None:
    pod = one(values_file_case("resources", tmp_path), "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == CASES["resources"]["operator"]["resources"]
    pod = one(render(CASES["scheduling"], tmp_path), "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert {"name": "TZ", "value": "UTC"} in container["env"]
    assert {"name": "LITESHIFT_DRIFT_INTERVAL", "value": "30"} in container["env"]
    assert "--log-format=text" in container["args"]


def test_existing_service_account(tmp_path: Path) -> None:
    objects = render(CASES["existing-service-account"], tmp_path)
    assert by_kind(objects, "ServiceAccount") == []
    assert one(objects, "ClusterRoleBinding")["subjects"][0]["name"] == "ops"
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"


def test_existing_service_account_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(HelmFailed, match=r"serviceAccount\.name is required"):
        render({"serviceAccount": {"create": False}}, tmp_path)


@pytest.mark.parametrize(
    ("setting", "api_present", "expected"),
    [
        ("auto", False, False),
        ("auto", True, True),
        ("true", False, True),
        (True, False, True),
        ("false", True, False),
        (False, True, False),
    ],
)
def test_pod_monitor_switch(
    setting: Any, api_present: bool, expected: bool, tmp_path: Path
) -> None:
    objects = render(
        {"monitoring": {"podMonitor": {"enabled": setting}}},
        tmp_path,
        api_versions=(PROMETHEUS_OPERATOR,) if api_present else (),
    )
    assert len(by_kind(objects, "PodMonitor")) == int(expected)


def test_pod_monitor_selects_the_sidecar_pods_the_operator_builds(tmp_path: Path) -> None:
    from liteshift.operator.model import Datastore
    from liteshift.operator.specs.sidecar import build_statefulset

    namespaced = {**CASES["namespaced"], **CASES["monitoring-on"]}
    namespaced["operator"] = CASES["namespaced"]["operator"]
    scoped = one(render(namespaced, tmp_path), "PodMonitor")
    assert scoped["spec"]["namespaceSelector"] == {"matchNames": ["apps", "shop"]}
    monitor = one(render(CASES["monitoring-on"], tmp_path), "PodMonitor")
    assert monitor["metadata"]["labels"]["a"] == "b"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["honorLabels"] is True  # keep the sidecar's own `namespace` label
    datastore = Datastore.parse(
        {
            "apiVersion": "liteshift.io/v1alpha1",
            "kind": "Datastore",
            "metadata": {"name": "notes", "namespace": "apps", "uid": "u-1", "generation": 1},
            "spec": {},
        }
    )
    pod = build_statefulset(datastore)["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {port["name"]: port for port in pod["spec"]["containers"][0]["ports"]}
    assert endpoint["port"] in ports
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == endpoint["path"]


def test_dashboards_config_map() -> None:
    config_map = one(render(), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == NAMESPACE
    generated = sorted((ROOT / "dashboards").glob("*.json"))
    assert generated, "dashboards/*.json missing: run dashboards/generate.py"
    assert sorted(config_map["data"]) == [path.name for path in generated]
    for path in generated:
        assert json.loads(config_map["data"][path.name]) == json.loads(path.read_text())


def test_dashboards_copy_in_chart_matches_generated() -> None:
    ours = {path.name: path.read_bytes() for path in (ROOT / "dashboards").glob("*.json")}
    chart = {path.name: path.read_bytes() for path in (CHART / "dashboards").glob("*.json")}
    assert chart == ours, "charts/liteshift/dashboards drifted: link dashboards/*.json there"


def test_dashboards_off(tmp_path: Path) -> None:
    assert by_kind(render(CASES["dashboards-off"], tmp_path), "ConfigMap") == []


BAD_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown-top-level-key": ({"replicas": 2}, "additional properties 'replicas' not allowed"),
    "unknown-nested-key": ({"operator": {"cpu": 1}}, "additional properties 'cpu' not allowed"),
    "pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "quantity": (
        {"operator": {"resources": {"requests": {"memory": "lots"}}}},
        "/operator/resources/requests/memory",
    ),
    "monitor-switch": ({"monitoring": {"podMonitor": {"enabled": "maybe"}}}, "/monitoring"),
    "log-format": ({"operator": {"logFormat": "xml"}}, "/operator/logFormat"),
    "namespace-name": ({"operator": {"watchNamespaces": ["Apps"]}}, "/operator/watchNamespaces"),
    "drift-interval": ({"operator": {"driftInterval": 0.5}}, "/operator/driftInterval"),
    "privileged-port": ({"operator": {"healthPort": 80}}, "/operator/healthPort"),
    "root-user": ({"operator": {"runAsUser": 0}}, "/operator/runAsUser"),
    "label-type": ({"dashboards": {"labels": {"grafana_dashboard": 1}}}, "/dashboards/labels"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_schema_rejects_bad_values(case: str, tmp_path: Path) -> None:
    values, message = BAD_VALUES[case]
    with pytest.raises(HelmFailed) as template_failure:
        render(values, tmp_path)
    assert "values don't meet the specifications of the schema" in template_failure.value.output
    assert message in template_failure.value.output
    with pytest.raises(HelmFailed) as lint_failure:
        lint(values, tmp_path)
    assert message in lint_failure.value.output


def test_notes_render() -> None:
    from tests.chart.helm import RELEASE, helm

    out = helm("install", RELEASE, str(CHART), "--dry-run=client", "--namespace", NAMESPACE)
    assert "kubectl apply -f examples/datastore.yaml" in out
    assert f"rollout status deployment/{RELEASE}" in out


def test_packaged_chart_carries_the_linked_files(tmp_path: Path) -> None:
    # crds/ and dashboards/ in the chart are symlinks: `helm package` must store their content.
    import tarfile

    from tests.chart.helm import RELEASE, helm

    helm("package", str(CHART), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("liteshift-*.tgz")
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        for name in ("crds/datastores.liteshift.io.yaml", "dashboards/liteshift.json"):
            member = members[f"liteshift/{name}"]
            assert member.isfile(), name
            extracted = tar.extractfile(member)
            assert extracted is not None
            source = ROOT / name
            assert extracted.read() == source.read_bytes(), name
    args = ["template", RELEASE, str(archive), "--namespace", NAMESPACE, "--include-crds"]
    from_archive = [doc for doc in yaml.safe_load_all(helm(*args)) if doc]
    assert from_archive == render()
