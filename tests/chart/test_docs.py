"""docs/helm.md documents every key of values.yaml, and nothing values.yaml lacks; the shell
commands of docs/quickstart.md and docs/helm.md parse, and their helm commands render."""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from typing import Any

import yaml

from tests.chart.helm import CHART, ROOT, helm

ROW = re.compile(r"^\| `([A-Za-z0-9_.]+)` \| ")


def leaves(values: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            found |= leaves(value, f"{path}.")
        else:
            found.add(path)
    return found


def documented() -> set[str]:
    text = (ROOT / "docs" / "helm.md").read_text()
    values_section = text.split("## Values", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for line in values_section.splitlines() if (m := ROW.match(line))}


def test_every_value_is_documented() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = documented()
    for leaf in sorted(leaves(values)):
        parts = leaf.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        assert ancestors & rows, f"{leaf} is missing from docs/helm.md"


def test_every_documented_value_exists() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for row in sorted(documented()):
        node: Any = values
        for part in row.split("."):
            assert isinstance(node, dict) and part in node, f"docs/helm.md: no value {row}"
            node = node[part]


def test_every_value_has_a_comment_in_values_yaml() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("-"):
            continue
        key = stripped.split(":")[0]
        parent_is_documented_map = key in {"requests", "limits", "cpu", "memory"} or (
            key == "grafana_dashboard"
        )
        if parent_is_documented_map:
            continue
        previous = lines[index - 1].strip() if index else ""
        assert previous.startswith("#") or stripped.endswith(":"), (
            f"values.yaml: {key} undocumented"
        )


def shell_blocks(name: str) -> list[str]:
    text = (ROOT / "docs" / name).read_text()
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def commands(block: str) -> list[list[str]]:
    """The words of each command line (backslash continuations joined)."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip()]


DOCS = ("quickstart.md", "helm.md")


def test_shell_blocks_are_valid_bash() -> None:
    for name in DOCS:
        for block in shell_blocks(name):
            result = subprocess.run(
                ["bash", "-n"], check=False, input=block, capture_output=True, text=True
            )
            assert result.returncode == 0, f"{name}: {result.stderr}\n{block}"


def test_files_the_docs_apply_exist() -> None:
    for name in DOCS:
        for block in shell_blocks(name):
            for words in commands(block):
                for flag, value in itertools.pairwise(words):
                    if flag == "-f" and words[0] == "kubectl":
                        assert (ROOT / value).exists(), f"{name}: {value} does not exist"


def test_helm_commands_in_the_docs_render() -> None:
    # `helm install/upgrade NAME CHART flags...` becomes `helm template` with the same values:
    # a flag or a --set the chart's schema refuses fails here.
    seen = 0
    for name in DOCS:
        for block in shell_blocks(name):
            for words in commands(block):
                if words[:2] not in (["helm", "install"], ["helm", "upgrade"]):
                    continue
                release, chart, *flags = words[2:]
                flags = [f for f in flags if f not in ("--create-namespace", "--reuse-values")]
                helm("template", release, str(ROOT / chart), *flags)
                seen += 1
    assert seen >= 3
