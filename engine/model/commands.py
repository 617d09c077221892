"""Undoable commands and the undo stack: the only way the GUI changes a project.

Each command calls only the public methods of :class:`engine.model.graph.Graph` (or
replaces a project section), so undo works and is tested without a display.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from psygnal import Signal, SignalGroup

from engine import limits
from engine.model.block_files import fragment_parts
from engine.model.blocks import Block, ports, shape_of
from engine.model.graph import Edge, Graph, GraphError, Node
from engine.model.layout import LEVEL_SPACING
from engine.model.project import Project


class Command:
    """One undoable step. ``text`` is what Edit > Undo shows."""

    text = ""

    def do(self, project: Project) -> None:
        raise NotImplementedError

    def undo(self, project: Project) -> None:
        raise NotImplementedError


class AddNode(Command):
    """Add a node, optionally wired (e.g. after the selected layer)."""

    def __init__(self, node: Node, edges: tuple[Edge, ...] | list[Edge] = ()) -> None:
        self.node, self.edges = node.copy(), list(edges)
        self.text = f"Add {node.type} '{node.id}'"

    def do(self, project: Project) -> None:
        project.graph.add_node(self.node.copy())
        for i, e in enumerate(self.edges):
            try:
                project.graph.connect(e)
            except Exception:
                for done in reversed(self.edges[:i]):
                    project.graph.disconnect(done)
                project.graph.remove_node(self.node.id)
                raise

    def undo(self, project: Project) -> None:
        project.graph.remove_node(self.node.id)


class PasteSubgraph(Command):
    """Add several nodes, the wires between them and blocks of those nodes in one step."""

    def __init__(
        self,
        nodes: list[Node],
        edges: list[Edge],
        text: str = "Paste",
        blocks: list[Block] | None = None,
    ) -> None:
        self.nodes, self.edges = [n.copy() for n in nodes], list(edges)
        self.blocks = [b.copy() for b in blocks or []]
        self.text = f"{text} {len(nodes)} layer{'s' if len(nodes) != 1 else ''}"

    def do(self, project: Project) -> None:
        added: list[str] = []
        try:
            for n in self.nodes:
                project.graph.add_node(n.copy())
                added.append(n.id)
            for e in self.edges:
                project.graph.connect(e)
            for b in self.blocks:
                project.graph.add_block(b)
        except Exception:
            for nid in reversed(added):  # their blocks go with them
                project.graph.remove_node(nid)
            raise

    def undo(self, project: Project) -> None:
        for b in reversed(self.blocks):
            if b.id in project.graph.blocks:
                project.graph.remove_block(b.id)
        for n in reversed(self.nodes):
            project.graph.remove_node(n.id)


class RemoveNodes(Command):
    """Remove nodes with all their edges; one undo restores everything."""

    def __init__(self, ids: list[str] | tuple[str, ...]) -> None:
        self.ids = list(dict.fromkeys(ids))
        self.nodes: list[tuple[int, Node]] = []
        self.edges: list[Edge] = []
        self.blocks: dict[str, Block] = {}
        self.text = (
            f"Delete '{self.ids[0]}'" if len(self.ids) == 1 else f"Delete {len(self.ids)} layers"
        )

    def do(self, project: Project) -> None:
        g = project.graph
        order = list(g.nodes)
        self.nodes = [(order.index(i), g.node(i).copy()) for i in self.ids]
        self.edges = [e for e in g.edges if e.source in self.ids or e.target in self.ids]
        self.blocks = {k: b.copy() for k, b in g.blocks.items()}
        for e in self.edges:
            g.disconnect(e)
        for nid in self.ids:
            g.remove_node(nid)

    def undo(self, project: Project) -> None:
        g = project.graph
        for index, node in sorted(self.nodes, key=lambda t: t[0]):
            g.add_node(node.copy())
            # Restore the original order so outputs and file order stay stable.
            items = list(g.nodes.items())
            items.insert(index, items.pop())
            g.nodes = dict(items)
        for e in self.edges:
            g.connect(e)
        restore_blocks(g, self.blocks)


def restore_blocks(graph: Graph, blocks: dict[str, Block]) -> None:
    """Put the graph's blocks back to ``blocks`` (their layers and their order),
    emitting an event for each block that differs."""
    for bid in [b for b in graph.blocks if b not in blocks]:
        graph.remove_block(bid)
    changed = [
        bid
        for bid, b in blocks.items()
        if bid not in graph.blocks or graph.blocks[bid].to_dict() != b.to_dict()
    ]
    for bid in changed:
        if bid in graph.blocks:
            graph.remove_block(bid)
    for bid in changed:
        graph.blocks[bid] = blocks[bid].copy()  # the saved state was valid as a whole
        graph.events.block_added.emit(graph.blocks[bid])
    graph.blocks = {bid: graph.blocks[bid] for bid in blocks}


class GroupBlock(Command):
    """Group layers as a block (Ctrl+G); undo ungroups."""

    def __init__(self, block: Block) -> None:
        self.block = block.copy()
        self.text = f"Group {len(block.nodes)} layers as '{block.name}'"

    def do(self, project: Project) -> None:
        project.graph.add_block(self.block)

    def undo(self, project: Project) -> None:
        project.graph.remove_block(self.block.id)


class Ungroup(Command):
    """Remove a block; its layers stay. Undo groups them again."""

    def __init__(self, block_id: str) -> None:
        self.block_id = block_id
        self.saved: dict[str, Block] = {}
        self.text = f"Ungroup '{block_id}'"

    def do(self, project: Project) -> None:
        self.saved = {k: b.copy() for k, b in project.graph.blocks.items()}
        project.graph.remove_block(self.block_id)

    def undo(self, project: Project) -> None:
        restore_blocks(project.graph, self.saved)


class SetBlockCollapsed(Command):
    """Collapse blocks to one card each, or expand them in place."""

    def __init__(self, block_ids: list[str] | tuple[str, ...], collapsed: bool) -> None:
        self.ids, self.collapsed = list(block_ids), bool(collapsed)
        self.before: dict[str, bool] = {}
        verb = "Collapse" if collapsed else "Expand"
        self.text = (
            f"{verb} '{self.ids[0]}'" if len(self.ids) == 1 else f"{verb} {len(self.ids)} blocks"
        )

    def do(self, project: Project) -> None:
        g = project.graph
        self.before = {bid: g.block(bid).collapsed for bid in self.ids}
        for bid in self.ids:
            g.set_block_collapsed(bid, self.collapsed)

    def undo(self, project: Project) -> None:
        for bid, was in self.before.items():
            project.graph.set_block_collapsed(bid, was)


class RenameBlock(Command):
    """Change the name a block's card shows."""

    def __init__(self, block_id: str, name: str) -> None:
        self.block_id, self.name, self.old = block_id, name, ""
        self.text = f"Rename block '{block_id}'"

    def do(self, project: Project) -> None:
        self.old = project.graph.block(self.block_id).name
        project.graph.set_block_name(self.block_id, self.name)

    def undo(self, project: Project) -> None:
        project.graph.set_block_name(self.block_id, self.old)


