"""`liteshift serve`: the sidecar on the configured store (default: ./liteshift-data)."""

from __future__ import annotations

import sys

import click

from liteshift.sidecar.settings import Settings

#: CPython's GIL switch interval in the serving process (default 5 ms). The group-commit writer
#: thread needs the GIL back after every SQLite call (the COMMIT's fsync included); a busy event
#: loop keeps it for a whole interval each time, which stalled every batch by milliseconds
#: (docs/benchmarks.md, sidecar).
SWITCH_INTERVAL_SECONDS = 0.0002

#: How uvicorn runs the sidecar (shared with bench/sidecar.py, which measures this server).
#: `http`: uvicorn's httptools protocol sending each response in one write
#: (liteshift/sidecar/http_protocol.py). `proxy_headers` off: the sidecar is reached directly
#: (the app in its pod, or a ClusterIP Service), never through a proxy whose X-Forwarded-*
#: headers it should trust, and it uses no client address; uvicorn's proxy-header middleware
#: cost ~6.5 µs of every request here (a bare ASGI app: 27,300 vs 23,200 requests/s at 16
#: clients).
SERVER_OPTIONS: dict[str, object] = {
    "loop": "uvloop",
    "http": "liteshift.sidecar.http_protocol:CorkedHttpToolsProtocol",
    "access_log": False,
    "proxy_headers": False,
    "server_header": False,
}


@click.command()
@click.option(
    "--db", "db_url", help="store URL (sqlite:///path or postgresql://…) [LITESHIFT_DB_URL]"
)
@click.option("--host", help="listen address [LITESHIFT_HOST, 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), help="listen port [LITESHIFT_PORT, 8080]")
def serve(db_url: str | None, host: str | None, port: int | None) -> None:
    """Serve the store over HTTP: /v1 API, /admin, /healthz, /readyz, /metrics.

    Settings come from the environment (docs/configuration.md); flags win. Pending migrations
    are applied at start unless LITESHIFT_MIGRATE_ON_START=false.
    """
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from liteshift.sidecar import create_app  # noqa: PLC0415
    from liteshift.sidecar.logs import configure_logging  # noqa: PLC0415
    from liteshift.sidecar.metrics import Metrics  # noqa: PLC0415
    from liteshift.sidecar.promotion import open_primary, serving_settings  # noqa: PLC0415
    from liteshift.sidecar.tokens import resolve_tokens  # noqa: PLC0415
    from liteshift.store.urls import parse_url  # noqa: PLC0415

    settings = Settings.from_env(db_url=db_url, host=host, port=port)
    configure_logging(settings.log_format)
    configured = settings.db_url
    # A promoted SQLite file never takes writes again: serve its Postgres target, or refuse.
    settings = serving_settings(settings)
    url = parse_url(settings.db_url)
    if url.engine == "sqlite" and settings.db_url == Settings.db_url:
        # The embedded default works on a fresh checkout: create ./liteshift-data.
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
    tokens = resolve_tokens(settings)
    metrics = Metrics(settings.datastore, settings.namespace)
    store = open_primary(
        settings, settings.db_url, observer=metrics.observe, migrate=settings.migrate_on_start
    )
    app = create_app(settings, store, metrics=metrics, tokens=tokens)
    click.echo(f"liteshift sidecar: http://{settings.host}:{settings.port} ({url.display()})")
    if settings.db_url != configured:
        click.echo(f"  {parse_url(configured).display()} was promoted: serving its Postgres target")
    click.echo(f"  API token:   {_where(tokens.api_file, 'LITESHIFT_API_TOKEN')}")
    click.echo(f"  admin token: {_where(tokens.admin_file, 'LITESHIFT_ADMIN_TOKEN')}")
    click.echo(
        '  try: curl -H "Authorization: Bearer $(cat <API token file>)" '
        f"http://{settings.host}:{settings.port}/v1/messages"
    )
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        **SERVER_OPTIONS,  # type: ignore[arg-type]
    )


def _where(path: object, env: str) -> str:
    return f"{path} (generated, mode 0600)" if path is not None else f"from {env}[_FILE]"
