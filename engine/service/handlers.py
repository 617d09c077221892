"""What the engine service does for each request, callable in any process.

The window never imports TensorFlow; it asks the engine service (a child process,
:mod:`engine.service.server`) for what needs Keras. Each request is a ``kind`` and
an ``args`` dict; :class:`Engine` answers one, keeping between requests the last
graph it saw and its :class:`~engine.analysis.shapes.ShapeInference`, so an edit
costs only the layers it touched and what lies downstream.

Kinds:

- ``shapes``: ``{"graph": graph_text(graph), "base_dir": folder or None}`` -> ``{"ids",
  "info", "problems", "totals"}`` (problems include a Backbone's weights file, relative
  to ``base_dir``, the project's folder, and offline ImageNet downloads). ``info`` holds only the :class:`~engine.analysis.shapes.LayerInfo`
  entries that changed since this engine's previous ``shapes`` answer (all of them
  the first time); ``ids`` lists every node. :class:`ShapeTable` merges them.
- ``lr_curve``: ``{"section", "steps_per_epoch", "epochs"}`` -> ``(x, y)``
  (:func:`engine.train.schedule_preview.lr_curve`).
- ``devices``: ``{}`` -> ``["gpu:0", ...]`` (:func:`engine.train.devices.list_devices`).
- ``samples``: ``{"run_dir", "snapshot", "details", "task"}`` -> the evaluation view's
  samples and predictions (:func:`engine.train.evaluation.load_samples`).
- ``ping``: ``{}`` -> ``{"pid": ...}``.
- ``try_it`` (the Inside tab's Try it panel): ``{"run_dir", "x" | "image" | neither}``
  -> :func:`engine.train.inside.try_inputs` of the run, plus with ``x`` (values as
  the user made them) or ``image`` (a file) the model's answer
  (:func:`engine.train.inside.try_predict`). The run's model and data are loaded
  once and kept (:data:`TRY_RUNS` runs), so a drawn stroke costs one forward pass.

The graph travels as compact JSON text (:func:`engine.service.protocol.graph_text`):
the text is the cache key, and an unchanged text is answered from the cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.analysis.shapes import LayerInfo, ShapeInference
from engine.analysis.validation import download_problems
from engine.model.problems import weights_problems
from engine.service.protocol import graph_from_text
from engine.train.devices import list_devices
from engine.train.evaluation import load_samples
from engine.train.inside import OpenRun, open_run, try_image, try_inputs, try_predict
from engine.train.schedule_preview import lr_curve


class Engine:
    """Answers requests; keeps the last graph and its shape inference."""

    def __init__(self) -> None:
        self._text: str | None = None
        self._inference: ShapeInference | None = None
        self._sent: dict[str, LayerInfo] = {}
        self._last: dict[str, Any] | None = None
        self._runs: dict[str, tuple[float, OpenRun]] = {}  # Try it: run dir -> (mtime, run)
        self._base_dir: str | None = None

    def answer(self, kind: str, args: dict[str, Any]) -> Any:
        """The result of one request (raises what the work raises)."""
        if kind == "shapes":
            return self.shapes(args["graph"], args.get("base_dir"))
        if kind == "lr_curve":
            return lr_curve(args["section"], int(args["steps_per_epoch"]), int(args["epochs"]))
        if kind == "devices":
            return list_devices()
        if kind == "samples":
            return load_samples(
                Path(args["run_dir"]), args["snapshot"], args["details"], args["task"]
            )
        if kind == "ping":
            return {"pid": os.getpid()}
        if kind == "try_it":
            return self.try_it(args)
        raise ValueError(f"the engine service has no request {kind!r}")

    def shapes(self, text: str, base_dir: str | None = None) -> dict[str, Any]:
        """Shapes, counts and shape problems of the graph ``text`` describes, and the
        Backbone weights problems (files relative to ``base_dir``, offline downloads)."""
        if text == self._text and self._last is not None and base_dir == self._base_dir:
            return dict(self._last, info={})
        graph = graph_from_text(text)
        if self._inference is None:
            self._inference = ShapeInference(graph)
        else:
            self._inference.graph = graph
            self._inference.update([])  # fingerprints find what changed
        inference = self._inference
        info = inference.info
        changed = {k: v for k, v in info.items() if self._sent.get(k) != v}
        self._sent = dict(info)
        self._text = text
        self._base_dir = base_dir
        problems = list(inference.problems) + weights_problems(graph, base_dir)
        self._last = {
            "ids": list(info),
            "problems": problems + download_problems(graph, inference),
            "totals": tuple(int(t) for t in inference.totals()),
        }
        return dict(self._last, info=changed)

    def try_it(self, args: dict[str, Any]) -> dict[str, Any]:
        """The Try it request (see the module docstring)."""
        run = self._open_run(str(args["run_dir"]))
        out = try_inputs(run)
        if args.get("image"):
            raw = try_image(run, args["image"])
            out.update(try_predict(run, raw), raw=raw.tolist())
        elif args.get("x") is not None:
            out.update(try_predict(run, args["x"]))
        out.pop("input", None)
        return out

    def _open_run(self, run_dir: str) -> OpenRun:
        """The run's model and data, loaded once (again when ``model.keras`` changed)."""
        path = Path(run_dir) / "model.keras"
        mtime = path.stat().st_mtime if path.is_file() else -1.0
        kept = self._runs.get(run_dir)
        if kept is not None and kept[0] == mtime:
            return kept[1]
        run = open_run(run_dir)
        while len(self._runs) >= TRY_RUNS:
            self._runs.pop(next(iter(self._runs)))
        self._runs[run_dir] = (mtime, run)
        return run


TRY_RUNS = 2
"""Runs whose model the service keeps for Try it (each a Keras model in memory)."""


class ShapeTable:
    """The full ``{id: LayerInfo}`` rebuilt from ``shapes`` answers (each holds only
    what changed since the one before it from the same engine): feed it every
    answer, in order, and :meth:`reset` it when the engine is a new one."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def merge(self, result: dict[str, Any]) -> dict[str, Any]:
        """Apply one answer; returns it with ``info`` the full table."""
        table = self.info
        table.update(result["info"])
        self.info = table = {k: table[k] for k in result["ids"] if k in table}
        return dict(result, info=dict(table))

    def reset(self) -> None:
        self.info = {}
