"""Names, labels and the pod hardening every child shares."""

from __future__ import annotations

from typing import Any

from liteshift.operator.model import API_VERSION, KIND, Datastore, Resources

Manifest = dict[str, Any]

DATASTORE_LABEL = "liteshift.io/datastore"
MANAGED_BY = "liteshift-operator"

# Sidecar and Postgres run as fixed unprivileged users; fsGroup makes the volumes writable.
SIDECAR_UID = 10001
POSTGRES_UID = 999  # the `postgres` user of the official image


def sidecar_name(ds: Datastore) -> str:
    return ds.name


def auth_secret_name(ds: Datastore) -> str:
    """The Secret holding api-token and admin-token: the user's, or the generated one."""
    if ds.spec.auth.secret_ref is not None:
        return ds.spec.auth.secret_ref.name
    return f"{ds.name}-auth"


def postgres_name(ds: Datastore) -> str:
    return f"{ds.name}-postgres"


def selector_labels(ds: Datastore, component: str) -> dict[str, str]:
    """Labels a StatefulSet selects on: immutable after creation, so few and stable."""
    return {
        "app.kubernetes.io/name": "liteshift",
        "app.kubernetes.io/instance": ds.name,
        "app.kubernetes.io/component": component,
    }


def labels(ds: Datastore, component: str) -> dict[str, str]:
    return {
        **selector_labels(ds, component),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        DATASTORE_LABEL: ds.name,
    }


def metadata(ds: Datastore, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": ds.namespace, "labels": labels(ds, component)}


def owner_reference(ds: Datastore) -> dict[str, Any]:
    """The reference that lets Kubernetes garbage-collect a child with its Datastore."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": ds.name,
        "uid": ds.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_security_context(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def volume_claim_template(
    ds: Datastore, name: str, component: str, size: str, storage_class: str | None
) -> Manifest:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    # The labels end up on the PVCs; the delete handler finds them by `liteshift.io/datastore`.
    return {"metadata": {"name": name, "labels": labels(ds, component)}, "spec": spec}


def resources_block(resources: Resources | None, default: Resources) -> dict[str, Any]:
    """A container's `resources`: the user's when they set any request or limit, else `default`."""
    chosen = resources if resources and (resources.requests or resources.limits) else default
    out: dict[str, Any] = {}
    if chosen.requests:
        out["requests"] = dict(chosen.requests)
    if chosen.limits:
        out["limits"] = dict(chosen.limits)
    return out
