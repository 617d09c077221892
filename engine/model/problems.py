"""Structural problems of a model graph, found without TensorFlow.

:func:`structural_problems` checks cycles, inputs per layer, ports, ids, layer
types and parameter values, all read from the catalog. Every problem names its
node (``Problem.node``) and says it in the message too, in the form
``"Dense 'fc': ..."``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
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


# ------------------------------------------------------------- weights files
#: What a Backbone's weights file must start with: HDF5's signature (``.h5``,
#: ``.hdf5``, ``.weights.h5``; HDF5 also allows it at 512, 1024, 2048... after a
#: user block) or a zip's (``.keras``).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")


def resolve_weights(value: Any, base_dir: str | os.PathLike | None) -> Path:
    """A weights file named in a Backbone's ``weights``, relative to the project's folder."""
    path = Path(os.path.expanduser(str(value)))
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def weights_file_problem(node: Node, base_dir: str | os.PathLike | None) -> str | None:
    """What is wrong with the weights file a Backbone ``node`` names, or None.

    ``None``, ``""`` and ``"imagenet"`` name no file. Otherwise the file (relative
    to ``base_dir``, the project's folder) must exist, be a readable regular file and
    be an HDF5 file (``.h5``, ``.hdf5``, ``.weights.h5``) or a ``.keras`` zip, as
    Keras's ``load_weights`` reads them. Cheap: a stat and the first bytes (at most
    a few KB), no TensorFlow. The builder raises the same text.
    """
    params = node.params if isinstance(node.params, dict) else {}
    value = params.get("weights")
    if value in (None, "", "imagenet"):
        return None
    label = who(node)
    if not isinstance(value, str):
        return f"{label}: weights must be null, 'imagenet' or a file's path; got {value!r}"
    shown = value if len(value) <= 200 else value[:200] + "…"
    try:
        path = resolve_weights(value, base_dir)
        exists = path.exists()
        regular = exists and path.is_file()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL, a name too long, ~nobody
        return f"{label}: weights file {shown!r} cannot be used ({exc})"
    if not exists:
        return (
            f"{label}: weights file {shown!r} not found (looked for {path}); "
            "choose an existing .h5 or .weights.h5 file, 'imagenet', or no weights"
        )
    if not regular:
        return f"{label}: weights file {path} is not a regular file"
    name = path.name.lower()
    if not name.endswith(WEIGHTS_SUFFIXES):
        return (
            f"{label}: weights file {path} is not a Keras weights file: its name must end "
            "in .weights.h5, .h5, .hdf5 or .keras"
        )
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            starts = [head]
            for offset in (512, 1024, 2048):  # an HDF5 user block
                f.seek(offset)
                starts.append(f.read(8))
    except OSError as exc:
        return f"{label}: weights file {path} cannot be read ({exc.strerror or exc})"
    if name.endswith(".keras"):
        if not head.startswith(ZIP_SIGNATURE):
            return f"{label}: weights file {path} is not a .keras file (not a zip archive)"
    elif HDF5_SIGNATURE not in starts:
        what = "empty" if not head else "not an HDF5 file"
        return (
            f"{label}: weights file {path} is {what}; a Backbone loads the .h5 or "
            ".weights.h5 files Keras saves (model.save_weights)"
        )
    return None


def weights_problems(graph: Graph, base_dir: str | os.PathLike | None) -> list[Problem]:
    """One error per Backbone whose weights file is missing, unreadable or not HDF5
    (:func:`weights_file_problem`); relative paths are resolved against ``base_dir``."""
    out: list[Problem] = []
    for nid, node in graph.nodes.items():
        if node.type == "Backbone":
            message = weights_file_problem(node, base_dir)
            if message:
                out.append(Problem(nid, ERROR, message))
    return out
