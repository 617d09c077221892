"""The model-editor canvas: items follow the graph, gestures push undoable commands."""

from __future__ import annotations

import random
import time
from types import SimpleNamespace

import pytest
import shiboken6
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage, QPainter, QWheelEvent
from PySide6.QtTest import QTest

from engine.model.commands import AddNode, Connect, RemoveNodes, Rename, SetParams, UndoStack
from engine.model.graph import Edge, Graph, Node
from engine.model.layout import layered_layout
from engine.model.project import Project
from gui.canvas.clipboard import MIME as SUBGRAPH_MIME
from gui.canvas.interactions import accepting_ports, accepting_sources
from gui.canvas.items import EdgeItem, NodeItem
from gui.canvas.scene import GraphScene
from gui.canvas.theme import NODE_WIDTH
from gui.canvas.view import LAYER_MIME, GraphView

from .conftest import make_project

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier


# ------------------------------------------------------------------ helpers
def vp(view: GraphView, point: QPointF) -> QPoint:
    return view.mapFromScene(point)


def drag(view: GraphView, start: QPointF, end: QPointF, steps: int = 6, modifier=NO_MOD) -> None:
    """Real mouse events on the viewport: press at ``start``, move, release at ``end``."""
    viewport = view.viewport()
    QTest.mousePress(viewport, LEFT, modifier, vp(view, start))
    for i in range(1, steps + 1):
        QTest.mouseMove(viewport, vp(view, start + (end - start) * (i / steps)))
    QTest.mouseRelease(viewport, LEFT, modifier, vp(view, end))


def click(view: GraphView, point: QPointF, modifier=NO_MOD) -> None:
    QTest.mouseClick(view.viewport(), LEFT, modifier, vp(view, point))


def out_port(scene: GraphScene, node_id: str) -> QPointF:
    return scene.node_item(node_id).out_port.scenePos()


def in_port(scene: GraphScene, node_id: str, port: int = 0) -> QPointF:
    return scene.node_item(node_id).in_ports[port].scenePos()


def centre(scene: GraphScene, node_id: str) -> QPointF:
    return scene.node_item(node_id).scenePos()


def edges(project: Project) -> set[tuple[str, str, int]]:
    return {(e.source, e.target, e.port) for e in project.graph.edges}


def messages(scene: GraphScene) -> list[str]:
    got: list[str] = []
    scene.status_message.connect(got.append)
    return got


# ------------------------------------------------------------ model -> view
def test_canvas_items_follow_graph_events(canvas):
    scene, _view, stack = canvas
    graph = stack.project.graph
    assert {i.node_id for i in scene.node_items()} == set(graph.nodes)
    assert {(i.edge.source, i.edge.target) for i in scene.edge_items()} == {
        ("input", "conv"),
        ("conv", "flatten"),
        ("flatten", "dense"),
    }

    stack.push(
        AddNode(Node("extra", "Dense", {"units": 3}, (500, 100)), [Edge("flatten", "extra")])
    )
    item = scene.node_item("extra")
    assert (item.x(), item.y()) == (500, 100)
    assert item.caption == "3 units"
    assert scene.edge_item(Edge("flatten", "extra")) is not None

    stack.push(SetParams("extra", {"units": 64}))
    assert scene.node_item("extra").caption == "64 units"

    stack.push(Rename("extra", "head"))
    assert scene.node_item("extra") is None
    assert scene.node_item("head").node_id == "head"
    assert scene.edge_item(Edge("flatten", "head")) is not None

    stack.push(RemoveNodes(["head"]))
    assert scene.node_item("head") is None
    assert len(scene.edge_items()) == 3
    for _ in range(4):
        stack.undo()
    assert scene.node_item("extra") is None and len(scene.edge_items()) == 3


