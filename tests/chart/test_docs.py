"""docs/helm.md documents every key of values.yaml, and nothing values.yaml lacks; the shell
commands of docs/quickstart.md and docs/helm.md parse, their helm commands render, and the
quickstart's API calls work against a real sidecar."""

from __future__ import annotations

import itertools
import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.chart.helm import CHART, ROOT, helm
from tests.dashboards.sidecar import serve

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


@dataclass
class Curl:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    pipe: list[str]


def curls(block: str) -> list[Curl]:
    """The curl commands of a shell block, as requests (the flags the docs use)."""
    found = []
    for line in commands(block):
        if line[0] != "curl":
            continue
        # The request ends at a pipe or at `&&` (what follows reads the response or the file).
        cut = next((i for i, word in enumerate(line) if word in ("|", "&&")), len(line))
        words, pipe = line[:cut], line[cut + 1 :]
        method, url, headers, body = "GET", "", {}, None
        rest = iter(words[1:])
        for word in rest:
            if word == "-X":
                method = next(rest)
            elif word == "-H":
                key, _, value = next(rest).partition(": ")
                headers[key] = value
            elif word == "-d":
                body = next(rest)
                method = "POST" if method == "GET" else method
            elif word == "-o":
                next(rest)  # saved to a file by the docs; checked in memory here
            elif word.startswith("http"):
                url = word
            else:
                assert word == "-sS", f"unknown curl flag {word} in the docs"
        found.append(Curl(method, url, headers, body, pipe))
    return found


def section(name: str, title: str) -> str:
    text = (ROOT / "docs" / name).read_text()
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def run_curls(block: str, base: str, token: str) -> list[httpx.Response]:
    responses = []
    for curl in curls(block):
        assert curl.url.startswith("http://127.0.0.1:8080/"), curl.url
        url = base + curl.url.removeprefix("http://127.0.0.1:8080")
        headers = {
            key: value.replace("$TOKEN", token).replace("$(cat liteshift-data/api-token)", token)
            for key, value in curl.headers.items()
        }
        response = httpx.request(curl.method, url, headers=headers, content=curl.body, timeout=10)
        assert response.status_code < 400, (curl, response.status_code, response.text)
        if curl.pipe[:1] == ["grep"]:
            pattern = re.compile(curl.pipe[1])
            assert any(pattern.search(line) for line in response.text.splitlines()), curl
        responses.append(response)
    return responses


def test_quickstart_api_calls_work_against_a_real_sidecar(tmp_path: Path) -> None:
    # Section 3 and 4 talk to the sidecar through a port-forward; here the same requests go to
    # a real `liteshift serve` (what the pod runs), with the token the Secret would hold.
    token = "quickstart-token-0123456789abcdef"
    env = {"LITESHIFT_API_TOKEN": token, "LITESHIFT_ADMIN_TOKEN": "quickstart-admin-0123456789"}
    (tmp_path / "liteshift-data").mkdir()
    with serve(
        tmp_path, env, "--db", f"sqlite:///{tmp_path / 'liteshift-data' / 'shop.db'}"
    ) as base:
        (block,) = shell_blocks_in(section("quickstart.md", "3. Use the API"))
        created, listed, openapi = run_curls(block, base, token)
        assert created.status_code == 201
        message = created.json()
        assert message["content"] == "hello"
        assert message["id"] in json.dumps(listed.json())
        assert "/v1/messages" in openapi.json()["paths"]
        metrics_block = shell_blocks_in(section("quickstart.md", "4. Watch the dashboard"))[0]
        run_curls(metrics_block, base, token)


def test_quickstart_without_a_cluster(tmp_path: Path) -> None:
    # `make serve` runs `liteshift serve` with the defaults: tokens are generated next to
    # ./liteshift-data/liteshift.db, where the docs' `cat liteshift-data/api-token` finds them.
    makefile = (ROOT / "Makefile").read_text()
    assert "$(VENV)/bin/liteshift serve\n" in makefile
    with serve(tmp_path, {}) as base:
        token = (tmp_path / "liteshift-data" / "api-token").read_text().strip()
        blocks = shell_blocks_in(section("quickstart.md", "Without a cluster"))
        assert blocks[0].strip() == "make serve"
        (response,) = run_curls(blocks[1], base, token)
        assert response.json()["items"] == []


def shell_blocks_in(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def test_rbac_table_lists_exactly_the_operators_permissions() -> None:
    from liteshift.operator import kube

    table = section("helm.md", "RBAC")
    rows = set()
    for line in table.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[2] and cells[0] not in ("API group", "---"):
            group = "" if cells[0] == "core" else cells[0]
            rows |= {(group, cells[1], verb.strip()) for verb in cells[2].split(",")}
    declared = {
        (group, resource, verb)
        for group, resource, verbs in (*kube.PERMISSIONS, *kube.KOPF_PERMISSIONS)
        for verb in verbs
    }
    assert rows == declared, "update the RBAC table of docs/helm.md"
