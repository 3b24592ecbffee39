"""docs/helm.md documents every key of values.yaml, and nothing values.yaml lacks."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.chart.helm import CHART, ROOT

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
