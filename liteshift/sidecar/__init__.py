"""The sidecar: a Starlette app serving the store over HTTP (`create_app(settings, store)`)."""

from liteshift.sidecar.app import create_app
from liteshift.sidecar.settings import Settings

__all__ = ["Settings", "create_app"]
