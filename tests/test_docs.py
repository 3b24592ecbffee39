"""Every shell command in README.md and docs/ is exercised (scripts/docs_check.py).

Commands whose rule names a runner are run here for real, one test per command (its id is the
file and line): helm renders, the CLI on scratch files, curl against a real `liteshift serve`,
the operator against kmock's API server, `make -n`, the benchmarks with small sizes. The rest
are covered by the tests their rule names, which must exist.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from liteshift.cli import main
from liteshift.local.ports import free_port
from tests.dashboards.sidecar import serve
from tests.operator.cluster import NAMESPACE, Cluster, running_emulator, wait_for

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_check", ROOT / "scripts" / "docs_check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_check"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


docs_check = _load_script()
COMMANDS = docs_check.all_commands()


def _param(command: Any) -> Any:
    rule = docs_check.rule_for(command)
    marks = [pytest.mark.slow] if rule is not None and rule.run == "bench" else []
    return pytest.param(command, id=command.where, marks=marks)


RUNNABLE = [c for c in COMMANDS if (r := docs_check.rule_for(c)) is not None and r.run]


def bash(
    text: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`text` run by bash with the venv's tools first on PATH, as a reader's shell would be."""
    environ = {**os.environ, **(env or {}), "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["bash", "-c", text],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str], where: str) -> str:
    assert result.returncode == 0, (
        f"{where}: exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    return result.stdout


# --- runners ----------------------------------------------------------------------------------


def run_helm_template(command: Any, tmp_path: Path) -> None:
    # `helm install|upgrade NAME CHART flags...` becomes `helm template NAME CHART flags...`:
    # the same values through the chart's schema and templates, with no cluster.
    words = shlex.split(command.text)
    release, chart, *flags = words[2:]
    flags = [f for f in flags if f not in ("--create-namespace", "--reuse-values")]
    rendered = ok(
        bash(shlex.join([str(BIN / "helm"), "template", release, chart, *flags]), ROOT),
        command.where,
    )
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    assert "Deployment" in kinds, kinds


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real `liteshift serve`; the scratch dir holds the token files the docs `cat`."""
    work = tmp_path_factory.mktemp("sidecar")
    token, admin = "docs-api-token-0123456789abcdef", "docs-admin-token-0123456789abcdef"
    (work / "liteshift-data").mkdir()
    (work / "liteshift-data" / "api-token").write_text(token + "\n")
    (work / "admin-token").write_text(admin + "\n")
    env = {
        "LITESHIFT_API_TOKEN": token,
        "LITESHIFT_ADMIN_TOKEN": admin,
        "LITESHIFT_BACKUP_DIR": str(work / "backups"),
        "LITESHIFT_DATASTORE": "shop",
    }
    with serve(work, env, "--db", f"sqlite:///{work / 'shop.db'}") as base:
        yield base, work


CURL_PRELUDE = (
    # A 4xx/5xx answer fails the command (the docs' curls expect success).
    'curl() { command curl --fail-with-body "$@"; }\n'
)


def run_curl(command: Any, sidecar: tuple[str, Path]) -> None:
    # The docs address the sidecar as the port-forward (127.0.0.1:8080) or the in-cluster
    # Service does; here the same command reaches a real sidecar on a free port.
    base, work = sidecar
    text = re.sub(r"http://(127\.0\.0\.1|shop\.apps\.svc):8080", base, command.text)
    token = (work / "liteshift-data" / "api-token").read_text().strip()
    result = bash(CURL_PRELUDE + text, work, {"TOKEN": token})
    assert "curl: (" not in result.stderr, f"{command.where}: {result.stderr}"
    assert ok(result, command.where).strip(), f"{command.where}: no output"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the store `make serve` would create (migrated), for CLI commands."""
    work = tmp_path_factory.mktemp("cli")
    url = "sqlite:///./liteshift-data/liteshift.db"
    (work / "liteshift-data").mkdir()
    ok(bash(f"liteshift migrate up --db {url}", work), "setup")
    return work


def run_liteshift(command: Any, scratch: Path) -> None:
    ok(bash(command.text, scratch, timeout=300), command.where)


def run_make_dry_run(command: Any, tmp_path: Path) -> None:
    target = command.text.split()[1]
    recipe = ok(bash(f"make -n {target}", ROOT), command.where)
    expected = {"serve": "liteshift serve", "demo": "liteshift demo", "test": "pytest"}
    assert expected.get(target, "") in recipe, recipe


def _kubeconfig(path: Path, url: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "docs", "user": {"token": "not-checked"}}],
        "contexts": [
            {"name": "emulator", "context": {"cluster": "emulator", "user": "docs"}},
        ],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _live(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def run_operator(command: Any, tmp_path: Path) -> None:
    # The docs' command as written, plus a free liveness port (the default, :8080, may be taken
    # on a shared machine), logged in to kmock's API server; it must reconcile a Datastore in a
    # namespace it watches and stop cleanly on SIGTERM.
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    log_path = tmp_path / "operator.log"
    with running_emulator() as cluster:
        env = {
            **os.environ,
            "KUBECONFIG": str(_kubeconfig(tmp_path / "kubeconfig", cluster.url)),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "LITESHIFT_DRIFT_INTERVAL": "1",
        }
        with log_path.open("w") as log:
            process = subprocess.Popen(
                ["bash", "-c", f"exec {command.text} --liveness {liveness}"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(lambda: _live(liveness), timeout=60, message="liveness endpoint")
            _reconciles(cluster, NAMESPACE, log_path)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
        assert code == 0, log_path.read_text()[-3000:]


def _reconciles(cluster: Cluster, namespace: str, log_path: Path) -> None:
    cluster.create(
        "Datastore",
        {
            "apiVersion": "liteshift.io/v1alpha1",
            "kind": "Datastore",
            "metadata": {"name": "shop", "namespace": namespace},
            "spec": {},
        },
        ns=namespace,
    )
    deadline = time.monotonic() + 60
    while cluster.get("StatefulSet", "shop", ns=namespace) is None:
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.2)


BENCH_SIZES = {
    # The docs' flags, with sizes small enough for a test: the script and its flags are real.
    "--runs": "1",
    "--duration": "0.5",
    "--rows": "300",
    "--requests": "300",
}


def run_bench(command: Any, tmp_path: Path) -> None:
    words = shlex.split(command.text)
    for index, word in enumerate(words[:-1]):
        if word in BENCH_SIZES:
            words[index + 1] = BENCH_SIZES[word]
    if words[1] == "bench/backup.py":
        words += ["--size-mb", "8", "--writers", "2"]
    if words[1] == "bench/promotion_pause.py":
        words += ["--sizes", "1", "--writers", "2"]
    ok(bash(shlex.join(words), ROOT, timeout=600), command.where)


RUNNERS: dict[str, Callable[..., None]] = {
    "helm-template": run_helm_template,
    "curl": run_curl,
    "liteshift": run_liteshift,
    "make-dry-run": run_make_dry_run,
    "operator": run_operator,
    "bench": run_bench,
}


# --- tests ------------------------------------------------------------------------------------


def test_every_command_is_run_or_covered() -> None:
    assert COMMANDS, "no commands found in the docs"
    problems = docs_check.uncovered(COMMANDS)
    assert not problems, "neither run nor covered (add a rule to scripts/docs_check.py):\n" + (
        "\n".join(problems)
    )


def test_covering_tests_exist() -> None:
    nodes = {node for c in COMMANDS if (rule := docs_check.rule_for(c)) for node in rule.tests}
    assert nodes
    assert docs_check.missing_tests(nodes) == []


def test_every_runner_exists() -> None:
    assert {rule.run for rule in docs_check.RULES if rule.run} <= set(RUNNERS)


@pytest.mark.parametrize("command", [_param(c) for c in RUNNABLE])
def test_command_runs(command: Any, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    rule = docs_check.rule_for(command)
    assert rule is not None and rule.run
    runner = RUNNERS[rule.run]
    if rule.run == "curl":
        runner(command, request.getfixturevalue("sidecar"))
    elif rule.run == "liteshift":
        runner(command, request.getfixturevalue("scratch"))
    else:
        runner(command, tmp_path)


def test_synopsis_flags_exist() -> None:
    # `text` blocks hold usage synopses (`liteshift backup create --db URL [--json]`): every
    # flag they name must be one the subcommand accepts.
    synopses = docs_check.synopses()
    assert synopses
    for synopsis in synopses:
        words = synopsis.text.replace("[", " ").replace("]", " ").replace("|", " ").split()
        path = []
        for word in words[1:]:
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            path.append(word)
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, f"{synopsis.where}: {result.output}"
        helptext = result.output
        for flag in (w for w in words if w.startswith("--")):
            assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", helptext), (
                f"{synopsis.where}: liteshift {' '.join(path)} has no {flag}"
            )


def test_untagged_fence_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("text\n\n```\nliteshift serve\n```\n")
    with pytest.raises(docs_check.DocsError, match=r"x\.md:3: fence without a tag"):
        docs_check.blocks_from_text(doc.read_text(), "x.md")


def test_uncovered_command_is_reported_with_file_and_line(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("# x\n\n```sh\nliteshift serve\nrm -rf \\\n  /tmp/nothing\n```\n")
    blocks = docs_check.blocks_from_text(doc.read_text(), "x.md")
    commands = [c for block in blocks for c in docs_check.commands_of(block)]
    assert [(c.where, c.text) for c in commands] == [
        ("x.md:4", "liteshift serve"),
        ("x.md:5", "rm -rf /tmp/nothing"),
    ]
    assert docs_check.uncovered(commands) == [
        "x.md:4: liteshift serve",
        "x.md:5: rm -rf /tmp/nothing",
    ]


def test_console_blocks_keep_only_the_prompted_lines() -> None:
    text = "```console\n$ liteshift --version  # which\nliteshift, version 1\n```\n"
    (block,) = docs_check.blocks_from_text(text, "y.md")
    assert [(c.where, c.text) for c in docs_check.commands_of(block)] == [
        ("y.md:2", "liteshift --version")
    ]


def test_a_missing_covering_test_is_named() -> None:
    missing = docs_check.missing_tests(
        {"tests/test_docs.py::test_no_such_test", "tests/test_docs.py::test_covering_tests_exist"}
    )
    assert missing == ["tests/test_docs.py::test_no_such_test"]
