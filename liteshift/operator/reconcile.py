"""Reconcile a Datastore: build → adopt → create-or-patch → observe → status.

Blocking and kopf-free: the handlers run these functions in a thread and turn the returned
`Result` into a status patch and Kubernetes Events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from liteshift.operator import status
from liteshift.operator.kube import Kube, KubeError, Outcome, contains, mutable_part
from liteshift.operator.model import Datastore
from liteshift.operator.specs import build_workloads
from liteshift.operator.specs.common import (
    DATASTORE_LABEL,
    MANAGED_BY,
    Manifest,
    auth_secret_name,
    owner_reference,
    postgres_name,
    sidecar_name,
)
from liteshift.operator.specs.secrets import (
    build_auth_secret,
    build_postgres_secret,
    generate_token,
)
from liteshift.operator.specs.sidecar import endpoint, postgres_dsn_secret, replicas


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the Datastore."""

    type: str  # "Normal" | "Warning"
    reason: str
    message: str


@dataclass
class Result:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)


def adopt(manifest: Manifest, ds: Datastore) -> Manifest:
    """Make `ds` the controller owner: Kubernetes deletes the child with the Datastore."""
    manifest["metadata"]["ownerReferences"] = [owner_reference(ds)]
    return manifest


def serving_engine(previous: Mapping[str, Any] | None) -> str:
    """The engine the sidecar serves from now: status.engine, sqlite until promotion says so."""
    engine = (previous or {}).get("engine")
    return engine if engine in ("sqlite", "postgres") else "sqlite"


def _ensure_generated_secret(
    kube: Kube, ds: Datastore, name: str, build: Callable[[], Manifest]
) -> Outcome:
    """Create-only: values are generated once; later runs only keep ownership in step.

    With reclaimPolicy Retain the Secret has no owner, so it outlives the Datastore together
    with the volumes whose data it unlocks (a managed Postgres keeps its initdb password).
    """
    live = kube.get("Secret", ds.namespace, name)
    owned = ds.spec.reclaim_policy == "Delete"
    if live is None:
        manifest = build()
        if owned:
            adopt(manifest, ds)
        try:
            kube.create(manifest)
        except KubeError as exc:  # 409: created meanwhile by another run; keep theirs
            if exc.status != 409:
                raise
            return "unchanged"
        return "created"
    refs = list((live.get("metadata") or {}).get("ownerReferences") or [])
    has_ref = any(ref.get("uid") == ds.uid for ref in refs)
    if owned and not has_ref:
        refs.append(owner_reference(ds))
    elif not owned and has_ref:
        refs = [ref for ref in refs if ref.get("uid") != ds.uid]
    else:
        return "unchanged"
    kube.patch("Secret", ds.namespace, name, {"metadata": {"ownerReferences": refs or None}})
    return "patched"


def ensure_secrets(kube: Kube, ds: Datastore) -> tuple[dict[str, Outcome], list[str]]:
    """Generated Secrets made once; referenced Secrets checked. Returns outcomes and problems."""
    outcomes: dict[str, Outcome] = {}
    problems: list[str] = []
    if ds.spec.auth.secret_ref is None:
        name = auth_secret_name(ds)
        outcomes[f"Secret/{name}"] = _ensure_generated_secret(
            kube, ds, name, lambda: build_auth_secret(ds, generate_token(), generate_token())
        )
    elif kube.get("Secret", ds.namespace, ds.spec.auth.secret_ref.name) is None:
        problems.append(
            f"Secret {ds.spec.auth.secret_ref.name!r} named in spec.auth.secretRef does not"
            " exist; create it with keys api-token and admin-token"
        )
    if ds.spec.postgres.mode == "managed":
        name = postgres_name(ds)
        outcomes[f"Secret/{name}"] = _ensure_generated_secret(
            kube, ds, name, lambda: build_postgres_secret(ds, generate_token())
        )
    elif ds.spec.postgres.mode == "external":
        secret, key = postgres_dsn_secret(ds)
        live = kube.get("Secret", ds.namespace, secret)
        if live is None or key not in (live.get("data") or {}):
            problems.append(
                f"Secret {secret!r} with key {key!r} named in spec.postgres.external.dsnSecretRef"
                " does not exist; create it with a postgresql:// DSN"
            )
    return outcomes, problems


