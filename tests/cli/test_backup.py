"""`liteshift backup …` end to end through the real CLI entry point, on real files."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from liteshift.backup.manifest import MANIFEST_NAME
from liteshift.cli import main
from liteshift.promotion.online import OnlinePromotion, promoted_marker
from liteshift.store import open_store
from liteshift.store.models import MessageIn
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


def test_rollback_after_cutover_by_backup_and_restore_as_sqlite_primary(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """The manual rollback of docs/promotion.md, step by step, on a really promoted file."""
    db = tmp_path / "liteshift.db"
    store = open_store(f"sqlite://{db}", migrate=True, vector_dimension=3)
    try:
        kept = store.create_message(MessageIn(conversation_id="c", role="user", content="kept"))
    finally:
        store.close()
    promotion = OnlinePromotion(str(db), postgres_dsn)
    promotion.prepare()
    promotion.finish()
    marker = promoted_marker(str(db))
    assert marker is not None

    created = run(
        "backup", "create", "--db", f"sqlite://{db}", "--dest", str(tmp_path / "b"), "--json"
    )
    assert created.exit_code == 0, created.output
    directory = tmp_path / "b" / json.loads(created.stdout)["id"]
    refused = run("backup", "restore", str(directory), "--db", f"sqlite://{db}", "--force")
    assert refused.exit_code == 1
    assert "error: refusing to restore into" in refused.stderr
    assert "pass --as-sqlite-primary" in refused.stderr and "Traceback" not in refused.output
    assert promoted_marker(str(db)) == marker  # untouched

    restored = run(
        "backup", "restore", str(directory), "--db", f"sqlite://{db}", "--force",
        "--as-sqlite-primary",
    )  # fmt: skip
    assert restored.exit_code == 0, restored.output
    assert (
        f"promoted marker removed: SQLite is the primary again (it was promoted to {marker.target}"
        in restored.stdout
    )
    assert promoted_marker(str(db)) is None  # `liteshift serve` serves the file again
    store = open_store(f"sqlite://{db}", vector_dimension=3)
    try:
        assert store.get_message(kept.id).content == "kept"
        again = store.create_message(MessageIn(conversation_id="c", role="user", content="new"))
        assert store.get_message(again.id).content == "new"
    finally:
        store.close()
