"""Copy and paste of sub-graphs: JSON on the clipboard, fresh ids on paste."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication

from engine.model.blocks import Block
from engine.model.graph import Edge, Graph, Node, is_valid_id
from engine.model.project import position_problem

MIME = "application/x-layerlab-subgraph"
FORMAT = "layerlab-subgraph"


class ClipboardError(ValueError):
    """Clipboard content that is not a LayerLab sub-graph; the message says what is wrong."""


def subgraph(graph: Graph, ids: Iterable[str]) -> dict[str, Any]:
    """The nodes ``ids`` (in graph order), the wires between them and the blocks whose
    layers all lie among them (``"blocks"``, only when there are some), as plain data."""
    chosen = set(ids)
    nodes = [graph.nodes[n].to_dict() for n in graph.nodes if n in chosen]
    edges = [e.to_dict() for e in graph.edges if e.source in chosen and e.target in chosen]
    data = {"format": FORMAT, "version": 1, "nodes": nodes, "edges": edges}
    blocks = [b.to_dict() for b in graph.blocks.values() if set(b.nodes) <= chosen]
    if blocks:
        data["blocks"] = blocks
    return data


def pasted_blocks(data: dict[str, Any], nodes: list[Node], graph: Graph) -> list[Block]:
    """The copied blocks of ``data`` (see :func:`subgraph`) for its pasted layers
    ``nodes`` (what :func:`instantiate` made of ``data["nodes"]``, in that order): the
    layer ids renamed as the layers were, block ids made fresh. A malformed entry is
    left out: the layers still paste, loose."""
    renames = {old["id"]: new.id for old, new in zip(data.get("nodes", []), nodes)}
    taken = set(graph.nodes) | set(graph.blocks) | set(renames.values())
    out = []
    for raw in data.get("blocks") or []:
        members = raw.get("nodes") if isinstance(raw, dict) else None
        if not is_valid_id(raw.get("id") if isinstance(raw, dict) else None) or not (
            isinstance(members, list) and members and all(m in renames for m in members)
        ):
            continue
        block_id = fresh_id(raw["id"], taken)
        taken.add(block_id)
        name = raw.get("name") if isinstance(raw.get("name"), str) else block_id
        out.append(
            Block(block_id, name, [renames[m] for m in members], raw.get("collapsed") is True)
        )
    return out


def release() -> None:
    """Take our layers off the clipboard before the application object goes away.

    Qt (seen with the offscreen platform, PySide6 6.11) crashes at exit when the
    clipboard still owns mime data; call this when the application is about to quit.
    """
    app = QGuiApplication.instance()
    if app is None:
        return
    board = QGuiApplication.clipboard()
    mime = board.mimeData()
    if mime is not None and mime.hasFormat(MIME):
        board.clear()


def to_mime(data: dict[str, Any]) -> QMimeData:
    """Clipboard payload: our mime type, plus the same JSON as plain text."""
    text = json.dumps(data, indent=1)
    mime = QMimeData()
    mime.setData(MIME, text.encode("utf-8"))
    mime.setText(text)
    return mime


def from_mime(mime: QMimeData | None) -> dict[str, Any] | None:
    """The sub-graph on the clipboard, or None if it holds none.

    Raises:
        ClipboardError: The clipboard has our mime type but the content is broken.
    """
    if mime is None or not mime.hasFormat(MIME):
        return None
    raw = bytes(mime.data(MIME).data())
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClipboardError(f"the clipboard's layers are not valid JSON ({exc})") from None
    return data


def instantiate(
    data: Any,
    graph: Graph,
    offset: tuple[float, float] = (40.0, 40.0),
    anchor: tuple[float, float] | None = None,
) -> tuple[list[Node], list[Edge]]:
    """New nodes and wires for pasting ``data`` into ``graph``.

    Ids that are taken get a fresh suffix (``conv1`` -> ``conv1_1``); internal
    wires follow the renames; wires to nodes outside ``data`` are dropped.

    Args:
        data: A :func:`subgraph` dict.
        graph: The graph to paste into (read only).
        offset: Added to every position when ``anchor`` is None.
        anchor: Place the sub-graph's bounding-box centre here instead.

    Raises:
        ClipboardError: ``data`` is not a valid sub-graph.
    """
    nodes_in, edges_in = _check(data)
    taken = set(graph.nodes)
    renames: dict[str, str] = {}
    for n in nodes_in:
        new = fresh_id(n["id"], taken)
        taken.add(new)
        renames[n["id"]] = new
    positions = [(float(n["position"][0]), float(n["position"][1])) for n in nodes_in]
    if anchor is not None and positions:
        xs, ys = [p[0] for p in positions], [p[1] for p in positions]
        dx = anchor[0] - (min(xs) + max(xs)) / 2
        dy = anchor[1] - (min(ys) + max(ys)) / 2
    else:
        dx, dy = offset
    known = {"id", "type", "params", "position", "trainable"}
    nodes = [
        Node(
            renames[n["id"]],
            n["type"],
            dict(n.get("params", {})),
            (round(x + dx), round(y + dy)),
            {k: v for k, v in n.items() if k not in known},
            n.get("trainable") is not False,  # a frozen layer pastes frozen
        )
        for n, (x, y) in zip(nodes_in, positions)
    ]
    edges = [
        Edge(
            renames[e["source"]],
            renames[e["target"]],
            int(e.get("port", 0)),
            int(e.get("source_port", 0)),
        )
        for e in edges_in
        if e["source"] in renames and e["target"] in renames
    ]
    return nodes, edges


def fresh_id(name: str, taken: set[str]) -> str:
    """``name`` if free, else ``<base>_<n>`` with the smallest free ``n``."""
    if name not in taken:
        return name
    base = re.sub(r"_\d+$", "", name) or name
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


def _check(data: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ClipboardError("the clipboard does not hold LayerLab layers")
    nodes, edges = data.get("nodes"), data.get("edges", [])
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise ClipboardError("the clipboard's layers are incomplete (no node list)")
    seen: set[str] = set()
    for i, n in enumerate(nodes):
        if not isinstance(n, dict) or not is_valid_id(n.get("id")):
            raise ClipboardError(f"copied layer #{i + 1} has no valid id")
        if n["id"] in seen:
            raise ClipboardError(f"two copied layers are named '{n['id']}'")
        seen.add(n["id"])
        if not isinstance(n.get("type"), str):
            raise ClipboardError(f"copied layer '{n['id']}' has no type")
        if not isinstance(n.get("params", {}), dict):
            raise ClipboardError(f"copied layer '{n['id']}' has params that are not an object")
        if position_problem(n.get("position", [0, 0])):
            raise ClipboardError(
                f"copied layer '{n['id']}' has a bad position {n.get('position')!r}"
            )
        n.setdefault("position", [0, 0])
    for e in edges:
        if not isinstance(e, dict) or not all(
            isinstance(e.get(k), str) for k in ("source", "target")
        ):
            raise ClipboardError(f"a copied wire is broken: {e!r}")
        for key in ("port", "source_port"):
            port = e.get(key, 0)
            if not isinstance(port, int) or isinstance(port, bool) or port < 0:
                raise ClipboardError(
                    f"the copied wire {e['source']} -> {e['target']} has a bad port {port!r}"
                )
    return nodes, edges
