"""The model document: layer nodes, the edges between them, and change events.

The graph knows nothing of Qt. Views subscribe to ``graph.events`` (psygnal
signals) and redraw what they are told; all edits from the GUI go through the
undoable commands in :mod:`engine.model.commands`, which call the public methods here.
"""

from __future__ import annotations

import copy
import keyword
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal, SignalGroup

from engine.catalog.table import CATALOG
from engine.model.blocks import Block, overlap_problem


class GraphError(ValueError):
    """An edit the graph refuses; the message says why in plain words."""


@dataclass
class Node:
    """One layer on the canvas.

    Attributes:
        id: A Python identifier, unique in the graph; it becomes the Keras layer name.
        type: The catalog type (a Keras layer class name, or ``Input``).
        params: Keras constructor keyword arguments (only those that differ from
            the catalog defaults need to be present).
        position: Canvas position ``(x, y)``.
        extra: Unknown keys from the project file, written back unchanged.
        trainable: False for a frozen layer: its weights do not change in training
            (``layer.trainable = False``); a frozen BatchNormalization also runs in
            inference mode (Keras 3's rule). Saved as ``"trainable": false``, and
            only when false.
    """

    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    position: tuple[float, float] = (0.0, 0.0)
    extra: dict[str, Any] = field(default_factory=dict)
    trainable: bool = True

    def copy(self) -> Node:
        return Node(
            self.id,
            self.type,
            copy.deepcopy(self.params),
            tuple(self.position),
            copy.deepcopy(self.extra),
            self.trainable,
        )

    def to_dict(self) -> dict[str, Any]:
        out = dict(copy.deepcopy(self.extra))
        out.update(
            {
                "id": self.id,
                "type": self.type,
                "params": copy.deepcopy(self.params),
                "position": [_num(self.position[0]), _num(self.position[1])],
            }
        )
        if not self.trainable:
            out["trainable"] = False
        return out


@dataclass(frozen=True)
class Edge:
    """A wire from output ``source_port`` of ``source`` to input ``port`` of ``target``.

    Most layers have one output (port 0); a recurrent layer with ``return_state`` also
    outputs its states on ports 1.. (see :func:`output_ports`). ``source_port`` is
    written to the file only when it is not 0.
    """

    source: str
    target: str
    port: int = 0
    source_port: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "target": self.target, "port": self.port}
        if self.source_port:
            out["source_port"] = self.source_port
        return out


#: The states a recurrent layer carries from step to step, in Keras's order.
STATES: dict[str, tuple[str, ...]] = {
    "LSTM": ("h", "c"),
    "GRU": ("h",),
    "SimpleRNN": ("h",),
    "ConvLSTM2D": ("h", "c"),
}


def state_names(node: Node) -> tuple[str, ...]:
    """The states of a recurrent node (a Bidirectional's: forward ones, then backward
    ones, as Keras returns them), or ``()`` for other layers."""
    if node.type == "Bidirectional":
        inner = node.params.get("layer")
        kind = inner.get("type") if isinstance(inner, dict) else None
        names = STATES.get(kind, ()) if isinstance(kind, str) else ()
        return tuple(f"{n}_fw" for n in names) + tuple(f"{n}_bw" for n in names)
    return STATES.get(node.type, ())


def returns_state(node: Node) -> bool:
    """Whether the node is a recurrent layer with ``return_state`` on (a Bidirectional's
    is its wrapped layer's)."""
    params = node.params
    if node.type == "Bidirectional":
        inner = params.get("layer")
        params = inner.get("params") if isinstance(inner, dict) else None
        params = params if isinstance(params, dict) else {}
    return bool(state_names(node)) and params.get("return_state") is True


def output_ports(node: Node) -> tuple[str, ...]:
    """Names of the node's outputs by port: ``("out",)`` for most layers,
    ``("out", "h", "c")`` for an LSTM with ``return_state``."""
    return ("out", *state_names(node)) if returns_state(node) else ("out",)


def input_port_names(node: Node) -> dict[int, str]:
    """Names of the input ports that have one: a recurrent layer's initial states
    (``{1: "h", 2: "c"}`` for an LSTM: ``initial_state=[h, c]``)."""
    return {i + 1: name for i, name in enumerate(state_names(node))}


def _num(value: float) -> float | int:
    """Write whole-number coordinates as ints so saved files stay tidy."""
    value = float(value)
    return int(value) if value.is_integer() else round(value, 2)