#: The most copies one "Repeat block" makes.
MAX_REPEAT = 100


def free_id(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``, ... whichever is not in ``taken``."""
    if base not in taken:
        return base
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


def repeat_problem(
    graph: Graph, block_id: str, times: int = 1, shapes: Mapping[str, Any] | None = None
) -> str | None:
    """Why block ``block_id`` cannot be repeated ``times`` times (see :class:`RepeatBlock`),
    or None if it can. The GUI asks this to grey out "Repeat block..." with the reason."""
    if block_id not in graph.blocks:
        return f"there is no block named '{block_id}'"
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_REPEAT:
        return f"a block can be repeated 1 to {MAX_REPEAT} times; got {times!r}"
    block = graph.blocks[block_id]
    p = ports(block, graph.edges)
    if len(p.inputs) != 1 or len(p.outputs) != 1:

        def count(n: int, word: str) -> str:
            return f"{n} {word}{'s' if n != 1 else ''}"

        return (
            f"block '{block_id}' takes {count(len(p.inputs), 'input')} and gives "
            f"{count(len(p.outputs), 'output')}; to repeat it, exactly one tensor must "
            "enter it and one leave it, so each copy can take the one before it as its input"
        )
    if shapes:
        into, out = shape_of(shapes, p.inputs[0]), shape_of(shapes, p.outputs[0])
        if into is not None and out is not None and into != out:
            return (
                f"block '{block_id}' takes shape {_shape_text(into)} but gives "
                f"{_shape_text(out)}; a copy could not take the block's output as its input"
            )
    total = len(graph.nodes) + times * len(block.nodes)
    if total > limits.NODES.value():
        return str(limits.NODES.refusal(f"the graph would have {total:,} nodes"))
    return None


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


class RepeatBlock(Command):
    """ "Repeat block N times": ``times`` copies of a block stacked after it, chained output
    to input, in one undo step.

    What it requires: the block's inputs and outputs must line up. Exactly one tensor
    enters the block (it may feed several of its layers, as a residual unit's input
    feeds both its convolution and its shortcut) and exactly one leaves it (to any
    number of layers); and, when ``shapes`` are given (layer id -> output shape, e.g.
    what the Model summary computed), the two have the same shape. Otherwise
    :func:`repeat_problem` says why and ``do`` raises :class:`GraphError` with it.

    What it does: copy ``k`` of every member layer gets the id ``<id>_r<k>`` (the next
    free number when taken; one number per copy, shared by all its layers and blocks);
    copy 1 takes the block's output as the block took its input, copy ``k`` takes copy
    ``k-1``'s; the layers that read the block's output read the last copy's instead.
    Each copy is a block of its own (nested blocks copied too) and joins the blocks
    around the original. Copies are placed below the block (the layout flows down) and
    every layer below it moves down to make room.

    After ``do``: ``added_ids`` (the new layers) and ``block_ids`` (the copies' blocks).
    """

    def __init__(self, block_id: str, times: int, shapes: Mapping[str, Any] | None = None) -> None:
        self.block_id, self.times = block_id, times
        self.shapes = dict(shapes or {})
        self.text = f"Repeat '{block_id}' {times} time{'s' if times != 1 else ''}"
        self.added_ids: list[str] = []
        self.block_ids: list[str] = []
        self._saved: dict[str, Block] = {}
        self._moved: dict[str, tuple[float, float]] = {}
        self._rewired: list[Edge] = []

    def do(self, project: Project) -> None:
        g = project.graph
        reason = repeat_problem(g, self.block_id, self.times, self.shapes)
        if reason:
            raise GraphError(reason)
        block = g.blocks[self.block_id]
        members = list(block.nodes)
        inside = set(members)
        p = ports(block, g.edges)
        out = p.outputs[0]
        inner = [b for b in g.blocks.values() if set(b.nodes) <= inside]
        around = [b.id for b in g.blocks.values() if inside < set(b.nodes)]
        internal = [e for e in g.edges if e.source in inside and e.target in inside]
        self._saved = {k: b.copy() for k, b in g.blocks.items()}
        self._rewired = [
            e for e in g.edges if (e.source, e.source_port) == out and e.target not in inside
        ]
        self.added_ids, self.block_ids, self._moved = [], [], {}

        taken = set(g.nodes) | set(g.blocks)
        names = members + [b.id for b in inner]
        suffixes: list[int] = []
        j = 0
        for _ in range(self.times):
            j += 1
            while any(f"{n}_r{j}" in taken for n in names):
                j += 1
            suffixes.append(j)
            taken |= {f"{n}_r{j}" for n in names}

        ys = [g.nodes[n].position[1] for n in members]
        bottom, step = max(ys), max(ys) - min(ys) + LEVEL_SPACING
        try:
            for nid, node in list(g.nodes.items()):
                if nid not in inside and node.position[1] > bottom:
                    self._moved[nid] = node.position
                    x, y = node.position
                    g.move(nid, (x, y + self.times * step))
            for e in self._rewired:
                g.disconnect(e)
            prev = out
            for k, j in enumerate(suffixes, start=1):
                rename = {n: f"{n}_r{j}" for n in members}
                for n in members:
                    node = g.nodes[n].copy()
                    node.id = rename[n]
                    node.position = (node.position[0], node.position[1] + k * step)
                    g.add_node(node)
                    self.added_ids.append(node.id)
                for e in internal:
                    g.connect(Edge(rename[e.source], rename[e.target], e.port, e.source_port))
                for target, port in p.entries[0]:
                    g.connect(Edge(prev[0], rename[target], port, prev[1]))
                prev = (rename[out[0]], out[1])
            for e in self._rewired:
                g.connect(Edge(prev[0], e.target, e.port, prev[1]))
            blocks = {k: b.copy() for k, b in g.blocks.items()}
            order = {n: i for i, n in enumerate(g.nodes)}
            for bid in around:
                blocks[bid].nodes = sorted(
                    blocks[bid].nodes + self.added_ids, key=order.__getitem__
                )
            for j in suffixes:
                for b in inner:
                    copy_id = f"{b.id}_r{j}"
                    blocks[copy_id] = Block(
                        copy_id,
                        f"{b.name} ({j + 1})",
                        [f"{n}_r{j}" for n in b.nodes],
                        b.collapsed,
                        copy.deepcopy(b.extra),
                    )
                self.block_ids.append(f"{self.block_id}_r{j}")
            restore_blocks(g, blocks)
        except Exception:
            self.undo(project)
            raise

    def undo(self, project: Project) -> None:
        g = project.graph
        for nid in reversed(self.added_ids):
            if nid in g.nodes:
                g.remove_node(nid)
        for e in self._rewired:
            if e not in g.edges:
                g.connect(e)
        for nid, pos in self._moved.items():
            g.move(nid, pos)
        restore_blocks(g, self._saved)


class PlaceBlock(Command):
    """Place a saved block (a fragment from :func:`engine.model.block_files.block_fragment`
    or :func:`~engine.model.block_files.load_block`) with its top-left layer centre at
    ``position``, in one undo step.

    Layer and block ids that are taken get the next free ``_1``, ``_2``, ... suffix.
    With ``after``, the node ``after``'s output feeds the block's first input (as it
    fed it when the block was saved). After ``do``: ``added_ids`` (the new layers, in
    the fragment's order) and ``block_id`` (the placed outer block).
    """

    def __init__(
        self,
        fragment: dict[str, Any],
        position: tuple[float, float],
        after: str | None = None,
    ) -> None:
        self.fragment = copy.deepcopy(fragment)
        self.position = (float(position[0]), float(position[1]))
        self.after = after
        name = fragment.get("name") if isinstance(fragment, dict) else None
        self.text = f"Place block '{name if isinstance(name, str) else '?'}'"
        self.added_ids: list[str] = []
        self.block_id = ""
        self._saved: dict[str, Block] = {}

    def do(self, project: Project) -> None:
        g = project.graph
        try:
            part, inputs, _outputs = fragment_parts(self.fragment)
        except ValueError as exc:
            raise GraphError(f"the block cannot be placed: {exc}") from None
        if self.after is not None:
            g.node(self.after)
            if not inputs:
                raise GraphError(
                    f"block '{part.blocks and next(iter(part.blocks))}' takes no input, "
                    f"so it cannot be wired after '{self.after}'"
                )
        total = len(g.nodes) + len(part.nodes)
        if total > limits.NODES.value():
            raise GraphError(str(limits.NODES.refusal(f"the graph would have {total:,} nodes")))
        self._saved = {k: b.copy() for k, b in g.blocks.items()}
        self.added_ids = []
        taken = set(g.nodes) | set(g.blocks)
        rename: dict[str, str] = {}
        for nid in list(part.nodes) + list(part.blocks):
            rename[nid] = free_id(nid, taken)
            taken.add(rename[nid])
        x0, y0 = self.position
        try:
            for nid, node in part.nodes.items():
                node = node.copy()
                node.id = rename[nid]
                node.position = (node.position[0] + x0, node.position[1] + y0)
                g.add_node(node)
                self.added_ids.append(node.id)
            for e in part.edges:
                g.connect(Edge(rename[e.source], rename[e.target], e.port, e.source_port))
            if self.after is not None:
                for target, port in inputs[0]:
                    g.connect(Edge(self.after, rename[target], port))
            for b in part.blocks.values():
                g.add_block(
                    Block(rename[b.id], b.name, [rename[n] for n in b.nodes], b.collapsed, b.extra)
                )
        except Exception:
            self.undo(project)
            raise
        self.block_id = rename[next(iter(part.blocks))]

    def undo(self, project: Project) -> None:
        g = project.graph
        for nid in reversed(self.added_ids):
            if nid in g.nodes:
                g.remove_node(nid)
        restore_blocks(g, self._saved)


class Connect(Command):
    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.text = f"Connect '{edge.source}' to '{edge.target}'"

    def do(self, project: Project) -> None:
        project.graph.connect(self.edge)

    def undo(self, project: Project) -> None:
        project.graph.disconnect(self.edge)


class Disconnect(Command):
    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.text = f"Disconnect '{edge.source}' from '{edge.target}'"

    def do(self, project: Project) -> None:
        project.graph.disconnect(self.edge)

    def undo(self, project: Project) -> None:
        project.graph.connect(self.edge)


class SetParams(Command):
    """Replace a node's params (the whole dict)."""

    def __init__(self, node_id: str, params: dict[str, Any], text: str = "") -> None:
        self.node_id, self.new = node_id, copy.deepcopy(params)
        self.old: dict[str, Any] | None = None
        self.text = text or f"Edit '{node_id}'"

    def do(self, project: Project) -> None:
        self.old = copy.deepcopy(project.graph.node(self.node_id).params)
        project.graph.set_params(self.node_id, self.new)

    def undo(self, project: Project) -> None:
        project.graph.set_params(self.node_id, self.old or {})


class SetTrainable(Command):
    """Freeze (``trainable=False``) or unfreeze one or many nodes in one undo step."""

    def __init__(self, node_ids: Any, trainable: bool, text: str = "") -> None:
        self.ids = [node_ids] if isinstance(node_ids, str) else list(dict.fromkeys(node_ids))
        self.trainable = bool(trainable)
        self.old: dict[str, bool] = {}
        verb = "Unfreeze" if self.trainable else "Freeze"
        n = len(self.ids)
        self.text = text or (f"{verb} '{self.ids[0]}'" if n == 1 else f"{verb} {n} layers")

    def do(self, project: Project) -> None:
        g = project.graph
        self.old = {nid: g.node(nid).trainable for nid in self.ids}  # refuses unknown ids first
        for nid in self.ids:
            if g.nodes[nid].trainable != self.trainable:
                g.set_trainable(nid, self.trainable)

    def undo(self, project: Project) -> None:
        for nid, was in self.old.items():
            if project.graph.node(nid).trainable != was:
                project.graph.set_trainable(nid, was)


class MoveNodes(Command):
    """Move nodes; a whole drag is pushed once, with start and end positions."""

    def __init__(
        self, moves: dict[str, tuple[tuple[float, float], tuple[float, float]]], text: str = ""
    ) -> None:
        self.moves = dict(moves)
        n = len(self.moves)
        self.text = text or (f"Move '{next(iter(self.moves))}'" if n == 1 else f"Move {n} layers")

    def do(self, project: Project) -> None:
        for nid, (_old, new) in self.moves.items():
            project.graph.move(nid, new)

    def undo(self, project: Project) -> None:
        for nid, (old, _new) in self.moves.items():
            project.graph.move(nid, old)


class Rename(Command):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new
        self.text = f"Rename '{old}' to '{new}'"

    def do(self, project: Project) -> None:
        project.graph.rename(self.old, self.new)

    def undo(self, project: Project) -> None:
        project.graph.rename(self.new, self.old)


class SetSection(Command):
    """Replace a project section (``data``, ``training``, ``name``, ``description``)."""

    def __init__(self, key: str, value: Any, text: str = "") -> None:
        if key not in ("data", "training", "name", "description"):
            raise ValueError(f"cannot set project section '{key}'")
        self.key, self.new, self.old = key, copy.deepcopy(value), None
        self.text = text or f"Change {key} settings"

    def do(self, project: Project) -> None:
        self.old = copy.deepcopy(getattr(project, self.key))
        setattr(project, self.key, copy.deepcopy(self.new))

    def undo(self, project: Project) -> None:
        setattr(project, self.key, copy.deepcopy(self.old))


class Macro(Command):
    """Several commands as one undo step; a failing part undoes the parts before it."""

    def __init__(self, text: str, commands: list[Command]) -> None:
        self.text, self.commands = text, list(commands)

    def do(self, project: Project) -> None:
        done: list[Command] = []
        try:
            for c in self.commands:
                c.do(project)
                done.append(c)
        except Exception:
            for c in reversed(done):
                c.undo(project)
            raise

    def undo(self, project: Project) -> None:
        for c in reversed(self.commands):
            c.undo(project)


class UndoStackEvents(SignalGroup):
    changed = Signal()  # after push, undo, redo (the project may have changed)
    clean_changed = Signal(bool)
    section_changed = Signal(str)  # a SetSection ran (do or undo): the key


class UndoStack:
    """Executes commands on one project and remembers them for undo/redo."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.events = UndoStackEvents()
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self._clean_index: int | None = 0

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def undo_text(self) -> str:
        return self._done[-1].text if self._done else ""

    @property
    def redo_text(self) -> str:
        return self._undone[-1].text if self._undone else ""

    @property
    def is_clean(self) -> bool:
        return self._clean_index == len(self._done)

    def push(self, command: Command) -> None:
        """Do ``command``; if it raises, nothing changes and the error propagates."""
        was_clean = self.is_clean
        command.do(self.project)
        self._done.append(command)
        if self._clean_index is not None and self._clean_index > len(self._done) - 1:
            self._clean_index = None  # the clean state was in the discarded redo branch
        self._undone.clear()
        self._after(command, was_clean)

    def undo(self) -> None:
        if not self._done:
            return
        was_clean = self.is_clean
        command = self._done.pop()
        command.undo(self.project)
        self._undone.append(command)
        self._after(command, was_clean)

    def redo(self) -> None:
        if not self._undone:
            return
        was_clean = self.is_clean
        command = self._undone.pop()
        command.do(self.project)
        self._done.append(command)
        self._after(command, was_clean)

    def set_clean(self) -> None:
        was_clean = self.is_clean
        self._clean_index = len(self._done)
        if not was_clean:
            self.events.clean_changed.emit(True)

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
        self.set_clean()
        self.events.changed.emit()

    def _after(self, command: Command, was_clean: bool) -> None:
        for c in _flatten(command):
            if isinstance(c, SetSection):
                self.events.section_changed.emit(c.key)
        self.events.changed.emit()
        if self.is_clean != was_clean:
            self.events.clean_changed.emit(self.is_clean)


def _flatten(command: Command) -> list[Command]:
    if isinstance(command, Macro):
        return [c for sub in command.commands for c in _flatten(sub)]
    return [command]
