"""Writing files so that nothing is lost: the one atomic-write helper, and what is on disk.

Every file LayerLab writes goes through :func:`write_atomic` (bytes or text) or
:func:`atomic_path` (for writers that need a file name, such as ``model.save`` or
h5py). Either way:

- the data goes to a temporary file in the same folder, named
  ``.NAME.layerlab-tmp-XXXXXXXX`` so it is recognisable, which is flushed to disk
  (fsync), renamed over the target (``os.replace``) and the folder is synced, so
  a crash or a full disk leaves the old file or the new one, never half of one;
- the temporary file is removed on any failure, Ctrl+C included;
- an existing file keeps its permission bits; a new one gets the usual
  ``0666 & ~umask`` (not the ``0600`` of :func:`tempfile.mkstemp`);
- a symlink stays a symlink: the file it points to is replaced;
- a read-only file is refused (:class:`FileWriteError`, naming it), not replaced.

Temporary files left by killed processes are removed by :func:`clean_stale_temps`.

:class:`LatestWrites` does such writes on a background thread, the latest one per
file winning, for a loop that must not wait on the disk (the sync costs 1-30 ms).

:class:`DiskState` and :func:`changed_on_disk` tell whether a file changed since
it was loaded or saved (its modification time and the sha256 of its content).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.limits import NotRegularFile, open_regular

TEMP_MARK = ".layerlab-tmp-"
#: Temporary files of LayerLab's writers, past and present (see clean_stale_temps).
TEMP_PATTERNS = (
    f".*{TEMP_MARK}*",  # this module
    ".*.json.*.tmp",  # project and run files before this module
    ".recovery-*.tmp",  # the window's autosave
    ".history.csv.tmp",  # a run's history table
)
_NAME_KEPT = 100  # of the target's name in the temp's name: stays well under NAME_MAX
_umask_lock = threading.Lock()


class FileWriteError(OSError):
    """A file that LayerLab will not or cannot write; the message names it and says why."""

    def __init__(self, path: str | os.PathLike, reason: str, code: int = errno.EACCES) -> None:
        super().__init__(code, reason, str(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _umask() -> int:
    with _umask_lock:  # os.umask only reads it by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _target(path: Path) -> Path:
    """Where the data really goes: a symlink's target (the link itself is left as it is)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot sync a folder; the rename still holds
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_path(
    path: str | os.PathLike, *, suffix: str = "", mode: int | None = None
) -> Iterator[Path]:
    """A temporary path to write instead of ``path``; on success it replaces ``path``.

    The body writes the file named by the yielded path (it exists, empty, and may be
    replaced by the writer). Leaving the body normally syncs it and renames it over
    ``path`` (through a symlink, to its target); any exception removes it instead.

    Args:
        path: The file to write.
        suffix: Appended to the temporary name, for writers that insist on one
            (Keras wants ``.weights.h5`` or ``.keras``).
        mode: Permission bits for the result; default: those of the existing file,
            else ``0666 & ~umask``.

    Raises:
        FileWriteError: ``path`` is a read-only file or a folder, or its folder does
            not allow a new file.
    """
    path = Path(path)
    target = _target(path)
    folder = target.parent
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise FileWriteError(path, "is a folder", errno.EISDIR)
        if not stat.S_ISREG(st.st_mode):
            raise FileWriteError(path, "is not a regular file", errno.EINVAL)
        if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise FileWriteError(path, "is read-only; it was not changed")
    if mode is None:
        mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name[:_NAME_KEPT]}{TEMP_MARK}", suffix=suffix, dir=folder
        )
    except FileNotFoundError:
        raise FileWriteError(path, f"the folder {folder} does not exist", errno.ENOENT) from None
    except OSError as exc:
        raise FileWriteError(
            path, f"cannot create a file in {folder} ({exc.strerror or exc})", exc.errno or 0
        ) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, mode)  # after the body: some writers replace the file they are given
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)


