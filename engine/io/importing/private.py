"""A ``keras.applications`` network with layers Keras keeps private, imported as a Backbone.

ConvNeXt (``LayerScale``) and InceptionResNetV2 (``CustomScaleLayer``) hold layer
classes that live in ``keras.src.applications``, not in ``keras.layers``: the catalog
cannot hold them as nodes. When such a network is asked for BY NAME
(:func:`engine.io.importing.rebuild.import_application`), it is imported instead as

    Input -> Backbone(application=NAME, pooling="avg", weights=null) -> the top layers

where the Backbone is the network without its classifier top (Keras builds it the
same way, ``include_top=False``) and the top layers that the pooled Backbone does not
already hold (the ``predictions`` Dense) are catalog nodes. The weights are the
source's: the Backbone's layer by layer (the source's layers and the pooled network's
are built by the same Keras code, in the same order), the top's by layer. The counts
and the predictions are the source's; a note says why it is one node.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.build.builder import build_model
from engine.build.errors import BuildError, first_line
from engine.build.weights import save_start_weights
from engine.io.importing.mapping import catalog_params, layer_trainable
from engine.io.importing.read import ModelImportError
from engine.model.graph import Edge, Graph, Node
from engine.model.layout import layered_layout
from engine.model.project import Project

PRIVATE_MODULE = "keras.src.applications"  # where Keras keeps the applications' own layers


def private_layers(model: Any) -> list[str]:
    """The class names (sorted, once each) of ``model``'s layers private to
    keras.applications, nested models included."""
    import keras

    found: set[str] = set()
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.Model):
            stack += list(layer.layers)
        elif type(layer).__module__.startswith(PRIVATE_MODULE):
            found.add(type(layer).__name__)
    return sorted(found)


def backbone_import(
    model: Any,
    app: str,
    *,
    name: str | None = None,
    weights_out: str | os.PathLike | None = None,
) -> tuple[Project, list[str]]:
    """``model`` (the application ``app`` with its top) as Input -> Backbone -> top.

    Args:
        model: The application as Keras built it (``include_top=True``).
        app: Its ``keras.applications`` name.
        name: The project name.
        weights_out: Where to keep the source's weights (the project's ``"weights"``).

    Raises:
        ModelImportError: The top cannot be split off (another Keras version builds it
            differently) or its layers are not catalog types; the message says which.
    """
    import keras

    private = private_layers(model)
    shape = [int(d) for d in model.inputs[0].shape[1:]]
    base = getattr(keras.applications, app)(
        include_top=False, weights=None, input_shape=tuple(shape), pooling="avg"
    )
    layers, base_layers = list(model.layers), list(base.layers)
    top = layers[len(base_layers) :]
    why = _mismatch(app, layers[: len(base_layers)], base_layers, top)
    if why:
        raise ModelImportError(why)
    graph = Graph()
    graph.nodes["input"] = Node("input", "Input", {"shape": shape})
    graph.nodes["backbone"] = Node(
        "backbone", "Backbone", {"application": app, "weights": None, "pooling": "avg"}
    )
    graph.edges.append(Edge("input", "backbone", 0))
    notes = [
        f"{app} holds layers private to keras.applications ({', '.join(private)}), which "
        "the catalog cannot hold: imported as one Backbone node (the network without its "
        "top, pooled) followed by its top layers"
        + (", with the same weights" if weights_out is not None else "")
    ]
    previous = "backbone"
    for layer in top:
        cls, where = type(layer).__name__, f"'{layer.name}' ({type(layer).__name__})"
        params, bad = catalog_params(cls, layer.get_config(), notes, where)
        if bad:
            raise ModelImportError(f"{app}: {where}: " + "; ".join(bad))
        graph.nodes[layer.name] = Node(
            layer.name, cls, params, trainable=layer_trainable(layer.get_config(), layer)
        )
        graph.edges.append(Edge(previous, layer.name, 0))
        previous = layer.name
    for nid, pos in layered_layout(graph).items():
        graph.nodes[nid].position = (float(pos[0]), float(pos[1]))
    project = Project(name=name or app, graph=graph)
    project.description = (
        f"Imported from keras.applications.{app} ({len(top) + 1} nodes: its network as a "
        f"Backbone and its top; {model.count_params():,} parameters). Choose its data "
        "before training."
    )
    if weights_out is not None:
        rebuilt = rebuilt_with_weights(model, project, len(base_layers))
        save_start_weights(rebuilt, project, Path(weights_out))
    return project, notes


def rebuilt_with_weights(model: Any, project: Project, n_base: int) -> Any:
    """The project built, with ``model``'s weights: its first ``n_base`` layers into
    the Backbone's network in order, the rest into the top nodes by name."""
    try:
        rebuilt = build_model(project, weights=False)
    except BuildError as exc:
        raise ModelImportError(
            f"{project.name}: cannot be rebuilt ({first_line(exc, 200)})"
        ) from None
    nested = rebuilt.get_layer("backbone")
    try:
        for source, target in zip(model.layers[:n_base], nested.layers, strict=True):
            target.set_weights(source.get_weights())
        for source in model.layers[n_base:]:
            rebuilt.get_layer(source.name).set_weights(source.get_weights())
    except ValueError as exc:
        raise ModelImportError(
            f"{project.name}: the source's weights do not fit the rebuilt model "
            f"({first_line(exc, 200)})"
        ) from None
    if rebuilt.count_params() != model.count_params():
        raise ModelImportError(
            f"{project.name}: the rebuilt model has {rebuilt.count_params():,} parameters; "
            f"the source has {model.count_params():,}"
        )
    return rebuilt


def _mismatch(app: str, layers: list[Any], base_layers: list[Any], top: list[Any]) -> str | None:
    """Why the source's first layers are not the pooled network's, or None."""
    if not top:
        return f"{app}: no top layers to split off the network"
    for source, target in zip(layers, base_layers, strict=True):
        shapes = [tuple(w.shape) for w in source.weights]
        if type(source) is not type(target) or shapes != [tuple(w.shape) for w in target.weights]:
            return (
                f"{app}: layer '{source.name}' ({type(source).__name__}) differs from the "
                f"pooled network's '{target.name}' ({type(target).__name__}); it cannot be "
                "imported as a Backbone"
            )
    return None
