"""The default image: one image runs both the operator and the sidecar (see the Dockerfile).

The Helm chart passes its own image to the operator as `LITESHIFT_SIDECAR_IMAGE`, so a chart
installed with `--set image.repository=... image.tag=...` (a mirror, a private registry, a dev
build) gives every Datastore without `spec.image` that same image, not the public one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from liteshift import __version__

IMAGE_REPOSITORY = "ghcr.io/liteshift/liteshift"

#: The image this release of liteshift is published as: the chart's default image.
BUILTIN_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"

#: The environment variable the chart sets to its own image (`image.repository:tag`).
SIDECAR_IMAGE_ENV = "LITESHIFT_SIDECAR_IMAGE"


def sidecar_image(environ: Mapping[str, str] | None = None) -> str:
    """The sidecar image of a Datastore without `spec.image`: `$LITESHIFT_SIDECAR_IMAGE` when
    set and not blank, otherwise BUILTIN_IMAGE."""
    env = os.environ if environ is None else environ
    return env.get(SIDECAR_IMAGE_ENV, "").strip() or BUILTIN_IMAGE


#: The sidecar image a Datastore gets when `spec.image` is empty. Resolved once, at import: the
#: operator's environment is set by its Deployment and does not change while it runs.
DEFAULT_IMAGE = sidecar_image()
