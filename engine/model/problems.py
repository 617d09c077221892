"""Structural problems of a model graph, found without TensorFlow.

:func:`structural_problems` checks cycles, inputs per layer, ports, ids, layer
types and parameter values, all read from the catalog. Every problem names its
node (``Problem.node``) and says it in the message too, in the form
``"Dense 'fc': ..."``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from engine.catalog.checks import check_params, check_value
from engine.catalog.table import CATALOG
from engine.model.graph import Edge, Graph, Node, is_valid_id

ERROR = "error"


WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph.

    Attributes:
        node: The node id it concerns, or None for the whole graph.
        severity: ``"error"`` (the model cannot be built) or ``"warning"``.
        message: One plain sentence that names the node and the values involved.
    """

    node: str | None
    severity: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "severity": self.severity, "message": self.message}

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


def who(node: Node) -> str:
    """How messages name a node: ``Dense 'fc'``."""
    return f"{node.type} '{node.id}'"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _names(ids: list[str], most: int = 3) -> str:
    """``'a', 'b' and 2 more`` for lists of ids."""
    quoted = [f"'{i}'" for i in ids]
    if len(quoted) <= most:
        return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return ", ".join(quoted[:most]) + f" and {len(quoted) - most} more"


def suggest_type(name: str) -> str | None:
    """The catalog type closest to a misspelt ``name``, or None."""
    lower = {t.lower(): t for t in CATALOG}
    if str(name).lower() in lower:
        return lower[str(name).lower()]
    close = difflib.get_close_matches(str(name), list(CATALOG), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(str(name).lower(), list(lower), n=1, cutoff=0.6)
        close = [lower[c] for c in close]
    return close[0] if close else None


_PARAM_CACHE: dict[tuple[str, str, str], list[str]] = {}
_PARAM_CACHE_SIZE = 20_000


def param_problems(node_type: str, params: Any, label: str) -> list[str]:
    """What is wrong with a layer type's ``params`` (unknown, missing, bad values).

    Remembered by value (type, label and the params' text): re-validating a
    500-layer graph after one edit re-checks only the edited layer.

    Wrapped layers (``layer`` kind, e.g. Bidirectional's LSTM) are checked too.

    Args:
        node_type: A catalog type (must exist).
        params: The node's params dict.
        label: How messages name the layer (``"Dense 'fc'"``).

    Returns:
        Messages, each naming ``label``, the parameter and the value.
    """
    key = (node_type, label, repr(params))
    known = _PARAM_CACHE.get(key)
    if known is None:
        if len(_PARAM_CACHE) >= _PARAM_CACHE_SIZE:
            _PARAM_CACHE.clear()
        known = _PARAM_CACHE[key] = _check_params(node_type, params, label)
    return list(known)


def _check_params(node_type: str, params: Any, label: str) -> list[str]:
    spec = CATALOG[node_type]
    if not isinstance(params, dict):
        return [f"{label}: params must be a mapping of names to values; got {params!r}"]
    out: list[str] = []
    for name, value in params.items():
        pspec = spec.param(name)
        if pspec is None:
            known = [p.name for p in spec.params]
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            out.append(f"{label}: unknown parameter '{name}'{hint}")
            continue
        reason = check_value(pspec, value)
        if reason:
            out.append(f"{label}: {reason}")
        elif pspec.kind == "layer" and isinstance(value, dict):
            inner = value.get("type")
            if inner in CATALOG:
                out.extend(
                    param_problems(inner, value.get("params") or {}, f"{label} (wrapped {inner})")
                )
            else:
                hint = suggest_type(inner) if isinstance(inner, str) else None
                out.append(
                    f"{label}: '{name}' wraps an unknown layer type {inner!r}"
                    + (f" (did you mean '{hint}'?)" if hint else "")
                )
    for pspec in spec.params:
        if pspec.required and pspec.name not in params:
            out.append(f"{label}: the required parameter '{pspec.name}' is missing")
    if not out:
        out.extend(f"{label}: {reason}" for reason in check_params(node_type, params))
    return out


def node_problems(node: Node, inputs: list[Edge]) -> list[Problem]:
    """Problems of one node on its own: type, params, inputs count and ports.

    Args:
        node: The node.
        inputs: Its incoming edges, sorted by port.
    """
    label = who(node)
    spec = CATALOG.get(node.type)
    if spec is None:
        hint = suggest_type(node.type)
        hint_text = f"; did you mean '{hint}'?" if hint else ""
        return [
            Problem(
                node.id, ERROR, f"'{node.id}' has the unknown layer type '{node.type}'{hint_text}"
            )
        ]
    found = [Problem(node.id, ERROR, m) for m in param_problems(node.type, node.params, label)]
    n = len(inputs)
    if spec.max_inputs == 0 and n:
        found.append(Problem(node.id, ERROR, f"{label} takes no inputs but has {n}"))
    elif n < spec.min_inputs:
        if spec.max_inputs is None:
            need = f"at least {_plural(spec.min_inputs, 'input')}"
        elif spec.max_inputs == spec.min_inputs:
            need = _plural(spec.min_inputs, "input")
        else:
            need = f"{spec.min_inputs} to {spec.max_inputs} inputs"
        found.append(Problem(node.id, ERROR, f"{label} needs {need} but has {n}"))
    elif spec.max_inputs is not None and n > spec.max_inputs:
        found.append(
            Problem(
                node.id,
                ERROR,
                f"{label} takes at most {_plural(spec.max_inputs, 'input')} but has {n}",
            )
        )
    ports = [e.port for e in inputs]
    if len(set(ports)) != len(ports):
        dup = sorted({p for p in ports if ports.count(p) > 1})
        found.append(
            Problem(node.id, ERROR, f"{label}: input port {dup[0]} is fed by more than one layer")
        )
    elif ports and ports != list(range(len(ports))):
        used = set(ports)
        first_missing = next(i for i in range(len(ports) + 1) if i not in used)
        found.append(
            Problem(
                node.id,
                ERROR,
                f"{label}: input port {first_missing} is empty while port "
                f"{max(ports)} is used; connect inputs without gaps",
            )
        )
    return found


def incoming_index(graph: Graph) -> dict[str, list[Edge]]:
    """Incoming edges of every node, sorted by port (one pass over the edges)."""
    inc: dict[str, list[Edge]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        if e.target in inc:
            inc[e.target].append(e)
    for edges in inc.values():
        if len(edges) > 1:
            edges.sort(key=lambda e: e.port)
    return inc


def structural_problems(graph: Graph) -> list[Problem]:
    """Everything wrong with ``graph`` that can be seen without TensorFlow.

    Checks: at least one Input; ids are identifiers and unique; edges point at
    existing nodes; no cycles; each node's type, params and inputs (count and
    ports); layers not connected to any Input; Inputs that feed nothing.
    """
    problems: list[Problem] = []
    if not any(n.type == "Input" for n in graph.nodes.values()):
        problems.append(
            Problem(
                None,
                ERROR,
                "the model has no Input layer; add one from the "
                "palette and connect it to the first layer",
            )
        )
    seen_ids: dict[str, str] = {}
    for key, node in graph.nodes.items():
        if not is_valid_id(node.id):
            problems.append(
                Problem(
                    node.id,
                    ERROR,
                    f"'{node.id}' is not a valid layer name: use letters, "
                    "digits and underscores, not starting with a digit",
                )
            )
        if node.id != key or node.id in seen_ids:
            problems.append(
                Problem(node.id, ERROR, f"two layers are named '{node.id}'; names must be unique")
            )
        seen_ids[node.id] = key
    for e in graph.edges:
        for end in (e.source, e.target):
            if end not in graph.nodes:
                problems.append(
                    Problem(
                        None,
                        ERROR,
                        f"a connection {e.source} -> {e.target} "
                        f"refers to the missing layer '{end}'",
                    )
                )
    cycle = graph.find_cycle()
    if cycle:
        problems.append(
            Problem(
                cycle[0],
                ERROR,
                "the layers form a cycle: "
                + " -> ".join(cycle + cycle[:1])
                + "; a model must flow one way from its inputs",
            )
        )
    inc = incoming_index(graph)
    for nid, node in graph.nodes.items():
        problems.extend(node_problems(node, inc[nid]))
        if node.type == "Input" and not any(e.source == nid for e in graph.edges):
            if len(graph.nodes) > 1:
                problems.append(
                    Problem(
                        nid,
                        WARNING,
                        f"Input '{nid}' feeds no layer; it would be a model output as it is",
                    )
                )
    problems.extend(_unreachable(graph))
    return problems


def _unreachable(graph: Graph) -> list[Problem]:
    """One warning per group of connected layers that no Input reaches."""
    inputs = [n for n, node in graph.nodes.items() if node.type == "Input"]
    if not inputs:
        return []  # "no Input" already says it
    reached = graph.downstream(inputs)
    lost = [n for n in graph.nodes if n not in reached]
    if not lost:
        return []
    neighbours: dict[str, set[str]] = {n: set() for n in lost}
    for e in graph.edges:
        if e.source in neighbours and e.target in neighbours:
            neighbours[e.source].add(e.target)
            neighbours[e.target].add(e.source)
    out: list[Problem] = []
    done: set[str] = set()
    for start in lost:
        if start in done:
            continue
        group, stack = [], [start]
        while stack:
            n = stack.pop()
            if n in done:
                continue
            done.add(n)
            group.append(n)
            stack.extend(neighbours[n])
        group.sort(key=lost.index)
        verb = "is" if len(group) == 1 else "are"
        out.append(
            Problem(
                group[0],
                WARNING,
                f"{_names(group)} {verb} not connected to any Input; "
                "connect the chain to an Input or delete it",
            )
        )
    return out


def graph_of(project_or_graph: Any) -> Graph:
    """The graph of a Project (or anything with ``.graph``), or the Graph itself."""
    graph = getattr(project_or_graph, "graph", project_or_graph)
    if not isinstance(graph, Graph):
        raise TypeError(f"expected a Project or a Graph, got {type(project_or_graph).__name__}")
    return graph
