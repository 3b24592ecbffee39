# syntax=docker/dockerfile:1
# One image for the operator (`liteshift operator`) and the Datastore sidecar (`liteshift serve`).
# Python dependencies come only from pyproject.toml: the builder turns the project and what it
# requires into wheels; the runtime installs the project from those wheels, offline.
# tests/test_dockerfile.py checks this file (no container engine runs in CI).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# What the hatchling build reads: metadata, readme, the package and the SQL migrations.
COPY pyproject.toml README.md ./
COPY liteshift ./liteshift
COPY migrations ./migrations
RUN python -m pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The vector extensions (sqlite-vss's faiss) link against OpenMP, BLAS and LAPACK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libblas3 liblapack3 \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels liteshift
# A fixed numeric user: Kubernetes' runAsNonRoot can only verify a numeric USER. The sidecar
# pods and the chart's operator pod run as this same uid (10001).
RUN groupadd --system --gid 10001 liteshift \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin liteshift \
    && install -d -o 10001 -g 10001 /var/lib/liteshift
WORKDIR /var/lib/liteshift
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["liteshift"]
CMD ["serve"]
