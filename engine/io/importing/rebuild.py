"""Keras models (``.keras``, ``.h5``, a config JSON, ``keras.applications``) as editable projects.

One node per layer, with the catalog's parameters (values equal to the catalog
default are left out, :mod:`engine.io.importing.mapping`), edges from the
functional graph in call order, and a layered top-to-bottom layout. Nothing is
silently lost: before anything is loaded the model's config is read as data
(:mod:`engine.io.importing.read`), and Lambda layers, custom objects, layer types
the catalog does not know and settings it cannot hold are all listed in one
:class:`~engine.io.importing.read.ModelImportError`. Loading always uses Keras's
safe mode.

The source model's weights can be kept next to the project (``weights_out``);
the project's ``"weights"`` key names that file, and training and export start
from them (:mod:`engine.build.weights`).
"""

from __future__ import annotations

import inspect
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from engine.build.builder import build_model
from engine.build.errors import first_line
from engine.build.layers import CLASS_ALIASES, POSITIONAL_INPUTS, make_layer
from engine.build.weights import save_start_weights
from engine.catalog.table import CATALOG
from engine.io.importing.grouping import group_by_prefix
from engine.io.importing.mapping import (
    catalog_params,
    layer_trainable,
    lost_settings,
    resolved_at_build,
)
from engine.io.importing.nested import flatten_nested
from engine.io.importing.operations import is_operation, operation_node
from engine.io.importing.private import backbone_import, private_layers
from engine.io.importing.read import (
    SUBCLASS_KEY,
    ModelImportError,
    UnreadableModelError,
    application_model,
    application_name,
    is_hdf5,
    load_model,
    read_config,
    refusal_text,
    scan,
    subclass_note,
    subclassed_text,
)
from engine.io.importing.states import output_port, state_inputs
from engine.model.graph import Edge, Graph, Node, is_valid_id
from engine.model.layout import layered_layout
from engine.model.project import Project


def import_model(
    path_or_model: Any, *, name: str | None = None, weights_out: str | os.PathLike | None = None
) -> Project:
    """A ``.keras``/``.h5`` file, a model config JSON or a ``keras.Model`` as a project.

    Args:
        path_or_model: The file, or a model object.
        name: The project name (default: the model's name).
        weights_out: Where to keep the source's weights (``<project>.weights.h5``);
            the project's ``"weights"`` key then names that file. A config JSON
            holds no weights, so nothing is written for it.

    Raises:
        UnreadableModelError: The file is missing or corrupt (the message names it).
        ModelImportError: Lambda layers, custom objects, unknown layer types or
            settings the catalog cannot hold; all are listed.
    """
    return import_model_with_notes(path_or_model, name=name, weights_out=weights_out)[0]


def import_model_with_notes(
    path_or_model: Any, *, name: str | None = None, weights_out: str | os.PathLike | None = None
) -> tuple[Project, list[str]]:
    """Like :func:`import_model`, also returning notes on approximations."""
    import keras

    subclass = None
    if isinstance(path_or_model, keras.Model):
        model = path_or_model
        has_weights = True
        cls = type(model).__name__
        if cls not in ("Functional", "Sequential") and isinstance(
            getattr(model, "outputs", None), (list, tuple)
        ):
            subclass = cls  # a functional graph built through a keras.Model subclass
    else:
        path = Path(path_or_model)
        config = read_config(path)
        try:
            unsafe, unknown = scan(config)
        except UnreadableModelError as exc:
            raise UnreadableModelError(f"{path}: {exc}") from None
        label = (config.get("config") or {}).get("name") or path.name
        subclass = config.get(SUBCLASS_KEY)
        if unsafe:
            raise ModelImportError(f"{path}: " + refusal_text(label, unsafe + unknown))
        try:
            model = load_model(path, config)
        except UnreadableModelError:
            if unknown:  # e.g. an application's private layer class Keras cannot rebuild
                raise ModelImportError(f"{path}: " + refusal_text(label, unknown)) from None
            raise
        has_weights = zipfile.is_zipfile(path) or is_hdf5(path)
        generic = re.fullmatch(r"(functional|sequential|model)(_\d+)?", model.name or "")
        name = name or (path.stem if generic else None)
    file = None if isinstance(path_or_model, keras.Model) else str(path_or_model)
    model, nested = flatten_nested(model, file)
    project, notes, ids = _project_from_model(model, name)
    notes = nested + notes
    if subclass:
        notes.append(subclass_note(model.name, subclass))
    if weights_out is not None and has_weights:
        _save_weights(model, project, ids, Path(weights_out))
    return project, notes


