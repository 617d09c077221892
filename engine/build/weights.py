"""The weights a project starts from: an imported model's trained weights.

``layerlab import`` (and File > Import in the window) keeps the source model's
weights in a Keras weights file named by the project's ``"weights"`` key (relative
to the project file, or absolute). The file also holds the graph as it was imported
(a ``layerlab_graph`` dataset that Keras ignores). Training and export start from
these weights: all of them while the graph is unchanged, and after edits every layer
that kept its name and its weight shapes, while added or reshaped layers start fresh.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from engine.build.builder import build_model
from engine.files import atomic_path
from engine.limits import NotRegularFile, open_regular
from engine.model.project import Project

GRAPH_KEY = "layerlab_graph"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first 8 bytes of the HDF5 files LayerLab writes
_MAX_GRAPH_BYTES = 64 * 10**6  # the stored graph of a project within engine.limits' size


class WeightsError(ValueError):
    """The project's weights file is missing or unreadable (the message names it)."""


@dataclass
class Loaded:
    """What :func:`load_start_weights` did.

    Attributes:
        path: The weights file.
        loaded: Layers that start from the file's weights.
        fresh: Layers with weights that start fresh (added or changed since the import).
    """

    path: Path
    loaded: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)

    def message(self) -> str:
        """One line for the training log or the export's report."""
        if not self.fresh:
            return f"the model starts from the imported weights in {self.path.name}"
        if not self.loaded:
            return (
                f"no layer matches the imported weights in {self.path.name} any more "
                "(names or shapes changed): the model starts fresh"
            )
        shown = ", ".join(f"'{n}'" for n in self.fresh[:5])
        more = f" and {len(self.fresh) - 5} more" if len(self.fresh) > 5 else ""
        return (
            f"{len(self.loaded)} layers start from the imported weights in "
            f"{self.path.name}; {shown}{more} (changed since the import) start fresh"
        )


def save_start_weights(model: Any, project: Any, out: str | Path) -> Path:
    """Write ``model``'s weights and the project's graph to ``out``, and name the file
    (relative to the project's folder) in the project's ``"weights"`` key."""
    import h5py

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(out)
    with h5py.File(out, "a") as f:
        f.create_dataset(GRAPH_KEY, data=json.dumps(_structure(project.graph.to_dict())))
    project.extra["weights"] = out.name
    return out


def weights_file(project: Any, base_dir: str | Path | None = None) -> Path | None:
    """The weights file a project (a Project or its dict) names, or None."""
    extra = project if isinstance(project, dict) else project.extra
    name = extra.get("weights")
    if not name or not isinstance(name, str):
        return None
    path = Path(name)
    if base_dir is None and not isinstance(project, dict):
        base_dir = project.base_dir
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


class WeightsRefused(PermissionError):
    """Save did not copy the file a project names as its weights: it is not a weights file
    LayerLab wrote (a received project may name any file, such as ``~/.ssh/id_rsa``).

    An :class:`OSError` (``EACCES``) whose message names the file's full path and why,
    so a caller that reports failed saves shows it as it is; nothing was written.
    """

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            errno.EACCES,
            f"the project names {path} as its weights, which was not copied: {why}. "
            'Only weights files made by LayerLab\'s import are copied; remove the "weights" '
            "key or import the model again",
            str(path),
        )

    def __str__(self) -> str:
        return self.strerror


def _not_layerlab_weights(f: BinaryIO) -> str | None:
    """Why the open file ``f`` is not a weights file LayerLab's import wrote, or None.

    The proof is cheap and specific: the HDF5 signature at the start, and the graph
    that :func:`save_start_weights` stores beside the weights (a scalar JSON text with
    ``nodes`` and ``edges``).
    """
    import h5py

    if f.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
        return "it is not an HDF5 weights file"
    f.seek(0)
    try:
        with h5py.File(f, "r") as h5:
            stored = h5.get(GRAPH_KEY)
            if not isinstance(stored, h5py.Dataset):
                return "it holds no graph stored by LayerLab's import"
            if stored.shape != () or stored.id.get_storage_size() > _MAX_GRAPH_BYTES:
                return "its stored graph is not one LayerLab wrote"
            graph = json.loads(stored[()])
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return f"it cannot be read as a weights file ({type(exc).__name__})"
    if not (
        isinstance(graph, dict)
        and isinstance(graph.get("nodes"), list)
        and isinstance(graph.get("edges"), list)
    ):
        return "its stored graph is not one LayerLab wrote"
    return None