def test_canvas_merge_layer_shows_existing_inputs_plus_one_free_port(canvas):
    scene, _view, stack = canvas
    add = scene.node_item("add")
    assert sorted(add.in_ports) == [0, 1]  # Add needs two inputs to begin with
    stack.push(Connect(Edge("spare", "add", 0)))
    stack.push(Connect(Edge("flatten", "add", 1)))
    assert sorted(add.in_ports) == [0, 1, 2]
    assert [add.in_ports[p].connected for p in (0, 1, 2)] == [True, True, False]
    assert "fed by flatten" in add.in_ports[1].toolTip()
    assert sorted(scene.node_item("dense").in_ports) == [0]
    assert scene.node_item("input").in_ports == {}


def test_canvas_set_project_switches_documents(canvas):
    scene, _view, _stack = canvas
    other = make_project(
        [("x", "Input", {"shape": [4]}, (0, 0)), ("y", "Dense", {"units": 2}, (0, 120))],
        [("x", "y", 0)],
    )
    old_graph = _stack.project.graph
    scene.set_project(other, UndoStack(other))
    assert {i.node_id for i in scene.node_items()} == {"x", "y"}
    old_graph.add_node(Node("ghost", "Dense", {"units": 1}))  # old document: ignored
    assert scene.node_item("ghost") is None


def test_canvas_deleted_with_its_window_leaves_the_project_usable(qtbot, small_project):
    from PySide6.QtWidgets import QWidget

    stack = UndoStack(small_project)
    window = QWidget()
    scene = GraphScene(small_project, stack, window)
    window.deleteLater()
    del window
    qtbot.waitUntil(lambda: not shiboken6.isValid(scene))
    stack.push(AddNode(Node("later", "Dense", {"units": 2})))  # must not raise
    assert "later" in small_project.graph.nodes


# ---------------------------------------------------------- wire gestures
def test_canvas_port_drag_connects(canvas):
    scene, view, stack = canvas
    got = messages(scene)
    drag(view, out_port(scene, "conv"), in_port(scene, "spare"))
    assert ("conv", "spare", 0) in edges(stack.project)
    assert stack.undo_text == "Connect 'conv' to 'spare'"
    assert any("Connected" in m for m in got)
    stack.undo()
    assert ("conv", "spare", 0) not in edges(stack.project)


def test_canvas_drop_on_node_body_uses_next_free_port(canvas):
    scene, view, stack = canvas
    stack.push(Connect(Edge("spare", "add", 0)))
    drag(view, out_port(scene, "flatten"), centre(scene, "add"))
    assert ("flatten", "add", 1) in edges(stack.project)


def test_canvas_drop_in_empty_space_cancels(canvas):
    scene, view, stack = canvas
    before = edges(stack.project)
    drag(view, out_port(scene, "conv"), centre(scene, "spare") + QPointF(0, -400))
    assert edges(stack.project) == before
    assert not stack.can_undo
    assert not any(isinstance(i, EdgeItem) is False and i.zValue() >= 10 for i in scene.items())


@pytest.mark.parametrize(
    "source, target, port, reason",
    [
        ("dense", "conv", 0, "would make a cycle"),
        ("spare", "add", 0, "input 0 of 'add' is already fed by 'flatten'"),
        ("spare", "input", None, "takes no inputs"),
        ("conv", "conv", 0, "cannot feed itself"),
    ],
)
def test_canvas_illegal_connection_is_refused_with_reason(canvas, source, target, port, reason):
    scene, view, stack = canvas
    stack.push(Connect(Edge("flatten", "add", 0)))
    got = messages(scene)
    before = edges(stack.project)
    end = centre(scene, target) if port is None else in_port(scene, target, port)
    drag(view, out_port(scene, source), end)
    assert edges(stack.project) == before
    assert stack.undo_text.startswith("Connect 'flatten'")  # nothing new was pushed
    assert any(reason in m for m in got), got


def test_canvas_too_many_inputs_is_refused(canvas):
    scene, view, stack = canvas
    got = messages(scene)
    drag(view, out_port(scene, "spare"), centre(scene, "dense"))
    assert ("spare", "dense", 1) not in edges(stack.project)
    assert any("takes at most 1 input" in m for m in got), got


