#!/usr/bin/env python3
"""Every shell command in the docs is exercised: run for real by tests/test_docs.py, or covered
by a named test that does what the command does.

The convention (docs/testing.md, "Commands in the docs"):

- A fenced block tagged `sh`, `bash`, `shell` or `console` holds commands a reader runs. Every
  line is a command (a trailing backslash continues it; `#` comments are dropped); in a
  `console` block only the lines starting with `$ ` are commands, the rest is their output.
- A block of usage synopses, file trees or output is tagged `text`. Its `liteshift ...` lines
  are still checked: every `--flag` they name must exist in that subcommand's `--help`.
- A fence with no tag is refused: the reader (and this check) must know which kind it is.

Each command matches the first rule of RULES below: either it is run for real by the test
(`run` names the runner in tests/test_docs.py) or it is covered by the listed tests (pytest
node ids, checked to exist with `pytest --collect-only`), or both. A command matching no rule
fails the check with its file and line.

    scripts/docs_check.py            # list every command and how it is exercised
    scripts/docs_check.py --check    # exit 1 if a command is neither run nor covered, or a
                                     # covering test does not exist
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND_TAGS = frozenset({"sh", "bash", "shell", "console"})
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every markdown file under docs/ (ADRs included)."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Command:
    """One command of a doc: where it starts, and its text with continuations joined."""

    name: str  # the doc's path, relative to the repository
    line: int
    text: str
    tag: str

    @property
    def where(self) -> str:
        return f"{self.name}:{self.line}"


@dataclass(frozen=True)
class Block:
    name: str
    line: int  # line of the opening fence
    tag: str
    lines: tuple[str, ...]


class DocsError(Exception):
    """A doc breaks the convention (its file and line lead the message)."""


def blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """The fenced blocks of one markdown file."""
    return blocks_from_text(path.read_text(), str(path.relative_to(root)))


def blocks_from_text(text: str, name: str) -> list[Block]:
    """The fenced blocks of a markdown text; an untagged or unclosed fence is a DocsError."""
    found: list[Block] = []
    opened: tuple[int, str, str] | None = None  # line, indent, tag
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if opened is None:
            if match:
                opened = (number, match.group(1), match.group(2))
                body = []
            continue
        if match and not match.group(2):
            start, _, tag = opened
            if not tag:
                where = f"{name}:{start}"
                raise DocsError(f"{where}: fence without a tag (use sh for commands, text else)")
            found.append(Block(name, start, tag, tuple(body)))
            opened = None
            continue
        body.append(line)
    if opened is not None:
        raise DocsError(f"{name}:{opened[0]}: fence never closed")
    return found


def commands_of(block: Block) -> list[Command]:
    """The commands of one block (empty for blocks that are not command blocks)."""
    if block.tag not in COMMAND_TAGS:
        return []
    found: list[Command] = []
    pending: list[str] = []
    start = 0
    for offset, raw in enumerate(block.lines, 1):
        line = raw.strip()
        if not pending:
            if block.tag == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not line or line.startswith("#"):
                continue
            start = block.line + offset
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        found.append(Command(block.name, start, strip_comment(" ".join(pending)), block.tag))
        pending = []
    if pending:
        where = f"{block.name}:{start}"
        raise DocsError(f"{where}: the block ends inside a continued command")
    return found


def strip_comment(text: str) -> str:
    """The command without a trailing `# comment` (a `#` after whitespace, outside quotes)."""
    quote = ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and index and text[index - 1].isspace():
            return text[:index].rstrip()
    return text.strip()


def all_blocks(root: Path = ROOT) -> list[Block]:
    return [block for path in doc_files(root) for block in blocks(path, root)]


def all_commands(root: Path = ROOT) -> list[Command]:
    """Every command of every doc, in file order."""
    return [command for block in all_blocks(root) for command in commands_of(block)]


def synopses(root: Path = ROOT) -> list[Command]:
    """`liteshift ...` lines of text blocks (continuations joined): synopses whose flags must
    exist."""
    found = []
    for block in all_blocks(root):
        if block.tag != "text":
            continue
        pending: list[str] = []
        start = 0
        for offset, raw in enumerate(block.lines, 1):
            line = raw.strip()
            if not pending and not line.startswith("liteshift "):
                continue
            start = start if pending else block.line + offset
            pending.append(line.removesuffix("\\").strip())
            if not line.endswith("\\"):
                found.append(Command(block.name, start, " ".join(pending), "text"))
                pending = []
    return found


@dataclass(frozen=True)
class Rule:
    """How the commands matching `pattern` are exercised.

    `run`: the runner of tests/test_docs.py that executes them for real. `tests`: pytest node
    ids of tests doing what the command does (with `why`, the honest link between the two).
    """

    pattern: str
    run: str | None = None
    tests: tuple[str, ...] = ()
    why: str = ""

    def matches(self, command: Command) -> bool:
        return re.search(self.pattern, command.text) is not None


E2E_OPERATOR = "tests/e2e/test_operator.py"
E2E_INSTALL = (
    f"{E2E_OPERATOR}::test_chart_installs_a_deployment_whose_pod_passes_restricted_pod_security"
)
E2E_RECONCILE = f"{E2E_OPERATOR}::test_operator_reconciles_updates_and_releases_a_datastore"
QUICKSTART_API = "tests/chart/test_docs.py::test_quickstart_api_calls_work_against_a_real_sidecar"
OPERATOR_CLI = "tests/operator/test_cli.py::test_operator_command_reconciles_and_stops_on_sigterm"

RULES: tuple[Rule, ...] = (
    # --- run for real -------------------------------------------------------------------
    Rule(
        r"^helm (install|upgrade) ",
        run="helm-template",
        tests=(E2E_INSTALL,),
        why="rendered here with `helm template` and the same flags; the e2e test runs a real "
        "`helm install` of the chart on the real control plane",
    ),
    Rule(r"^curl ", run="curl", why="real curl against a real `liteshift serve`"),
    Rule(r"^liteshift (backup|migrate) ", run="liteshift", why="the real CLI in a scratch dir"),
    Rule(
        r"^liteshift operator (-n|--namespace) ",
        tests=(E2E_RECONCILE, "tests/chart/test_chart.py::test_lint_strict"),
        why="the e2e test runs `liteshift operator --namespace=NS` (the chart's args for "
        "watchNamespaces) against the real API server; kmock cannot list namespaces, which "
        "kopf needs for globs, so the glob form itself runs nowhere",
    ),
    Rule(
        r"^liteshift operator",
        run="operator",
        why="the command, with a free liveness port, against the kmock API server",
    ),
    Rule(
        r"^kopf run ",
        run="operator",
        tests=(f"{OPERATOR_CLI}[kopf-run]",),
        why="the command, with a free liveness port, against the kmock API server",
    ),
    Rule(
        r"^liteshift demo --dir ",
        tests=("tests/cli/test_demo.py::test_demo_runs_to_the_summary",),
        why="the test runs `liteshift demo --dir DIR` to the summary (slow: ~1 min)",
    ),
    Rule(
        r"^make serve$",
        run="make-dry-run",
        tests=(
            "tests/chart/test_docs.py::test_quickstart_without_a_cluster",
            "tests/cli/test_serve.py::test_default_store_and_generated_tokens",
        ),
        why="`make -n` shows the recipe runs `liteshift serve`; the tests run it as it does",
    ),
    Rule(
        r"^make demo$",
        run="make-dry-run",
        tests=("tests/cli/test_demo.py::test_demo_runs_to_the_summary",),
        why="`make -n` shows the recipe runs `liteshift demo`, which the test runs",
    ),
    Rule(
        r"^make (test|test-fast|cluster)$",
        run="make-dry-run",
        why="`make -n` proves the target and its recipe; running them is what CI does",
    ),
    Rule(
        r"^\.venv/bin/python bench/",
        run="bench",
        why="the benchmark script itself, its sizes shrunk to seconds (slow test)",
    ),
    # --- covered by tests that do the same thing ------------------------------------------
    Rule(
        r"^helm uninstall ",
        tests=(E2E_INSTALL,),
        why="the e2e operator fixture ends with a real `helm uninstall` of the release",
    ),
    Rule(
        r"^kubectl .*rollout status deployment/liteshift",
        tests=(E2E_INSTALL,),
        why="no kubelet here: the e2e test checks the Deployment's Pod is created and admitted "
        "under restricted Pod Security and runs its container command until /healthz answers",
    ),
    Rule(
        r"^kubectl get crd |apply -f crds/",
        tests=("tests/e2e/test_crd_validation.py::test_status_is_a_subresource",),
        why="the e2e `crds` fixture applies crds/ with kubectl and waits for Established",
    ),
    Rule(
        r"^kubectl (create namespace|apply -f examples/|delete -f examples/)",
        tests=(E2E_RECONCILE, "tests/chart/test_docs.py::test_files_the_docs_apply_exist"),
        why="the e2e test creates a namespace, applies a Datastore with kubectl and deletes it",
    ),
    Rule(
        r"^kubectl .*(wait datastore/|get datastore )",
        tests=(E2E_RECONCILE,),
        why="the e2e test waits for the Datastore's status (observedGeneration, Ready condition)",
    ),
    Rule(
        r"^kubectl .*port-forward service/shop|^TOKEN=\$\(kubectl .*secret shop-auth",
        tests=(
            QUICKSTART_API,
            "tests/operator/handlers/test_datastore.py::"
            "test_create_builds_owned_children_and_reports_readiness",
        ),
        why="no kubelet here: the quickstart's requests go to a real `liteshift serve` with "
        "the token; the operator test checks the Service and the Secret's api-token key",
    ),
    Rule(
        r"^kill %1$",
        tests=(QUICKSTART_API,),
        why="stops the port-forward of step 3 (shell job control, nothing of liteshift's)",
    ),
    Rule(
        r"^tests/cluster/bin/cluster ",
        tests=("tests/e2e/test_control_plane.py::test_ready_with_rbac_and_the_admin_identity",),
        why="tests/cluster/controlplane.py starts this binary with -data-dir and -kubeconfig",
    ),
)


def rule_for(command: Command) -> Rule | None:
    """The first rule matching the command, or None."""
    return next((rule for rule in RULES if rule.matches(command)), None)


def uncovered(commands: list[Command]) -> list[str]:
    """`file:line: command` for each command no rule matches."""
    return [f"{c.where}: {c.text}" for c in commands if rule_for(c) is None]


def missing_tests(node_ids: set[str], root: Path = ROOT) -> list[str]:
    """The node ids pytest does not collect (one `pytest --collect-only` of their files)."""
    files = sorted(
        {node.split("::")[0] for node in node_ids if (root / node.split("::")[0]).is_file()}
    )
    collected: set[str] = set()
    if files:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             *files],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        collected = {line.strip() for line in result.stdout.splitlines()}
    return [
        node
        for node in sorted(node_ids)
        if node not in collected and not any(found.startswith(f"{node}[") for found in collected)
    ]


def check(root: Path = ROOT) -> list[str]:
    """Every problem found: untagged fences, uncovered commands, covering tests that are gone."""
    try:
        commands = all_commands(root)
    except DocsError as exc:
        return [str(exc)]
    problems = uncovered(commands)
    nodes = {node for c in commands if (rule := rule_for(c)) for node in rule.tests}
    problems += [f"no such test: {node}" for node in missing_tests(nodes, root)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 on any problem")
    args = parser.parse_args(argv)
    if not args.check:
        for command in all_commands():
            rule = rule_for(command)
            how = "UNCOVERED"
            if rule:
                how = ", ".join(filter(None, [f"run:{rule.run}" if rule.run else "", *rule.tests]))
            print(f"{command.where}: {command.text}\n    -> {how}")
        return 0
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
