"""Edits the canvas makes on its document: add, delete, copy/paste, layout, nudge, freeze.

Each function takes the :class:`~gui.canvas.scene.GraphScene` and changes the
project only through ``scene.push`` (one undo step per call).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF
from PySide6.QtGui import QGuiApplication

from engine.catalog.table import CATALOG
from engine.model.block_files import block_fragment
from engine.model.commands import (
    AddNode,
    Command,
    Disconnect,
    Macro,
    MoveNodes,
    PasteSubgraph,
    PlaceBlock,
    RemoveNodes,
    SetTrainable,
)
from engine.model.graph import Edge, Graph, Node
from engine.model.layout import LEVEL_SPACING, layered_layout
from gui.canvas import clipboard
from gui.canvas.host import CanvasHost
from gui.canvas.items import EdgeItem
from gui.canvas.theme import NODE_HEIGHT, NODE_WIDTH


def add_layer(
    scene: CanvasHost,
    layer_type: str,
    pos: QPointF | tuple[float, float] | None = None,
    after: str | None = None,
) -> str | None:
    """Add a new layer of ``layer_type`` (one undo step) and select it.

    Args:
        layer_type: A catalog type name.
        pos: Where its centre goes; None: below ``after`` (or the origin).
        after: Wire the new layer after this node, when it can be.

    Returns:
        The new node's id, or None if nothing was added (reason in status_message).
    """
    spec = CATALOG.get(layer_type)
    if spec is None:
        scene.status_message.emit(f"Unknown layer type '{layer_type}'")
        return None
    graph = scene.project.graph
    if after is not None and after not in graph.nodes:
        after = None
    if pos is None:
        if after is not None:
            ax, ay = graph.nodes[after].position
            pos = (ax, ay + LEVEL_SPACING)
        else:
            pos = (0.0, 0.0)
    if isinstance(pos, QPointF):  # a point on the canvas: where is that in the model
        pos = scene.model_pos(pos.x(), pos.y())
    node = Node(
        graph.unique_id(layer_type),
        layer_type,
        spec.defaults(),
        _free_spot(scene, float(round(pos[0])), float(round(pos[1]))),
    )
    edges: list[Edge] = []
    if after is not None and spec.max_inputs != 0:
        edges.append(Edge(after, node.id, 0))
    if not scene.push(AddNode(node, edges)):
        return None
    scene.select_ids([node.id])
    return node.id


def _free_spot(scene: CanvasHost, x: float, y: float) -> tuple[float, float]:
    """``(x, y)``, or the first place below it where a new card covers no other card."""
    taken = [n.position for n in scene.project.graph.nodes.values()]
    for _ in range(200):
        if not any(abs(px - x) < NODE_WIDTH and abs(py - y) < NODE_HEIGHT + 10 for px, py in taken):
            break
        y += LEVEL_SPACING
    return (x, y)


def nudge(scene: CanvasHost, dx: float, dy: float) -> None:
    """Move the selected nodes by ``(dx, dy)`` (arrow keys; one undo step)."""
    graph = scene.project.graph
    moves = {}
    for n in scene.selected_ids():
        x, y = graph.nodes[n].position
        moves[n] = ((x, y), (x + dx, y + dy))
    if moves:
        scene.push(MoveNodes(moves))


def delete_selection(scene: CanvasHost) -> None:
    """Delete the selected nodes (with their wires) and selected wires: one undo step."""
    ids = scene.selected_ids()
    wires = [
        i.edge
        for i in scene.selectedItems()
        if isinstance(i, EdgeItem) and i.edge.source not in ids and i.edge.target not in ids
    ]
    commands: list[Command] = []
    if ids:
        commands.append(RemoveNodes(ids))
    commands.extend(Disconnect(e) for e in wires)
    if not commands:
        return
    if len(commands) == 1:
        scene.push(commands[0])
    else:
        parts = []
        if ids:
            parts.append(f"{len(ids)} layer{'s' if len(ids) != 1 else ''}")
        if wires:
            parts.append(f"{len(wires)} wire{'s' if len(wires) != 1 else ''}")
        scene.push(Macro("Delete " + " and ".join(parts), commands))


def _copied(scene: CanvasHost) -> dict[str, Any]:
    """The selection as clipboard data; when it is exactly one block's layers (a
    collapsed card, or all of a block's layers), with that block's fragment under
    ``"block"`` (nested blocks included) so that paste brings the block too."""
    graph = scene.project.graph
    ids = scene.selected_ids()
    data = clipboard.subgraph(graph, ids)
    block_id = whole_block(graph, ids)
    if block_id is not None:
        data["block"] = block_fragment(graph, block_id)
    return data


def whole_block(graph: Graph, ids: list[str]) -> str | None:
    """The block holding exactly the layers ``ids``, or None."""
    chosen = set(ids)
    for block in graph.blocks.values():
        if len(block.nodes) == len(chosen) and set(block.nodes) == chosen:
            return block.id
    return None


def copy_selection(scene: CanvasHost) -> dict[str, Any]:
    """Copy the selected nodes and the wires between them (also to the clipboard; a
    whole block's layers are copied with the block, see :func:`_copied`)."""
    data = _copied(scene)
    if data["nodes"]:
        QGuiApplication.clipboard().setMimeData(clipboard.to_mime(data))
        scene._paste_count = 0
        n = len(data["nodes"])
        scene.status_message.emit(f"Copied {n} layer{'s' if n != 1 else ''}")
    return data


def paste(scene: CanvasHost, at: QPointF | tuple[float, float] | None = None) -> list[str]:
    """Paste the clipboard's layers with fresh ids (internal wires kept) and select them.

    Args:
        at: Centre of the pasted layers; None: offset from where they were copied.

    Returns:
        The new node ids (empty if nothing was pasted).
    """
    try:
        data = clipboard.from_mime(QGuiApplication.clipboard().mimeData())
    except clipboard.ClipboardError as exc:
        scene.status_message.emit(f"Cannot paste: {exc}")
        return []
    if data is None:
        scene.status_message.emit("Nothing to paste: copy some layers first")
        return []
    scene._paste_count += 1
    return _paste_data(scene, data, at, scene._paste_count, "Paste")


def duplicate(scene: CanvasHost) -> list[str]:
    """Copy and paste the selection in one go, beside the original (clipboard untouched)."""
    data = _copied(scene)
    if not data["nodes"]:
        return []
    return _paste_data(scene, data, None, 1, "Duplicate")


def _paste_data(
    scene: CanvasHost,
    data: dict[str, Any],
    at: QPointF | tuple[float, float] | None,
    step: int,
    text: str,
) -> list[str]:
    anchor = scene.model_pos(at.x(), at.y()) if isinstance(at, QPointF) else at
    try:
        nodes, edges = clipboard.instantiate(
            data, scene.project.graph, offset=(40.0 * step, 40.0 * step), anchor=anchor
        )
    except clipboard.ClipboardError as exc:
        scene.status_message.emit(f"Cannot paste: {exc}")
        return []
    fragment = data.get("block")
    if nodes and isinstance(fragment, dict):  # a whole block: it comes with its layers
        return _paste_block(scene, fragment, nodes, text)
    blocks = clipboard.pasted_blocks(data, nodes, scene.project.graph)
    if not nodes or not scene.push(PasteSubgraph(nodes, edges, text=text, blocks=blocks)):
        return []
    ids = [n.id for n in nodes]
    scene.select_ids(ids)
    return ids


def _paste_block(
    scene: CanvasHost, fragment: dict[str, Any], nodes: list[Node], text: str
) -> list[str]:
    """Paste a copied block with :class:`~engine.model.commands.PlaceBlock` (fresh layer
    and block ids, nested blocks and collapsed state kept), where ``nodes`` (the loose
    paste's layers) would have gone; one undo step."""
    x0 = min(n.position[0] for n in nodes)
    y0 = min(n.position[1] for n in nodes)
    command = PlaceBlock(fragment, (float(x0), float(y0)))
    name = fragment.get("name")
    command.text = f"{text} block '{name if isinstance(name, str) else '?'}'"
    if not scene.push(command):
        return []
    scene.select_ids(command.added_ids)
    n = len(command.added_ids)
    scene.status_message.emit(
        f"{text}d block '{command.block_id}' ({n} layer{'s' if n != 1 else ''})"
    )
    return list(command.added_ids)


def auto_layout(scene: CanvasHost) -> None:
    """Arrange all nodes in levels, top to bottom (one undo step)."""
    graph = scene.project.graph
    positions = layered_layout(graph)
    moves = {
        n: (tuple(graph.nodes[n].position), (float(x), float(y)))
        for n, (x, y) in positions.items()
        if tuple(graph.nodes[n].position) != (float(x), float(y))
    }
    if moves:
        scene.push(MoveNodes(moves, text="Auto layout"))


def set_trainable(scene: CanvasHost, ids: list[str], trainable: bool) -> bool:
    """Freeze (``trainable`` False) or unfreeze the layers ``ids``: one undo step.

    Input nodes have no weights and are left alone; layers already so are skipped.
    Returns True when something changed.
    """
    graph = scene.project.graph
    todo = [
        n
        for n in ids
        if n in graph.nodes
        and graph.nodes[n].type != "Input"
        and graph.nodes[n].trainable != trainable
    ]
    if not todo:
        return False
    return scene.push(SetTrainable(todo, trainable))


def freeze_up_to(scene: CanvasHost, node_id: str) -> bool:
    """Freeze ``node_id`` and every layer it is reachable from (all its ancestors, the
    inputs excluded): one undo step. Returns True when something changed."""
    graph = scene.project.graph
    if node_id not in graph.nodes:
        return False
    chosen = graph.upstream([node_id])
    ids = [
        n
        for n in graph.topological_order()
        if n in chosen and graph.nodes[n].type != "Input" and graph.nodes[n].trainable
    ]
    if not ids:
        scene.status_message.emit(f"'{node_id}' and the layers before it are already frozen")
        return False
    n = len(ids)
    text = f"Freeze {n} layer{'s' if n != 1 else ''} up to '{node_id}'"
    return scene.push(SetTrainable(ids, False, text))
