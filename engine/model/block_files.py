"""Saved blocks: a block's layers written to a small JSON file, to be placed again later.

The palette's "My blocks" section lists the files of one folder (the GUI chooses it:
the user's settings folder, ``blocks/``). A file holds a *fragment*: the block's
layers with their params and positions relative to the block's top-left layer, the
wires between them, the block and the blocks nested in it, and its ports (the
tensors that enter and leave it). :class:`engine.model.commands.PlaceBlock` puts a
fragment into a graph.

File format (``"format": "layerlab-block"``, version 1)::

    {"format": "layerlab-block", "version": 1, "id": "unit", "name": "Unit",
     "nodes": [{"id": ..., "type": ..., "params": {...}, "position": [dx, dy]}, ...],
     "edges": [{"source": ..., "target": ..., "port": 0}, ...],
     "blocks": [{"id": "unit", "name": "Unit", "nodes": [...], "collapsed": false}, ...],
     "inputs": [{"feeds": [{"node": "d1", "port": 0}]}],
     "outputs": [{"node": "d2", "port": 0}]}

``blocks[0]`` is the saved block itself and holds every node; ``inputs`` lists, per
tensor that entered the block, the member inputs it fed; ``outputs`` the member
outputs that left it. Files are read within the project-file limits of
:mod:`engine.limits` (size, nesting, integer length, duplicate keys, node and edge
counts).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import limits
from engine.files import write_atomic
from engine.model.blocks import ports
from engine.model.graph import Graph, GraphError
from engine.model.project import _graph_from_dict, _json

FORMAT = "layerlab-block"
VERSION = 1
SUFFIX = ".json"


class BlockFileError(ValueError):
    """A saved block that cannot be read or written; the message names the file."""


@dataclass(frozen=True)
class SavedBlock:
    """One entry of "My blocks".

    Attributes:
        name: The block's name (a broken file: its file name without ``.json``).
        path: The file.
        layers: How many layers it holds (0 for a broken file).
        summary: A line for the palette: its layer types, or the problem.
        problem: Why the file cannot be placed, or "" when it can.
    """

    name: str
    path: Path
    layers: int
    summary: str
    problem: str = ""


def block_fragment(graph: Graph, block_id: str) -> dict[str, Any]:
    """The fragment of block ``block_id``: what a saved-block file holds (see the module
    docstring). Raises :class:`GraphError` for an unknown block."""
    block = graph.block(block_id)
    inside = set(block.nodes)
    xs = [graph.nodes[n].position[0] for n in block.nodes]
    ys = [graph.nodes[n].position[1] for n in block.nodes]
    x0, y0 = min(xs), min(ys)
    nodes = []
    for nid in block.nodes:
        node = graph.nodes[nid].copy()
        node.position = (node.position[0] - x0, node.position[1] - y0)
        nodes.append(node.to_dict())
    edges = [
        e.to_dict()
        for e in sorted(graph.edges, key=lambda e: (e.target, e.port, e.source))
        if e.source in inside and e.target in inside
    ]
    nested = [b for b in graph.blocks.values() if b.id != block_id and set(b.nodes) <= inside]
    p = ports(block, graph.edges)
    return {
        "format": FORMAT,
        "version": VERSION,
        "id": block.id,
        "name": block.name,
        "nodes": nodes,
        "edges": edges,
        "blocks": [block.to_dict()] + [b.to_dict() for b in nested],
        "inputs": [{"feeds": [{"node": n, "port": i} for n, i in feeds]} for feeds in p.entries],
        "outputs": [{"node": n, "port": i} for n, i in p.outputs],
    }


def fragment_parts(
    fragment: Any,
) -> tuple[Graph, list[list[tuple[str, int]]], list[tuple[str, int]]]:
    """Check a fragment and return its layers as a :class:`Graph` (nodes, internal
    edges, blocks: the saved block first), its inputs (per tensor, the ``(layer,
    port)`` inputs it feeds) and its outputs ``(layer, port)``.

    Raises:
        ValueError: The fragment is not a saved block, or is inconsistent; the message
            says what is wrong (without a file name).
    """
    if not isinstance(fragment, dict) or fragment.get("format") != FORMAT:
        raise ValueError(f'not a saved block (no "format": "{FORMAT}")')
    version = fragment.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f'"version" must be a whole number >= 1; got {version!r}')
    if version > VERSION:
        raise ValueError(
            f"saved by a newer LayerLab (block format {version}; this one reads {VERSION})"
        )
    nodes, edges = fragment.get("nodes"), fragment.get("edges", [])
    if not isinstance(nodes, list) or not nodes:
        raise ValueError('"nodes" must be a non-empty list of layers')
    for key, limit, items in (("nodes", limits.NODES, nodes), ("edges", limits.EDGES, edges)):
        if isinstance(items, list) and len(items) > limit.value():
            raise limit.refusal(f"it has {len(items):,} {key}")
    try:
        graph = _graph_from_dict(
            {"nodes": nodes, "edges": edges, "blocks": fragment.get("blocks", [])}, ValueError
        )
    except GraphError as exc:  # pragma: no cover - _graph_from_dict reports through fail
        raise ValueError(str(exc)) from None
    if not graph.blocks:
        raise ValueError('"blocks" must list the saved block')
    outer = next(iter(graph.blocks.values()))
    if set(outer.nodes) != set(graph.nodes):
        raise ValueError(f"the first block '{outer.id}' must hold every layer")
    cycle = graph.find_cycle()
    if cycle:
        raise ValueError("its wires make a cycle: " + " -> ".join(cycle + cycle[:1]))
    inputs: list[list[tuple[str, int]]] = []
    raw_inputs = fragment.get("inputs", [])
    if not isinstance(raw_inputs, list):
        raise ValueError('"inputs" must be a list')
    for i, entry in enumerate(raw_inputs):
        feeds = entry.get("feeds") if isinstance(entry, dict) else None
        if not isinstance(feeds, list) or not feeds:
            raise ValueError(f'input #{i + 1} must be an object with a non-empty "feeds" list')
        inputs.append([_port_ref(f, graph, f"input #{i + 1}") for f in feeds])
    raw_outputs = fragment.get("outputs", [])
    if not isinstance(raw_outputs, list):
        raise ValueError('"outputs" must be a list')
    outputs = [_port_ref(o, graph, f"output #{i + 1}") for i, o in enumerate(raw_outputs)]
    for target, port in (t for feeds in inputs for t in feeds):
        if any(e.target == target and e.port == port for e in graph.edges):
            raise ValueError(f"input {port} of '{target}' is fed both inside and outside")
    return graph, inputs, outputs


def _port_ref(value: Any, graph: Graph, where: str) -> tuple[str, int]:
    node = value.get("node") if isinstance(value, dict) else None
    port = value.get("port", 0) if isinstance(value, dict) else None
    if not isinstance(node, str) or node not in graph.nodes:
        raise ValueError(f"{where}: {node!r} is not one of the block's layers")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 999:
        raise ValueError(f'{where}: "port" must be a whole number from 0 to 999; got {port!r}')
    return node, port


def _file_stem(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_ " else "_" for c in name).strip(" .")
    return (stem or "block")[:80]


def save_block(graph: Graph, block_id: str, folder: Path, name: str | None = None) -> Path:
    """Write block ``block_id`` to ``folder`` (created if missing) as ``<name>.json``,
    named after the block unless ``name`` is given. An existing file is never
    replaced: the next free name (``<name> (2).json``, ...) is used. Returns the path
    written (atomically, see :func:`engine.files.write_atomic`).

    Raises:
        GraphError: No such block.
        BlockFileError: The folder or file cannot be written (the message names it).
    """
    fragment = block_fragment(graph, block_id)
    if name is not None:
        fragment["name"] = name
        fragment["blocks"][0]["name"] = name
    folder = Path(folder)
    stem = _file_stem(name if name is not None else graph.blocks[block_id].name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}{SUFFIX}"
        i = 2
        while path.exists() or path.is_symlink():
            path = folder / f"{stem} ({i}){SUFFIX}"
            i += 1
        write_atomic(path, _json(fragment, "") + "\n")
    except OSError as exc:
        raise BlockFileError(f"{folder}: the block cannot be saved ({exc})") from None
    return path


def load_block(path: str | os.PathLike) -> dict[str, Any]:
    """Read a saved block's fragment, within the limits of :mod:`engine.limits`.

    Raises:
        BlockFileError: The file is missing, unreadable, too large, not JSON, not a
            saved block or inconsistent; the message names the file (and line and
            column for bad JSON).
    """
    path = Path(path)
    try:
        with limits.open_regular(path) as f:
            limits.check_size(os.fstat(f.fileno()).st_size)
            data = f.read(limits.PROJECT_MB.value() * 10**6 + 1)
            limits.check_size(len(data))
        text = data.decode("utf-8")
        fragment = limits.loads(text)
        fragment_parts(fragment)
    except FileNotFoundError:
        raise BlockFileError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise BlockFileError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BlockFileError(f"{path}: {exc}") from None
    return fragment


def list_saved_blocks(folder: str | os.PathLike) -> list[SavedBlock]:
    """The saved blocks in ``folder``, by name; a file that cannot be read is listed with
    its problem (``problem``) instead of being left out. A missing folder lists nothing.
    Never raises."""
    folder = Path(folder)
    try:
        paths = sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIX))
    except OSError:
        return []
    out: list[SavedBlock] = []
    for path in paths:
        if path.name.startswith("."):  # a writer's temporary file
            continue
        try:
            fragment = load_block(path)
        except BlockFileError as exc:
            problem = str(exc)
            out.append(SavedBlock(path.stem, path, 0, problem, problem))
            continue
        types = Counter(n["type"] for n in fragment["nodes"])
        summary = ", ".join(f"{t} x{c}" if c > 1 else t for t, c in types.items())
        name = fragment.get("name")
        out.append(
            SavedBlock(
                name if isinstance(name, str) and name else path.stem,
                path,
                len(fragment["nodes"]),
                summary,
            )
        )
    return out
