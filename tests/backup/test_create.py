"""create_backup on real SQLite files, including the 16-writer online backup."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import apsw
import pytest

from liteshift.backup import (
    BackupOptions,
    InvalidBackupOption,
    create_backup,
    list_backups,
    restore_backup,
    verify_backup,
)
from liteshift.backup.manifest import MANIFEST_NAME
from liteshift.store.errors import StoreUnavailable
from tests.backup.conftest import make_store_file


def test_manifest_describes_the_copy(
    store_file: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    source, counts = store_file
    events: list[tuple[str, int, int | None]] = []
    manifest = create_backup(
        f"sqlite://{source}",
        tmp_path / "backups",
        BackupOptions(datastore="shop", namespace="prod"),
        progress=lambda phase, done, total: events.append((phase, done, total)),
    )
    directory = tmp_path / "backups" / manifest.id
    assert manifest.id.startswith("shop-")
    assert sorted(p.name for p in directory.iterdir()) == ["data.db", MANIFEST_NAME]
    assert manifest.row_counts == counts
    assert manifest.schema_version == 2
    assert manifest.check == "quick_check" and manifest.check_result == "ok"
    assert manifest.size == (directory / "data.db").stat().st_size
    on_disk = json.loads((directory / MANIFEST_NAME).read_text())
    assert on_disk["namespace"] == "prod" and on_disk["engine"] == "sqlite"
    assert on_disk["created_at"].endswith("Z")
    assert {"copy", "check", "hash"} <= {phase for phase, _, _ in events}
    assert not [p for p in (tmp_path / "backups").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_compressed_backup_round_trips(
    store_file: tuple[Path, dict[str, int]], tmp_path: Path, codec: str
) -> None:
    source, counts = store_file
    manifest = create_backup(
        f"sqlite://{source}",
        tmp_path / "b",
        BackupOptions(compression=codec, full_check=True),  # type: ignore[arg-type]
    )
    directory = tmp_path / "b" / manifest.id
    assert manifest.file == "data.db" + (".zst" if codec == "zstd" else ".gz")
    assert manifest.check == "integrity_check"
    assert manifest.size < manifest.extra["uncompressed_size"]
    verify_backup(directory, full=True)
    target = tmp_path / "restored.db"
    result = restore_backup(directory, f"sqlite://{target}")
    assert result.row_counts == counts


def test_missing_source_leaves_nothing_behind(tmp_path: Path) -> None:
    dest = tmp_path / "b"
    with pytest.raises(StoreUnavailable, match="no such file"):
        create_backup(f"sqlite://{tmp_path}/nope.db", dest)
    assert list(dest.iterdir()) == []


def test_bad_datastore_name_is_refused(
    store_file: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    with pytest.raises(InvalidBackupOption, match="datastore"):
        create_backup(f"sqlite://{store_file[0]}", tmp_path, BackupOptions(datastore="../etc"))


def test_backup_under_16_writers(tmp_path: Path) -> None:
    """16 writer threads keep inserting; the backup finishes, checks clean, restores exactly.

    Every write is timed; none may fail or take longer than 200 ms while the backup runs.
    """
    source = tmp_path / "live.db"
    make_store_file(source, messages=160_000, events=40_000)  # ~40 MB: a copy that takes a while
    stop = threading.Event()
    errors: list[BaseException] = []
    latencies: list[list[tuple[float, float]]] = [[] for _ in range(16)]

    def connect() -> apsw.Connection:
        conn = apsw.Connection(str(source))
        conn.set_busy_timeout(5000)
        conn.execute("PRAGMA synchronous=NORMAL")
        # As in the store: checkpoints run off the write path (an auto-checkpoint inside a
        # commit stalls that writer 0.1-0.5 s on this box, backup or not).
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    # Opened up front: bestpractice's open-time `PRAGMA optimize` would contend otherwise.
    connections = [connect() for _ in range(16)]

    def writer(n: int) -> None:
        conn = connections[n]
        try:
            while not stop.is_set():
                started = time.perf_counter()
                conn.execute(
                    "INSERT INTO events (kind, payload) VALUES (?, ?)", (f"w{n}", "x" * 200)
                )
                latencies[n].append((started, time.perf_counter() - started))
                time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    def checkpointer() -> None:
        conn = apsw.Connection(str(source))
        while not stop.wait(0.2):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        conn.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    threads.append(threading.Thread(target=checkpointer))
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    began = time.perf_counter()
    manifest = create_backup(f"sqlite://{source}", tmp_path / "backups")
    ended = time.perf_counter()
    time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join()

    assert errors == []
    during = [lat for per in latencies for (t, lat) in per if began <= t <= ended]
    before = [lat for per in latencies for (t, lat) in per if t < began]
    context = (
        f"backup took {ended - began:.2f} s; {len(during)} writes during it, max "
        f"{max(during) * 1000:.0f} ms; {len(before)} writes before it, max "
        f"{max(before) * 1000:.0f} ms (os load average {os.getloadavg()[0]:.1f})"
    )
    assert len(during) > 100, "the writers must really have been writing during the backup"
    assert max(during) < 0.200, context
    assert manifest.check_result == "ok"
    assert manifest.row_counts["events"] >= 20_000
    directory = tmp_path / "backups" / manifest.id
    restored = tmp_path / "restored.db"
    result = restore_backup(directory, f"sqlite://{restored}")
    assert result.row_counts == manifest.row_counts
    assert [e.complete for e in list_backups(tmp_path / "backups")] == [True]


def test_backup_of_an_open_store_restores_into_a_store(tmp_path: Path) -> None:
    """The real store (its writer, readers and migrations) is open while the backup runs."""
    from liteshift.backup.schema import known_schema_version
    from liteshift.store import open_store
    from liteshift.store.models import MessageIn

    source = tmp_path / "live.db"
    store = open_store(f"sqlite://{source}", migrate=True)
    try:
        ids = [
            store.create_message(MessageIn(conversation_id="c1", role="user", content=f"hi {i}")).id
            for i in range(50)
        ]
        manifest = create_backup(f"sqlite://{source}", tmp_path / "b")
        store.create_message(MessageIn(conversation_id="c1", role="user", content="after"))
    finally:
        store.close()
    assert manifest.schema_version == known_schema_version("sqlite") is not None
    assert manifest.row_counts["messages"] == 50
    target = tmp_path / "restored.db"
    restore_backup(tmp_path / "b" / manifest.id, f"sqlite://{target}")
    restored = open_store(f"sqlite://{target}")
    try:
        assert restored.get_message(ids[7]).content == "hi 7"
        assert restored.list_messages(conversation_id="c1", limit=100).items.__len__() == 50
    finally:
        restored.close()
