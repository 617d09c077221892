"""The window's side of the engine service: requests out, answers back, restarts.

::

    client = ServiceClient(on_event)          # spawns the service in the background
    seq = client.request("shapes", {"graph": graph_text(graph)})
    # on_event({"event": "answer", "seq": seq, "kind": "shapes", "ok": True,
    #           "result": {"ids", "info", "problems", "totals"}})  (a background thread)

Nothing here blocks its caller: :meth:`ServiceClient.request` puts the message in an
outbox that a sender thread writes to the pipe (a large graph must not hold the UI
thread while the service is busy), and a reader thread turns what comes back into
``on_event`` calls: ``ready`` (Keras has loaded there), ``answer`` and ``restarted``.
Of the latest-only kinds (shapes, the learning-rate curve, devices) an older request
still waiting in the outbox is dropped when a newer one comes, and the service
itself drops older ones waiting in its pipe (:func:`engine.service.server.newest_only`):
the last edit wins. Callers keep the ``seq`` of their newest request and apply only
its answer.

When the service dies (killed, out of memory, a crash in TensorFlow), the reader
starts a new one, says ``restarted``, and sends it again every request not yet
answered; a request the service died on twice is answered with an error instead.
Shape answers carry only what changed since the previous one; the reader merges them
(:class:`engine.service.handlers.ShapeTable`) so every ``shapes`` answer handed on
holds the full table.

:class:`LocalClient` offers the same calls answered in this process, on one
background thread (for screenshots and tests that have Keras loaded anyway).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import connection
from typing import Any

from engine.service.handlers import Engine, ShapeTable
from engine.service.protocol import LATEST_ONLY
from engine.service.server import serve

Listener = Callable[[dict[str, Any]], None]

MAX_ATTEMPTS = 2
"""A request the service died on this many times is answered with an error."""


class ServiceClient:
    """One engine service process, restarted when it dies.

    Attributes:
        restarts: How many times the service was restarted after dying.
        ready_info: The service's ``ready`` message once it has loaded Keras, else None.
    """

    def __init__(self, on_event: Listener | None = None) -> None:
        self._listeners: list[Listener] = [on_event] if on_event else []
        self._cond = threading.Condition()
        self._outbox: list[dict[str, Any]] = []
        self._pending: dict[int, dict[str, Any]] = {}  # not answered yet (sent or not)
        self._seq = 0
        self._closed = False
        self._conn: Any = None
        self._process: Any = None
        self._table = ShapeTable()
        self.restarts = 0
        self.ready_info: dict[str, Any] | None = None
        self._started = threading.Event()
        threading.Thread(target=self._read, name="layerlab-service-reader", daemon=True).start()
        threading.Thread(target=self._send, name="layerlab-service-sender", daemon=True).start()

    # ------------------------------------------------------------------ public
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def request(self, kind: str, args: dict[str, Any] | None = None) -> int:
        """Queue one request; returns its sequence number (never blocks)."""
        with self._cond:
            self._seq += 1
            message = {"seq": self._seq, "kind": kind, "args": args or {}}
            if kind in LATEST_ONLY:
                self._outbox = [m for m in self._outbox if m["kind"] != kind]
                for seq in [s for s, m in self._pending.items() if m["kind"] == kind]:
                    del self._pending[seq]
            self._pending[self._seq] = {**message, "attempts": 0}
            self._outbox.append(message)
            self._cond.notify_all()
            return self._seq

    @property
    def pid(self) -> int | None:
        """The service's process id (None before it has started)."""
        process = self._process
        return None if process is None else process.pid

    def is_alive(self) -> bool:
        process = self._process
        return process is not None and process.is_alive()

    def wait_started(self, timeout: float = 30.0) -> bool:
        return self._started.wait(timeout)

    def close(self) -> None:
        """End the service (it also ends by itself when this process goes)."""
        with self._cond:
            self._closed = True
            conn, process = self._conn, self._process
            self._cond.notify_all()
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        if process is not None:
            process.join(timeout=0.5)  # it holds nothing worth waiting for
            if process.is_alive():
                process.kill()
                process.join(timeout=2)

    # ---------------------------------------------------------------- threads
    def _spawn(self) -> tuple[Any, Any]:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=serve, args=(child,), name="layerlab-engine-service", daemon=True
        )
        process.start()
        child.close()
        return parent, process

    def _read(self) -> None:
        """Start the service, read what it says, restart it when it dies."""
        died: dict[str, Any] | None = None
        while True:
            with self._cond:
                if self._closed:
                    return
            try:
                conn, process = self._spawn()
            except Exception as exc:  # cannot start a process at all: say so, once
                self._emit({"event": "failed", "error": f"The shape service cannot start: {exc}"})
                return
            with self._cond:
                self._conn, self._process = conn, process
                # everything not answered goes (again) to the new process, in order
                self._outbox = [
                    {k: v for k, v in m.items() if k != "attempts"}
                    for _, m in sorted(self._pending.items())
                ]
                self._cond.notify_all()
            self._started.set()
            if died is not None:  # said once the new one is there
                self._emit(died)
            self._listen(conn, process)
            with self._cond:
                self._conn = None
                closed = self._closed
            with contextlib.suppress(OSError):
                conn.close()
            process.join(timeout=5)
            if closed:
                return
            self.restarts += 1
            self.ready_info = None
            self._table.reset()
            self._give_up_on_repeats()
            died = {"event": "restarted", "restarts": self.restarts, "exitcode": process.exitcode}
            time.sleep(min(5.0, 0.5 * (self.restarts - 1)))  # no busy loop if it keeps dying

    def _listen(self, conn: Any, process: Any) -> None:
        while True:
            try:
                ready = connection.wait([conn, process.sentinel])
                if conn not in ready and not conn.poll():
                    return  # the process ended and said nothing more
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message.get("event") == "ready":
                self.ready_info = message
            elif message.get("event") == "answer":
                with self._cond:
                    self._pending.pop(message["seq"], None)
                if message["kind"] == "shapes" and message.get("ok"):
                    message["result"] = self._table.merge(message["result"])
            self._emit(message)

    def _give_up_on_repeats(self) -> None:
        """Count one more attempt for what was sent; answer those tried too often."""
        failed = []
        with self._cond:
            for seq, m in list(self._pending.items()):
                m["attempts"] += 1
                if m["attempts"] >= MAX_ATTEMPTS:
                    failed.append(self._pending.pop(seq))
        for m in failed:
            self._emit(
                {
                    "event": "answer",
                    "seq": m["seq"],
                    "kind": m["kind"],
                    "ok": False,
                    "error": "the engine service stopped twice while working on it",
                }
            )

    def _send(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._outbox or self._conn is None):
                    self._cond.wait()
                if self._closed:
                    return
                message = self._outbox.pop(0)
                conn = self._conn
            try:
                conn.send(message)
            except (OSError, ValueError, EOFError):  # it died: the reader resends it
                time.sleep(0.01)

    def _emit(self, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            with contextlib.suppress(Exception):  # a listener's bug must not stop the reader
                listener(event)


class LocalClient:
    """The same requests answered in this process, one at a time on a background
    thread (Keras is imported here: only for screenshots and tests)."""

    restarts = 0

    def __init__(self, on_event: Listener | None = None) -> None:
        self._listeners: list[Listener] = [on_event] if on_event else []
        self._engine = Engine()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layerlab-local")
        self._lock = threading.Lock()  # one engine, one request at a time
        self._seq_lock = threading.Lock()
        self._seq = 0
        self._table = ShapeTable()
        self.ready_info: dict[str, Any] | None = {"event": "ready", "problem": None}

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def pid(self) -> int | None:
        return None

    def is_alive(self) -> bool:
        return True

    def request(self, kind: str, args: dict[str, Any] | None = None) -> int:
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        self._executor.submit(self._work, seq, kind, args or {})
        return seq

    def answer_now(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        """Answer on the calling thread (``load_tensorflow_now``); no event is emitted."""
        return self._work(seq=0, kind=kind, args=args, emit=False)

    def _work(self, seq: int, kind: str, args: dict[str, Any], emit: bool = True) -> Any:
        out: dict[str, Any] = {"event": "answer", "seq": seq, "kind": kind}
        with self._lock:
            try:
                result = self._engine.answer(kind, args)
                if kind == "shapes":
                    result = self._table.merge(result)
                out.update(ok=True, result=result)
            except Exception as exc:
                lines = [ln for ln in str(exc).splitlines() if ln.strip()]
                out.update(ok=False, error=lines[0] if lines else type(exc).__name__)
        if emit:
            for listener in list(self._listeners):
                with contextlib.suppress(Exception):
                    listener(out)
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=False)
