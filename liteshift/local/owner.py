"""Throwaway servers that do not outlive the process that started them.

Postgres daemonizes (`pg_ctl start`: the postmaster's parent is init, not us) and Prometheus,
our child, is re-parented to init when we die: a test run killed with SIGKILL (a timeout, an
OOM kill, a `kill -9` of the job) would leave both running, with their temporary directories,
for as long as the machine stays up. Two mechanisms end them:

- **A watchdog** per server: a tiny `sh` in a session of its own (so killing our process
  group does not take it along) blocks reading a pipe whose only write end we hold. The
  kernel closes that end when we die, however we die; the read returns and the watchdog runs
  the server's stop command and removes its directory. `disarm()` (on a normal stop) kills
  the watchdog first, so it never acts on a server that is already stopped.
- **An owner file** in the server's directory (our pid and its start time, so a reused pid
  is not taken for us): a new server's start stops and removes every server whose owner is
  dead (`orphans`), in case the watchdog was killed too.

Directories without an owner file (made by an older liteshift, or still being created) are
never touched: nobody can tell whether their owner is alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

OWNER_FILE = "owner.json"


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of `pid`, or None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], fields[19]


def process_alive(pid: int, start: str | None = None) -> bool:
    """Whether `pid` runs (a zombie does not), and is the process that started at `start`."""
    stat = _proc_stat(pid)
    if stat is None or stat[0] == "Z":
        return False
    return start is None or stat[1] == start


def write_owner(directory: Path) -> None:
    """Record this process as the owner of the server living in `directory`."""
    stat = _proc_stat(os.getpid())
    assert stat is not None  # our own /proc entry
    (directory / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "start": stat[1]}))


def owner_alive(directory: Path) -> bool | None:
    """Whether the owner recorded in `directory` still runs; None when no owner is recorded."""
    try:
        owner = json.loads((directory / OWNER_FILE).read_text())
        pid, start = int(owner["pid"]), str(owner["start"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return process_alive(pid, start)


def orphans(prefix: str) -> list[Path]:
    """Directories `<tmp>/<prefix>*` whose recorded owner is dead."""
    found = []
    for directory in Path(tempfile.gettempdir()).glob(prefix + "*"):
        if directory.is_dir() and owner_alive(directory) is False:
            found.append(directory)
    return found


@dataclass
class Watchdog:
    """Runs a shell script when this process dies, unless disarmed first."""

    process: subprocess.Popen[bytes]
    write_fd: int

    def disarm(self) -> None:
        """Stop the watchdog without running its script (the owner cleans up itself)."""
        if self.write_fd < 0:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        os.close(self.write_fd)
        self.write_fd = -1


def start_watchdog(script: str) -> Watchdog:
    """Start a watchdog that runs the `sh` script `script` once this process has died."""
    read_fd, write_fd = os.pipe()  # not inheritable: our later children do not hold it open
    try:
        process = subprocess.Popen(
            ["sh", "-c", f"cat >/dev/null; {script}"],
            stdin=read_fd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    return Watchdog(process, write_fd)
