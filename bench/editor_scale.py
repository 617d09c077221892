"""Editor at scale: a ResNet-152-sized graph (about 500 layers) in the real main window.

Measures, offscreen, with shapes from the engine service (a child process, as in
the app; started and ready before the clock runs):

- ``open_s``: open the project file, build the canvas, lay it out, validate every
  layer (shapes and parameter counts, across the process boundary) and fit it in view;
- ``edit_revalidate_ms``: one inspector-style edit (SetParams through the undo
  stack) until the service has answered and shapes, problems and the canvas are up
  to date (median and max);
- ``pan_frame_ms``: one scroll step of the view repainted (median and max);
- ``keras_build_s``: plain ``keras.applications.ResNet152(weights=None)`` in the
  same process, for scale (Keras builds the same graph with real weights).

Prints one JSON object. Not part of the test run:
``.venv/bin/python bench/editor_scale.py [--edits 20]``; ``--find`` times find
(:func:`main_find`); ``--blocks`` times the same graph with stage and residual blocks
(:func:`main_blocks`: opening collapsed, expanding and collapsing a stage, find).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20)
    args = parser.parse_args()

    import keras

    from engine.io.importing.rebuild import import_application
    from engine.model.commands import SetParams
    from engine.model.project import save_project

    t = time.perf_counter()
    keras.applications.ResNet152(weights=None)
    keras_build_s = time.perf_counter() - t
    keras.backend.clear_session()

    project = import_application("ResNet152")
    path = Path(tempfile.mkdtemp()) / "resnet152.json"
    save_project(project, path)

    app, window, service = _window_with_service()

    t = time.perf_counter()
    window.open_path(path, ask=False)
    window.validation.flush()
    _wait(app, lambda: len(window.validation.info) == len(window.project.graph.nodes), 60)
    window.scene.auto_layout()
    window.view.fit()
    app.processEvents()
    open_s = time.perf_counter() - t
    nodes = len(window.project.graph.nodes)
    assert not [p for p in window.validation.problems if p.severity == "error"]

    convs = [n for n in window.project.graph.nodes.values() if n.type == "Conv2D"]
    edit_ms = []
    for i in range(args.edits):
        node = convs[(i * 7) % len(convs)]
        params = dict(node.params)
        params["use_bias"] = not params.get("use_bias", True)
        t = time.perf_counter()
        window.undo_stack.push(SetParams(node.id, params))
        window.validation.flush()
        _wait(app, lambda: not window.validation.in_flight(), 30)
        app.processEvents()
        edit_ms.append((time.perf_counter() - t) * 1000)

    bar = window.view.verticalScrollBar()
    window.view.set_zoom(1.0)
    pan_ms = []
    for _ in range(30):
        t = time.perf_counter()
        bar.setValue(bar.value() + 40)
        window.view.viewport().repaint()
        pan_ms.append((time.perf_counter() - t) * 1000)

    print(
        json.dumps(
            {
                "nodes": nodes,
                "open_s": round(open_s, 3),
                "edit_revalidate_ms": round(statistics.median(edit_ms), 1),
                "edit_revalidate_max_ms": round(max(edit_ms), 1),
                "pan_frame_ms": round(statistics.median(pan_ms), 1),
                "pan_frame_max_ms": round(max(pan_ms), 1),
                "keras_build_s": round(keras_build_s, 3),
                "open_vs_keras_build": round(open_s / keras_build_s, 2),
            }
        )
    )
    window.undo_stack.set_clean()
    window.close()
    service.close()


def _window_with_service():
    """``(app, window, service)``: the main window, shown at 1400x900, whose shapes come
    from a real engine-service child process (this process has Keras for the
    comparisons: without this the window would answer in-process), once it is ready."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from gui.engine_service import EngineService
    from gui.main_window import MainWindow

    service = EngineService(local=False)
    window = MainWindow(
        load_tensorflow=True, check_recovery=False, use_settings=False, autosave=False
    )
    window.validation.service = service
    window.resize(1400, 900)
    window.show()
    _wait(app, lambda: window.validation.ready, 300)  # the service has loaded Keras
    return app, window, service


def _wait(app, condition, timeout_s: float) -> None:
    """Handle events until ``condition()`` (the service's answers arrive as events)."""
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit("timed out waiting for the engine service")
        app.processEvents()
        time.sleep(0.0002)


def find_ms(window, app, queries=("bn", "conv4_block20", "filters=512", "add", "relu")) -> dict:
    """Find over all layers in the open window: type the query (search, highlight every
    match, select and centre the first), then one Enter (the next match). Milliseconds
    per query, median and max; the search alone (``find_nodes``) for scale."""
    from gui.canvas.find import find_nodes

    bar = window.view.find_bar
    window.view.open_find()
    shown, search = [], []
    for _ in range(3):
        for query in queries:
            t = time.perf_counter()
            bar.set_query(query)
            bar.next()
            app.processEvents()
            shown.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            find_nodes(window.project.graph, query)
            search.append((time.perf_counter() - t) * 1000)
    bar.close_bar()
    return {
        "find_ms": round(statistics.median(shown), 1),
        "find_max_ms": round(max(shown), 1),
        "find_search_only_ms": round(statistics.median(search), 2),
    }