def import_application(
    name: str,
    input_shape: Any = None,
    classes: int = 1000,
    weights: str | os.PathLike | None = None,
    *,
    weights_out: str | os.PathLike | None = None,
) -> Project:
    """A ``keras.applications`` architecture as a project, untrained (nothing is downloaded).

    Args:
        name: E.g. ``"VGG16"``, ``"ResNet50"``, ``"MobileNetV2"`` (any case).
        input_shape: Image shape; the application's default when None.
        classes: Size of the classifier output.
        weights: Optional local weights file for the application.
        weights_out: Where to keep those weights next to the project.
    """
    return import_application_with_notes(
        name, input_shape, classes, weights, weights_out=weights_out
    )[0]


def import_application_with_notes(
    name: str,
    input_shape: Any = None,
    classes: int = 1000,
    weights: str | os.PathLike | None = None,
    *,
    weights_out: str | os.PathLike | None = None,
) -> tuple[Project, list[str]]:
    """Like :func:`import_application`, also returning notes. A network refused only
    for layers private to keras.applications (ConvNeXt, InceptionResNetV2) is
    imported as a Backbone node and its top (:mod:`engine.io.importing.private`)."""
    model = application_model(name, input_shape, classes, weights)
    out = weights_out if weights is not None else None
    app = application_name(name)
    if private_layers(model):  # the catalog can never hold them: skip the long refusal
        return backbone_import(model, str(app), name=app, weights_out=out)
    return import_model_with_notes(model, name=app, weights_out=out)


def project_from_model(model: Any, *, name: str | None = None) -> tuple[Project, list[str]]:
    """Turn a loaded Keras model into a project.

    Returns:
        The project and notes (approximations the user should know about).

    Raises:
        ModelImportError: Listing every layer or setting that cannot be expressed.
    """
    model, nested = flatten_nested(model)
    project, notes, _ids = _project_from_model(model, name)
    return project, nested + notes


def _project_from_model(model: Any, name: str | None) -> tuple[Project, list[str], dict[str, str]]:
    cls = type(model).__name__
    config = {
        "class_name": cls if cls in ("Sequential", "Functional") else "Functional",
        "config": _safe_config(model),
    }
    unsafe, problems = scan(config)
    if unsafe:
        raise ModelImportError(refusal_text(model.name, unsafe + problems))
    layers, edges = _edges_of(model, problems)
    ids = _node_ids(layers)
    notes: list[str] = []
    graph = Graph()
    for layer in layers:
        nid = ids[layer.name]
        cls = CLASS_ALIASES.get(type(layer).__name__, type(layer).__name__)
        policy = str(
            layer.dtype
            if cls == "InputLayer"
            else getattr(getattr(layer, "dtype_policy", None), "name", "float32")
        )
        if policy != "float32" and policy.startswith(("float", "mixed", "bfloat")):
            notes.append(
                f"'{layer.name}' ({cls}): dtype {policy} is not kept (LayerLab builds "
                "in float32; the training precision setting gives mixed precision)"
            )
        if cls == "InputLayer":
            shape = [None if d is None else int(d) for d in layer.batch_shape[1:]]
            graph.nodes[nid] = Node(nid, "Input", {"shape": shape})
            continue
        if is_operation(layer):  # x + y, keras.ops.*: an Operation node
            graph.nodes[nid], bad = operation_node(layer, nid)
            problems += [b for b in bad if b not in problems]
            continue
        if cls not in CATALOG:  # already listed by scan
            graph.nodes[nid] = Node(nid, cls, {})
            continue
        where = f"'{layer.name}' ({cls})"
        cfg = layer.get_config()
        params, bad = catalog_params(cls, cfg, notes, where)
        problems += [f"{where}: {b}" for b in bad]
        node = Node(nid, cls, params, trainable=layer_trainable(cfg, layer))
        if not bad:
            try:
                rebuilt = make_layer(node).get_config()
            except (ValueError, TypeError) as exc:
                problems.append(f"{where}: cannot be rebuilt ({first_line(exc, 200)})")
            else:
                lost = lost_settings(cfg, rebuilt, resolved_at_build(layer))
                if lost:
                    problems.append(
                        f"{where}: setting{'s' if len(lost) > 1 else ''} the "
                        f"catalog cannot hold: {', '.join(lost)}"
                    )
        graph.nodes[nid] = node
    for src, dst, port, *source_port in edges:
        if src in ids and dst in ids:  # operations that are not layers are already listed
            graph.edges.append(Edge(ids[src], ids[dst], port, *source_port))
    _outputs_in_order(model, ids, graph, problems, {e[0] for e in edges})
    if problems:
        raise ModelImportError(refusal_text(model.name, problems))
    _lay_out(graph)
    project = Project(name=name or model.name or "Imported model", graph=graph)
    count = sum(1 for node in graph.nodes.values() if node.type != "Input")
    project.description = (
        f"Imported from the Keras model '{model.name}' ({count} layers, "
        f"{model.count_params():,} parameters). Choose its data before "
        "training."
    )
    return project, notes, ids


