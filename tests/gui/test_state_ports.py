"""A recurrent layer's states on the canvas: labelled output ports (return_state) and
initial-state input ports, wired by dragging (issue 16)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from engine.model.commands import SetParams, UndoStack
from engine.model.graph import Edge, Node
from engine.model.project import Project
from gui.canvas.scene import GraphScene
from gui.canvas.view import GraphView

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier


def seq2seq() -> Project:
    project = Project(name="s2s")
    g = project.graph
    g.add_node(Node("enc_in", "Input", {"shape": [None, 7]}, (0, 0)))
    g.add_node(Node("dec_in", "Input", {"shape": [None, 9]}, (300, 0)))
    g.add_node(Node("encoder", "LSTM", {"units": 16, "return_state": True}, (0, 150)))
    g.add_node(Node("decoder", "LSTM", {"units": 16, "return_sequences": True}, (300, 320)))
    g.connect(Edge("enc_in", "encoder"))
    g.connect(Edge("dec_in", "decoder"))
    return project


@pytest.fixture
def canvas(qtbot):
    project = seq2seq()
    stack = UndoStack(project)
    scene = GraphScene(project, stack)
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    return scene, view, stack


def drag(view: GraphView, start: QPointF, end: QPointF, steps: int = 6) -> None:
    """Real mouse events on the viewport: press at ``start``, move, release at ``end``."""
    viewport = view.viewport()

    def at(p: QPointF) -> QPoint:
        return view.mapFromScene(p)

    QTest.mousePress(viewport, LEFT, NO_MOD, at(start))
    for i in range(1, steps + 1):
        QTest.mouseMove(viewport, at(start + (end - start) * (i / steps)))
    QTest.mouseRelease(viewport, LEFT, NO_MOD, at(end))


def test_state_ports_are_drawn_with_labels(canvas):
    scene, _view, _stack = canvas
    enc, dec = scene.node_item("encoder"), scene.node_item("decoder")
    assert {p: i.label for p, i in enc.state_ports.items()} == {1: "h", 2: "c"}
    assert all(i.isVisible() for i in enc.state_ports.values())
    out = enc.out_port.scenePos()
    h, c = enc.state_ports[1].scenePos(), enc.state_ports[2].scenePos()
    assert out.y() == h.y() == c.y() and out.x() < h.x() < c.x()  # right of the output
    assert {p: i.label for p, i in dec.in_ports.items()} == {0: "", 1: "h", 2: "c"}
    assert scene.node_item("enc_in").state_ports == {}


def test_a_drag_from_the_h_port_wires_output_1(canvas):
    scene, view, stack = canvas
    enc, dec = scene.node_item("encoder"), scene.node_item("decoder")
    drag(view, enc.state_ports[1].scenePos(), dec.in_ports[1].scenePos())
    assert Edge("encoder", "decoder", 1, source_port=1) in stack.project.graph.edges
    # reverse: from the free c input up to the c output
    drag(view, dec.in_ports[2].scenePos(), enc.state_ports[2].scenePos())
    assert Edge("encoder", "decoder", 2, source_port=2) in stack.project.graph.edges
    wire = next(i for i in scene.edge_items() if i.edge.source_port == 2)
    assert wire.path().pointAtPercent(0) == enc.state_ports[2].scenePos()
    stack.undo()
    stack.undo()
    assert all(e.source_port == 0 for e in stack.project.graph.edges)


def test_turning_return_state_on_and_off_shows_and_hides_the_ports(canvas):
    scene, _view, stack = canvas
    stack.push(SetParams("encoder", {"units": 16}))
    assert scene.node_item("encoder").state_ports == {}
    stack.undo()
    assert sorted(scene.node_item("encoder").state_ports) == [1, 2]
    gru = {"units": 8, "return_state": True}
    stack.project.graph.add_node(Node("gru", "GRU", gru, (600, 150)))
    assert {p: i.label for p, i in scene.node_item("gru").state_ports.items()} == {1: "h"}


def test_a_bidirectional_shows_one_input_per_state_of_its_inner_layer(canvas):
    scene, _view, stack = canvas
    graph = stack.project.graph
    inner = {"type": "GRU", "params": {"units": 4, "return_state": True}}
    graph.add_node(Node("bi", "Bidirectional", {"layer": inner}, (600, 300)))
    item = scene.node_item("bi")
    assert {p: i.label for p, i in item.in_ports.items()} == {0: "", 1: "h_fw", 2: "h_bw"}
    assert {p: i.label for p, i in item.state_ports.items()} == {1: "h_fw", 2: "h_bw"}
    stack.push(SetParams("bi", {"layer": {"type": "LSTM", "params": {"units": 4}}}))
    assert sorted(item.in_ports) == [0, 1, 2, 3, 4]
    assert item.state_ports == {}
