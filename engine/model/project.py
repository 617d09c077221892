"""The project file: load, save (atomic), format version, clear errors for bad files.

A project file is data: loading one never executes code. Unknown keys are kept
and written back so files from newer tools survive a round trip.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import limits
from engine.files import DiskState, write_atomic
from engine.model.blocks import Block
from engine.model.graph import Edge, Graph, GraphError, Node, is_valid_id

FORMAT = "layerlab"
VERSION = 3  # 2: edges may come from output ports other than 0 ("source_port"); 3: blocks
MAX_PORT = 999  # no layer takes a thousand inputs; bounds what a broken file can ask for
MAX_COORD = 1e7  # canvas positions: far beyond any layout, and finite


def position_problem(pos: Any) -> str | None:
    """Why ``pos`` is not a canvas position ``[x, y]`` (finite, within MAX_COORD), or None."""
    if (
        not isinstance(pos, (list, tuple))
        or len(pos) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pos)
    ):
        return f'"position" must be [x, y]; got {pos!r}'
    if not all(abs(v) <= MAX_COORD for v in pos):  # also false for NaN
        return f'"position" must be two numbers between -1e7 and 1e7; got {pos!r}'
    return None


DEFAULT_DATA: dict[str, Any] = {"source": "builtin:digits", "validation_split": 0.2}
DEFAULT_TRAINING: dict[str, Any] = {
    "optimizer": {"type": "Adam", "learning_rate": 0.001},
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "batch_size": 32,
    "epochs": 10,
    "seed": 0,
}
_KNOWN_TOP = {"format", "version", "name", "description", "graph", "data", "training"}
_KNOWN_NODE = {"id", "type", "params", "position", "trainable"}
_KNOWN_BLOCK = {"id", "name", "nodes", "collapsed"}


class ProjectError(ValueError):
    """A project file that cannot be used; the message names the file and what is wrong."""


@dataclass
class Project:
    """One model with its data and training settings.

    Attributes:
        name: Shown in the title bar and used to name the Keras model.
        description: Free text (presets explain themselves here).
        graph: The layer graph.
        data: The ``data`` section (see :mod:`engine.data.dataset`).
        training: The ``training`` section (see :mod:`engine.train.config`).
        extra: Unknown top-level keys, written back unchanged.
        path: Where the project was loaded from or last saved, if anywhere.
        disk_state: The file at ``path`` as last loaded or saved (for
            :func:`engine.files.changed_on_disk`), or None.
    """

    name: str = "Untitled"
    description: str = ""
    graph: Graph = field(default_factory=Graph)
    data: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_DATA))
    training: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_TRAINING))
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    disk_state: DiskState | None = field(default=None, compare=False, repr=False)

    @property
    def base_dir(self) -> Path | None:
        """The folder relative data paths are resolved against."""
        return self.path.parent if self.path else None

    def to_dict(self) -> dict[str, Any]:
        out = copy.deepcopy(self.extra)
        out.update({"format": FORMAT, "version": file_version(self.graph), "name": self.name})
        if self.description:
            out["description"] = self.description
        out["graph"] = self.graph.to_dict()
        out["data"] = copy.deepcopy(self.data)
        out["training"] = copy.deepcopy(self.training)
        return out

    def copy(self) -> Project:
        return Project.from_dict(self.to_dict(), path=self.path)

    @classmethod
    def from_dict(cls, d: Any, source: str = "project", path: Path | None = None) -> Project:
        """Check and convert a parsed project file.

        Raises:
            ProjectError: Naming ``source`` and the first thing wrong.
        """

        def fail(msg: str) -> ProjectError:
            return ProjectError(f"{source}: {msg}")

        if not isinstance(d, dict):
            raise fail(
                f"not a LayerLab project (the file holds a JSON {type(d).__name__}, not an object)"
            )
        if d.get("format") != FORMAT:
            raise fail('not a LayerLab project (no "format": "layerlab" key)')
        version = d.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise fail(f'"version" must be a whole number >= 1; got {version!r}')
        if version > VERSION:
            raise fail(
                f"made by a newer LayerLab (format version {version}); this version "
                f"reads up to {VERSION}. Update LayerLab to open it."
            )
        d = migrate(d)
        for key, kind in (("name", str), ("description", str)):
            if key in d and not isinstance(d[key], kind):
                raise fail(f'"{key}" must be text; got {d[key]!r}')
        for key in ("data", "training"):
            if key in d and not isinstance(d[key], dict):
                raise fail(f'"{key}" must be an object; got {type(d[key]).__name__}')
        graph_d = d.get("graph")
        if isinstance(graph_d, dict):  # bounded before the work (the graph's own checks follow)
            try:
                for key, limit in (("nodes", limits.NODES), ("edges", limits.EDGES)):
                    items = graph_d.get(key)
                    if isinstance(items, list) and len(items) > limit.value():
                        raise limit.refusal(f"the graph has {len(items):,} {key}")
            except limits.LimitExceeded as exc:
                raise fail(str(exc)) from None
        graph = _graph_from_dict(graph_d, fail)
        return cls(
            name=d.get("name", "Untitled"),
            description=d.get("description", ""),
            graph=graph,
            data=copy.deepcopy(d.get("data", DEFAULT_DATA)),
            training=copy.deepcopy(d.get("training", DEFAULT_TRAINING)),
            extra={k: copy.deepcopy(v) for k, v in d.items() if k not in _KNOWN_TOP},
            path=path,
        )


def file_version(graph: Graph) -> int:
    """The oldest format version that holds ``graph``: 3 when it has blocks, 2 when an
    edge reads an output other than 0 (a recurrent layer's state), else 1, so that
    files without them still open in LayerLab versions that read only older ones."""
    if graph.blocks:
        return 3
    return 2 if any(e.source_port for e in graph.edges) else 1


def migrate(d: dict[str, Any]) -> dict[str, Any]:
    """Bring an older format version up to :data:`VERSION`, one step at a time.

    Version 2 -> 3: the graph gained ``"blocks"`` (named groups of layers; see
    :mod:`engine.model.blocks`); older files have none.

    Version 1 -> 2: edges gained ``"source_port"`` (which output of the source feeds
    the edge; absent means 0). Version 1 had one output per layer and ignored keys
    it did not know on edges, so a ``"source_port"`` in a version-1 edge is dropped:
    the edge reads output 0, as it did.
    """
    if d.get("version", 1) < 2:
        d = dict(d)
        graph = d.get("graph")
        if isinstance(graph, dict) and isinstance(graph.get("edges"), list):
            edges = [
                {k: v for k, v in e.items() if k != "source_port"} if isinstance(e, dict) else e
                for e in graph["edges"]
            ]
            d["graph"] = {**graph, "edges": edges}
        d["version"] = 2
    if d["version"] < 3:
        # Version 3 added the graph's "blocks" list; version 2 ignored keys it did not
        # know in the graph section, so a "blocks" key there was never a group: drop it.
        d = dict(d)
        graph = d.get("graph")
        if isinstance(graph, dict) and "blocks" in graph:
            d["graph"] = {k: v for k, v in graph.items() if k != "blocks"}
        d["version"] = 3
    return d


def _graph_from_dict(g: Any, fail) -> Graph:
    if g is None:
        raise fail('the "graph" section is missing')
    if not isinstance(g, dict):
        raise fail('"graph" must be an object with "nodes" and "edges"')
    nodes, edges = g.get("nodes", []), g.get("edges", [])
    if not isinstance(nodes, list):
        raise fail('"graph.nodes" must be a list')
    if not isinstance(edges, list):
        raise fail('"graph.edges" must be a list')
    graph = Graph()
    for i, n in enumerate(nodes):
        where = f"node #{i + 1}"
        if not isinstance(n, dict):
            raise fail(f"{where} must be an object; got {n!r}")
        nid = n.get("id")
        if nid is None:
            raise fail(f'{where} has no "id"')
        where = f"node '{nid}'"
        if not is_valid_id(nid):
            raise fail(
                f"{where}: the id must be a Python identifier (letters, digits, "
                "underscores, not starting with a digit)"
            )
        if nid in graph.nodes:
            raise fail(f"two nodes have the id '{nid}'")
        ntype = n.get("type")
        if not isinstance(ntype, str) or not ntype:
            raise fail(f'{where} has no "type"')
        params = n.get("params", {})
        if not isinstance(params, dict):
            raise fail(f'{where}: "params" must be an object; got {params!r}')
        pos = n.get("position", [0, 0])
        problem = position_problem(pos)
        if problem:
            raise fail(f"{where}: {problem}")
        trainable = n.get("trainable", True)
        if not isinstance(trainable, bool):
            raise fail(f'{where}: "trainable" must be true or false; got {trainable!r}')
        graph.nodes[nid] = Node(
            nid,
            ntype,
            copy.deepcopy(params),
            (float(pos[0]), float(pos[1])),
            {k: copy.deepcopy(v) for k, v in n.items() if k not in _KNOWN_NODE},
            trainable,
        )
    seen: set[tuple[str, int]] = set()
    for i, e in enumerate(edges):
        where = f"edge #{i + 1}"
        if not isinstance(e, dict):
            raise fail(f"{where} must be an object; got {e!r}")
        src, dst, port = e.get("source"), e.get("target"), e.get("port", 0)
        source_port = e.get("source_port", 0)
        for end, value in (("source", src), ("target", dst)):
            if value is None:
                raise fail(f'{where} has no "{end}"')
            if not isinstance(value, str):
                raise fail(f'{where}: "{end}" must be a node id; got {value!r}')
            if value not in graph.nodes:
                raise fail(f"{where} ({src} -> {dst}): its {end} '{value}' is not a node")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= MAX_PORT:
            raise fail(
                f'{where} ({src} -> {dst}): "port" must be a whole number from 0 '
                f"to {MAX_PORT}; got {port!r}"
            )
        if (
            not isinstance(source_port, int)
            or isinstance(source_port, bool)
            or not 0 <= source_port <= MAX_PORT
        ):
            raise fail(
                f'{where} ({src} -> {dst}): "source_port" must be a whole number from 0 '
                f"to {MAX_PORT}; got {source_port!r}"
            )
        if (dst, port) in seen:
            raise fail(f"{where} ({src} -> {dst}): input {port} of '{dst}' is fed twice")
        seen.add((dst, port))
        graph.edges.append(Edge(src, dst, port, source_port))
    _blocks_from_list(graph, g.get("blocks", []), fail)
    return graph


def _blocks_from_list(graph: Graph, blocks: Any, fail) -> None:
    if not isinstance(blocks, list):
        raise fail('"graph.blocks" must be a list')
    for i, b in enumerate(blocks):
        where = f"block #{i + 1}"
        if not isinstance(b, dict):
            raise fail(f"{where} must be an object; got {b!r}")
        bid = b.get("id")
        if not isinstance(bid, str):
            raise fail(f'{where} has no "id"')
        name, nodes, collapsed = b.get("name", bid), b.get("nodes"), b.get("collapsed", False)
        if not isinstance(name, str):
            raise fail(f"block '{bid}': \"name\" must be text; got {name!r}")
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise fail(f"block '{bid}': \"nodes\" must be a list of layer ids; got {nodes!r}")
        if not isinstance(collapsed, bool):
            raise fail(f"block '{bid}': \"collapsed\" must be true or false; got {collapsed!r}")
        extra = {k: copy.deepcopy(v) for k, v in b.items() if k not in _KNOWN_BLOCK}
        try:
            graph.add_block(Block(bid, name, nodes, collapsed, extra))
        except GraphError as exc:
            raise fail(str(exc)) from None


def load_project(path: str | os.PathLike) -> Project:
    """Read a project file, within the limits of :mod:`engine.limits`.

    The project's ``disk_state`` records the file as read (see
    :func:`engine.files.changed_on_disk`).

    Raises:
        ProjectError: The file is missing, unreadable, not a regular file, too large,
            not JSON, nested too deep, holds a key twice or an integer too long, is not
            a LayerLab project, too new, or structurally wrong; the message names the
            file (and the limit and how to raise it, for a limit).
    """
    path = Path(path)
    try:
        with limits.open_regular(path) as f:  # a FIFO is refused, never waited on
            st = os.fstat(f.fileno())
            limits.check_size(st.st_size)
            data = f.read(limits.PROJECT_MB.value() * 10**6 + 1)
            limits.check_size(len(data))  # it grew while being read
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such file") from None
    except limits.NotRegularFile:
        if path.is_dir():
            raise ProjectError(f"{path}: is a folder, not a project file") from None
        raise ProjectError(f"{path}: not a regular file") from None
    except limits.LimitExceeded as exc:
        raise ProjectError(f"{path}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path}: cannot be read ({exc})") from None
    try:
        d = limits.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except limits.LimitExceeded as exc:
        raise ProjectError(f"{path}: {exc}") from None
    project = Project.from_dict(d, source=str(path), path=path)
    project.disk_state = DiskState.of(data, st)
    return project


def dumps(project: Project) -> str:
    """Stable, diff-friendly JSON: keys sorted inside objects, lists in document order."""
    return _json(_sorted(project.to_dict()), "") + "\n"


def _json(value: Any, indent: str) -> str:
    """JSON with two-space indents, but flat lists and small objects of scalars on one line."""
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        flat = json.dumps(value, ensure_ascii=False)
        if len(flat) <= 72 and all(
            not isinstance(v, (dict, list)) or not v or _scalar_list(v) for v in value.values()
        ):
            return flat
        items = [
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {_json(v, inner)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list):
        if _scalar_list(value):
            return json.dumps(value, ensure_ascii=False)
        return "[\n" + ",\n".join(inner + _json(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value)


_TOP_ORDER = ["format", "version", "name", "description", "graph", "data", "training"]


def _sorted(d: dict[str, Any]) -> dict[str, Any]:
    out = {k: d[k] for k in _TOP_ORDER if k in d}
    out.update({k: d[k] for k in sorted(d) if k not in out})
    out["graph"] = {
        "nodes": [_node_sorted(n) for n in d["graph"]["nodes"]],
        "edges": d["graph"]["edges"],
    }
    if "blocks" in d["graph"]:
        out["graph"]["blocks"] = d["graph"]["blocks"]
    return out


def _node_sorted(n: dict[str, Any]) -> dict[str, Any]:
    out = {k: n[k] for k in ("id", "type") if k in n}
    out["params"] = dict(sorted(n.get("params", {}).items()))
    out.update({k: n[k] for k in sorted(n) if k not in out})
    return out


def save_project(project: Project, path: str | os.PathLike) -> None:
    """Write atomically (see :func:`engine.files.write_atomic`: the old file or the new
    one, never half; mode and symlinks kept; a read-only file refused) and set
    ``project.path`` and ``project.disk_state``."""
    path = Path(path)
    state = write_atomic(path, dumps(project))
    project.path = path
    project.disk_state = state


def new_project(name: str = "Untitled") -> Project:
    """An empty project with default data and training settings and one Input."""
    project = Project(name=name)
    project.graph.nodes["input"] = Node("input", "Input", {"shape": [8, 8, 1]}, (0.0, 0.0))
    return project