def _safe_config(model: Any) -> dict[str, Any]:
    subclassed = ModelImportError(subclassed_text(model.name, type(model).__name__))
    if type(model).__name__ != "Sequential" and not isinstance(
        getattr(model, "outputs", None), (list, tuple)
    ):
        raise subclassed
    try:
        return model.get_config()
    except Exception:  # a subclassed model has no config: it holds code
        raise subclassed from None


def _node_ids(layers: list[Any]) -> dict[str, str]:
    """Layer name -> a valid, unique node id (the name itself when it can be)."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for layer in layers:
        base = (
            layer.name
            if is_valid_id(layer.name)
            else (re.sub(r"\W+", "_", layer.name, flags=re.ASCII).strip("_") or "layer")
        )
        if not is_valid_id(base):
            base = "layer_" + base
        nid, i = base, 1
        while nid in taken:
            nid, i = f"{base}_{i}", i + 1
        taken.add(nid)
        ids[layer.name] = nid
    return ids


def _edges_of(model: Any, problems: list[str]) -> tuple[list[Any], list[tuple]]:
    """The model's layers (inputs first) and edges ``(source, target, port, source_port)``
    by layer name."""
    if type(model).__name__ == "Sequential":
        return _sequential_edges(model, problems)
    layers = list(getattr(model, "operations", None) or model.layers)  # with keras.ops
    edges: list[tuple[str, str, int, int]] = []
    calls: dict[str, int] = {}
    by_depth = getattr(model, "_nodes_by_depth", {})
    for node in (n for depth in sorted(by_depth, reverse=True) for n in by_depth[depth]):
        op = node.operation
        if type(op).__name__ == "InputLayer":
            continue
        calls[op.name] = calls.get(op.name, 0) + 1
        for port, tensor in enumerate(_call_inputs(op, node, problems)):
            src, _node_index, tensor_index = tensor._keras_history
            source_port = output_port(src, tensor_index)
            if source_port is None:
                problems.append(
                    f"'{op.name}' ({type(op).__name__}) reads output "
                    f"{tensor_index} of '{src.name}'; LayerLab layers have one "
                    "output (a recurrent layer's states aside)"
                )
            edges.append((src.name, op.name, port, source_port or 0))
    for name, n in calls.items():
        if n > 1:
            layer = model.get_layer(name)
            problems.append(
                f"'{name}' ({type(layer).__name__}) is shared: called {n} times; "
                "a LayerLab node is called once"
            )
    return layers, edges


def _call_inputs(op: Any, node: Any, problems: list[str]) -> list[Any]:
    """A call's input tensors in port order (attention layers: query, value, key)."""
    args, kwargs = node.arguments.args, node.arguments.kwargs
    if type(op).__name__ in POSITIONAL_INPUTS:
        names = ("query", "value", "key")
        ordered = list(args[:3]) + [kwargs[k] for k in names[len(args[:3]) :] if k in kwargs]
        extra = [k for k, v in kwargs.items() if k not in names and _has_tensor(v)]
    else:
        from keras import tree

        ordered = [t for t in tree.flatten(args) if _is_tensor(t)]
        states = state_inputs(op, kwargs)  # layer(x, initial_state=[h, c])
        ordered += states
        extra = [
            k for k, v in kwargs.items() if _has_tensor(v) and not (states and k == "initial_state")
        ]
    for k in extra:
        problems.append(
            f"'{op.name}' ({type(op).__name__}) is called with a tensor for "
            f"'{k}'; LayerLab passes only the layer's inputs"
        )
    for k, v in kwargs.items():
        if not _has_tensor(v) and not _call_default(op, k, v):
            problems.append(
                f"'{op.name}' ({type(op).__name__}) is called with {k}={v!r}; "
                "LayerLab calls a layer with its inputs only"
            )
    return [t for t in ordered if _is_tensor(t)]


def _call_default(op: Any, key: str, value: Any) -> bool:
    """Whether a call argument has the value the layer's ``call`` uses when it is not
    given (None counts: Keras fills in ``training``/``mask`` itself)."""
    if value is None:
        return True
    try:
        param = inspect.signature(op.call).parameters.get(key)
        return (
            param is not None
            and param.default is not inspect.Parameter.empty
            and bool(param.default == value)
        )
    except (TypeError, ValueError):
        return False


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "_keras_history")


def _has_tensor(value: Any) -> bool:
    from keras import tree

    return any(_is_tensor(t) for t in tree.flatten(value))