def is_valid_id(name: Any) -> bool:
    """True when ``name`` can be a node id: a Python identifier that is not a keyword."""
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


class GraphEvents(SignalGroup):
    """Fine-grained change events; each carries what a view needs to update."""

    node_added = Signal(object)  # Node
    node_removed = Signal(str)  # node id
    edge_added = Signal(object)  # Edge
    edge_removed = Signal(object)  # Edge
    params_changed = Signal(str)  # node id (also sent when its trainable flag changes)
    node_moved = Signal(str)  # node id
    node_renamed = Signal(str, str)  # old id, new id
    block_added = Signal(object)  # Block
    block_removed = Signal(str)  # block id
    block_changed = Signal(str)  # block id: its layers, name or collapsed state changed


class Graph:
    """Nodes and edges of one model, in insertion order."""

    def __init__(self) -> None:
        self.events = GraphEvents()
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.blocks: dict[str, Block] = {}

    # ----------------------------------------------------------------- queries
    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphError(f"there is no layer named '{node_id}'") from None

    def inputs_of(self, node_id: str) -> list[Edge]:
        """Edges into ``node_id``, ordered by port."""
        return sorted((e for e in self.edges if e.target == node_id), key=lambda e: e.port)

    def outputs_of(self, node_id: str) -> list[Edge]:
        """Edges out of ``node_id``."""
        return [e for e in self.edges if e.source == node_id]

    def output_nodes(self) -> list[str]:
        """Nodes with no outgoing edge: the model's outputs, in insertion order."""
        sources = {e.source for e in self.edges}
        return [n for n in self.nodes if n not in sources]

    def unique_id(self, base: str) -> str:
        """A free id derived from ``base`` (``conv2d`` -> ``conv2d_1``, ...)."""
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in base.lower()) or "layer"
        if base[0].isdigit():
            base = "layer_" + base
        if base not in self.nodes and is_valid_id(base):
            return base
        i = 1
        while f"{base}_{i}" in self.nodes:
            i += 1
        return f"{base}_{i}"

    def downstream(self, node_ids: Iterable[str]) -> set[str]:
        """The given nodes and every node reachable from them."""
        seen: set[str] = set()
        stack = [n for n in node_ids if n in self.nodes]
        children: dict[str, list[str]] = {}
        for e in self.edges:
            children.setdefault(e.source, []).append(e.target)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            stack.extend(children.get(n, ()))
        return seen

    def find_cycle(self) -> list[str] | None:
        """A list of node ids forming a cycle, or None if the graph is acyclic."""
        children: dict[str, list[str]] = {n: [] for n in self.nodes}
        for e in self.edges:
            if e.source in children and e.target in children:
                children[e.source].append(e.target)
        state: dict[str, int] = {}
        for start in self.nodes:
            if start in state:
                continue
            path: list[str] = []
            stack: list[tuple[str, int]] = [(start, 0)]
            while stack:
                n, i = stack.pop()
                if i == 0:
                    state[n] = 1
                    path.append(n)
                kids = children[n]
                if i < len(kids):
                    stack.append((n, i + 1))
                    k = kids[i]
                    if state.get(k) == 1:
                        return path[path.index(k) :]
                    if k not in state:
                        stack.append((k, 0))
                else:
                    state[n] = 2
                    path.pop()
        return None

    def topological_order(self) -> list[str]:
        """Node ids so that every node comes after its inputs (insertion order breaks ties).

        Raises:
            GraphError: If the graph has a cycle.
        """
        indeg = {n: 0 for n in self.nodes}
        children: dict[str, list[str]] = {n: [] for n in self.nodes}
        for e in self.edges:
            if e.source in indeg and e.target in indeg:
                indeg[e.target] += 1
                children[e.source].append(e.target)
        ready = [n for n in self.nodes if indeg[n] == 0]
        order: list[str] = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for k in children[n]:
                indeg[k] -= 1
                if indeg[k] == 0:
                    ready.append(k)
        if len(order) != len(self.nodes):
            cycle = self.find_cycle() or []
            raise GraphError("the graph has a cycle: " + " -> ".join(cycle + cycle[:1]))
        return order

    def check_connect(
        self, source: str, target: str, port: int | None = None, source_port: int = 0
    ) -> str | None:
        """Why ``source -> target`` cannot be connected, or None if it can.

        ``port`` None means the next free port. Checks: both nodes exist, no self
        loop, no cycle, the port is free, and the target accepts another input.
        Whether the source has output ``source_port`` and the target that many states
        depends on params, which change under a wire (return_state turned off), so
        validation reports those (:func:`engine.build.builder.port_problem`), and
        undoing an edit can always put a wire back.
        """
        if source not in self.nodes:
            return f"there is no layer named '{source}'"
        if target not in self.nodes:
            return f"there is no layer named '{target}'"
        if source == target:
            return f"'{source}' cannot feed itself"
        if source_port < 0:
            return f"'{source}' has no output {source_port}"
        existing = self.inputs_of(target)
        spec = CATALOG.get(self.nodes[target].type)
        repeat = spec is not None and spec.repeat_source  # e.g. self-attention
        if (
            any(e.source == source and e.source_port == source_port for e in existing)
            and not repeat
        ):
            return f"'{source}' is already connected to '{target}'"
        if source in self.downstream([target]):
            return f"connecting '{source}' to '{target}' would make a cycle"
        if spec is not None and spec.max_inputs == 0:
            return f"'{target}' is an {spec.type} and takes no inputs"
        if spec is not None and spec.max_inputs is not None and len(existing) >= spec.max_inputs:
            n = spec.max_inputs
            return (
                f"'{target}' ({spec.type}) takes at most {n} input{'s' if n != 1 else ''} "
                f"and already has {len(existing)}"
            )
        if port is not None:
            if port < 0:
                return f"port {port} of '{target}' does not exist"
            if spec is not None and spec.max_inputs is not None and port >= spec.max_inputs:
                return f"'{target}' ({spec.type}) has no input {port}"
            if any(e.port == port for e in existing):
                taken = next(e.source for e in existing if e.port == port)
                return f"input {port} of '{target}' is already fed by '{taken}'"
        return None

    def next_free_port(self, target: str) -> int:
        used = {e.port for e in self.inputs_of(target)}
        port = 0
        while port in used:
            port += 1
        return port

    # ------------------------------------------------------------------ edits
    def add_node(self, node: Node) -> None:
        if not is_valid_id(node.id):
            raise GraphError(
                f"'{node.id}' is not a valid layer name: use letters, digits and "
                "underscores, not starting with a digit"
            )
        if node.id in self.nodes:
            raise GraphError(f"a layer named '{node.id}' already exists")
        self.nodes[node.id] = node
        self.events.node_added.emit(node)

    def remove_node(self, node_id: str) -> Node:
        """Remove a node and emit ``edge_removed`` for each of its edges first.

        The node also leaves its blocks; a block left with no layers, or with exactly
        the layers of another block (an outer block around a single inner one), is
        removed (``block_removed``).
        """
        node = self.node(node_id)
        for e in [e for e in self.edges if node_id in (e.source, e.target)]:
            self.disconnect(e)
        del self.nodes[node_id]
        self.events.node_removed.emit(node_id)
        for block in [b for b in self.blocks.values() if node_id in b.nodes]:
            block.nodes = [n for n in block.nodes if n != node_id]
            same = any(
                o.id != block.id and set(o.nodes) == set(block.nodes) for o in self.blocks.values()
            )
            if not block.nodes or same:
                self.remove_block(block.id)
            else:
                self.events.block_changed.emit(block.id)
        return node

    def connect(self, edge: Edge) -> None:
        reason = self.check_connect(edge.source, edge.target, edge.port, edge.source_port)
        if reason:
            raise GraphError(reason)
        self.edges.append(edge)
        self.events.edge_added.emit(edge)

    def disconnect(self, edge: Edge) -> None:
        try:
            self.edges.remove(edge)
        except ValueError:
            raise GraphError(f"'{edge.source}' is not connected to '{edge.target}'") from None
        self.events.edge_removed.emit(edge)

    def set_params(self, node_id: str, params: dict[str, Any]) -> None:
        """Replace a node's params (the whole dict)."""
        self.node(node_id).params = copy.deepcopy(params)
        self.events.params_changed.emit(node_id)

    def set_trainable(self, node_id: str, trainable: bool) -> None:
        """Freeze (False) or unfreeze (True) a node; emits ``params_changed``."""
        self.node(node_id).trainable = bool(trainable)
        self.events.params_changed.emit(node_id)

    def frozen_ids(self) -> list[str]:
        """Ids of the frozen nodes, in insertion order."""
        return [n for n, node in self.nodes.items() if not node.trainable]

    def upstream(self, node_ids: Iterable[str]) -> set[str]:
        """The given nodes and every node they are reachable from (their ancestors)."""
        parents: dict[str, list[str]] = {}
        for e in self.edges:
            parents.setdefault(e.target, []).append(e.source)
        seen: set[str] = set()
        stack = [n for n in node_ids if n in self.nodes]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            stack.extend(parents.get(n, ()))
        return seen

    def move(self, node_id: str, position: tuple[float, float]) -> None:
        self.node(node_id).position = (float(position[0]), float(position[1]))
        self.events.node_moved.emit(node_id)

    def rename(self, old: str, new: str) -> None:
        if old == new:
            return
        self.node(old)
        if not is_valid_id(new):
            raise GraphError(
                f"'{new}' is not a valid layer name: use letters, digits and "
                "underscores, not starting with a digit"
            )
        if new in self.nodes:
            raise GraphError(f"a layer named '{new}' already exists")
        self.nodes = {(new if k == old else k): v for k, v in self.nodes.items()}
        self.nodes[new].id = new
        self.edges = [
            Edge(
                new if e.source == old else e.source,
                new if e.target == old else e.target,
                e.port,
                e.source_port,
            )
            for e in self.edges
        ]
        for block in self.blocks.values():
            if old in block.nodes:
                block.nodes = [new if n == old else n for n in block.nodes]
        self.events.node_renamed.emit(old, new)

    # ----------------------------------------------------------------- blocks
    def check_block(
        self, block_id: str, nodes: Iterable[str], skip: str | None = None
    ) -> str | None:
        """Why a block ``block_id`` of ``nodes`` cannot be added (or, with ``skip``, why
        block ``skip`` cannot take those layers), or None if it can."""
        members = list(nodes)
        if not is_valid_id(block_id):
            return (
                f"'{block_id}' is not a valid block name: use letters, digits and "
                "underscores, not starting with a digit"
            )
        if block_id in self.nodes:
            return f"'{block_id}' is already the name of a layer"
        if block_id in self.blocks and block_id != skip:
            return f"a block named '{block_id}' already exists"
        if not members:
            return f"block '{block_id}' holds no layers"
        for nid in members:
            if nid not in self.nodes:
                return f"block '{block_id}': there is no layer named '{nid}'"
        if len(set(members)) != len(members):
            return f"block '{block_id}' lists a layer twice"
        reason = overlap_problem(members, self.blocks, skip)
        return f"block '{block_id}': {reason}" if reason else None

    def add_block(self, block: Block) -> None:
        reason = self.check_block(block.id, block.nodes)
        if reason:
            raise GraphError(reason)
        block = block.copy()
        order = {n: i for i, n in enumerate(self.nodes)}
        block.nodes.sort(key=order.__getitem__)
        self.blocks[block.id] = block
        self.events.block_added.emit(block)

    def block(self, block_id: str) -> Block:
        try:
            return self.blocks[block_id]
        except KeyError:
            raise GraphError(f"there is no block named '{block_id}'") from None

    def remove_block(self, block_id: str) -> Block:
        """Remove a block; its layers stay where they are."""
        block = self.block(block_id)
        del self.blocks[block_id]
        self.events.block_removed.emit(block_id)
        return block

    def set_block_collapsed(self, block_id: str, collapsed: bool) -> None:
        self.block(block_id).collapsed = bool(collapsed)
        self.events.block_changed.emit(block_id)

    def set_block_name(self, block_id: str, name: str) -> None:
        """Change what the block's card shows (its id stays)."""
        self.block(block_id).name = str(name)
        self.events.block_changed.emit(block_id)

    # ---------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "edges": [
                e.to_dict() for e in sorted(self.edges, key=lambda e: (e.target, e.port, e.source))
            ],
        }
        if self.blocks:
            out["blocks"] = [b.to_dict() for b in self.blocks.values()]
        return out

    def copy(self) -> Graph:
        g = Graph()
        g.nodes = {k: v.copy() for k, v in self.nodes.items()}
        g.edges = list(self.edges)
        g.blocks = {k: v.copy() for k, v in self.blocks.items()}
        return g
