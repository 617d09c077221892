"""A ``layerlab`` command run as a child process that prints one JSON object per line
(``tune --json``, ``tune --summary --json``, ``lr-find --json``): each parsed line
comes out as :attr:`JsonProcess.line`, the end as :attr:`JsonProcess.ended` with the
exit status and the command's ``error:`` message. The window never imports Optuna or
TensorFlow for these: they live in the child.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, Signal


def write_snapshot(project: Any) -> str:
    """The project as it is in the window (unsaved edits too) in a temporary file,
    for a command's ``--snapshot FILE``; the caller removes it (:func:`remove`)."""
    fd, name = tempfile.mkstemp(prefix="layerlab-snapshot-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(project.to_dict(), f)
    return name


def remove(path: str | None) -> None:
    if path:
        Path(path).unlink(missing_ok=True)


class JsonProcess(QObject):
    """``python -m engine.cli ARGS`` in a :class:`QProcess`, read line by line."""

    line = Signal(object)  # a dict (object: a QVariantMap would sort its keys)
    ended = Signal(int, str)  # exit status (-1: could not start / crashed), error text

    def __init__(self, args: list[str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.args = list(args)
        self.process = QProcess(self)
        self.process.setProgram(sys.executable)
        self.process.setArguments(["-m", "engine.cli", *self.args])
        self._buffer = b""
        self._ended = False
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)

    def start(self) -> None:
        self.process.start()

    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def stop(self) -> None:
        """SIGTERM: ``layerlab tune`` stops its trials as on Ctrl-C and exits."""
        if self.running():
            self.process.terminate()

    def kill(self) -> None:
        if self.running():
            self.process.kill()
            self.process.waitForFinished(3000)

    def _read(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", "replace").strip()
            if not text.startswith("{"):
                continue
            try:
                event = json.loads(text)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.line.emit(event)

    def _error_text(self, code: int) -> str:
        err = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        lines = [x.strip() for x in err.splitlines() if x.strip()]
        named = [x.removeprefix("error: ") for x in lines if x.startswith("error:")]
        if named:
            return named[-1]
        return lines[-1] if lines and code != 0 else ""

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self._ended:
            return
        self._read()
        self._buffer += b"\n"
        self._read()
        self._ended = True
        crashed = status == QProcess.ExitStatus.CrashExit
        self.ended.emit(-1 if crashed else code, self._error_text(code))

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and not self._ended:
            self._ended = True
            self.ended.emit(-1, f"could not start: {self.process.errorString()}")
