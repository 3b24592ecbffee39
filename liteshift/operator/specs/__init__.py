"""Pure builders: a typed `Datastore` in, plain Kubernetes manifests (dicts) out.

They never see a client or a clock and never generate secrets, so the same input always
gives the same output: handlers can re-run them freely and tests compare dicts.
"""

from __future__ import annotations

from liteshift.operator.model import Datastore
from liteshift.operator.specs import postgres, sidecar
from liteshift.operator.specs.common import Manifest


def build_workloads(ds: Datastore, engine: str = "sqlite") -> list[Manifest]:
    """The children kept in step with the spec (create, then patch): StatefulSets and Services.

    Order matters: Postgres comes up before the sidecar that may connect to it.
    """
    children: list[Manifest] = []
    if ds.spec.postgres.mode == "managed":
        children += [postgres.build_service(ds), postgres.build_statefulset(ds)]
    children += [sidecar.build_service(ds), sidecar.build_statefulset(ds, engine)]
    return children