def test_canvas_ports_highlight_while_dragging(canvas):
    scene, view, _stack = canvas
    viewport = view.viewport()
    QTest.mousePress(viewport, LEFT, NO_MOD, vp(view, out_port(scene, "flatten")))
    QTest.mouseMove(viewport, vp(view, out_port(scene, "flatten") + QPointF(30, 60)))
    QTest.mouseMove(viewport, vp(view, in_port(scene, "conv")))
    states = {(i.node_id, i.port): i.state for i in scene.input_port_items()}
    assert states[("spare", 0)] == "accept"
    assert states[("add", 0)] == "accept"
    assert states[("conv", 0)] == "refuse"  # hovered: taken and a cycle
    assert states[("dense", 0)] == ""  # already fed by flatten
    QTest.mouseRelease(viewport, LEFT, NO_MOD, vp(view, in_port(scene, "conv")))
    assert all(i.state == "" for i in scene.input_port_items())


def test_canvas_highlighting_agrees_with_check_connect():
    rng = random.Random(3)
    graph = Graph()
    types = ["Dense", "Add", "Subtract", "Concatenate", "Input"]
    for i in range(40):
        graph.add_node(Node(f"n{i}", rng.choice(types)))
    for _ in range(80):
        a, b = rng.sample(list(graph.nodes), 2)
        if graph.check_connect(a, b) is None:
            graph.connect(Edge(a, b, graph.next_free_port(b)))
    ports = [(n, p) for n in graph.nodes for p in range(4)]
    for source in graph.nodes:
        fast = accepting_ports(graph, source, ports)
        slow = {(n, p) for n, p in ports if graph.check_connect(source, n, p) is None}
        assert fast == slow
    for target, port in ports:
        fast = accepting_sources(graph, target, port)
        slow = {n for n in graph.nodes if graph.check_connect(n, target, port) is None}
        assert fast == slow


def test_canvas_drag_from_a_free_input_up_to_an_output_connects(canvas):
    scene, view, stack = canvas
    got = messages(scene)
    viewport = view.viewport()
    start = in_port(scene, "add", 1)
    QTest.mousePress(viewport, LEFT, NO_MOD, vp(view, start))
    QTest.mouseMove(viewport, vp(view, start + QPointF(-20, -40)))
    states = {i.node_id: i.out_port.state for i in scene.node_items()}
    assert states["conv"] == "accept" and states["add"] == ""
    QTest.mouseMove(viewport, vp(view, out_port(scene, "conv")))
    QTest.mouseRelease(viewport, LEFT, NO_MOD, vp(view, out_port(scene, "conv")))
    assert ("conv", "add", 1) in edges(stack.project)
    assert all(i.out_port.state == "" for i in scene.node_items())
    # A refused source names its reason.
    drag(view, in_port(scene, "add", 0), out_port(scene, "conv"))
    assert any("already connected" in m for m in got), got


def test_canvas_dragging_a_wired_input_reroutes_in_one_step(canvas):
    scene, view, stack = canvas
    drag(view, in_port(scene, "dense"), in_port(scene, "spare"))
    assert ("flatten", "dense", 0) not in edges(stack.project)
    assert ("flatten", "spare", 0) in edges(stack.project)
    assert stack.undo_text.startswith("Reconnect")
    stack.undo()
    assert ("flatten", "dense", 0) in edges(stack.project)
    assert not stack.can_undo


def test_canvas_dragging_a_wired_input_into_space_disconnects(canvas):
    scene, view, stack = canvas
    drag(view, in_port(scene, "dense"), centre(scene, "dense") + QPointF(-300, 0))
    assert ("flatten", "dense", 0) not in edges(stack.project)
    assert scene.edge_item(Edge("flatten", "dense", 0)) is None
    stack.undo()
    assert scene.edge_item(Edge("flatten", "dense", 0)) is not None


