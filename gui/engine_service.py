"""The window's handle on the engine service (:mod:`engine.service`), as Qt signals.

One service per app process (:func:`shared_service`), started the first time it is
asked for and ended when the app quits. Its answers arrive on a background thread;
:class:`EngineService` re-emits them as Qt signals, so slots run on the UI thread.

When this process has Keras loaded already (a test that trained in-process, a
screenshot), the service answers here on a background thread
(:class:`engine.service.client.LocalClient`) instead of starting a process that
would import TensorFlow a second time; the app itself never loads Keras, so it
always talks to the child process.

:class:`EngineJob` runs one long job (import, export, expand) in a child process of
its own (:class:`engine.service.jobs.Job`), with its progress and result as signals.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from engine.service.client import LocalClient, ServiceClient
from engine.service.jobs import Job


class EngineService(QObject):
    """Requests to the engine service; answers as signals on the UI thread.

    Signals:
        answered(object): ``{"seq", "kind", "ok", "result" | "error"}``.
        ready(object): the service has loaded Keras (its ``ready`` message).
        restarted(int): it died and a new one was started (how many times so far).
        failed(str): no service can be started at all.
    """

    answered = Signal(object)
    ready = Signal(object)
    restarted = Signal(int)
    failed = Signal(str)
    _event = Signal(object)

    def __init__(self, parent: QObject | None = None, *, local: bool | None = None) -> None:
        super().__init__(parent)
        if local is None:
            local = "keras" in sys.modules
        self._event.connect(self._on_event)
        self.client: Any = LocalClient(self._relay) if local else ServiceClient(self._relay)
        self.local = local

    @property
    def is_ready(self) -> bool:
        """Whether the service has loaded Keras (answers come quickly now)."""
        return self.client.ready_info is not None

    def request(self, kind: str, args: dict[str, Any] | None = None) -> int:
        """Send one request (never blocks); its answer comes as :attr:`answered`."""
        return self.client.request(kind, args)

    def close(self) -> None:
        self.client.close()

    def _relay(self, event: dict[str, Any]) -> None:  # a background thread
        try:
            self._event.emit(event)
        except RuntimeError:  # the app is being torn down
            pass

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "answer":
            self.answered.emit(event)
        elif kind == "ready":
            self.ready.emit(event)
        elif kind == "restarted":
            self.restarted.emit(int(event.get("restarts", 1)))
        elif kind == "failed":
            self.failed.emit(str(event.get("error", "")))


_shared: EngineService | None = None


def shared_service() -> EngineService:
    """The app's engine service, started on first use; it outlives windows."""
    global _shared
    if _shared is None:
        _shared = EngineService()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(_shared.close)
    return _shared


def service_started() -> EngineService | None:
    """The app's engine service if something has started it, else None."""
    return _shared


def ready_service() -> EngineService | None:
    """The engine service when it can answer now: started and Keras loaded there
    (or Keras already loaded in this process: answered here), else None."""
    service = _shared
    if service is None and "keras" in sys.modules:
        service = shared_service()
    return service if service is not None and service.is_ready else None


class LatestRequest(QObject):
    """One kind of request where only the newest counts (a plot, a list), like
    :class:`gui.training.background.BackgroundJob` but answered by the engine service.

    Signals:
        done(object): the newest request's result (UI thread).
        failed(str): what went wrong with it.
    """

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._seq = 0
        self._service: EngineService | None = None

    @property
    def busy(self) -> bool:
        """True while the newest request has not been answered."""
        return self._seq != 0

    def submit(self, kind: str, args: dict[str, Any] | None = None) -> bool:
        """Ask the service; False (nothing sent) when it is not ready yet."""
        service = ready_service()
        if service is None:
            return False
        if service is not self._service:
            service.answered.connect(self._on_answer)
            service.restarted.connect(self._on_restarted)
            self._service = service
        self._seq = service.request(kind, args)
        return True

    def _on_answer(self, event: dict[str, Any]) -> None:
        if event.get("seq") != self._seq:
            return
        self._seq = 0
        if event.get("ok"):
            self.done.emit(event["result"])
        else:
            self.failed.emit(str(event.get("error", "")))

    def _on_restarted(self, _count: int) -> None:
        pass  # the client sends the unanswered request again


_RUNNING: set[EngineJob] = set()
"""Jobs not ended yet (kept alive even if whoever started them has gone)."""


class EngineJob(QObject):
    """One :class:`engine.service.jobs.Job` (import, export, expand) as Qt signals.

    Signals (UI thread; nothing after :meth:`cancel`):
        progress(str): what the job is doing now ("Exporting to onnx…").
        done(object): its result.
        failed(object): the exception it raised (or a
            :class:`engine.service.jobs.JobError` when its process died).
    """

    progress = Signal(str)
    done = Signal(object)
    failed = Signal(object)
    _event = Signal(object)

    def __init__(
        self,
        kind: str,
        args: dict[str, Any],
        parent: QObject | None = None,
        *,
        local: bool | None = None,
    ) -> None:
        super().__init__(parent)
        self._event.connect(self._on_event)
        self.job = Job(kind, args, self._relay, local=local)

    @property
    def cancelled(self) -> bool:
        return self.job.cancelled

    def start(self) -> EngineJob:
        """Start it; a process that cannot start is said as :attr:`failed`, later."""
        try:
            self.job.start()
        except Exception as exc:  # no process at all (out of memory, too many processes)
            QTimer.singleShot(0, lambda error=exc: self.failed.emit(error))
            return self
        _RUNNING.add(self)
        return self

    def cancel(self) -> None:
        """Kill the job's process (a local job's result is dropped); no signal follows."""
        self.job.cancel()
        _RUNNING.discard(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job has ended (its signal is then queued for the UI thread)."""
        return self.job.wait(timeout)

    def _relay(self, event: dict[str, Any]) -> None:  # the job's reader thread
        try:
            self._event.emit(event)
        except RuntimeError:  # the app is being torn down
            pass

    def _on_event(self, event: dict[str, Any]) -> None:
        if self.job.cancelled:
            return
        kind = event.get("event")
        if kind == "progress":
            self.progress.emit(str(event.get("text", "")))
            return
        _RUNNING.discard(self)
        if kind == "done":
            self.done.emit(event.get("result"))
        else:
            self.failed.emit(event.get("error"))


def running_jobs() -> list[EngineJob]:
    """The jobs that have not ended yet."""
    return list(_RUNNING)