def _observe(
    kube: Kube, ds: Datastore, previous: Mapping[str, Any] | None, problems: list[str]
) -> dict[str, Any]:
    engine = serving_engine(previous)
    statefulset = kube.get("StatefulSet", ds.namespace, sidecar_name(ds))
    ready = status.readiness(ds, statefulset, engine)
    if problems and ready.status != "True":
        message = "; ".join(problems) + "."
        ready = status.Condition(status.READY, "False", "SecretMissing", message)
    phase = status.phase_for(ready, (previous or {}).get("phase"))
    ready_replicas = int(((statefulset or {}).get("status") or {}).get("readyReplicas") or 0)
    extra: dict[str, Any] = {}
    if not (previous or {}).get("promotion"):
        # The promotion engine owns status.promotion from here on; only its start is ours.
        extra["promotion"] = {"state": "Idle"}
    return status.register_phase(
        previous,
        generation=ds.generation,
        phase=phase,
        reason=ready.reason,
        message=ready.message,
        conditions=[ready],
        defaults=status.initial_conditions(ds),
        engine=engine,
        endpoint=endpoint(ds),
        replicas=replicas(ds, engine),
        readyReplicas=ready_replicas,
        authSecretName=auth_secret_name(ds),
        **extra,
    )


def reconcile(kube: Kube, ds: Datastore, previous: Mapping[str, Any] | None) -> Result:
    """Bring every child in line with the spec; idempotent (a re-run reports `unchanged`)."""
    outcomes, problems = ensure_secrets(kube, ds)
    for manifest in build_workloads(ds, serving_engine(previous)):
        key = f"{manifest['kind']}/{manifest['metadata']['name']}"
        outcomes[key] = kube.apply(adopt(manifest, ds))
    result = Result(status=_observe(kube, ds, previous, problems), outcomes=outcomes)
    changed = {key: outcome for key, outcome in outcomes.items() if outcome != "unchanged"}
    if changed:
        summary = ", ".join(f"{outcome} {key}" for key, outcome in sorted(changed.items()))
        result.events.append(Event("Normal", "Reconciled", summary))
    for problem in problems:
        result.events.append(Event("Warning", "SecretMissing", problem))
    return result


def correct_drift(kube: Kube, ds: Datastore, previous: Mapping[str, Any] | None) -> Result:
    """Re-apply children someone changed or deleted, and refresh the observed status."""
    outcomes, problems = ensure_secrets(kube, ds)
    drifted: list[str] = []
    for manifest in build_workloads(ds, serving_engine(previous)):
        adopt(manifest, ds)
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        live = kube.get(kind, ds.namespace, name)
        if live is None or not contains(live, mutable_part(manifest)):
            outcomes[f"{kind}/{name}"] = kube.apply(manifest)
            drifted.append(f"{kind}/{name}")
    result = Result(status=_observe(kube, ds, previous, problems), outcomes=outcomes)
    recreated = [key for key, outcome in outcomes.items() if key.startswith("Secret/")
                 and outcome == "created"]  # fmt: skip
    if drifted or recreated:
        result.events.append(
            Event(
                "Warning",
                "DriftCorrected",
                "re-applied children changed or deleted outside the operator: "
                + ", ".join(drifted + recreated),
            )
        )
    return result


def release(kube: Kube, namespace: str, name: str, spec: Mapping[str, Any]) -> list[Event]:
    """On Datastore deletion: honour reclaimPolicy for the volumes and generated Secrets.

    Works from the raw spec, so even a Datastore with an invalid spec can be deleted.
    """
    selector = {DATASTORE_LABEL: name}
    pvcs = sorted(pvc["metadata"]["name"] for pvc in kube.list("PersistentVolumeClaim",
                                                                namespace, selector))  # fmt: skip
    if spec.get("reclaimPolicy", "Retain") != "Delete":
        if not pvcs:
            return []
        return [
            Event(
                "Normal",
                "VolumesRetained",
                f"reclaimPolicy Retain: kept PersistentVolumeClaims {', '.join(pvcs)} and the"
                " generated Secrets; delete them by hand when the data is no longer needed",
            )
        ]
    for pvc in pvcs:
        kube.delete("PersistentVolumeClaim", namespace, pvc)
    secrets = [f"{name}-postgres"]
    if not (spec.get("auth") or {}).get("secretRef"):
        secrets.append(f"{name}-auth")
    deleted = [
        secret
        for secret in secrets
        if _generated_by_us(kube.get("Secret", namespace, secret), name)
        and kube.delete("Secret", namespace, secret)
    ]
    return [
        Event(
            "Normal",
            "VolumesDeleted",
            "reclaimPolicy Delete: deleted PersistentVolumeClaims "
            + (", ".join(pvcs) or "(none)")
            + " and Secrets "
            + (", ".join(deleted) or "(none)"),
        )
    ]


def _generated_by_us(secret: Mapping[str, Any] | None, datastore: str) -> bool:
    found = ((secret or {}).get("metadata") or {}).get("labels") or {}
    return bool(
        found.get("app.kubernetes.io/managed-by") == MANAGED_BY
        and found.get(DATASTORE_LABEL) == datastore
    )