def _sequential_edges(model: Any, problems: list[str]) -> tuple[list[Any], list[tuple]]:
    layers = list(model.layers)
    try:
        first = model.inputs[0]
        input_layer = first._keras_history[0]
    except (AttributeError, ValueError, IndexError, TypeError):
        input_layer = None
    if input_layer is None:
        raise ModelImportError(
            f"model '{model.name}': this Sequential model has no input "
            "shape; build it with keras.Input(shape=...) first"
        )
    chain = [input_layer, *layers]
    edges = [(a.name, b.name, 0) for a, b in zip(chain, chain[1:])]
    return chain, edges


def _outputs_in_order(
    model: Any, ids: dict[str, str], graph: Graph, problems: list[str], sources: set[str]
) -> None:
    """Check the outputs can be expressed, and order nodes so output/input order is kept.

    ``sources``: names of the layers that feed another in the Keras model (an input
    feeding only an unsupported layer is not "an input that feeds no layer").
    """
    if type(model).__name__ == "Sequential":
        return
    for t in model.outputs:
        layer, _node_index, tensor_index = t._keras_history
        if tensor_index:
            problems.append(
                f"a model output is output {tensor_index} of '{layer.name}' (a state); "
                "in LayerLab a layer's first output is the model output"
            )
    outs = [t._keras_history[0].name for t in model.outputs]
    outs = [n for n in outs if n in ids]
    for name in dict.fromkeys(n for n in outs if outs.count(n) > 1):
        problems.append(
            f"'{name}' is listed {outs.count(name)} times among the model's "
            "outputs; a LayerLab node is one output"
        )
    fed = {e.source for e in graph.edges}
    for t in model.inputs:
        name = t._keras_history[0].name
        if name in ids and ids[name] not in fed and name not in sources:
            problems.append(
                f"input '{name}' feeds no layer; in LayerLab a node without "
                "outgoing wires is an output, so remove the input first"
            )
    for name in outs:
        if ids[name] in fed:
            problems.append(
                f"'{name}' is a model output and also feeds other layers; in "
                "LayerLab only layers without outgoing wires are outputs"
            )
    ins = [t._keras_history[0].name for t in model.inputs]
    for wanted in (ins, outs):
        _reorder(graph, [ids[n] for n in wanted])


def _reorder(graph: Graph, wanted: list[str]) -> None:
    """Put the ``wanted`` nodes in that order, in the slots they already occupy."""
    order = list(graph.nodes)
    slots = sorted(order.index(n) for n in wanted if n in graph.nodes)
    for slot, nid in zip(slots, [n for n in wanted if n in graph.nodes]):
        order[slot] = nid
    graph.nodes = {nid: graph.nodes[nid] for nid in order}


def _lay_out(graph: Graph) -> None:
    for nid, pos in layered_layout(graph).items():
        graph.nodes[nid].position = (float(pos[0]), float(pos[1]))
    for block in group_by_prefix(graph.nodes):  # stages and units, by layer-name prefix
        graph.add_block(block)


def _save_weights(model: Any, project: Project, ids: dict[str, str], out: Path) -> None:
    """Build the project, copy the source's weights by layer name, save them to ``out``."""
    rebuilt = build_model(project)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        target = rebuilt.get_layer(ids.get(layer.name, layer.name))
        try:
            target.set_weights(weights)
        except ValueError as exc:
            raise ModelImportError(
                f"'{layer.name}': its weights do not fit the rebuilt layer ({first_line(exc, 200)})"
            ) from None
    if rebuilt.count_params() != model.count_params():
        raise ModelImportError(
            f"model '{model.name}': the rebuilt model has "
            f"{rebuilt.count_params():,} parameters; the source has "
            f"{model.count_params():,}"
        )
    save_start_weights(rebuilt, project, out)


_NOTE = re.compile(r"^'([^']+)' \(([\w.]+)\): (.*)$", re.S)


def grouped_notes(notes: list[str], shown: int = 3) -> list[str]:
    """Notes that differ only in the layer they name, as one line each (the first
    ``shown`` layers named, then a count), in the order they first appear."""
    groups: dict[tuple[str, str], list[str]] = {}
    for note in notes:
        m = _NOTE.match(note)
        key = (m.group(2), m.group(3)) if m else ("", note)
        groups.setdefault(key, []).append(m.group(1) if m else "")
    lines = []
    for (layer_type, text), names in groups.items():
        if not layer_type:
            lines.append(text)
            continue
        who = ", ".join(f"'{n}'" for n in names[:shown])
        if len(names) > shown:
            who += f" and {len(names) - shown} more"
        lines.append(f"{who} ({layer_type}): {text}")
    return lines
