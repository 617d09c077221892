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
