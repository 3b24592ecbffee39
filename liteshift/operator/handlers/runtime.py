"""Operator-wide wiring: settings, credentials and the shared `Runtime` kept in kopf's memo."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import kopf

from liteshift.operator.kube import Kube

MEMO_KEY = "liteshift"
FINALIZER = "liteshift.io/finalizer"


@dataclass
class Runtime:
    """What every handler shares: the API client and the operator's knobs.

    Embedders (tests, `liteshift operator`) may put one into the memo before kopf starts;
    otherwise the startup handler builds it from the environment.
    """

    kube: Kube
    #: Seconds between drift checks of one Datastore (LITESHIFT_DRIFT_INTERVAL).
    drift_interval: float = 60.0
    #: Seconds before a reconcile the API server refused is tried again.
    retry_delay: float = 15.0
    #: Where kopf connects; None means kopf's usual in-cluster/kubeconfig login. An
    #: `AiohttpSession` brings the embedder's own HTTP session, which the embedder closes
    #: (the tests do, in the operator's loop after it stops: sessions kopf makes for itself
    #: were seen left unclosed after some test shutdowns).
    connection: kopf.ConnectionInfo | kopf.AiohttpSession | None = None


def runtime(memo: Any) -> Runtime:
    found = memo[MEMO_KEY]
    assert isinstance(found, Runtime)
    return found


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf's bookkeeping goes into annotations under our prefix: the structural schema of the
    # CRD would prune anything kopf wrote under status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="liteshift.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="liteshift.io", key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    # Our handlers post the Events worth reading; kopf's own log lines become Events only
    # when something went wrong.
    settings.posting.level = logging.WARNING
    if MEMO_KEY not in memo:
        memo[MEMO_KEY] = Runtime(
            kube=Kube.from_environment(),
            drift_interval=float(os.environ.get("LITESHIFT_DRIFT_INTERVAL", "60")),
        )


@kopf.on.login()
def login(
    memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any
) -> kopf.ConnectionInfo | kopf.AiohttpSession | None:
    found = memo.get(MEMO_KEY)
    if isinstance(found, Runtime) and found.connection is not None:
        return found.connection
    result: kopf.ConnectionInfo | None = kopf.login_via_client(logger=logger, **kwargs)
    return result


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_: Any) -> None:
    found = memo.get(MEMO_KEY)
    if isinstance(found, Runtime):
        found.kube.close()
