"""Mouse gestures on the canvas, one small object each.

The scene creates a gesture on mouse press and forwards move/release to it;
a gesture changes the document only by pushing commands when it finishes.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from engine.catalog.table import CATALOG
from engine.model.blocks import ports
from engine.model.commands import Connect, Disconnect, Macro, MoveNodes
from engine.model.graph import Edge, Graph
from gui.canvas.block_items import BlockCard
from gui.canvas.host import CanvasHost
from gui.canvas.items import Z_DRAFT, NodeItem, PortItem, wire_path

#: How far (scene pixels) the mouse must travel before a press becomes a drag.
DRAG_THRESHOLD = 4.0


def accepting_ports(
    graph: Graph, source: str, ports: list[tuple[str, int]], source_port: int = 0
) -> set[tuple[str, int]]:
    """The ``(node, port)`` pairs that would accept a wire from output ``source_port``
    of ``source``.

    Gives the same answer as ``graph.check_connect(source, node, port, source_port) is None``
    for each pair, but computes the upstream set once, so highlighting every
    port of a 500-node graph at drag start stays instant.
    """
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
        if port < 0 or any(
            e.port == port or (e.source, e.source_port) == (source, source_port) for e in existing
        ):
            continue
        ok.add((node, port))
    return ok


def block_entry(graph: Graph, block_id: str) -> tuple[str | None, str | None]:
    """Where a wire dropped on collapsed block ``block_id``'s card goes in:
    ``(layer, None)`` when exactly one of the block's entry layers (fed from outside,
    or fed by nothing inside) has a free input and no wire from outside yet, else
    ``(None, why)``."""
    block = graph.blocks.get(block_id)
    if block is None:
        return None, f"block '{block_id}' is gone"
    inside = set(block.nodes)
    fed: dict[str, list[Edge]] = {}
    for e in graph.edges:
        if e.target in inside:
            fed.setdefault(e.target, []).append(e)
    entries = [
        n
        for n in block.nodes
        if n in graph.nodes and not any(e.source in inside for e in fed.get(n, ()))
    ]
    for feeds in ports(block, graph.edges).entries:
        entries += [n for n, _port in feeds if n not in entries]
    free = []
    for n in entries:
        spec = CATALOG.get(graph.nodes[n].type)
        wired = fed.get(n, [])
        full = spec is not None and spec.max_inputs is not None and len(wired) >= spec.max_inputs
        if not full and not any(e.source not in inside for e in wired):
            free.append(n)
    if len(free) == 1:
        return free[0], None
    if not free:
        return None, f"block '{block_id}' has no free input: expand it to wire a layer inside"
    return None, f"block '{block_id}' has {len(free)} inputs: expand it to choose"


def block_exit(graph: Graph, block_id: str) -> tuple[tuple[str, int] | None, str | None]:
    """The output ``(layer, port)`` a wire leaving collapsed block ``block_id``'s card
    starts from: its single exit; else ``(None, why)``."""
    block = graph.blocks.get(block_id)
    if block is None:
        return None, f"block '{block_id}' is gone"
    outputs = ports(block, graph.edges).outputs
    if len(outputs) == 1:
        return outputs[0], None
    return None, f"block '{block_id}' has {len(outputs)} outputs: expand it to choose"


class DraftWire(QGraphicsPathItem):
    """The dashed wire that follows the mouse while connecting."""

    def __init__(self, scene: CanvasHost) -> None:
        super().__init__()
        self._theme = scene.theme
        self.set_refused(False)
        self.setZValue(Z_DRAFT)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_refused(self, refused: bool) -> None:
        """Red while the wire hovers a place that would refuse it, accent blue otherwise."""
        colour = self._theme.refuse if refused else self._theme.accent
        self.setPen(QPen(colour, 2, Qt.PenStyle.DashLine, Qt.PenCapStyle.RoundCap))

    def set_ends(self, p1: QPointF, p2: QPointF) -> None:
        self.setPath(wire_path(p1, p2))


class WireDrag:
    """Drag from an output port to an input port (or node body) to connect.

    Started from a wired input port, it first detaches that wire (Disconnect)
    and then re-routes it; dropping it back where it was changes nothing, and
    a re-route is a single undo step. Dropping in empty space cancels (a
    detached wire stays removed).

    Attributes:
        source: The node whose output the wire leaves.
        source_port: Which of its outputs (0, or a recurrent layer's state 1..).
        target: ``(node_id, port)`` the wire would connect to now (port None means
            the node's next free port), or None.
        reason: Why ``target`` refuses the wire, or None.
    """

    def __init__(
        self,
        scene: CanvasHost,
        source: str,
        press: QPointF,
        detach: Edge | None = None,
        source_port: int = 0,
    ) -> None:
        self.scene, self.source, self.press, self.detach = scene, source, press, detach
        self.source_port = detach.source_port if detach is not None else source_port
        self.started = False
        self.target: tuple[str, int | None] | None = None
        self.reason: str | None = None
        self._disconnect: Disconnect | None = None
        self._draft: DraftWire | None = None
        self._marked: PortItem | BlockCard | None = None
        self._highlighted: list[PortItem | BlockCard] = []
        self._last_message = ""
        #: Why the collapsed block card under the mouse cannot take the wire, or None.
        self._card_problem: str | None = None

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
        try:
            if self.target is not None and self.reason is None:
                self._connect(self._edge())
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

    # ------------------------------------------------------ direction hooks
    def _candidates(self) -> list[PortItem | BlockCard]:
        """Ports (and collapsed cards) to highlight green when the drag starts."""
        scene = self.scene
        items = scene.input_port_items()
        ok = accepting_ports(
            scene.project.graph,
            self.source,
            [(p.node_id, p.port) for p in items],
            self.source_port,
        )
        return [p for p in items if (p.node_id, p.port) in ok] + self._accepting_cards()

    def _accepting_cards(self) -> list[BlockCard]:
        """Collapsed block cards whose single entry would take the wire."""
        graph = self.scene.project.graph
        out = []
        for card in self.scene.blocks.cards.values():
            entry, problem = block_entry(graph, card.block_id)
            if entry and not problem and card.isVisible():
                if graph.check_connect(self.source, entry, None, self.source_port) is None:
                    out.append(card)
        return out

    def _resolve(
        self, hit: QGraphicsItem | None
    ) -> tuple[tuple[str, int | None] | None, PortItem | BlockCard | None]:
        """What the item under the mouse offers: ``(target, port item to mark)``."""
        graph = self.scene.project.graph
        self._card_problem = None
        if isinstance(hit, PortItem) and hit.kind == "in":
            return (hit.node_id, hit.port), hit
        if isinstance(hit, BlockCard):  # a collapsed block: its single entry layer
            entry, self._card_problem = block_entry(graph, hit.block_id)
            return (entry or hit.block_id, None), hit
        node = _node_of(hit)
        if node is None or node.node_id == self.source:
            return None, None
        return (node.node_id, None), node.in_ports.get(graph.next_free_port(node.node_id))

    def _check(self, target: tuple[str, int | None]) -> str | None:
        if self._card_problem:
            return self._card_problem
        graph = self.scene.project.graph
        return graph.check_connect(self.source, target[0], target[1], self.source_port)

    def _edge(self) -> Edge:
        node, port = self.target
        port = self.scene.project.graph.next_free_port(node) if port is None else port
        return Edge(self.source, node, port, self.source_port)

    def _card_end(self, card: BlockCard) -> QPointF:
        """Where the draft wire snaps to on a card that would take it."""
        return card.input_pos()

    def _draft_ends(self, end: QPointF) -> tuple[QPointF, QPointF] | None:
        source_item = self.scene.shown_item(self.source)  # a collapsed block's card
        if source_item is None:
            return None
        return source_item.output_pos(self.source_port), end

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
        for item in self._candidates():
            item.set_state("accept")
            self._highlighted.append(item)
        return True

    def _hover(self, pos: QPointF) -> None:
        target, port_item = self._resolve(self.scene.item_at(pos))
        if target != self.target:
            self.target = target
            self.reason = self._check(target) if target else None
            self._mark(port_item, "refuse" if self.reason else "target")
            if self._draft is not None:
                self._draft.set_refused(self.reason is not None)
            message = f"Cannot connect: {self.reason}" if self.reason else ""
            if message != self._last_message:
                self._last_message = message
                self.scene.status_message.emit(message)
        end = pos
        if isinstance(self._marked, PortItem) and self.reason is None:
            end = self._marked.scenePos()
        elif isinstance(self._marked, BlockCard) and self.reason is None:
            end = self._card_end(self._marked)
        ends = self._draft_ends(end)
        if self._draft is not None and ends is not None:
            self._draft.set_ends(*ends)

    def _mark(self, item: PortItem | BlockCard | None, state: str) -> None:
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
        return (
            stack.can_undo
            and self._disconnect is not None
            and stack.undo_text == self._disconnect.text
        )

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


class ReverseWireDrag(WireDrag):
    """Drag from a free input port up to a layer's output (or body) to feed it.

    Attributes:
        input: ``(node_id, port)`` the wire will enter.
        target: Here, the output that would feed ``input``: ``(node_id, output port)``
            (a state port when the mouse is on one, else the layer's output 0).
    """

    def __init__(self, scene: CanvasHost, input_port: tuple[str, int], press: QPointF) -> None:
        super().__init__(scene, "", press)
        self.input = input_port

    def _candidates(self) -> list[PortItem | BlockCard]:
        graph = self.scene.project.graph
        node, port = self.input
        ok = accepting_sources(graph, node, port)
        ports_ = [
            port_item
            for item in self.scene.node_items()
            if item.node_id in ok
            for port_item in (item.out_port, *item.state_ports.values())
            if port_item is not None
        ]
        cards = []
        for card in self.scene.blocks.cards.values():
            out, problem = block_exit(graph, card.block_id)
            if out and not problem and out[0] in ok and card.isVisible():
                cards.append(card)
        return ports_ + cards

    def _resolve(
        self, hit: QGraphicsItem | None
    ) -> tuple[tuple[str, int | None] | None, PortItem | BlockCard | None]:
        self._card_problem = None
        if isinstance(hit, BlockCard):  # a collapsed block: its single exit
            out, self._card_problem = block_exit(self.scene.project.graph, hit.block_id)
            return (out or (hit.block_id, 0)), hit
        node = _node_of(hit)
        if node is None or (node.node_id == self.input[0] and not isinstance(hit, PortItem)):
            return None, None
        if isinstance(hit, PortItem) and hit.kind == "out":
            return (node.node_id, hit.port), hit
        return (node.node_id, 0), node.out_port

    def _check(self, target: tuple[str, int | None]) -> str | None:
        if self._card_problem:
            return self._card_problem
        node, port = self.input
        return self.scene.project.graph.check_connect(target[0], node, port, target[1] or 0)

    def _edge(self) -> Edge:
        return Edge(self.target[0], self.input[0], self.input[1], self.target[1] or 0)

    def _card_end(self, card: BlockCard) -> QPointF:
        return card.output_pos()

    def _draft_ends(self, end: QPointF) -> tuple[QPointF, QPointF] | None:
        item = self.scene.shown_item(self.input[0])
        return (end, item.input_pos(self.input[1])) if item is not None else None


def accepting_sources(graph: Graph, target: str, port: int) -> set[str]:
    """Nodes that could feed input ``port`` of ``target``.

    The same answer as ``graph.check_connect(node, target, port) is None`` for
    every node, with one downstream search: a source must not be ``target`` or
    below it (cycle) nor feed it already; the other reasons (arity, port taken)
    do not depend on the source, so one candidate answers for all.
    """
    if target not in graph.nodes:
        return set()
    below = graph.downstream([target])
    feeding = {e.source for e in graph.edges if e.target == target}
    candidates = [n for n in graph.nodes if n not in below and n not in feeding]
    if not candidates or graph.check_connect(candidates[0], target, port) is not None:
        return set()
    return set(candidates)


def _node_of(item: QGraphicsItem | None) -> NodeItem | None:
    while item is not None and not isinstance(item, NodeItem):
        item = item.parentItem()
    return item


class NodeDrag:
    """Moving nodes with the mouse: one MoveNodes for the whole drag, on release.

    On release every card whose position differs from its node's is recorded, not only
    the cards selected at the press: the selection (Ctrl+A) or an id (an undone rename)
    may change while the mouse is down.
    """

    def __init__(self, scene: CanvasHost) -> None:
        self.scene = scene

    def release(self) -> None:
        moves: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
        graph = self.scene.project.graph
        for item in self.scene.node_items():
            node = graph.nodes.get(item.node_id)
            if not item.isVisible():  # inside a collapsed block: its card moves it (below)
                continue
            if node is None or (item.x(), item.y()) == self.scene.display_pos(*node.position):
                continue
            x, y = self.scene.model_pos(item.x(), item.y())  # collapsed blocks fold rows
            moves[item.node_id] = (tuple(node.position), (float(round(x)), float(round(y))))
        blocks = getattr(self.scene, "blocks", None)
        for card in blocks.cards.values() if blocks is not None else []:
            dx, dy = card.x() - card.home.x(), card.y() - card.home.y()
            block = graph.blocks.get(card.block_id)
            if (dx, dy) == (0, 0) or block is None:
                continue
            for member in block.nodes:  # a collapsed block's card carries its layers
                node = graph.nodes.get(member)
                if node is not None and member not in moves:
                    x, y = node.position
                    moves[member] = ((x, y), (float(round(x + dx)), float(round(y + dy))))
        if moves:
            self.scene.push(MoveNodes(moves))
