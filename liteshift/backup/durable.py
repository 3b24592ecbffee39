"""Crash-safe file operations: fsync a file or directory, write a file atomically, and delete
large files without stalling a live database on the same disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (to make a rename or unlink inside it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader sees the old file or the whole new one, never a part.

    temp file in the same directory → fsync → rename → fsync the directory.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)


#: Bytes freed per step when a large file is deleted (see `delete_gently`).
SHRINK_STEP = 16 * 1024 * 1024


def delete_gently(path: Path) -> None:
    """Delete a file, freeing its blocks `SHRINK_STEP` bytes at a time.

    Unlinking a 1 GB file frees every block in one file-system journal commit (and, on a mount
    with `discard`, discards them in it), and each fsync of a live database on the same file
    system waits for that commit: 4 store writers stalled ~300 ms while a 1.1 GB backup was
    unlinked. Shrinking it from the end in durable steps bounds each commit to one step (writer
    max ~16 ms) and takes the same time overall. A file with other hard links, or a symlink,
    is just unlinked: truncating would change what the other names show.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    except OSError:
        path.unlink()  # a symlink (ELOOP), or no write permission: plain unlink (or its error)
        return
    try:
        info = os.fstat(fd)
        size = info.st_size
        if info.st_nlink == 1:
            while size > SHRINK_STEP:
                size -= SHRINK_STEP
                os.ftruncate(fd, size)
                os.fdatasync(fd)
    finally:
        os.close(fd)
    path.unlink()


def remove_tree_gently(path: Path) -> None:
    """`shutil.rmtree(path)`, with every large regular file in it deleted by `delete_gently`."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink() and file.stat().st_size > SHRINK_STEP:
                delete_gently(file)
    shutil.rmtree(path)
