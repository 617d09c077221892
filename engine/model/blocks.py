"""Blocks: named groups of layers that the canvas can collapse into one card.

A block is only a way of looking at the graph: its member layers stay ordinary nodes
with their own ids, so the Keras model built from a project is the same with or
without blocks. Blocks nest: two blocks are either disjoint or one holds all of the
other's layers (a *laminar* family), and a block's ``nodes`` lists every layer inside
it, nested blocks' layers included. The innermost block holding a layer is its
*owner*; the smallest block holding another block is that block's *parent*.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Block:
    """A named group of layers.

    Attributes:
        id: A Python identifier, unique among blocks and distinct from every layer id
            (the generated script names its function after it).
        name: What the card shows; free text.
        nodes: The member layer ids (nested blocks' layers included), in graph order.
        collapsed: Drawn as one card when True.
        extra: Unknown keys from the project file, written back unchanged.
    """

    id: str
    name: str
    nodes: list[str]
    collapsed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> Block:
        return Block(
            self.id, self.name, list(self.nodes), self.collapsed, copy.deepcopy(self.extra)
        )

    def to_dict(self) -> dict[str, Any]:
        out = dict(copy.deepcopy(self.extra))
        out.update({"id": self.id, "name": self.name, "nodes": list(self.nodes)})
        out["collapsed"] = self.collapsed
        return out


def overlap_problem(
    members: Iterable[str], blocks: Mapping[str, Block], skip: str | None = None
) -> str | None:
    """Why a block of ``members`` cannot join ``blocks`` (it would cut across another
    block, or repeat one exactly), or None. ``skip`` names a block to leave out (the
    one being changed)."""
    mine = set(members)
    for other in blocks.values():
        if other.id == skip:
            continue
        theirs = set(other.nodes)
        if mine == theirs:
            return f"block '{other.id}' already holds exactly these layers"
        if mine & theirs and not (mine < theirs or theirs < mine):
            inside = sorted(mine & theirs)[0]
            outside = sorted(mine - theirs)[0] if mine - theirs else sorted(theirs - mine)[0]
            return (
                f"it would cut across block '{other.id}' ('{inside}' would be in both, "
                f"'{outside}' in only one); a block must hold all of another block or none of it"
            )
    return None


def parents(blocks: Mapping[str, Block]) -> dict[str, str | None]:
    """Each block's parent: the smallest other block holding all its layers, or None."""
    sizes = {b.id: len(b.nodes) for b in blocks.values()}
    sets = {b.id: set(b.nodes) for b in blocks.values()}
    out: dict[str, str | None] = {}
    for bid, mine in sets.items():
        holders = [o for o, theirs in sets.items() if o != bid and mine < theirs]
        out[bid] = min(holders, key=lambda o: sizes[o]) if holders else None
    return out


def owners(blocks: Mapping[str, Block]) -> dict[str, str]:
    """Each grouped layer's innermost block: ``{node id: block id}``."""
    out: dict[str, str] = {}
    for b in sorted(blocks.values(), key=lambda b: -len(b.nodes)):
        for nid in b.nodes:
            out[nid] = b.id  # smaller blocks come later and win
    return out


def top_level(blocks: Mapping[str, Block]) -> list[str]:
    """Ids of the blocks no other block holds, in ``blocks`` order."""
    up = parents(blocks)
    return [bid for bid in blocks if up[bid] is None]


@dataclass(frozen=True)
class Ports:
    """Where a block meets the rest of the graph.

    Attributes:
        inputs: The tensors entering the block, ``(source layer, source port)``, ordered
            by the first member layer (graph order) and input port they feed.
        entries: For each input, the member inputs it feeds: ``[(layer, port), ...]``.
        outputs: The tensors leaving the block, ``(member layer, output port)``, in
            graph order: those wired to a layer outside it, and members feeding nothing
            (the model's outputs).
    """

    inputs: list[tuple[str, int]]
    entries: list[list[tuple[str, int]]]
    outputs: list[tuple[str, int]]


def ports(block: Block, edges: Iterable[Any]) -> Ports:
    """The block's :class:`Ports`, given all the graph's edges (objects with ``source``,
    ``target``, ``port`` and ``source_port``)."""
    order = {n: i for i, n in enumerate(block.nodes)}
    edges = list(edges)
    entering = sorted(
        (e for e in edges if e.target in order and e.source not in order),
        key=lambda e: (order[e.target], e.port),
    )
    inputs: list[tuple[str, int]] = []
    entries: list[list[tuple[str, int]]] = []
    for e in entering:
        tensor = (e.source, e.source_port)
        if tensor not in inputs:
            inputs.append(tensor)
            entries.append([])
        entries[inputs.index(tensor)].append((e.target, e.port))
    feeding = {e.source for e in edges}
    leaving = {
        (e.source, e.source_port) for e in edges if e.source in order and e.target not in order
    }
    leaving |= {(n, 0) for n in block.nodes if n not in feeding}
    outputs = sorted(leaving, key=lambda t: (order[t[0]], t[1]))
    return Ports(inputs, entries, outputs)


def shape_of(shapes: Mapping[str, Any], tensor: tuple[str, int]) -> tuple | None:
    """The shape of output ``tensor = (layer, port)`` in ``shapes`` (layer id -> a shape
    tuple, a list of them for several outputs, or an object with ``output_shape``), or
    None when unknown."""
    value = shapes.get(tensor[0])
    if value is not None and not isinstance(value, (list, tuple)):
        value = getattr(value, "output_shape", None)
    if not isinstance(value, (list, tuple)) or not value:
        return None
    if isinstance(value[0], (list, tuple)):
        return tuple(value[tensor[1]]) if tensor[1] < len(value) else None
    return tuple(value) if tensor[1] == 0 else None
