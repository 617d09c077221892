"""The engine service's process: imports Keras once, then answers requests.

Started by :class:`engine.service.client.ServiceClient` (multiprocessing ``spawn``).
Messages over one duplex pipe, each a dict:

- parent -> child: ``{"seq": n, "kind": ..., "args": {...}}`` (see
  :mod:`engine.service.handlers`); ``None`` asks it to end.
- child -> parent: first ``{"event": "ready", "load_s": ..., "problem": ...}`` once
  Keras is imported, then one ``{"event": "answer", "seq", "kind", "ok", "result" |
  "error"}`` per request it works on.

Before each piece of work it reads everything waiting in the pipe and keeps, of the
kinds in :data:`engine.service.handlers.LATEST_ONLY`, only the newest request: during
an edit storm it computes the shapes of the last graph, not of each one in turn.
It ends when the pipe closes (the window has gone) or on ``None``.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from typing import Any

from engine.service.handlers import Engine
from engine.service.protocol import LATEST_ONLY
from engine.train.worker import output_to_devnull


def serve(conn: Any) -> None:
    """The child's main: load Keras, say ready, answer until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    output_to_devnull()
    started = time.monotonic()
    ready: dict[str, Any] = {"event": "ready", "pid": os.getpid(), "problem": None}
    try:
        import keras  # noqa: F401  (4-5 s, once)
    except Exception as exc:  # each request then says what is wrong
        ready["problem"] = f"TensorFlow could not be loaded: {exc}"
    # TensorFlow's millions of long-lived objects would be walked by every later
    # garbage collection; frozen ones are still freed by reference counting.
    gc.freeze()
    ready["load_s"] = round(time.monotonic() - started, 3)
    engine = Engine()
    try:
        conn.send(ready)
        while True:
            batch = [conn.recv()]
            while conn.poll():
                batch.append(conn.recv())
            if any(m is None for m in batch):
                return
            for message in newest_only(batch):
                conn.send(_answer(engine, message))
    except (EOFError, OSError, BrokenPipeError):  # the window has gone
        return


def newest_only(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``batch`` in order, with only the newest request of each latest-only kind."""
    newest = {m["kind"]: m["seq"] for m in batch if m["kind"] in LATEST_ONLY}
    return [m for m in batch if m["kind"] not in LATEST_ONLY or newest[m["kind"]] == m["seq"]]


def _answer(engine: Engine, message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"event": "answer", "seq": message["seq"], "kind": message["kind"]}
    try:
        out["result"] = engine.answer(message["kind"], message.get("args") or {})
        out["ok"] = True
    except Exception as exc:  # every failure becomes a message for the window
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        out["ok"] = False
        out["error"] = lines[0] if lines else type(exc).__name__
    return out
