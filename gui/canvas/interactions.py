"""Mouse gestures on the canvas, one small object each.

The scene creates a gesture on mouse press and forwards move/release to it;
a gesture changes the document only by pushing commands when it finishes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsPathItem

from engine.commands import Connect, Disconnect, Macro, MoveNodes
from engine.graph import Edge, Graph
from gui.canvas.items import Z_DRAFT, NodeItem, PortItem, wire_path

if TYPE_CHECKING:
    from gui.canvas.scene import GraphScene

#: How far (scene pixels) the mouse must travel before a press becomes a drag.
DRAG_THRESHOLD = 4.0


def accepting_ports(graph: Graph, source: str, ports: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """The ``(node, port)`` pairs that would accept a wire from ``source``.

    Gives the same answer as ``graph.check_connect(source, node, port) is None``
    for each pair, but computes the upstream set once, so highlighting every
    port of a 500-node graph at drag start stays instant.
    """
    from engine.catalog import CATALOG

    if source not in graph.nodes:
        return set()
    parents: dict[str, list[str]] = {}
    inputs: dict[str, list[Edge]] = {}
    for e in graph.edges:
        parents.setdefault(e.target, []).append(e.source)
        inputs.setdefault(e.target, []).append(e)
    upstream = {source}
    stack = [source]
    while stack:
        for p in parents.get(stack.pop(), ()):
            if p not in upstream:
                upstream.add(p)
                stack.append(p)
    ok: set[tuple[str, int]] = set()
    for node, port in ports:
        if node in upstream or node not in graph.nodes:
            continue  # self loop or cycle
        existing = inputs.get(node, [])
        spec = CATALOG.get(graph.nodes[node].type)
        if spec is not None and spec.max_inputs is not None and len(existing) >= spec.max_inputs:
            continue
        if spec is not None and spec.max_inputs is not None and port >= spec.max_inputs:
            continue
        if port < 0 or any(e.port == port or e.source == source for e in existing):
            continue
        ok.add((node, port))
    return ok


class DraftWire(QGraphicsPathItem):
    """The dashed wire that follows the mouse while connecting."""

    def __init__(self, scene: GraphScene) -> None:
        super().__init__()
        pen = QPen(scene.theme.accent, 2, Qt.PenStyle.DashLine, Qt.PenCapStyle.RoundCap)
        self.setPen(pen)
        self.setZValue(Z_DRAFT)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_ends(self, p1: QPointF, p2: QPointF) -> None:
        self.setPath(wire_path(p1, p2))


class WireDrag:
    """Drag from an output port to an input port (or node body) to connect.

    Started from a wired input port, it first detaches that wire (Disconnect)
    and then re-routes it; dropping it back where it was changes nothing, and
    a re-route is a single undo step.

    Attributes:
        source: The node whose output the wire leaves.
        target: ``(node_id, port)`` the wire would connect to now (port None means
            the node's next free port), or None.
        reason: Why ``target`` refuses the wire, or None.
    """

    def __init__(self, scene: GraphScene, source: str, press: QPointF,
                 detach: Edge | None = None) -> None:
        self.scene, self.source, self.press, self.detach = scene, source, press, detach
        self.started = False
        self.target: tuple[str, int | None] | None = None
        self.reason: str | None = None
        self._disconnect: Disconnect | None = None
        self._draft: DraftWire | None = None
        self._marked: PortItem | None = None
        self._highlighted: list[PortItem] = []
        self._last_message = ""

    # ------------------------------------------------------------- protocol
    def move(self, pos: QPointF) -> None:
        if not self.started:
            if (pos - self.press).manhattanLength() < DRAG_THRESHOLD:
                return
            if not self._start():
                return
        self._hover(pos)

    def release(self, pos: QPointF) -> None:
        if not self.started:
            self._cleanup()
            return
        self._hover(pos)
        graph = self.scene.project.graph
        try:
            if self.target is not None and self.reason is None:
                node, port = self.target
                port = graph.next_free_port(node) if port is None else port
                self._connect(Edge(self.source, node, port))
            elif self.target is not None:
                self.scene.status_message.emit(f"Cannot connect: {self.reason}")
            elif self._disconnect is not None:
                d = self.detach
                self.scene.status_message.emit(f"Disconnected '{d.source}' from '{d.target}'")
        finally:
            self._cleanup()

    def cancel(self) -> None:
        """Escape: put a detached wire back and forget the gesture."""
        if self._disconnect is not None and self._top_is_ours():
            self.scene.undo_stack.undo()
        self._cleanup()

    # -------------------------------------------------------------- helpers
    def _start(self) -> bool:
        scene = self.scene
        if self.detach is not None:
            self._disconnect = Disconnect(self.detach)
            if not scene.push(self._disconnect):
                self._disconnect = None
                return False
        self.started = True
        self._draft = DraftWire(scene)
        scene.addItem(self._draft)
        ports = [(p.node_id, p.port) for p in scene.input_port_items()]
        ok = accepting_ports(scene.project.graph, self.source, ports)
        for item in scene.input_port_items():
            if (item.node_id, item.port) in ok:
                item.set_state("accept")
                self._highlighted.append(item)
        return True

    def _hover(self, pos: QPointF) -> None:
        scene, graph = self.scene, self.scene.project.graph
        hit = scene.item_at(pos)
        target: tuple[str, int | None] | None = None
        port_item: PortItem | None = None
        if isinstance(hit, PortItem) and hit.kind == "in":
            target, port_item = (hit.node_id, hit.port), hit
        else:
            node = hit
            while node is not None and not isinstance(node, NodeItem):
                node = node.parentItem()
            if node is not None and node.node_id != self.source:
                target = (node.node_id, None)
                port_item = node.in_ports.get(graph.next_free_port(node.node_id))
        if target != self.target:
            self.target = target
            self.reason = (graph.check_connect(self.source, target[0], target[1])
                           if target else None)
            self._mark(port_item, "refuse" if self.reason else "target")
            message = f"Cannot connect: {self.reason}" if self.reason else ""
            if message != self._last_message:
                self._last_message = message
                self.scene.status_message.emit(message)
        end = pos
        if self._marked is not None and self.reason is None:
            end = self._marked.scenePos()
        source_item = scene.node_item(self.source)
        if self._draft is not None and source_item is not None:
            self._draft.set_ends(source_item.output_pos(), end)

    def _mark(self, item: PortItem | None, state: str) -> None:
        if self._marked is not None:
            self._marked.set_state("accept" if self._marked in self._highlighted else "")
        self._marked = item
        if item is not None:
            item.set_state(state)

    def _connect(self, edge: Edge) -> None:
        scene = self.scene
        arrow = f"'{edge.source}' → '{edge.target}'"
        if self._disconnect is None:
            if scene.push(Connect(edge)):
                scene.status_message.emit(f"Connected {arrow}")
            return
        # Re-route: replace the lone Disconnect by one "Reconnect" step.
        if self._top_is_ours():
            scene.undo_stack.undo()
            if edge == self.detach:
                return
            text = f"Reconnect '{edge.source}' to '{edge.target}'"
            if scene.push(Macro(text, [Disconnect(self.detach), Connect(edge)])):
                scene.status_message.emit(f"Connected {arrow}")
        elif scene.push(Connect(edge)):
            scene.status_message.emit(f"Connected {arrow}")

    def _top_is_ours(self) -> bool:
        stack = self.scene.undo_stack
        return stack.can_undo and self._disconnect is not None and \
            stack.undo_text == self._disconnect.text

    def _cleanup(self) -> None:
        for item in self._highlighted:
            if item.scene() is not None:
                item.set_state("")
        if self._marked is not None and self._marked.scene() is not None:
            self._marked.set_state("")
        self._highlighted, self._marked = [], None
        if self._draft is not None:
            self.scene.removeItem(self._draft)
            self._draft = None


class NodeDrag:
    """Moving nodes with the mouse: one MoveNodes for the whole drag, on release."""

    def __init__(self, scene: GraphScene) -> None:
        self.scene = scene
        self.start = {item.node_id: (item.x(), item.y()) for item in scene.selected_node_items()}

    def release(self) -> None:
        moves: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
        graph = self.scene.project.graph
        for node_id, old in self.start.items():
            item = self.scene.node_item(node_id)
            if item is None or node_id not in graph.nodes:
                continue
            new = (float(round(item.x())), float(round(item.y())))
            if (item.x(), item.y()) != old:
                moves[node_id] = (tuple(graph.nodes[node_id].position), new)
        if moves:
            self.scene.push(MoveNodes(moves))
