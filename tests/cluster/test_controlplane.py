"""The control-plane harness fails loudly, with the reason, when Go or the binary is missing.

These run in the fast suite; the e2e tests exercise the happy path on the real binary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster import controlplane


def test_missing_go_is_an_error_that_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(controlplane.ControlPlaneError, match=r"Go toolchain \(`go`, >= 1.26\)"):
        controlplane.find_go(path=str(tmp_path), fallback=tmp_path / "go")


def test_go_found_at_the_fallback_path_when_not_on_path(tmp_path: Path) -> None:
    fake = tmp_path / "go"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    assert controlplane.find_go(path=str(tmp_path / "empty"), fallback=fake) == str(fake)


def test_build_failure_carries_the_compiler_output(tmp_path: Path) -> None:
    fake = tmp_path / "go"
    fake.write_text("#!/bin/sh\necho 'main.go:1: undefined: nonsense' >&2\nexit 2\n")
    fake.chmod(0o755)
    with pytest.raises(controlplane.ControlPlaneError, match="exit 2") as caught:
        controlplane.build(go=str(fake))
    assert "undefined: nonsense" in str(caught.value)


def test_unrunnable_go_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(controlplane.ControlPlaneError, match="cannot run"):
        controlplane.build(go=str(tmp_path / "missing-go"))


def test_server_that_dies_while_starting_fails_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "cluster"
    fake.write_text("#!/bin/sh\necho 'cluster: etcd: address already in use' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(controlplane.ControlPlaneError, match="exited with 1") as caught:
        controlplane.start(fake, tmp_path / "work", timeout=30)
    assert "address already in use" in str(caught.value)


def test_missing_binary_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(controlplane.ControlPlaneError, match="no control-plane binary"):
        controlplane.start(tmp_path / "nothing", tmp_path / "work")


def test_binary_is_stamped_with_the_kubernetes_release_of_go_mod() -> None:
    version = controlplane.kubernetes_version()
    assert version.startswith("v1.")
    flags = controlplane.version_ldflags(version).split()
    assert f"k8s.io/component-base/version.gitVersion={version}" in flags
    assert f"k8s.io/component-base/version.gitMinor={version.split('.')[1]}" in flags
