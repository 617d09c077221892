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
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QInputDialog,
    QMenu,
)

from engine.catalog.table import CATALOG
from engine.model.blocks import Block
from engine.model.commands import (
    Command,
    Disconnect,
    GroupBlock,
    PlaceBlock,
    RenameBlock,
    RepeatBlock,
    SetBlockCollapsed,
    UndoStack,
    Ungroup,
    repeat_problem,
)
from engine.model.fixits import FixIt, fixits
from engine.model.graph import Edge, GraphError, Node, state_names
from engine.model.project import Project
from gui.canvas import editing
from gui.canvas.block_items import BlockCard, BlockFrame, block_of_item
from gui.canvas.blocks import BlockLayer, default_block_id
from gui.canvas.interactions import NodeDrag, ReverseWireDrag, WireDrag, block_exit
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
        #: Node id -> parameter count from the last analysis (a block card sums them).
        self.param_counts: dict[str, int] = {}
        #: Node id -> output shape from the last analysis (Repeat checks shapes with it).
        self.shapes: dict[str, Any] = {}
        #: Frames of expanded blocks, cards of collapsed ones (gui/canvas/blocks.py).
        self.blocks = BlockLayer(self, lambda: self.param_counts)
        #: Extra entries of a block's context menu: ``(label, slot(block_id))``; the
        #: window adds "Save to My Blocks".
        self.block_actions: list[tuple[str, Callable[[str], Any]]] = []
        #: Layers moved, came or went since the block items were last brought in step.
        self._blocks_dirty = False
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
        self.blocks.clear()
        self.clear()
        self._batch_selection = False
        self.project, self.undo_stack = project, undo_stack
        self.fixits = {}
        self.param_counts = {}
        self.shapes = {}
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
            (ev.block_added, self._on_blocks_changed),
            (ev.block_removed, self._on_blocks_changed),
            (ev.block_changed, self._on_blocks_changed),
        ):
            relay = _relay(slot)
            signal.connect(relay)
            self._connections.append((signal, relay))
        self._paste_count = 0
        self.blocks.refresh()
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
        if self.blocks.fold.spans:
            item.setPos(*self.blocks.display_pos(*node.position))
        self._nodes[node.id] = item
        self.addItem(item)
        self._sync_ports(node.id)
        self._blocks_dirty = True
        self._tidy_timer.start()

    def _on_node_removed(self, node_id: str) -> None:
        item = self._nodes.pop(node_id, None)
        if item is None:
            return
        # a hidden member's wires end on its block's card, not on its own item
        for edge in [e for e in self._edges if node_id in (e.source, e.target)]:
            self._on_edge_removed(edge)
        self.removeItem(item)
        self._blocks_dirty = True
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
        if edge.source in self.blocks.hidden_by or edge.target in self.blocks.hidden_by:
            self.blocks.refresh()  # its end is inside a collapsed block: on the card
        self._blocks_dirty = True
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
            x, y = self.blocks.display_pos(*node.position)
            if item.x() != x or item.y() != y:
                item.quiet = True
                item.setPos(x, y)
                item.quiet = False
            self._blocks_dirty = True
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
        if self.project.graph.blocks:
            self.blocks.refresh()
        self._on_selection_changed()

    def _on_blocks_changed(self, *_args: Any) -> None:
        """A block came, went, collapsed, expanded or changed its layers or name."""
        self.blocks.refresh()
        self._tidy_timer.start()  # re-draws the wires of the layers that moved
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
        for i in items:  # cards first, then a block's title bar, then wires
            if isinstance(i, (NodeItem, BlockCard)) and i.isVisible():
                return i
        for i in items:
            if isinstance(i, BlockFrame):
                return i
        for i in items:
            if not isinstance(i, PortItem) and i.acceptedMouseButtons():
                return i
        return None

    def items_rect(self) -> QRectF:
        """Bounding rectangle of all shown cards and block frames (empty scene: a
        small rect at the origin). Members of collapsed blocks do not count."""
        rect = QRectF()
        hidden = self.blocks.hidden_by
        for node_id, item in self._nodes.items():
            if node_id not in hidden:
                rect = rect.united(item.sceneBoundingRect())
        rect = rect.united(self.blocks.items_rect())
        return rect if not rect.isNull() else QRectF(-100, -100, 200, 200)

    def shown_item(self, node_id: str) -> QGraphicsItem | None:
        """What shows layer ``node_id``: its card, or its collapsed block's card."""
        return self.blocks.representative(node_id)

    def display_pos(self, x: float, y: float) -> tuple[float, float]:
        """Where a model position is drawn (collapsed blocks fold their rows away)."""
        return self.blocks.display_pos(x, y)

    def model_pos(self, x: float, y: float) -> tuple[float, float]:
        """The model position of a point on the canvas (the inverse of display_pos)."""
        return self.blocks.model_pos(x, y)

    def _tidy(self) -> None:
        """After nodes moved, came or went: re-route all wires and resize the scene."""
        if self._blocks_dirty and self.project is not None:
            self._blocks_dirty = False
            if self.project.graph.blocks or self.blocks.frames or self.blocks.cards:
                self.blocks.refresh()  # frames follow moved layers
        for edge_item in self._edges.values():
            if edge_item.isVisible():
                edge_item.adjust()
        self.update_scene_rect()

    def update_scene_rect(self) -> None:
        """Let the view scroll a generous margin around the items."""
        self.setSceneRect(self.items_rect().adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN))

    # --------------------------------------------------------------- selection
    def selected_ids(self) -> list[str]:
        """Ids of the selected nodes, in graph order (a selected collapsed block's
        card selects all its layers)."""
        chosen = {i.node_id for i in self.selected_node_items()}
        graph = self.project.graph
        for item in self.selectedItems():
            if isinstance(item, BlockCard) and item.block_id in graph.blocks:
                chosen.update(graph.blocks[item.block_id].nodes)
        return [n for n in graph.nodes if n in chosen]

    def selected_block_ids(self) -> list[str]:
        """Ids of the selected collapsed blocks' cards."""
        return [i.block_id for i in self.selectedItems() if isinstance(i, BlockCard)]

    def select_ids(self, ids: list[str] | tuple[str, ...]) -> None:
        """Select exactly these nodes (unknown ids are ignored); a layer hidden in a
        collapsed block selects the block's card."""
        wanted = {self.blocks.representative(n) for n in ids} - {None}
        self._batch_selection = True
        try:
            for item in self.selectedItems():
                if item not in wanted:
                    item.setSelected(False)
            for item in wanted:
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
        counts: dict[str, int] = {}
        self.shapes = {}
        for node_id, item in self._nodes.items():
            li = info.get(node_id)
            if li is not None and _field(li, "output_shape") is not None:
                self.shapes[node_id] = _field(li, "output_shape")
            shape = format_shape(_field(li, "output_shape")) if li is not None else ""
            count = _param_count(li)
            if count is not None:
                counts[node_id] = count
            item.set_analysis(shape, format_params(count), per_node.get(node_id, []))
        self.param_counts = counts
        if self.blocks.cards:
            self.blocks.refresh()  # the cards' shapes and parameter sums
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

    # ------------------------------------------------------------------ blocks
    def group_selection(self) -> str | None:
        """Group the selected layers as a block (Ctrl+G; one undo step), named after
        their common id prefix (``conv2_block1``) or ``block_1``; a refusal (the group
        would cut across a block) is said in the status bar.

        Returns:
            The new block's id, or None.
        """
        ids = self.selected_ids()
        if not ids:
            self.status_message.emit("Select the layers to group first")
            return None
        graph = self.project.graph
        bid = default_block_id(graph, ids)
        reason = graph.check_block(bid, ids)
        if reason:
            self.status_message.emit(f"Cannot group these {len(ids)} layers: {reason}")
            return None
        if not self.push(GroupBlock(Block(bid, bid, ids))):
            return None
        self.status_message.emit(
            f"Grouped {len(ids)} layers as block '{bid}' (double-click its title to rename)"
        )
        return bid

    def block_for_selection(self) -> str | None:
        """The block the selection stands for: a selected collapsed block's card, else
        the smallest block holding every selected layer."""
        cards = self.selected_block_ids()
        if cards:
            return cards[0]
        ids = set(self.selected_ids())
        if not ids:
            return None
        holders = [b for b in self.project.graph.blocks.values() if ids <= set(b.nodes)]
        return min(holders, key=lambda b: len(b.nodes)).id if holders else None

    def ungroup(self, block_id: str | None = None) -> bool:
        """Remove block ``block_id`` (default: :meth:`block_for_selection`); its layers
        stay (Ctrl+Shift+G; one undo step)."""
        block_id = block_id or self.block_for_selection()
        if block_id is None:
            self.status_message.emit("Select a block (or layers inside one) to ungroup")
            return False
        return self.push(Ungroup(block_id))

    def set_blocks_collapsed(self, block_ids: list[str], collapsed: bool) -> bool:
        """Collapse blocks to one card each, or expand them in place (one undo step)."""
        graph = self.project.graph
        ids = [b for b in block_ids if b in graph.blocks and graph.blocks[b].collapsed != collapsed]
        if not ids:
            return False
        return self.push(SetBlockCollapsed(ids, collapsed))

    def rename_block(self, block_id: str, name: str | None = None) -> bool:
        """Rename a block's card (one undo step); without ``name``, ask for it."""
        block = self.project.graph.blocks.get(block_id)
        if block is None:
            return False
        if name is None:
            views = self.views()
            name, ok = QInputDialog.getText(
                views[0] if views else None, "Rename Block", "Block name:", text=block.name
            )
            if not ok:
                return False
        name = name.strip()
        if not name or name == block.name:
            return False
        return self.push(RenameBlock(block_id, name))

    def repeat_block(self, block_id: str, times: int | None = None) -> list[str]:
        """Stack ``times`` copies of a block after it, wired output to input (one undo
        step); without ``times``, ask. A block that cannot be repeated (not one tensor
        in and one of the same shape out) is refused in the status bar.

        Returns:
            The new layers' ids (empty when nothing was added).
        """
        graph = self.project.graph
        reason = repeat_problem(graph, block_id, max(times or 1, 1), self.shapes)
        if reason:
            self.status_message.emit(f"Cannot repeat: {reason}")
            return []
        if times is None:
            views = self.views()
            times, ok = QInputDialog.getInt(
                views[0] if views else None,
                "Repeat Block",
                f"Copies of '{graph.blocks[block_id].name}' to add after it:",
                1,
                1,
                100,
            )
            if not ok:
                return []
        command = RepeatBlock(block_id, times, self.shapes)
        if not self.push(command):
            return []
        self.select_ids(command.added_ids)
        self.status_message.emit(
            f"Added {times} cop{'y' if times == 1 else 'ies'} of '{block_id}': "
            f"{', '.join(command.block_ids)} (Undo removes them)"
        )
        return list(command.added_ids)

    def place_block(
        self,
        fragment: dict[str, Any],
        pos: QPointF | tuple[float, float],
        after: str | None = None,
    ) -> list[str]:
        """Place a saved block (a fragment) with its top-left layer at ``pos`` (a
        canvas point, or a model position as a tuple), optionally wired after layer
        ``after``; one undo step. Returns the new layers' ids, selected."""
        if isinstance(pos, QPointF):
            pos = self.model_pos(pos.x(), pos.y())
        if after is not None and after not in self.project.graph.nodes:
            after = None
        command = PlaceBlock(fragment, (float(round(pos[0])), float(round(pos[1]))), after)
        if not self.push(command):
            return []
        self.select_ids(command.added_ids)
        self.status_message.emit(f"Placed block '{command.block_id}' (Undo removes it)")
        return list(command.added_ids)

    def _block_menu(self, menu: QMenu, block_id: str) -> None:
        graph = self.project.graph
        block = graph.blocks[block_id]
        if block.collapsed:
            menu.addAction("Expand Block", lambda: self.set_blocks_collapsed([block_id], False))
        else:
            menu.addAction("Collapse Block", lambda: self.set_blocks_collapsed([block_id], True))
        menu.addAction("Rename Block…", lambda: self.rename_block(block_id))
        menu.addAction("Select Its Layers", lambda: self.select_ids(list(block.nodes)))
        repeat = menu.addAction("Repeat Block…", lambda: self.repeat_block(block_id))
        reason = repeat_problem(graph, block_id, 1, self.shapes)
        if reason:  # greyed, with the reason on hover
            repeat.setEnabled(False)
            repeat.setToolTip(reason)
            repeat.setStatusTip(reason)
            menu.setToolTipsVisible(True)
        for label, slot in self.block_actions:
            menu.addAction(label, lambda s=slot: s(block_id))
        menu.addSeparator()
        menu.addAction("Ungroup", lambda: self.ungroup(block_id))

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
            toggle = _toggle_hit(hit, event.scenePos())
            if toggle is not None:
                self.set_blocks_collapsed([toggle[0]], toggle[1])
                event.accept()
                return
            if isinstance(hit, PortItem):
                self._start_wire(hit, event.scenePos())
                event.accept()
                return
            if isinstance(hit, BlockCard) and hit.on_output(event.scenePos()):
                self._start_block_wire(hit.block_id, event.scenePos())
                event.accept()
                return
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and isinstance(
            self.mouseGrabberItem(), (NodeItem, BlockCard)
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

    def _start_block_wire(self, block_id: str, pos: QPointF) -> None:
        """A drag from a collapsed block card's output dot: a wire from its single exit."""
        out, problem = block_exit(self.project.graph, block_id)
        if out is None:
            self.status_message.emit(f"Cannot connect: {problem}")
            return
        self._gesture = WireDrag(self, out[0], pos, source_port=out[1])

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
        if isinstance(hit, BlockCard):
            self.set_blocks_collapsed([hit.block_id], False)
            event.accept()
            return
        if isinstance(hit, BlockFrame):
            self.rename_block(hit.block_id)
            event.accept()
            return
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
        block_id = block_of_item(hit)
        if block_id is not None and block_id in self.project.graph.blocks:
            if isinstance(hit, BlockCard) and not hit.isSelected():
                self.clearSelection()
                hit.setSelected(True)
            self._block_menu(menu, block_id)
            return menu
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
            inner = self.block_for_selection()
            if len(ids) > 1 or inner is not None:
                menu.addSeparator()
            if len(ids) > 1:
                menu.addAction("Group as Block\tCtrl+G", self.group_selection)
            if inner is not None:
                name = self.project.graph.blocks[inner].name
                menu.addAction(
                    f"Collapse Block '{name}'", lambda: self.set_blocks_collapsed([inner], True)
                )
                menu.addAction(f"Ungroup '{name}'\tCtrl+Shift+G", lambda: self.ungroup(inner))
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


def _toggle_hit(hit: QGraphicsItem | None, pos: QPointF) -> tuple[str, bool] | None:
    """``(block id, collapse?)`` when ``pos`` is on a block frame's ▾ or a card's ▸."""
    if isinstance(hit, BlockFrame) and hit.toggle_rect().contains(pos):
        return (hit.block_id, True)
    if isinstance(hit, BlockCard) and hit.toggle_rect().contains(hit.mapFromScene(pos)):
        return (hit.block_id, False)
    return None
