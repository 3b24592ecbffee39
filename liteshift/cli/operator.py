"""`liteshift operator`: run the Kubernetes operator (kopf) in the foreground."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Watch only this namespace (repeatable; globs allowed). Default: every namespace.",
)
@click.option(
    "--liveness",
    default="http://0.0.0.0:8080/healthz",
    show_default=True,
    help="Liveness endpoint URL served by the operator; empty to disable.",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="json: one JSON object per line (for containers).",
)
@click.option("--verbose", is_flag=True, help="Debug logging.")
@click.option(
    "--drift-interval",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    envvar="LITESHIFT_DRIFT_INTERVAL",
    help="Seconds between drift checks of each Datastore's children.",
)
@click.option(
    "--peering",
    default=None,
    help="kopf peering name, to run several operator replicas (needs kopf's peering CRDs)."
    " Default: standalone.",
)
def operator(
    *,
    namespaces: tuple[str, ...],
    liveness: str,
    log_format: str,
    verbose: bool,
    drift_interval: float,
    peering: str | None,
) -> None:
    """Run the operator: reconcile Datastores into StatefulSets, Services and Secrets."""
    # kopf and the handlers load only for this command (`liteshift --help` stays fast).
    import kopf  # noqa: PLC0415

    import liteshift.operator.handlers  # noqa: F401, PLC0415 - registers the handlers
    from liteshift.operator.handlers.runtime import MEMO_KEY, Runtime  # noqa: PLC0415
    from liteshift.operator.kube import Kube  # noqa: PLC0415

    kopf.configure(
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_refkey="object" if log_format == "json" else None,
    )
    runtime = Runtime(kube=Kube.from_environment(), drift_interval=drift_interval)
    kopf.run(
        standalone=peering is None,
        peering_name=peering,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=liveness or None,
        memo=kopf.Memo({MEMO_KEY: runtime}),
    )
