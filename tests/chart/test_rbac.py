"""The chart's RBAC is exactly what the operator's code uses: sufficient and minimal.

The operator's own API calls all go through `liteshift.operator.kube.Kube._call`, which refuses
any (group, resource, verb) missing from `kube.PERMISSIONS`; kopf's needs are in
`kube.KOPF_PERMISSIONS`. These tests hold that table to the code (no other module reaches the
API; every resource kopf handles is covered) and the rendered ClusterRole to the table.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import kopf
import pytest

import liteshift.operator.handlers  # noqa: F401 - registers the handlers with kopf
from liteshift.operator import kube
from tests.chart.helm import ROOT, by_kind, one, render

Triple = tuple[str, str, str]

OPERATOR = ROOT / "liteshift" / "operator"


def triples(table: tuple[tuple[str, str, tuple[str, ...]], ...]) -> set[Triple]:
    return {(group, resource, verb) for group, resource, verbs in table for verb in verbs}


def rule_triples(rules: list[dict[str, Any]]) -> set[Triple]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def required() -> set[Triple]:
    return triples(kube.PERMISSIONS) | triples(kube.KOPF_PERMISSIONS)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_only_kube_module_talks_to_the_api() -> None:
    # Anything else importing a Kubernetes client would make calls PERMISSIONS does not see.
    # (Plain HTTP clients are fine: the operator calls each sidecar's admin API with them.)
    clients = {"kubernetes", "kubernetes_asyncio", "pykube", "lightkube"}
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(OPERATOR.rglob("*.py"))
        if path != OPERATOR / "kube.py" and imported_modules(path) & clients
    ]
    assert offenders == []


def test_kube_resources_are_all_declared() -> None:
    declared = {(group, resource) for group, resource, _ in kube.PERMISSIONS}
    used = {(res.group, res.plural) for res in kube.RESOURCES.values()}
    assert used == declared


def test_verbs_kube_calls_are_declared() -> None:
    # Every `self._call("<verb>", ...)` in kube.py names a verb some PERMISSIONS row holds.
    tree = ast.parse((OPERATOR / "kube.py").read_text())
    called = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "_call"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    declared = {verb for _, _, verbs in kube.PERMISSIONS for verb in verbs}
    assert called == declared


def kopf_selectors() -> set[tuple[str, str]]:
    # kopf has no public listing of its registry; these are the registries `@kopf.on.*` fill.
    registry: Any = kopf.get_default_registry()
    found: set[tuple[str, str]] = set()
    for part in (registry._changing, registry._watching, registry._spawning, registry._indexing):
        for handler in part.get_all_handlers():
            selector = handler.selector
            if selector is not None:
                found.add((selector.group or "", selector.any_name or ""))
    return found


def test_every_resource_kopf_handles_is_watchable_and_patchable() -> None:
    selectors = kopf_selectors()
    assert selectors, "no kopf handlers registered: the import above went wrong"
    granted = triples(kube.KOPF_PERMISSIONS)
    for group, plural in selectors:
        for verb in ("list", "watch", "patch"):
            assert (group, plural, verb) in granted, (
                f"kopf handles {group}/{plural}: add {verb!r} to kube.KOPF_PERMISSIONS"
            )
        # Status (conditions, phase) is written through the status subresource.
        assert (group, f"{plural}/status", "patch") in granted


# Cluster-scoped resources among those the operator uses (a Kubernetes fact: they cannot go into
# a namespaced Role).
CLUSTER_SCOPED = {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}
WATCHED = ["apps", "shop"]


def namespaced_required() -> set[Triple]:
    return {t for t in required() if (t[0], t[1]) not in CLUSTER_SCOPED}


def assert_no_wildcards(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule


@pytest.fixture(scope="module")
def cluster_role() -> dict[str, Any]:
    return one(render(), "ClusterRole")


def test_cluster_role_is_sufficient(cluster_role: dict[str, Any]) -> None:
    missing = required() - rule_triples(cluster_role["rules"])
    assert missing == set(), "add these to charts/liteshift/templates/_helpers.tpl's rules"


def test_cluster_role_is_minimal(cluster_role: dict[str, Any]) -> None:
    extra = rule_triples(cluster_role["rules"]) - required()
    assert extra == set()
    assert_no_wildcards(cluster_role["rules"])


def test_namespaced_mode_splits_the_same_rules(tmp_path: Path) -> None:
    objects = render({"operator": {"watchNamespaces": WATCHED}}, tmp_path)
    cluster = rule_triples(one(objects, "ClusterRole")["rules"])
    assert cluster == required() - namespaced_required()
    roles = {role["metadata"]["namespace"]: role for role in by_kind(objects, "Role")}
    assert sorted(roles) == WATCHED
    for role in roles.values():
        assert rule_triples(role["rules"]) == namespaced_required()
        assert_no_wildcards(role["rules"])
    bindings = {b["metadata"]["namespace"]: b for b in by_kind(objects, "RoleBinding")}
    assert sorted(bindings) == WATCHED
    account = one(objects, "ServiceAccount")["metadata"]
    for namespace, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[namespace]["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]
    args = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace=")] == [
        f"--namespace={namespace}" for namespace in WATCHED
    ]


def test_rbac_can_be_left_to_the_cluster_admin(tmp_path: Path) -> None:
    objects = render({"rbac": {"create": False}}, tmp_path)
    kinds = {obj["kind"] for obj in objects}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def test_binding_grants_the_role_to_the_operator_service_account() -> None:
    objects = render()
    binding = one(objects, "ClusterRoleBinding")
    account = one(objects, "ServiceAccount")
    deployment = one(objects, "Deployment")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": one(objects, "ClusterRole")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    # No namespaced Role sneaks in extra rights.
    assert by_kind(objects, "Role") == [] and by_kind(objects, "RoleBinding") == []
