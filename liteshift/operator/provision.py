"""The promotion's target Postgres: provision it (managed) or find it (external), and read the
DSN the sidecar is asked to promote to.

Blocking and kopf-free, like `reconcile`: the promotion handler runs it in a thread.
`spec.postgres.mode: none` means "no Postgres yet": at promotion time the operator provisions
the managed one (StatefulSet, Service and the generated `<name>-postgres` Secret holding the
DSN), exactly as `mode: managed` would have.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from liteshift.errors import LiteshiftError
from liteshift.operator.kube import Kube
from liteshift.operator.model import Datastore
from liteshift.operator.reconcile import adopt, ensure_secrets
from liteshift.operator.specs import postgres
from liteshift.operator.specs.common import postgres_name
from liteshift.operator.specs.sidecar import postgres_dsn_secret


class DsnUnavailable(LiteshiftError):
    """The target DSN cannot be read (yet): the promotion waits in ProvisioningPostgres."""

    code = "dsn_unavailable"


@dataclass(frozen=True)
class Target:
    """Where the data goes: `mode` (managed | external), and the DSN once it is usable;
    otherwise `waiting` says what is missing."""

    mode: str
    url: str | None = None
    waiting: str | None = None


def target_mode(ds: Datastore) -> str:
    """external for a DSN from the user's Secret; managed otherwise (also for mode none)."""
    return "external" if ds.spec.postgres.mode == "external" else "managed"


def as_managed(ds: Datastore) -> Datastore:
    """`ds` with `postgres.mode: managed` (what mode none becomes at promotion time)."""
    if ds.spec.postgres.mode == "managed":
        return ds
    spec = ds.spec.model_copy(
        update={"postgres": ds.spec.postgres.model_copy(update={"mode": "managed"})}
    )
    return ds.model_copy(update={"spec": spec})


def provision(kube: Kube, ds: Datastore) -> Target:
    """Idempotent: create what a managed Postgres needs, then report whether it answers."""
    mode = target_mode(ds)
    if mode == "managed":
        managed = as_managed(ds)
        ensure_secrets(kube, managed)
        for manifest in (postgres.build_service(managed), postgres.build_statefulset(managed)):
            kube.apply(adopt(manifest, managed))
        name = postgres_name(ds)
        statefulset = kube.get("StatefulSet", ds.namespace, name) or {}
        if int((statefulset.get("status") or {}).get("readyReplicas") or 0) < 1:
            return Target(
                mode, waiting=f"waiting for the managed Postgres StatefulSet {name!r} to be ready"
            )
    try:
        return Target(mode, url=read_dsn(kube, ds))
    except DsnUnavailable as exc:
        return Target(mode, waiting=f"waiting: {exc}")


def read_dsn(kube: Kube, ds: Datastore) -> str:
    """The target DSN from its Secret (the same key the sidecar mounts); raises
    DsnUnavailable when the Secret or key is missing."""
    secret_name, key = postgres_dsn_secret(ds)
    secret = kube.get("Secret", ds.namespace, secret_name)
    if secret is None:
        raise DsnUnavailable(f"the Secret {secret_name!r} holding the Postgres DSN does not exist")
    plain = (secret.get("stringData") or {}).get(key)
    if plain:
        return str(plain).strip()
    encoded = (secret.get("data") or {}).get(key)
    if not encoded:
        raise DsnUnavailable(f"the Secret {secret_name!r} has no key {key!r} with the DSN")
    try:
        return base64.b64decode(encoded, validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        raise DsnUnavailable(
            f"key {key!r} of the Secret {secret_name!r} is not valid base64 text"
        ) from None