# --------------------------------------------------------- select and move
def test_canvas_moving_nodes_pushes_one_undo_step(canvas):
    scene, view, stack = canvas
    graph = stack.project.graph
    click(view, centre(scene, "conv"))
    click(view, centre(scene, "flatten"), Qt.KeyboardModifier.ControlModifier)
    assert scene.selected_ids() == ["conv", "flatten"]
    drag(view, centre(scene, "conv"), centre(scene, "conv") + QPointF(100, 50), steps=10)
    moved_conv, moved_flatten = graph.nodes["conv"].position, graph.nodes["flatten"].position
    assert moved_conv[0] == pytest.approx(100, abs=2) and moved_conv[1] == pytest.approx(170, abs=2)
    assert moved_flatten[0] == pytest.approx(100, abs=2)
    assert stack.undo_text == "Move 2 layers"
    stack.undo()
    assert graph.nodes["conv"].position == (0, 120)
    assert (scene.node_item("flatten").x(), scene.node_item("flatten").y()) == (0, 240)
    assert not stack.can_undo


def test_canvas_arrow_keys_nudge_the_selection(canvas):
    scene, view, stack = canvas
    scene.select_ids(["conv", "dense"])
    QTest.keyClick(view.viewport(), Qt.Key.Key_Right)
    QTest.keyClick(view.viewport(), Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    graph = stack.project.graph
    assert graph.nodes["conv"].position == (10, 170)
    assert graph.nodes["dense"].position == (10, 410)
    assert scene.node_item("conv").pos() == QPointF(10, 170)
    stack.undo()
    assert graph.nodes["conv"].position == (10, 120)


def test_view_dragging_near_the_edge_scrolls(canvas, qtbot):
    scene, view, _stack = canvas
    view.set_zoom(1.0)
    viewport = view.viewport()
    bar = view.verticalScrollBar()
    before = bar.value()
    start = vp(view, centre(scene, "conv"))
    QTest.mousePress(viewport, LEFT, NO_MOD, start)
    QTest.mouseMove(viewport, QPoint(start.x(), viewport.height() - 3))
    qtbot.waitUntil(lambda: bar.value() > before + 20, timeout=2000)
    QTest.mouseRelease(viewport, LEFT, NO_MOD, QPoint(start.x(), viewport.height() - 3))
    assert not view._autoscroll.isActive()


def test_canvas_ctrl_click_toggles_and_rubber_band_selects(canvas):
    scene, view, _stack = canvas
    got: list[list[str]] = []
    scene.selection_ids_changed.connect(got.append)
    click(view, centre(scene, "conv"))
    click(view, centre(scene, "dense"), Qt.KeyboardModifier.ControlModifier)
    click(view, centre(scene, "conv"), Qt.KeyboardModifier.ControlModifier)
    assert scene.selected_ids() == ["dense"]
    assert got[-1] == ["dense"]
    # Rubber band from empty space around input and conv.
    drag(view, centre(scene, "input") + QPointF(-150, -60), centre(scene, "conv") + QPointF(60, 10))
    assert scene.selected_ids() == ["input", "conv"]


def test_canvas_delete_key_removes_node_with_wires_and_undo_restores(canvas):
    scene, view, stack = canvas
    got: list[list[str]] = []
    scene.selection_ids_changed.connect(got.append)
    click(view, centre(scene, "flatten"))
    assert got[-1] == ["flatten"]
    QTest.keyClick(view.viewport(), Qt.Key.Key_Delete)
    assert got[-1] == []  # the inspector is told the selection went away
    graph = stack.project.graph
    assert "flatten" not in graph.nodes and scene.node_item("flatten") is None
    assert edges(stack.project) == {("input", "conv", 0)}
    assert len(scene.edge_items()) == 1
    stack.undo()
    assert edges(stack.project) == {
        ("input", "conv", 0),
        ("conv", "flatten", 0),
        ("flatten", "dense", 0),
    }
    assert len(scene.edge_items()) == 3 and scene.node_item("flatten") is not None


def test_canvas_wires_are_selectable_and_deletable(canvas):
    scene, view, stack = canvas
    wire = scene.edge_item(Edge("conv", "flatten", 0))
    click(view, wire.path().pointAtPercent(0.5))
    assert wire.isSelected() and scene.selected_ids() == []
    QTest.keyClick(view.viewport(), Qt.Key.Key_Delete)
    assert ("conv", "flatten", 0) not in edges(stack.project)
    assert set(stack.project.graph.nodes) >= {"conv", "flatten"}


def test_canvas_double_click_activates_node(canvas):
    scene, view, _stack = canvas
    got: list[str] = []
    scene.node_activated.connect(got.append)
    QTest.mouseDClick(view.viewport(), LEFT, NO_MOD, vp(view, centre(scene, "dense")))
    assert got == ["dense"]


def test_canvas_context_menu_offers_actions_for_what_is_under_the_mouse(canvas):
    scene, _view, stack = canvas
    texts = lambda menu: [a.text() for a in menu.actions() if a.text()]  # noqa: E731
    node_menu = scene.context_menu(centre(scene, "spare"))
    assert scene.selected_ids() == ["spare"]
    assert texts(node_menu) == [
        "Edit Properties",
        "Show Activations",
        "Copy",
        "Duplicate",
        "Delete",
        "Freeze",
        "Freeze from the Inputs Up to Here",
    ]
    next(a for a in node_menu.actions() if a.text() == "Delete").trigger()
    assert "spare" not in stack.project.graph.nodes
    wire = scene.edge_item(Edge("conv", "flatten", 0))
    wire_menu = scene.context_menu(wire.path().pointAtPercent(0.5))
    assert texts(wire_menu) == ["Delete Wire"]
    wire_menu.actions()[0].trigger()
    assert ("conv", "flatten", 0) not in edges(stack.project)
    assert "Auto Layout" in texts(scene.context_menu(QPointF(2000, 2000)))


# ------------------------------------------------------ clipboard and adding
def test_canvas_copy_paste_keeps_internal_wires_with_new_ids(canvas):
    scene, _view, stack = canvas
    scene.select_ids(["conv", "flatten"])
    data = scene.copy_selection()
    assert [n["id"] for n in data["nodes"]] == ["conv", "flatten"]
    assert QGuiApplication.clipboard().mimeData().hasFormat(SUBGRAPH_MIME)
    new = scene.paste()
    assert new == ["conv_1", "flatten_1"]
    assert ("conv_1", "flatten_1", 0) in edges(stack.project)
    assert not any(e.target == "conv_1" for e in stack.project.graph.edges)  # external wire dropped
    assert scene.selected_ids() == ["conv_1", "flatten_1"]
    assert stack.project.graph.nodes["conv_1"].params == {"filters": 6, "kernel_size": 3}
    nodes = stack.project.graph.nodes
    assert nodes["conv_1"].position != nodes["conv"].position
    stack.undo()
    assert "conv_1" not in stack.project.graph.nodes
    new = scene.paste(at=QPointF(1000, 1000))
    xs = [stack.project.graph.nodes[n].position for n in new]
    assert sum(p[0] for p in xs) / 2 == pytest.approx(1000) and min(p[1] for p in xs) < 1000


def test_canvas_duplicate_copies_selection_beside_it(canvas):
    scene, _view, stack = canvas
    scene.select_ids(["input", "conv"])
    assert scene.duplicate() == ["input_1", "conv_1"]
    assert ("input_1", "conv_1", 0) in edges(stack.project)
    assert stack.undo_text == "Duplicate 2 layers"


def test_canvas_palette_drop_creates_node(canvas):
    scene, view, stack = canvas
    mime = QMimeData()
    mime.setData(LAYER_MIME, b"Dropout")
    target = QPointF(600, 100)
    point = QPointF(vp(view, target))
    for kind in (QDropEvent.Type.DragEnter, QDropEvent.Type.DragMove, QDropEvent.Type.Drop):
        from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent

        cls = {
            QDropEvent.Type.DragEnter: QDragEnterEvent,
            QDropEvent.Type.DragMove: QDragMoveEvent,
        }.get(kind, QDropEvent)
        args = (point.toPoint(),) if cls is not QDropEvent else (point,)
        event = cls(*args, Qt.DropAction.CopyAction, mime, LEFT, NO_MOD)
        QGuiApplication.sendEvent(view.viewport(), event)
        assert event.isAccepted()
    node = stack.project.graph.nodes["dropout"]
    assert node.type == "Dropout" and node.params == {"rate": 0.5}
    assert node.position[0] == pytest.approx(600, abs=2)
    assert node.position[1] == pytest.approx(100, abs=2)
    assert scene.selected_ids() == ["dropout"]


def test_canvas_add_layer_after_wires_it_below(canvas):
    scene, _view, stack = canvas
    new = scene.add_layer("Dense", after="dense")
    assert new == "dense_1"
    assert ("dense", "dense_1", 0) in edges(stack.project)
    assert stack.project.graph.nodes[new].position == (0, 480)
    # Added twice at the same spot: the second card goes below, not on top.
    first, second = scene.add_layer("Dropout", (600, 0)), scene.add_layer("Dropout", (600, 0))
    assert stack.project.graph.nodes[first].position == (600, 0)
    assert stack.project.graph.nodes[second].position == (600, 120)
    got = messages(scene)
    assert scene.add_layer("NoSuchLayer", (0, 0)) is None
    assert any("NoSuchLayer" in m for m in got)


# --------------------------------------------------------------- layout
def _random_dag(n: int, seed: int = 0) -> Graph:
    rng = random.Random(seed)
    graph = Graph()
    for i in range(n):
        graph.add_node(Node(f"n{i}", "Add" if i % 7 == 3 else "Dense"))
        if i:
            for _ in range(rng.choice([1, 1, 2])):
                parent = f"n{rng.randrange(max(0, i - 15), i)}"
                if graph.check_connect(parent, f"n{i}") is None:
                    graph.connect(Edge(parent, f"n{i}", graph.next_free_port(f"n{i}")))
    return graph


def test_layout_puts_each_child_below_its_parents_quickly():
    graph = _random_dag(500)
    start = time.perf_counter()
    pos = layered_layout(graph)
    assert time.perf_counter() - start < 1.0
    assert set(pos) == set(graph.nodes)
    for e in graph.edges:
        assert pos[e.target][1] > pos[e.source][1]
    rows: dict[float, list[float]] = {}
    for x, y in pos.values():
        rows.setdefault(y, []).append(x)
    for xs in rows.values():  # no two cards overlap on one level
        xs.sort()
        assert all(b - a > NODE_WIDTH for a, b in zip(xs, xs[1:]))


def test_layout_of_a_chain_is_a_straight_column():
    graph = _random_dag(1)
    for i in range(1, 5):
        graph.add_node(Node(f"n{i}", "Dense"))
        graph.connect(Edge(f"n{i - 1}", f"n{i}"))
    assert layered_layout(graph) == {f"n{i}": (0.0, 120.0 * i) for i in range(5)}


def test_canvas_auto_layout_is_one_undo_step(canvas):
    scene, _view, stack = canvas
    graph = stack.project.graph
    graph_before = {n: node.position for n, node in graph.nodes.items()}
    scene.auto_layout()
    assert stack.undo_text == "Auto layout"
    for e in graph.edges:
        assert graph.nodes[e.target].position[1] > graph.nodes[e.source].position[1]
    for n, item in ((n, scene.node_item(n)) for n in graph.nodes):
        assert (item.x(), item.y()) == graph.nodes[n].position
    stack.undo()
    assert {n: node.position for n, node in graph.nodes.items()} == graph_before


# --------------------------------------------------------------- analysis
def test_canvas_set_analysis_shows_shapes_params_and_problems(canvas):
    scene, _view, _stack = canvas
    info = {
        "conv": SimpleNamespace(output_shape=(None, 6, 6, 6), params=60),
        "flatten": {"output_shape": (None, 216), "trainable": 0, "non_trainable": 0},
        "dense": SimpleNamespace(output_shape=(None, 10), params=1_234_567),
    }
    problems = [
        SimpleNamespace(node="spare", severity="error", message="'spare' has no input"),
        SimpleNamespace(node="dense", severity="warning", message="softmax missing"),
        SimpleNamespace(node=None, severity="error", message="no data"),
    ]
    scene.set_analysis(info, problems)
    conv = scene.node_item("conv")
    assert conv.shape_text == "6×6×6" and conv.params_text == "60 params"
    assert "6×6×6" in conv.toolTip() and "60 params" in conv.toolTip()
    assert scene.node_item("flatten").params_text == ""
    assert scene.node_item("dense").params_text == "1.23M params"
    assert scene.edge_item(Edge("conv", "flatten")).label == "6×6×6"
    assert scene.edge_item(Edge("flatten", "dense")).label == "216"
    spare = scene.node_item("spare")
    assert spare.severity == "error" and spare.badge.isVisible()
    assert "has no input" in spare.badge.toolTip() and "has no input" in spare.toolTip()
    assert scene.node_item("dense").severity == "warning"
    assert not scene.node_item("conv").badge.isVisible()
    scene.set_analysis({}, [])
    assert not spare.badge.isVisible() and conv.shape_text == ""
    assert scene.edge_item(Edge("conv", "flatten")).label == ""


# ------------------------------------------------------------------- view
def test_view_wheel_zoom_keeps_the_point_under_the_cursor(canvas):
    scene, view, _stack = canvas
    anchor = vp(view, centre(scene, "dense"))
    before = view.mapToScene(anchor)
    zoom = view.zoom()
    view.set_zoom(zoom * 1.5, anchor)
    assert view.zoom() == pytest.approx(zoom * 1.5)
    after = view.mapToScene(anchor)
    assert (after - before).manhattanLength() < 3
    view.zoom_out()
    assert view.zoom() < zoom * 1.5


def test_view_fit_shows_every_node_and_center_on(canvas):
    scene, view, stack = canvas
    stack.push(AddNode(Node("far", "Dense", {"units": 1}, (3000, 2500))))
    view.fit(min_zoom=0)  # no legible floor (the default keeps one: tests/gui/test_detail.py)
    visible = view.visible_scene_rect()
    assert all(visible.contains(i.sceneBoundingRect()) for i in scene.node_items())
    view.set_zoom(1.0)
    view.center_on("far")
    assert (view.visible_scene_rect().center() - QPointF(3000, 2500)).manhattanLength() < 4


def test_view_mouse_wheel_zooms_around_the_cursor(canvas):
    scene, view, _stack = canvas
    view.set_zoom(1.0)
    cursor = QPointF(vp(view, centre(scene, "flatten")))
    before = view.mapToScene(cursor.toPoint())
    event = QWheelEvent(
        cursor,
        QPointF(view.viewport().mapToGlobal(cursor.toPoint())),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        NO_MOD,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QGuiApplication.sendEvent(view.viewport(), event)
    assert view.zoom() > 1.3
    assert (view.mapToScene(cursor.toPoint()) - before).manhattanLength() < 3


def test_view_space_drag_pans_without_moving_nodes(canvas):
    scene, view, stack = canvas
    view.set_zoom(1.0)
    before = view.visible_scene_rect().center()
    viewport = view.viewport()
    start = vp(view, centre(scene, "conv"))
    QTest.keyPress(viewport, Qt.Key.Key_Space)
    QTest.mousePress(viewport, LEFT, NO_MOD, start)
    QTest.mouseMove(viewport, start + QPoint(-60, -30))
    QTest.mouseRelease(viewport, LEFT, NO_MOD, start + QPoint(-60, -30))
    QTest.keyRelease(viewport, Qt.Key.Key_Space)
    moved = view.visible_scene_rect().center() - before
    assert moved.x() == pytest.approx(60, abs=2) and moved.y() == pytest.approx(30, abs=2)
    assert stack.project.graph.nodes["conv"].position == (0, 120) and not stack.can_undo


def test_view_middle_button_pans(canvas):
    scene, view, _stack = canvas
    view.set_zoom(1.0)
    before = view.visible_scene_rect().center()
    viewport = view.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.MiddleButton, NO_MOD, QPoint(400, 300))
    QTest.mouseMove(viewport, QPoint(350, 260))
    QTest.mouseRelease(viewport, Qt.MouseButton.MiddleButton, NO_MOD, QPoint(350, 260))
    moved = view.visible_scene_rect().center() - before
    assert moved.x() == pytest.approx(50, abs=2) and moved.y() == pytest.approx(40, abs=2)


def test_canvas_renders_light_and_dark(canvas, tmp_path):
    scene, view, _stack = canvas
    scene.select_ids(["conv"])
    light = view.grab()
    light.save("/tmp/layerlab_canvas_light.png")
    scene.set_dark(True)
    dark = view.grab()
    dark.save("/tmp/layerlab_canvas_dark.png")
    corner = QPoint(3, 3)
    assert light.toImage().pixelColor(corner).lightness() > 200
    assert dark.toImage().pixelColor(corner).lightness() < 60


def test_canvas_handles_500_nodes_smoothly(qtbot):
    graph = _random_dag(500, seed=1)
    project = Project(graph=graph)
    start = time.perf_counter()
    scene = GraphScene(project, UndoStack(project))
    scene.auto_layout()
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    built = time.perf_counter() - start
    image = QImage(1200, 800, QImage.Format.Format_ARGB32_Premultiplied)
    painter = QPainter(image)
    start = time.perf_counter()
    view.render(painter)
    view.set_zoom(1.0)
    view.render(painter)
    painter.end()
    frames = time.perf_counter() - start
    assert built < 5.0, built
    assert frames < 3.0, frames
    assert isinstance(scene.node_item("n499"), NodeItem)


def test_canvas_delete_everything_after_layout_and_undo_restores_it(qtbot):
    # Regression: wires re-routed during a move used to stay indexed under their
    # old outline, and removing them later crashed the scene.
    graph = _random_dag(200, seed=2)
    project = Project(graph=graph)
    stack = UndoStack(project)
    scene = GraphScene(project, stack)
    scene.auto_layout()
    for _ in range(2):
        scene.select_ids(list(graph.nodes))
        scene.delete_selection()
        assert scene.node_items() == [] and scene.edge_items() == []
        stack.undo()
        qtbot.wait(1)
        assert len(scene.node_items()) == 200 and len(scene.edge_items()) == len(graph.edges)


def test_canvas_process_with_copied_layers_exits_cleanly(tmp_path):
    """Copy, then quit: the application must not crash on its way out."""
    import subprocess
    import sys

    script = tmp_path / "copy_then_quit.py"
    script.write_text(
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from engine.model.commands import UndoStack\n"
        "from engine.model.project import new_project\n"
        "from gui.canvas import clipboard\n"
        "from gui.canvas.scene import GraphScene\n"
        "app = QApplication([])\n"
        "project = new_project()\n"
        "scene = GraphScene(project, UndoStack(project))\n"
        "scene.select_ids(['input'])\n"
        "scene.copy_selection()\n"
        "app.aboutToQuit.connect(clipboard.release)\n"
        "QTimer.singleShot(0, app.quit)\n"
        "app.exec()\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        timeout=60,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert result.returncode == 0, result.stderr.decode()[-500:]