def write_atomic(
    path: str | os.PathLike, data: bytes | str, *, encoding: str = "utf-8"
) -> DiskState:
    """Write ``data`` (text is encoded with ``encoding``) to ``path`` atomically.

    Returns:
        The state of the file as written (for :func:`changed_on_disk`).

    Raises:
        FileWriteError: See :func:`atomic_path`.
        OSError: Writing failed (a full disk, ...); the old file is unchanged.
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    return DiskState.of(data, os.stat(path))


class LatestWrites:
    """Writes done by one background thread; of the writes queued for one key while
    another is in progress, only the latest is done. A training run rewrites its
    history files every epoch: on the training thread each rewrite (two synced
    files) held training up 10-30 ms per epoch.

    Use as a context manager around the loop: leaving it waits for every write
    queued. A write that failed raises its error on the caller's thread, at the next
    :meth:`submit` or when the block is left (not while another exception leaves it)::

        with LatestWrites() as writes:
            for epoch in ...:
                writes.submit("history", functools.partial(write_history, folder, copy))
    """

    def __init__(self, name: str = "layerlab-writes") -> None:
        self.name = name
        self._pending: dict[str, Any] = {}
        self._error: BaseException | None = None
        self._busy = False  # a write is in progress
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def submit(self, key: str, write: Any) -> None:
        """Queue ``write()`` (a callable), replacing one still queued for ``key``.

        Raises:
            OSError: An earlier write failed (raised once).
        """
        self._raise()
        with self._cond:
            self._pending[key] = write
            if self._thread is None:
                self._closing = False
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def drain(self) -> None:
        """Wait until every write queued so far is done (raising a failed one's error)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._pending and not self._busy)
        self._raise()

    def _raise(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closing)
                if not self._pending:  # closing, and all written
                    return
                key = next(iter(self._pending))
                write = self._pending.pop(key)
                self._busy = True
            try:
                write()
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def __enter__(self) -> LatestWrites:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()  # every queued write done: the thread ends when none is left
        if kind is None:
            self._raise()


def clean_stale_temps(folder: str | os.PathLike, older_than_s: float = 3600.0) -> list[Path]:
    """Remove temporary files that writers killed mid-write left in ``folder``.

    Only regular files named as LayerLab's writers name them (:data:`TEMP_PATTERNS`)
    and not modified for ``older_than_s`` seconds (so a save in progress in another
    process is left alone). A file that cannot be removed is left where it is.

    Returns:
        The files removed.
    """
    folder = Path(folder)
    now = time.time()
    removed: list[Path] = []
    seen: set[Path] = set()
    for pattern in TEMP_PATTERNS:
        for file in folder.glob(pattern):
            if file in seen:
                continue
            seen.add(file)
            try:
                st = file.lstat()
                if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < older_than_s:
                    continue
                file.unlink()
            except (FileNotFoundError, PermissionError):
                continue  # gone meanwhile, or not ours to remove
            removed.append(file)
    return removed


@dataclass(frozen=True)
class DiskState:
    """A file as LayerLab last read or wrote it.

    Attributes:
        mtime_ns: Its modification time.
        size: Its size in bytes.
        sha256: The hex digest of its content.
    """

    mtime_ns: int
    size: int
    sha256: str

    @classmethod
    def of(cls, data: bytes, st: os.stat_result) -> DiskState:
        """The state of a file whose content is ``data`` and whose ``stat`` is ``st``."""
        return cls(st.st_mtime_ns, len(data), hashlib.sha256(data).hexdigest())


def read_state(path: str | os.PathLike) -> DiskState | None:
    """The state of the file at ``path`` now, or None when there is no such file.

    Raises:
        NotRegularFile: ``path`` is a FIFO, a device or a socket (never waited on).
    """
    try:
        with open_regular(path) as f:
            st = os.fstat(f.fileno())
            digest = hashlib.sha256()
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        return None
    except NotRegularFile:
        if os.path.isdir(path):  # a folder where the file was: it is gone
            return None
        raise
    return DiskState(st.st_mtime_ns, st.st_size, digest.hexdigest())


def changed_on_disk(project: Any) -> str | None:
    """Whether the file ``project`` was loaded from or saved to changed since then.

    ``project`` is anything with ``path`` and ``disk_state`` (an
    :class:`engine.model.project.Project`). The content decides: a file only touched
    (same bytes, new time) has not changed.

    Returns:
        None when the file holds what was last loaded or saved (or the project was
        never loaded or saved), else one sentence saying what happened.
    """
    path, known = getattr(project, "path", None), getattr(project, "disk_state", None)
    if path is None or known is None:
        return None
    try:
        now = read_state(path)
    except NotRegularFile:
        return f"{path} is no longer a regular file"
    if now is None:
        return f"{path} was deleted or moved since it was opened"
    if now.sha256 == known.sha256:
        return None
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now.mtime_ns / 1e9))
    return f"{path} was changed on disk since it was opened or saved (modified {when})"
