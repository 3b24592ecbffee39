"""The Dockerfile, checked without a container engine (none runs here or in CI).

What can be checked: the final stage runs as a numeric non-root user (the uid the chart's and the
operator's pods declare), `liteshift` is the entrypoint, every command the chart and the
operator's builders run is a real subcommand that accepts those arguments, the Python packages
come only from the project's metadata (the wheel built here carries exactly pyproject's
dependencies), and the shared libraries the vector extensions link against are installed.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from liteshift.cli import COMMANDS, main
from liteshift.operator.model import Datastore
from liteshift.operator.specs import build_workloads
from liteshift.operator.specs.common import SIDECAR_UID
from tests.chart.helm import one, render

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# What python:3.11-slim (Debian bookworm) ships: the C and C++ runtimes.
BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    flags: tuple[str, ...]
    body: str


def parse(text: str) -> list[list[Instruction]]:
    """Instructions of each stage (joined continuation lines, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"
    stages: list[list[Instruction]] = [[]]
    for line in logical:
        keyword, _, value = line.partition(" ")
        # Instruction flags (RUN --mount=..., COPY --from=...) come before the body.
        words = value.split(" ")
        flags: list[str] = []
        while words and (words[0].startswith("--") or not words[0]):
            flags.append(words.pop(0))
        body = " ".join(words)
        instruction = Instruction(keyword.upper(), value.strip(), tuple(flags), body.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse(DOCKERFILE.read_text())


def final(stages: list[list[Instruction]]) -> list[Instruction]:
    return stages[-1]


def last(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert found, f"no {keyword} in the final stage"
    return found[-1]


def runs(stage: list[Instruction]) -> Iterator[list[str]]:
    """Each simple command of each RUN (split on &&)."""
    for instruction in stage:
        if instruction.keyword == "RUN":
            for command in instruction.body.split("&&"):
                yield shlex.split(command)


def test_multi_stage_on_a_slim_python_base(stages: list[list[Instruction]]) -> None:
    froms = [stage[0] for stage in stages[1:]]
    assert len(froms) >= 2
    preamble = {i.value.split("=")[0].split()[-1]: i.value.split("=", 1)[1] for i in stages[0]}
    base = preamble["PYTHON_IMAGE"]
    assert base.startswith("python:3.11-slim")
    assert all(f.value.split()[0] == "${PYTHON_IMAGE}" for f in froms)
    assert froms[0].value.endswith(" AS builder")


def test_final_user_is_numeric_non_root_and_matches_the_pods(
    stages: list[list[Instruction]],
) -> None:
    user, _, group = last(final(stages), "USER").value.partition(":")
    assert user.isdigit() and int(user) != 0
    assert group.isdigit() and int(group) != 0
    assert int(user) == SIDECAR_UID  # what the operator's sidecar pods run as
    deployment = one(render(), "Deployment")
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user)


def exec_form(instruction: Instruction) -> list[str]:
    parsed = json.loads(instruction.value)
    assert isinstance(parsed, list) and all(isinstance(p, str) for p in parsed)
    return parsed


def test_entrypoint_is_liteshift_and_serve_by_default(stages: list[list[Instruction]]) -> None:
    assert exec_form(last(final(stages), "ENTRYPOINT")) == ["liteshift"]
    assert exec_form(last(final(stages), "CMD")) == ["serve"]
    assert PYPROJECT["project"]["scripts"]["liteshift"] == "liteshift.cli:main"


def containers_run_by_the_project() -> list[tuple[str, list[str], list[str]]]:
    """(where, command, args) of every container the chart and the operator's builders make."""
    found: list[tuple[str, list[str], list[str]]] = []
    for values in ({}, {"operator": {"watchNamespaces": ["apps"], "logFormat": "text"}}):
        pod = one(render(values), "Deployment")["spec"]["template"]["spec"]
        for container in pod["containers"]:
            found.append(("chart", container.get("command", []), container.get("args", [])))
    for spec in ({}, {"postgres": {"mode": "managed"}}):
        ds = Datastore.parse(
            {"metadata": {"name": "n", "namespace": "a", "uid": "u", "generation": 1}, "spec": spec}
        )
        for obj in build_workloads(ds):
            if obj["kind"] != "StatefulSet":
                continue
            template = obj["spec"]["template"]["spec"]
            for container in template.get("initContainers", []) + template["containers"]:
                image = container["image"]
                if image == ds.spec.image or "liteshift" in image:
                    found.append(("operator", container.get("command", []), container["args"]))
    return found


def test_every_command_run_in_the_image_is_a_subcommand_taking_those_args(
    stages: list[list[Instruction]],
) -> None:
    entrypoint = exec_form(last(final(stages), "ENTRYPOINT"))
    runs_seen = containers_run_by_the_project()
    assert {where for where, _, _ in runs_seen} == {"chart", "operator"}
    help_text = subprocess.run(
        [str(Path(sys.executable).parent / "liteshift"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for where, command, args in runs_seen:
        # Either the image's entrypoint runs, or the container names it explicitly.
        assert command in ([], entrypoint), (where, command)
        name, *rest = args
        assert name in COMMANDS, (where, name)
        assert f"  {name} " in help_text or f"  {name}\n" in help_text, name
        # The real click command parses these arguments (unknown flags or values would fail).
        group_ctx = click.Context(main)
        subcommand = main.get_command(group_ctx, name)
        assert subcommand is not None
        subcommand.make_context(name, list(rest), parent=group_ctx)


def test_python_packages_come_only_from_the_project(stages: list[list[Instruction]]) -> None:
    installs = []
    for stage in stages[1:]:
        for command in runs(stage):
            tools = {"pip", "pip3", "uv", "poetry", "conda", "easy_install", "pipx"}
            if command[:3] == ["python", "-m", "pip"]:
                installs.append(command[3:])
            else:
                assert not tools & set(command), f"Python packages outside pip: {command}"
    verbs = sorted(command[0] for command in installs)
    assert verbs == ["install", "wheel"]
    (wheel,) = [c for c in installs if c[0] == "wheel"]
    assert [a for a in wheel[1:] if not a.startswith("-") and a != "/wheels"] == ["."]
    (install,) = [c for c in installs if c[0] == "install"]
    assert "--no-index" in install, "the runtime installs offline, from the builder's wheels"
    assert "--find-links=/wheels" in install
    assert [a for a in install[1:] if not a.startswith("-")] == [PYPROJECT["project"]["name"]]


def test_the_builder_copies_everything_the_build_reads(stages: list[list[Instruction]]) -> None:
    copied = {
        source
        for instruction in stages[1]
        if instruction.keyword == "COPY"
        for source in instruction.body.split()[:-1]
    }
    hatch = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"], *hatch["packages"]}
    needed |= set(hatch.get("force-include", {}))
    assert needed <= copied
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not needed & ignored
    for source in needed:
        assert (ROOT / source).exists(), source


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The builder stage's command, without network: the venv already holds hatchling.
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("liteshift-*.whl")
    return built


def wheel_metadata(wheel: Path) -> tuple[list[str], str, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = archive.read(meta).decode()
        requires = [
            line.removeprefix("Requires-Dist: ")
            for line in text.splitlines()
            if line.startswith("Requires-Dist: ") and "extra ==" not in line
        ]
        return requires, archive.read(entry).decode(), names


def normalized(requirement: str) -> tuple[str, frozenset[str], str]:
    parsed = Requirement(requirement)
    return (canonicalize_name(parsed.name), frozenset(parsed.extras), str(parsed.specifier))


def test_the_image_installs_exactly_pyprojects_dependencies(wheel: Path) -> None:
    requires, entry_points, names = wheel_metadata(wheel)
    assert sorted(map(normalized, requires)) == sorted(
        map(normalized, PYPROJECT["project"]["dependencies"])
    )
    assert "liteshift = liteshift.cli:main" in entry_points
    assert any(name.startswith("liteshift/_migrations/") for name in names)


def test_vector_extension_libraries_are_installed(stages: list[list[Instruction]]) -> None:
    apt = [c for c in runs(final(stages)) if c[:2] == ["apt-get", "install"]]
    (install,) = apt
    assert "--no-install-recommends" in install
    packages = {word for word in install[2:] if not word.startswith("-")}
    assert {"libgomp1", "libblas3", "liblapack3"} <= packages
    provided = closure(packages | BASE_PACKAGES)
    import sqlite_vec
    import sqlite_vss

    objects = [
        Path(sqlite_vec.loadable_path() + ".so"),
        Path(sqlite_vss.vss_loadable_path() + ".so"),
    ]
    needs = {(obj.name, library) for obj in objects for library in linked_libraries(obj)}
    owners = debian_packages_of({library for _, library in needs})
    for name, library in sorted(needs):
        assert owners[library] in provided, f"{name} needs {library} from {owners[library]}"


def linked_libraries(shared_object: Path) -> list[str]:
    """Resolved paths of every library `shared_object` loads (ldd, from libc-bin)."""
    out = subprocess.run(["ldd", str(shared_object)], capture_output=True, text=True, check=True)
    paths = []
    for line in out.stdout.splitlines():
        if "=>" in line:
            target = line.split("=>")[1].split("(")[0].strip()
            assert target and target != "not found", line
            paths.append(str(Path(target).resolve()))
    return paths


def debian_packages_of(paths: set[str]) -> dict[str, str]:
    """The Debian package owning each path (one `dpkg -S`: each call reads every file list)."""
    # Under usrmerge a library may be registered under /lib or /usr/lib: ask for both.
    queries = paths | {path.removeprefix("/usr") for path in paths if path.startswith("/usr")}
    out = subprocess.run(
        ["dpkg", "-S", *sorted(queries)], check=False, capture_output=True, text=True
    ).stdout
    owners = {}
    for line in out.splitlines():
        package, _, path = line.partition(": ")
        owners[path.strip()] = package.split(":")[0]
    found = {}
    for path in paths:
        owner = owners.get(path) or owners.get(path.removeprefix("/usr"))
        assert owner, f"no Debian package owns {path}"
        found[path] = owner
    return found


def closure(packages: set[str]) -> set[str]:
    """`packages` and everything they depend on, as installed here (dpkg's Depends/Pre-Depends)."""
    listing = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Depends}, ${Pre-Depends}\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    depends: dict[str, set[str]] = {}
    for line in listing.splitlines():
        package, _, clauses = line.partition("\t")
        names = {
            alternative.strip().split(" ")[0].split(":")[0]
            for clause in clauses.split(",")
            for alternative in clause.split("|")
        }
        depends.setdefault(package, set()).update(name for name in names if name)
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        package = todo.pop()
        if package not in seen:
            seen.add(package)
            todo.extend(depends.get(package, ()))
    return seen


def test_default_image_reference_is_shared() -> None:
    from liteshift import __version__
    from liteshift.operator.image import DEFAULT_IMAGE, IMAGE_REPOSITORY

    pod: Any = one(render(), "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == DEFAULT_IMAGE == f"{IMAGE_REPOSITORY}:{__version__}"
