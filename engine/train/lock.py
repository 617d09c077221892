"""One run per run directory: an exclusive lock file that names its owner.

A run holds ``RUN_DIR/run.lock`` from before its process starts until its files are
final (``status.json`` says done, stopped or failed). The file is created with
``O_CREAT | O_EXCL``, so of two runs started into one folder at the same moment
exactly one gets it; the other is refused by name (:class:`RunDirBusy`:
"RUN_DIR is in use by process PID"). It holds JSON::

    {"pid": 1234, "host": "box", "pids": [[1234, START], [1240, START]], "created": T}

``pids``: every process that may write the folder (the command or window that
started the run, then its training process) with its start time (Linux's
``/proc/PID/stat``, so a recycled pid does not count as the owner). A lock whose
processes are all gone, on this host, is stale (a run killed with ``kill -9``): the
next run takes it over and says so (:attr:`RunLock.note`). A lock from another host
cannot be checked and is never taken over.

Takeovers are serialised with ``flock`` on the run directory, so two runs that find
the same stale lock cannot both take it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from engine.files import write_atomic

LOCK_NAME = "run.lock"
"""The lock file in a run directory."""

_EMPTY_GRACE_S = 5.0
"""A lock file still empty this long after it was made belongs to a process that died
between creating and writing it."""


class RunDirBusy(Exception):
    """Another run holds the run directory; the message names the folder and the process.

    Attributes:
        run_dir: The folder.
        owner: The lock's content (``pid``, ``host``, ...), or None when unreadable.
    """

    def __init__(self, run_dir: Path, owner: dict[str, Any] | None, message: str) -> None:
        super().__init__(message)
        self.run_dir, self.owner = run_dir, owner


def _host() -> str:
    return socket.gethostname()


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None when unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text[text.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int, start: int | None = None) -> bool:
    """Whether process ``pid`` runs (and, when ``start`` is known, is the same process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    if start is not None:
        now = process_start(pid)
        if now is not None and now != start:
            return False  # the pid was given to another process since
    with contextlib.suppress(OSError):  # a zombie holds its pid but runs no more
        text = Path(f"/proc/{pid}/stat").read_text()
        if text[text.rindex(")") + 2 :].startswith("Z"):
            return False
    return True


def read_lock(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The lock's content, ``{}`` for a lock file not written yet, or None: no lock."""
    try:
        text = (Path(run_dir) / LOCK_NAME).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _entries(owner: dict[str, Any]) -> list[tuple[int, int | None]]:
    out = []
    for item in owner.get("pids") or [[owner.get("pid"), None]]:
        try:
            pid, start = item
            out.append((int(pid), None if start is None else int(start)))
        except (TypeError, ValueError):
            continue
    return out


def lock_state(run_dir: str | os.PathLike) -> tuple[str, dict[str, Any] | None]:
    """``("free", None)``, ``("held", owner)``, ``("stale", owner)`` or
    ``("elsewhere", owner)`` (held on another host: cannot be checked)."""
    path = Path(run_dir) / LOCK_NAME
    owner = read_lock(run_dir)
    if owner is None:
        return "free", None
    if not owner:  # being written now, or its writer died in between
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return "free", None
        return ("stale" if age > _EMPTY_GRACE_S else "held"), owner
    if owner.get("host") not in (None, _host()):
        return "elsewhere", owner
    alive = any(pid_alive(pid, start) for pid, start in _entries(owner))
    return ("held" if alive else "stale"), owner


def busy_message(run_dir: Path, owner: dict[str, Any] | None) -> str:
    """``RUN_DIR is in use by process PID`` (on HOST), with what to do."""
    pid = (owner or {}).get("pid")
    who = f"process {pid}" if pid else "another run"
    host = (owner or {}).get("host")
    if host and host != _host():
        return (
            f"{run_dir} is in use by {who} on {host}; wait for that run to end, or, if it "
            f"is gone, delete {run_dir / LOCK_NAME}"
        )
    return f"{run_dir} is in use by {who}; wait for that run to end or stop it"


class RunLock:
    """A held run-directory lock; :meth:`release` (or leaving ``with``) removes it.

    Attributes:
        run_dir: The folder.
        note: Set when a stale lock was taken over: whose, in one sentence.
    """

    def __init__(self, run_dir: Path, note: str = "") -> None:
        self.run_dir, self.note = run_dir, note
        self.path = run_dir / LOCK_NAME
        self._pids: list[list[int | None]] = [[os.getpid(), process_start(os.getpid())]]
        self.held = True

    def _content(self) -> str:
        return (
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": _host(),
                    "pids": self._pids,
                    "created": time.time(),
                }
            )
            + "\n"
        )

    def add_pid(self, pid: int) -> None:
        """Count process ``pid`` (the run's training process) as an owner too."""
        self._pids.append([pid, process_start(pid)])
        with contextlib.suppress(OSError):
            write_atomic(self.path, self._content())

    def release(self) -> None:
        """Remove the lock (once; only while it is still ours)."""
        if not self.held:
            return
        self.held = False
        owner = read_lock(self.run_dir)
        if owner is not None and owner.get("pid") not in (None, os.getpid()):
            return  # taken over meanwhile (we were thought dead): not ours to remove
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


@contextlib.contextmanager
def _serialised(run_dir: Path):
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def acquire(run_dir: str | os.PathLike) -> RunLock:
    """Lock ``run_dir`` for one run (the folder is created if needed).

    Raises:
        RunDirBusy: Another live run holds it (the message names the process).
        OSError: The folder cannot be created or written.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    note = ""
    with _serialised(run_dir):
        for _ in range(3):
            lock = RunLock(run_dir)
            try:
                fd = os.open(lock.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                state, owner = lock_state(run_dir)
                if state in ("held", "elsewhere"):
                    raise RunDirBusy(run_dir, owner, busy_message(run_dir, owner)) from None
                if state == "stale":
                    pid = (owner or {}).get("pid")
                    note = (
                        f"{run_dir} was locked by process {pid}, which is no longer running; "
                        "its lock was taken over"
                        if pid
                        else f"{run_dir} held an unfinished lock file; it was taken over"
                    )
                    with contextlib.suppress(FileNotFoundError):
                        lock.path.unlink()
                continue
            try:
                os.write(fd, lock._content().encode("utf-8"))
            finally:
                os.close(fd)
            lock.note = note
            return lock
    owner = read_lock(run_dir)
    raise RunDirBusy(run_dir, owner, busy_message(run_dir, owner))