def carry_weights(project: Any, new_path: str | Path) -> Path | None:
    """Before ``project`` is saved as ``new_path``: keep its weights file beside it.

    A file already in the new folder is named relative to it; one elsewhere (an import
    not saved yet, or a Save As to another folder) is copied to
    ``<new stem>.weights.h5``, but only when it is a weights file LayerLab's import
    wrote (HDF5, holding the graph as imported): never any other file a project names.
    The copy is atomic (a failed copy leaves an existing ``<new stem>.weights.h5`` as
    it was) and keeps the source's permission bits.

    Returns:
        The file the project now names, or None when it names none (or the named file
        is missing: the key is then left as it is).

    Raises:
        WeightsRefused: The named file is not a weights file LayerLab wrote; nothing
            was copied and the project is unchanged.
        OSError: The copy failed (see :func:`engine.files.atomic_path`).
    """
    source = weights_file(project)
    if source is None or not source.is_file():
        return None
    folder = Path(new_path).resolve().parent
    if source.resolve().parent == folder:
        target = source.resolve()
    else:
        target = folder / (Path(new_path).stem + ".weights.h5")
        source = Path(os.path.abspath(source))
        # one open file for the check and the copy: what was checked is what is copied
        try:
            f = open_regular(source)
        except NotRegularFile:
            raise WeightsRefused(source, "it is not a regular file") from None
        with f:
            st = os.fstat(f.fileno())
            why = _not_layerlab_weights(f)
            if why:
                raise WeightsRefused(source, why)
            f.seek(0)
            with (
                atomic_path(target, suffix=".weights.h5", mode=stat.S_IMODE(st.st_mode)) as tmp,
                open(tmp, "wb") as out,
            ):
                shutil.copyfileobj(f, out, 1 << 20)
    project.extra["weights"] = target.name
    return target


def load_start_weights(
    model: Any, project: Any, base_dir: str | Path | None = None
) -> Loaded | None:
    """Put the project's imported weights into ``model`` (built from the project).

    Returns:
        What was loaded, or None when the project names no weights file.

    Raises:
        WeightsError: The file is missing or cannot be read.
    """
    path = weights_file(project, base_dir)
    if path is None:
        return None
    if not path.is_file():
        raise WeightsError(f"{path}: the project's weights file is missing")
    graph = project["graph"] if isinstance(project, dict) else project.graph.to_dict()
    stored = _stored_graph(path)
    try:
        if stored is None or stored == _structure(graph):
            _quiet_load(model, path)
            return Loaded(path, loaded=[layer.name for layer in model.layers if layer.weights])
        return _load_by_name(model, path, stored)
    except WeightsError:
        raise
    except Exception as exc:  # a file Keras cannot read, or one of another model
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(f"{path}: the weights do not fit the model ({first[:200]})") from None


def _structure(graph: dict[str, Any]) -> dict[str, Any]:
    """A graph without what does not change weights (positions, unknown keys)."""
    return {
        "nodes": [
            {"id": n["id"], "type": n["type"], "params": n.get("params") or {}}
            for n in graph.get("nodes", [])
        ],
        "edges": sorted(
            ([e["source"], e["target"], int(e.get("port", 0))] for e in graph.get("edges", [])),
            key=lambda e: (e[1], e[2], e[0]),
        ),
    }


def _stored_graph(path: Path) -> dict[str, Any] | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if GRAPH_KEY not in f:
                return None
            return json.loads(f[GRAPH_KEY][()])
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a weights file ({exc})") from None


def _quiet_load(model: Any, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.load_weights(path)


def _load_by_name(model: Any, path: Path, stored: dict[str, Any]) -> Loaded:
    """The graph changed since the import: rebuild it as imported, load the file into
    that, and copy each layer whose name and weight shapes are unchanged."""
    original = Project.from_dict(
        {
            "format": "layerlab",
            "version": 1,
            "name": "imported",
            "graph": {
                "nodes": stored["nodes"],
                "edges": [{"source": s, "target": t, "port": p} for s, t, p in stored["edges"]],
            },
        },
        source=str(path),
    )
    reference = build_model(original)
    _quiet_load(reference, path)
    by_name = {layer.name: layer for layer in reference.layers}
    done = Loaded(path)
    for layer in model.layers:
        if not layer.weights:
            continue
        source = by_name.get(layer.name)
        values = source.get_weights() if source is not None else []
        if (
            values
            and type(source) is type(layer)
            and [v.shape for v in values] == [tuple(w.shape) for w in layer.weights]
        ):
            layer.set_weights(values)
            done.loaded.append(layer.name)
        else:
            done.fresh.append(layer.name)
    return done
