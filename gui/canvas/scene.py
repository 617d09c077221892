"""GraphScene: draws a project's graph and turns gestures into undoable commands.

The scene keeps no copy of the model. It subscribes to ``project.graph.events``
and creates, removes or refreshes items as it is told; every edit goes through
``undo_stack.push``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsSceneMouseEvent, QMenu

from engine.catalog.table import CATALOG
from engine.model.commands import Command, Disconnect, UndoStack
from engine.model.fixits import FixIt, fixits
from engine.model.graph import Edge, GraphError, Node, state_names
from engine.model.project import Project
from gui.canvas import editing
from gui.canvas.interactions import NodeDrag, ReverseWireDrag, WireDrag
from gui.canvas.items import EdgeItem, NodeItem, PortItem, format_params, format_shape
from gui.canvas.theme import DARK, LIGHT, Theme

#: Grid spacing of the background dots (scene pixels).
GRID = 24
#: Room around the items that the view can scroll into.
MARGIN = 1200.0


class GraphScene(QGraphicsScene):
    """The canvas of one project.

    Signals:
        selection_ids_changed(list): Ids of the selected nodes, in graph order.
        status_message(str): A short message for the status bar ("" clears it).
        node_activated(str): A node was double-clicked.
    """

    selection_ids_changed = Signal(list)
    status_message = Signal(str)
    node_activated = Signal(str)
    activations_requested = Signal(str)  # "Show Activations": the Inside tab (issue 19)

    def __init__(self, project: Project, undo_stack: UndoStack, parent=None) -> None:
        super().__init__(parent)
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.theme: Theme = LIGHT
        self.setBackgroundBrush(self.theme.background)
        self.project: Project | None = None
        self.undo_stack: UndoStack | None = None
        self._nodes: dict[str, NodeItem] = {}
        self._connections: list[tuple[Any, Callable[..., None]]] = []
        self._edges: dict[Edge, EdgeItem] = {}
        self._gesture: WireDrag | None = None
        self._node_drag: NodeDrag | None = None
        self._batch_selection = False
        self._last_selection: list[str] = []
        self._paste_count = 0
        #: Node id -> the certain fixes for its problem, from the last analysis.
        self.fixits: dict[str, list[FixIt]] = {}
        self._tidy_timer = QTimer(self)
        self._tidy_timer.setSingleShot(True)
        self._tidy_timer.setInterval(0)
        self._tidy_timer.timeout.connect(self._tidy)
        self.selectionChanged.connect(self._on_selection_changed)
        self.set_project(project, undo_stack)

    # ---------------------------------------------------------------- document
    def set_project(self, project: Project, undo_stack: UndoStack) -> None:
        """Show another document (drops every item and subscribes to the new graph)."""
        self._disconnect_graph()
        if self._gesture is not None:
            self._gesture = None
        self._node_drag = None
        self._batch_selection = True
        self._nodes.clear()
        self._edges.clear()
        self.clear()
        self._batch_selection = False
        self.project, self.undo_stack = project, undo_stack
        self.fixits = {}
        graph = project.graph
        for node in graph.nodes.values():
            self._on_node_added(node)
        for edge in graph.edges:
            self._on_edge_added(edge)
        ev = graph.events
        for signal, slot in (
            (ev.node_added, self._on_node_added),
            (ev.node_removed, self._on_node_removed),
            (ev.edge_added, self._on_edge_added),
            (ev.edge_removed, self._on_edge_removed),
            (ev.params_changed, self._on_params_changed),
            (ev.node_moved, self._on_node_moved),
            (ev.node_renamed, self._on_node_renamed),
        ):
            relay = _relay(slot)
            signal.connect(relay)
            self._connections.append((signal, relay))
        self._paste_count = 0
        self._tidy()
        self._on_selection_changed()

    def _disconnect_graph(self) -> None:
        for signal, relay in self._connections:
            signal.disconnect(relay, missing_ok=True)
        self._connections.clear()

    def push(self, command: Command) -> bool:
        """Push ``command``; a refusal becomes a status message instead of an exception."""
        try:
            self.undo_stack.push(command)
        except GraphError as exc:
            self.status_message.emit(f"{command.text or 'Edit'} failed: {exc}")
            return False
        return True

    # ------------------------------------------------------------ model events
    def _on_node_added(self, node: Node) -> None:
        if node.id in self._nodes:  # never two cards for one node
            self._on_node_removed(node.id)
        item = NodeItem(node)
        self._nodes[node.id] = item
        self.addItem(item)
        self._sync_ports(node.id)
        self._tidy_timer.start()

    def _on_node_removed(self, node_id: str) -> None:
        item = self._nodes.pop(node_id, None)
        if item is None:
            return
        for edge_item in list(item.edges):
            self._on_edge_removed(edge_item.edge)
        self.removeItem(item)
        self._tidy_timer.start()

    def _on_edge_added(self, edge: Edge) -> None:
        source, target = self._nodes.get(edge.source), self._nodes.get(edge.target)
        if source is None or target is None or edge in self._edges:
            return
        self._sync_ports(edge.target, extra=edge)
        item = EdgeItem(edge, source, target)
        item.set_label(source.shape_text)
        self._edges[edge] = item
        source.edges.add(item)
        target.edges.add(item)
        self.addItem(item)
        self._tidy_timer.start()  # routes the new wire around nodes in its way

    def _on_edge_removed(self, edge: Edge) -> None:
        item = self._edges.pop(edge, None)
        if item is None:
            return
        item.source.edges.discard(item)
        item.target.edges.discard(item)
        self.removeItem(item)
        if edge.target in self._nodes:
            self._sync_ports(edge.target, without=edge)

    def _on_params_changed(self, node_id: str) -> None:
        item = self._nodes.get(node_id)
        if item is not None:
            item.refresh(self.project.graph.nodes[node_id])
            self._sync_ports(node_id)  # a Bidirectional's states follow its inner layer

    def _on_node_moved(self, node_id: str) -> None:
        item = self._nodes.get(node_id)
        node = self.project.graph.nodes.get(node_id)
        if item is not None and node is not None:
            x, y = node.position
            if item.x() != x or item.y() != y:
                item.quiet = True
                item.setPos(x, y)
                item.quiet = False
            self._tidy_timer.start()

    def _on_node_renamed(self, old: str, new: str) -> None:
        item = self._nodes.pop(old, None)
        if item is None:
            return
        self._nodes[new] = item
        item.refresh(self.project.graph.nodes[new])
        for edge, edge_item in list(self._edges.items()):
            if old in (edge.source, edge.target):
                renamed = Edge(
                    new if edge.source == old else edge.source,
                    new if edge.target == old else edge.target,
                    edge.port,
                    edge.source_port,
                )
                del self._edges[edge]
                self._edges[renamed] = edge_item
                edge_item.edge = renamed
                edge_item.set_label(edge_item.label)
        self._sync_ports(new)
        self._on_selection_changed()

    def _sync_ports(
        self, node_id: str, extra: Edge | None = None, without: Edge | None = None
    ) -> None:
        """Show the input ports the node's type allows (plus one free on merge layers)."""
        graph = self.project.graph
        item = self._nodes[node_id]
        node = graph.nodes.get(node_id)
        if node is None:
            return
        edges = [e for e in graph.edges if e.target == node_id and e != without]
        if extra is not None and extra not in edges:
            edges.append(extra)
        used = {e.port for e in edges}
        spec = CATALOG.get(node.type)
        if spec is not None:
            limit = spec.max_inputs
            if state_names(node):  # the sequence, then its initial state (h, c)
                limit = 1 + len(state_names(node))
        else:
            limit = 0 if node.type == "Input" else 1
        if limit is None:  # merge layers: the wired inputs plus free ones up to min_inputs
            ports = set(used)
            free = 0
            for _ in range(max(1, spec.min_inputs - len(used))):
                while free in ports:
                    free += 1
                ports.add(free)
        else:
            ports = used | set(range(limit))
        if item.set_input_ports(ports, {e.port: e.source for e in edges}):
            for edge_item in item.edges:
                if edge_item.target is item:
                    edge_item.adjust()

    # ----------------------------------------------------------------- lookups
    def node_item(self, node_id: str) -> NodeItem | None:
        return self._nodes.get(node_id)

    def edge_item(self, edge: Edge) -> EdgeItem | None:
        return self._edges.get(edge)

    def node_items(self) -> list[NodeItem]:
        return list(self._nodes.values())

    def edge_items(self) -> list[EdgeItem]:
        return list(self._edges.values())

    def input_port_items(self) -> list[PortItem]:
        return [p for item in self._nodes.values() for p in item.in_ports.values()]

    def selected_node_items(self) -> list[NodeItem]:
        return [i for i in self.selectedItems() if isinstance(i, NodeItem)]

    def item_at(self, pos: QPointF) -> QGraphicsItem | None:
        """The topmost port, node or wire under ``pos`` (ports win over everything)."""
        items = [i for i in self.items(pos) if i.zValue() < 10 or isinstance(i, PortItem)]
        for i in items:
            if isinstance(i, PortItem) and i.isVisible():
                return i
        for i in items:
            if not isinstance(i, PortItem) and i.acceptedMouseButtons():
                return i
        return None

    def items_rect(self) -> QRectF:
        """Bounding rectangle of all nodes (empty scene: a small rect at the origin)."""
        rect = QRectF()
        for item in self._nodes.values():
            rect = rect.united(item.sceneBoundingRect())
        return rect if not rect.isNull() else QRectF(-100, -100, 200, 200)

    def _tidy(self) -> None:
        """After nodes moved, came or went: re-route all wires and resize the scene."""
        for edge_item in self._edges.values():
            edge_item.adjust()
        self.update_scene_rect()

    def update_scene_rect(self) -> None:
        """Let the view scroll a generous margin around the items."""
        self.setSceneRect(self.items_rect().adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN))

    # --------------------------------------------------------------- selection
    def selected_ids(self) -> list[str]:
        """Ids of the selected nodes, in graph order."""
        chosen = {i.node_id for i in self.selected_node_items()}
        return [n for n in self.project.graph.nodes if n in chosen]

    def select_ids(self, ids: list[str] | tuple[str, ...]) -> None:
        """Select exactly these nodes (unknown ids are ignored)."""
        wanted = set(ids)
        self._batch_selection = True
        try:
            for item in self.selectedItems():
                if not (isinstance(item, NodeItem) and item.node_id in wanted):
                    item.setSelected(False)
            for node_id in wanted:
                item = self._nodes.get(node_id)
                if item is not None:
                    item.setSelected(True)
        finally:
            self._batch_selection = False
        self._on_selection_changed()

    def _on_selection_changed(self) -> None:
        if self._batch_selection or self.project is None:
            return
        ids = self.selected_ids()
        if ids != self._last_selection:
            self._last_selection = ids
            self.selection_ids_changed.emit(ids)

    # ---------------------------------------------------------------- analysis
    def set_analysis(self, info: dict[str, Any], problems: list[Any]) -> None:
        """Show shapes, parameter counts and problems from the latest validation.

        Args:
            info: Node id -> LayerInfo-like object (``output_shape``, ``params`` or
                ``trainable`` + ``non_trainable``); attributes or dict keys.
            problems: Problem-like objects (``node``, ``severity``, ``message``);
                those without a node are left to the problems panel.
        """
        per_node: dict[str, list[tuple[str, str]]] = {}
        for p in problems:
            node = _field(p, "node")
            if node in self._nodes:
                per_node.setdefault(node, []).append(
                    (str(_field(p, "severity") or "error"), str(_field(p, "message") or ""))
                )
        for node_id, item in self._nodes.items():
            li = info.get(node_id)
            shape = format_shape(_field(li, "output_shape")) if li is not None else ""
            item.set_analysis(shape, format_params(_param_count(li)), per_node.get(node_id, []))
        for edge_item in self._edges.values():
            edge_item.set_label(edge_item.source.shape_text)
        self.fixits = {}
        problem_nodes = [p for p in problems if _field(p, "node") in self._nodes]
        for fix in fixits(self.project.graph, problem_nodes, info):
            self.fixits.setdefault(fix.node, []).append(fix)

    def apply_fixit(self, fix: FixIt) -> bool:
        """Apply a shape fix-it (one undo step); False when the graph changed under it."""
        try:
            command = fix.fix()
        except (KeyError, GraphError) as exc:
            self.status_message.emit(f"{fix.fix_text} failed: the model changed ({exc})")
            return False
        if self.push(command):
            self.status_message.emit(f"{fix.fix_text} (Undo reverts it)")
            return True
        return False

    # ------------------------------------------------------------------- edits
    def add_layer(
        self,
        layer_type: str,
        pos: QPointF | tuple[float, float] | None = None,
        after: str | None = None,
    ) -> str | None:
        """Add a new layer of ``layer_type`` (one undo step) and select it.

        Args:
            layer_type: A catalog type name.
            pos: Where its centre goes (moved down if a card is already there);
                None: below ``after`` (or the origin).
            after: Wire the new layer after this node, when it can be.

        Returns:
            The new node's id, or None if nothing was added (reason in status_message).
        """
        return editing.add_layer(self, layer_type, pos, after)

    def delete_selection(self) -> None:
        """Delete the selected nodes (with their wires) and selected wires: one undo step."""
        editing.delete_selection(self)

    def copy_selection(self) -> dict[str, Any]:
        """Copy the selected nodes and the wires between them (also to the clipboard,
        as JSON with mime type ``application/x-layerlab-subgraph``)."""
        return editing.copy_selection(self)

    def paste(self, at: QPointF | tuple[float, float] | None = None) -> list[str]:
        """Paste the clipboard's layers with fresh ids (internal wires kept) and select them.

        Args:
            at: Centre of the pasted layers; None: offset from where they were copied.

        Returns:
            The new node ids (empty if nothing was pasted).
        """
        return editing.paste(self, at)

    def duplicate(self) -> list[str]:
        """Copy and paste the selection in one go, beside the original (clipboard untouched)."""
        return editing.duplicate(self)

    def auto_layout(self) -> None:
        """Arrange all nodes in levels, top to bottom (one MoveNodes)."""
        editing.auto_layout(self)

    def set_trainable(self, ids: list[str], trainable: bool) -> bool:
        """Freeze (``trainable`` False) or unfreeze layers ``ids`` (one undo step)."""
        return editing.set_trainable(self, ids, trainable)

    def freeze_up_to(self, node_id: str) -> bool:
        """Freeze ``node_id`` and all its ancestors, inputs excluded (one undo step)."""
        return editing.freeze_up_to(self, node_id)

    def nudge(self, dx: float, dy: float) -> None:
        """Move the selected nodes by ``(dx, dy)`` (arrow keys; one undo step)."""
        editing.nudge(self, dx, dy)

    # ------------------------------------------------------------------- theme
    def set_dark(self, dark: bool) -> None:
        """Switch between the light (default) and dark colours."""
        self.theme = DARK if dark else LIGHT
        self.setBackgroundBrush(self.theme.background)
        for item in self.items():
            item.update()
        for view in self.views():
            view.resetCachedContent()
            view.viewport().update()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, self.theme.background)
        scale = painter.worldTransform().m11()
        if scale < 0.35:
            return
        # After a long jump (find, minimap) Qt may expose the whole span between the
        # old and the new place: dot only what the device can show.
        device = painter.device()
        inverse, ok = painter.worldTransform().inverted()
        if ok and device is not None and device.width() > 0:
            rect = rect.intersected(inverse.mapRect(QRectF(0, 0, device.width(), device.height())))
        step = GRID * (2 if scale < 0.7 else 1)
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        pen = QPen(self.theme.grid, 2.0 / max(scale, 0.5) if scale < 1 else 2.0)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        points = []
        y = top
        while y < rect.bottom():
            x = left
            while x < rect.right():
                points.append(QPointF(x, y))
                x += step
            y += step
        painter.drawPoints(points)

    # ------------------------------------------------------------------- mouse
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.project is not None:
            hit = self.item_at(event.scenePos())
            if isinstance(hit, PortItem):
                self._start_wire(hit, event.scenePos())
                event.accept()
                return
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and isinstance(
            self.mouseGrabberItem(), NodeItem
        ):
            self._node_drag = NodeDrag(self)

    def _start_wire(self, port: PortItem, pos: QPointF) -> None:
        graph = self.project.graph
        if port.kind == "out":
            self._gesture = WireDrag(self, port.node_id, pos, source_port=port.port)
            return
        wired = [e for e in graph.inputs_of(port.node_id) if e.port == port.port]
        if wired:
            self._gesture = WireDrag(self, wired[0].source, pos, detach=wired[0])
        else:
            self._gesture = ReverseWireDrag(self, (port.node_id, port.port), pos)

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._gesture is not None:
            self._gesture.move(event.scenePos())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._gesture is not None and event.button() == Qt.MouseButton.LeftButton:
            gesture, self._gesture = self._gesture, None
            gesture.release(event.scenePos())
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if self._node_drag is not None and event.button() == Qt.MouseButton.LeftButton:
            drag, self._node_drag = self._node_drag, None
            drag.release()

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        hit = self.item_at(event.scenePos())
        while hit is not None and not isinstance(hit, NodeItem):
            hit = hit.parentItem()
        if isinstance(hit, NodeItem):
            self.node_activated.emit(hit.node_id)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def context_menu(self, pos: QPointF) -> QMenu:
        """The right-click menu for whatever is at ``pos`` (a node, a wire, or empty canvas)."""
        menu = QMenu()
        hit = self.item_at(pos)
        while hit is not None and not isinstance(hit, (NodeItem, EdgeItem)):
            hit = hit.parentItem()
        if isinstance(hit, NodeItem):
            if not hit.isSelected():
                self.clearSelection()
                self.select_ids([hit.node_id])
            node_id = hit.node_id
            for fix in self.fixits.get(node_id, []):
                menu.addAction(f"Fix: {fix.fix_text}", lambda f=fix: self.apply_fixit(f))
            if self.fixits.get(node_id):
                menu.addSeparator()
            menu.addAction("Edit Properties", lambda: self.node_activated.emit(node_id))
            menu.addAction("Show Activations", lambda: self.activations_requested.emit(node_id))
            menu.addSeparator()
            menu.addAction("Copy", self.copy_selection)
            menu.addAction("Duplicate", self.duplicate)
            menu.addAction("Delete", self.delete_selection)
            menu.addSeparator()
            ids = self.selected_ids()
            frozen = [i for i in ids if not self.project.graph.nodes[i].trainable]
            if frozen:
                menu.addAction("Unfreeze", lambda: self.set_trainable(ids, True))
            if len(frozen) < len(ids):
                menu.addAction("Freeze", lambda: self.set_trainable(ids, False))
            menu.addAction("Freeze from the Inputs Up to Here", lambda: self.freeze_up_to(node_id))
        elif isinstance(hit, EdgeItem):
            edge = hit.edge
            menu.addAction("Delete Wire", lambda: self.push(Disconnect(edge)))
        else:
            menu.addAction("Paste Here", lambda: self.paste(at=pos))
            menu.addAction("Select All", lambda: self.select_ids(list(self.project.graph.nodes)))
            menu.addSeparator()
            menu.addAction("Auto Layout", self.auto_layout)
        return menu

    def contextMenuEvent(self, event) -> None:
        if self.project is None:
            return
        menu = self.context_menu(event.scenePos())
        menu.exec(event.screenPos())
        event.accept()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape and self._gesture is not None:
            gesture, self._gesture = self._gesture, None
            gesture.cancel()
        elif event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selection()
        elif event.key() in _NUDGE and self.selected_ids():
            step = 50 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 10
            dx, dy = _NUDGE[event.key()]
            self.nudge(dx * step, dy * step)
        elif event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selection()
        elif event.matches(QKeySequence.StandardKey.Paste):
            self.paste()
        elif event.matches(QKeySequence.StandardKey.SelectAll):
            self.select_ids(list(self.project.graph.nodes))
        elif (
            event.key() == Qt.Key.Key_D and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.duplicate()
        else:
            super().keyPressEvent(event)
            return
        event.accept()


_NUDGE = {
    Qt.Key.Key_Left: (-1, 0),
    Qt.Key.Key_Right: (1, 0),
    Qt.Key.Key_Up: (0, -1),
    Qt.Key.Key_Down: (0, 1),
}


def _relay(method: Callable[..., None]) -> Callable[..., None]:
    """A graph-event handler that calls ``method`` only while its scene is alive.

    The graph may outlive the scene (a closed window's project is still in use);
    the relay holds the scene weakly and goes quiet once Qt has deleted it.
    """
    ref = weakref.WeakMethod(method)

    def relay(*args: Any) -> None:
        bound = ref()
        if bound is not None and shiboken6.isValid(bound.__self__):
            bound(*args)

    return relay


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _param_count(info: Any) -> int | None:
    if info is None:
        return None
    params = _field(info, "params")
    if isinstance(params, int) and not isinstance(params, bool):
        return params
    trainable, frozen = _field(info, "trainable"), _field(info, "non_trainable")
    if isinstance(trainable, int) or isinstance(frozen, int):
        return int(trainable or 0) + int(frozen or 0)
    return None
