"""The default image: one image runs both the operator and the sidecar (see the Dockerfile)."""

from __future__ import annotations

from liteshift import __version__

IMAGE_REPOSITORY = "ghcr.io/liteshift/liteshift"

#: The sidecar image a Datastore gets when `spec.image` is empty; the Helm chart's default too.
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
