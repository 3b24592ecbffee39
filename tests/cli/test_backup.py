"""`liteshift backup …` end to end through the real CLI entry point, on real files."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from liteshift.backup.manifest import MANIFEST_NAME
from liteshift.cli import main
from tests.backup.conftest import flip_byte, make_store_file


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _backup(tmp_path: Path, *extra: str) -> tuple[Path, dict[str, int]]:
    source = tmp_path / "live.db"
    counts = make_store_file(source) if not source.exists() else {}
    result = run(
        "backup", "create", "--db", f"sqlite://{source}", "--dest", str(tmp_path / "b"),
        "--json", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    return tmp_path / "b" / manifest["id"], counts


def test_create_verify_restore(tmp_path: Path) -> None:
    directory, counts = _backup(tmp_path, "--compress", "zstd", "--datastore", "shop")
    assert directory.name.startswith("shop-")
    verified = run("backup", "verify", str(directory), "--full")
    assert verified.exit_code == 0, verified.output
    assert "integrity_check ok, sha256 matches" in verified.stdout
    target = tmp_path / "restored.db"
    restored = run("backup", "restore", str(directory), "--db", f"sqlite://{target}")
    assert restored.exit_code == 0, restored.output
    assert f"{sum(counts.values())} rows in {len(counts)} tables match" in restored.stdout
    again = run("backup", "restore", str(directory), "--db", f"sqlite://{target}")
    assert again.exit_code == 1
    assert "already exists; pass --force" in again.stderr
    assert "Traceback" not in again.output


def test_human_create_output(tmp_path: Path) -> None:
    source = tmp_path / "live.db"
    make_store_file(source)
    result = run("backup", "create", "--db", f"sqlite://{source}", "--dest", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    assert "quick_check ok" in result.stdout


def test_failed_verify_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    directory, _ = _backup(tmp_path)
    flip_byte(directory / "data.db", 3000)
    result = run("backup", "verify", str(directory))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: backup file")
    assert "is damaged" in result.stderr
    assert "Traceback" not in result.output


def test_truncated_manifest_fails_verify(tmp_path: Path) -> None:
    directory, _ = _backup(tmp_path)
    manifest = directory / MANIFEST_NAME
    manifest.write_text(manifest.read_text()[:50])
    result = run("backup", "verify", str(directory))
    assert result.exit_code == 1
    assert "not valid JSON (truncated?)" in result.stderr


def test_list_marks_incomplete(tmp_path: Path) -> None:
    good, _ = _backup(tmp_path)
    broken, _ = _backup(tmp_path)
    (broken / MANIFEST_NAME).unlink()
    result = run("backup", "list", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    assert good.name in result.stdout
    assert "incomplete: missing" in result.stdout
    as_json = run("backup", "list", str(tmp_path / "b"), "--json")
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert sorted(r["complete"] for r in rows) == [False, True]


def test_prune_keep_last(tmp_path: Path) -> None:
    for _ in range(4):
        _backup(tmp_path)
    result = run("backup", "prune", str(tmp_path / "b"), "--keep-last", "2", "--max-age", "7d")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("deleted ") == 2
    assert "2 kept, 2 deleted" in result.stdout
    assert len(list((tmp_path / "b").iterdir())) == 2


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    cases = [
        (["backup", "create", "--db", "mysql://x", "--dest", str(tmp_path)], "unknown scheme"),
        (["backup", "prune", str(tmp_path), "--max-age", "soon"], "is not like 12h"),
        (["backup", "list", str(tmp_path / "none")], "no backup at"),
        (
            [
                "backup",
                "create",
                "--db",
                f"sqlite://{tmp_path}/missing.db",
                "--dest",
                str(tmp_path),
            ],
            "no such file",
        ),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.output