def main_find() -> None:
    """``bench/editor_scale.py --find``: open ResNet-152 as :func:`main` does (laid out,
    validated, fitted) and print :func:`find_ms`'s figures."""
    from engine.io.importing.rebuild import import_application
    from engine.model.project import save_project

    project = import_application("ResNet152")
    path = Path(tempfile.mkdtemp()) / "resnet152.json"
    save_project(project, path)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from gui.main_window import MainWindow

    window = MainWindow(
        load_tensorflow=False, check_recovery=False, use_settings=False, autosave=False
    )
    window.resize(1400, 900)
    window.show()
    window.open_path(path, ask=False)
    window.validation.load_tensorflow_now()
    window.scene.auto_layout()
    window.view.fit()
    app.processEvents()
    figures = {"nodes": len(window.project.graph.nodes)}
    figures.update(find_ms(window, app))
    print(json.dumps(figures))
    window.undo_stack.set_clean()
    window.close()


def main_blocks() -> None:
    """``bench/editor_scale.py --blocks``: ResNet-152 with the importer's stage and
    residual blocks (:mod:`engine.io.importing.grouping`), all collapsed.

    Opens the plain project and the same project with collapsed blocks in alternating
    order, twice each (``open_s``, ``open_collapsed_s``: open, validate across the
    service, lay out, fit, as :func:`main`), then, with the blocks collapsed: expand
    the largest stage (conv4) and collapse it again, each one undo step through the
    window until repainted (``expand_stage_ms``, ``collapse_stage_ms``, three times),
    and a find over all layers with every stage collapsed (``find_all_ms``: :func:`find_ms`).
    """
    import keras

    from engine.io.importing.rebuild import import_application
    from engine.model.project import save_project

    keras.backend.clear_session()
    project = import_application("ResNet152")  # grouped by the importer
    blocks = project.graph.blocks
    for block in blocks.values():
        block.collapsed = True  # stages too (the importer leaves them expanded)
    folder = Path(tempfile.mkdtemp())
    grouped = folder / "resnet152-blocks.json"
    save_project(project, grouped)
    project.graph.blocks = {}
    plain = folder / "resnet152.json"
    save_project(project, plain)
    project.graph.blocks = blocks

    from engine.model.commands import SetBlockCollapsed

    app, window, service = _window_with_service()

    def open_once(path: Path) -> float:
        t = time.perf_counter()
        window.open_path(path, ask=False)
        window.validation.flush()
        _wait(app, lambda: len(window.validation.info) == len(window.project.graph.nodes), 60)
        window.scene.auto_layout()
        window.view.fit()
        app.processEvents()
        elapsed = time.perf_counter() - t
        window.undo_stack.set_clean()
        return elapsed

    opens: dict[str, list[float]] = {"plain": [], "blocks": []}
    for order in (("plain", "blocks"), ("blocks", "plain")):
        for kind in order:
            opens[kind].append(open_once(plain if kind == "plain" else grouped))
    # the grouped project is open now (the last open of the second pair was plain)
    open_once(grouped)
    cards = len(window.scene.blocks.cards)
    block_count = len(window.project.graph.blocks)

    def timed(command) -> float:
        t = time.perf_counter()
        window.undo_stack.push(command)
        app.processEvents()  # the re-route of the wires runs on the next event turn
        window.view.viewport().repaint()
        return (time.perf_counter() - t) * 1000

    expand, collapse = [], []
    for _ in range(3):
        expand.append(timed(SetBlockCollapsed(["conv4"], False)))
        collapse.append(timed(SetBlockCollapsed(["conv4"], True)))
    found = find_ms(window, app, queries=("bn", "conv4_block20", "filters=512", "add", "relu"))

    def pan() -> list[float]:
        bar = window.view.verticalScrollBar()
        window.view.set_zoom(1.0)
        window.view.centerOn(window.scene.items_rect().center())
        out = []
        for _ in range(30):
            t = time.perf_counter()
            bar.setValue(bar.value() + 40)
            window.view.viewport().repaint()
            out.append((time.perf_counter() - t) * 1000)
        return out

    window.undo_stack.push(SetBlockCollapsed(["conv4"], False))
    app.processEvents()
    pan_expanded = pan()  # inside the big stage's frame, among collapsed residual cards
    open_once(plain)
    pan_plain = pan()
    print(
        json.dumps(
            {
                "nodes": len(window.project.graph.nodes),
                "blocks": block_count,
                "cards_when_open": cards,
                "open_s": [round(x, 3) for x in opens["plain"]],
                "open_collapsed_s": [round(x, 3) for x in opens["blocks"]],
                "open_collapsed_vs_plain": round(
                    statistics.median(b / p for b, p in zip(opens["blocks"], opens["plain"])), 2
                ),
                "expand_stage_ms": round(statistics.median(expand), 1),
                "expand_stage_max_ms": round(max(expand), 1),
                "collapse_stage_ms": round(statistics.median(collapse), 1),
                "collapse_stage_max_ms": round(max(collapse), 1),
                "find_all_ms": found["find_ms"],
                "find_all_max_ms": found["find_max_ms"],
                "pan_frame_ms_conv4_expanded": round(statistics.median(pan_expanded), 1),
                "pan_frame_max_ms_conv4_expanded": round(max(pan_expanded), 1),
                "pan_frame_ms_plain": round(statistics.median(pan_plain), 1),
                "pan_frame_max_ms_plain": round(max(pan_plain), 1),
            }
        )
    )
    window.undo_stack.set_clean()
    window.close()
    service.close()


if __name__ == "__main__":
    if "--blocks" in sys.argv[1:]:
        main_blocks()
    elif "--find" in sys.argv[1:]:
        main_find()
    else:
        main()
