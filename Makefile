# liteshift — every target installs what it needs (scripts/bootstrap.sh) before it runs.
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup setup-runtime serve demo test test-fast lint typecheck bench clean cluster

setup:
	scripts/bootstrap.sh test

setup-runtime:
	scripts/bootstrap.sh runtime

## The main job on the embedded default: the sidecar on a local SQLite file.
serve: setup-runtime
	$(VENV)/bin/liteshift serve

## The whole story with no cluster: SQLite under load, the criteria, online promotion (< 3 min).
demo:
	scripts/bootstrap.sh demo
	$(VENV)/bin/liteshift demo

## The whole suite: lint, types, layering, every test (both engines, e2e).
test: setup lint typecheck cluster
	$(PY) -m pytest -p no:cacheprovider -v

## The fast suite (< 10 min on 2 cores): everything but the slow and e2e markers.
test-fast: setup lint typecheck
	$(PY) -m pytest -p no:cacheprovider -m "not slow and not e2e"

## The e2e control plane from Kubernetes' Go modules (cold ~11 min on 2 cores, cached seconds).
cluster: setup
	$(PY) -m tests.cluster.controlplane

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## Every benchmark, one after the other (each prints its table; figures go to docs/benchmarks.md).
bench:
	scripts/bootstrap.sh bench
	$(PY) bench/sidecar.py --runs 3
	$(PY) bench/backup.py --runs 3
	$(PY) bench/promotion.py --runs 3
	$(PY) bench/promotion_pause.py --runs 3

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache
