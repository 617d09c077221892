"""Nested models (a Sequential or functional model used as a layer) flattened on import.

A LayerLab graph is one flat graph, so a model that calls another model as a layer
(keras.io's ConvNeXt and ViT blocks, an encoder inside an autoencoder) is imported as
an equivalent flat model: every layer of the nested model becomes a node of the outer
graph, its id prefixed with the nested model's name and ``__`` (``embedding__conv1``:
a Keras layer name cannot hold ``/``, a node id must be an identifier), with the same
configuration and a copy of the same weights. Predictions and counts are the source's.

A nested model called more than once (the Siamese network's shared embedding) is
refused: each call would need its own copy of the layers, and copies train apart, a
model with a different meaning. LayerLab nodes are called once (shared layers are
refused the same way).
"""

from __future__ import annotations

from typing import Any

from engine.io.importing.read import ModelImportError

SEPARATOR = "__"  # between a nested model's name and its layers' names


def is_model(layer: Any) -> bool:
    """Whether ``layer`` is a model used as a layer (Functional or Sequential)."""
    import keras

    return isinstance(layer, keras.Model)


def flatten_nested(model: Any, file: str | None = None) -> tuple[Any, list[str]]:
    """``model`` itself when no layer of it is a model; else an equivalent flat model.

    Args:
        model: The loaded model.
        file: The file it was loaded from, named at the start of a refusal.

    Returns:
        ``(model, notes)``: the notes say which nested models were flattened.

    Raises:
        ModelImportError: A nested model is called more than once (shared), or is a
            subclassed model (code, not a graph); the message names it and says why.
    """
    if not any(is_model(layer) for layer in getattr(model, "layers", [])):
        return model, []
    try:
        return _flatten(model)
    except ModelImportError as exc:
        if file:
            raise ModelImportError(f"{file}: {exc}") from None
        raise


def _flatten(model: Any) -> tuple[Any, list[str]]:
    import keras

    name = model.name
    if not hasattr(model, "_run_through_graph"):  # a Sequential holding a model
        model = _functional_of(model)
    notes: list[str] = []
    copies: list[tuple[Any, Any]] = []
    inputs = [
        keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t._keras_history[0].name)
        for t in model.inputs
    ]
    outputs = _run(model, inputs, "", copies, notes)
    flat = keras.Model(inputs=inputs, outputs=outputs, name=name)
    for source, copy in copies:
        copy.set_weights(source.get_weights())
        copy.trainable = source.trainable
    return flat, notes


def _functional_of(model: Any) -> Any:
    """The functional graph of a Sequential model (Keras keeps one once it has an input)."""
    graph = getattr(model, "_functional", None)
    if graph is None:
        raise ModelImportError(
            f"model '{model.name}': this Sequential model has no input shape; build it "
            "with keras.Input(shape=...) first"
        )
    return graph


def _run(model: Any, inputs: Any, prefix: str, copies: list, notes: list[str]) -> Any:
    """Call copies of ``model``'s layers on ``inputs``; nested models are walked into."""
    graph = _functional_of(model) if not hasattr(model, "_run_through_graph") else model
    _refuse_shared(graph)

    def operation(op: Any) -> Any:
        if type(op).__name__ == "InputLayer":
            return op
        if is_model(op):
            return _nested_call(op, prefix, copies, notes)
        copy = _copy(op, prefix + op.name)
        if _has_weights(op):  # a keras.ops Operation (x + y) holds no weights
            copies.append((op, copy))
        return copy

    return graph._run_through_graph(inputs, operation_fn=operation)


def _nested_call(inner: Any, prefix: str, copies: list, notes: list[str]) -> Any:
    if not hasattr(inner, "_run_through_graph") and getattr(inner, "_functional", None) is None:
        if type(inner).__name__ != "Sequential":
            raise ModelImportError(
                f"model '{inner.name}' ({type(inner).__name__}) is used as a layer, but it "
                "is a subclassed model: Python code, not a graph; only Functional and "
                "Sequential models can be imported"
            )
    count = sum(1 for layer in inner.layers if not is_model(layer))
    notes.append(
        f"'{inner.name}' ({type(inner).__name__}): a nested model, imported as its "
        f"{count} layer{'s' if count != 1 else ''} in the outer graph (ids "
        f"'{prefix}{inner.name}{SEPARATOR}...'), with the same weights"
    )

    def call(*args: Any, **kwargs: Any) -> Any:
        from keras import tree

        training = kwargs.get("training")
        if training is not None:
            _refuse_training_mode(inner, training)
        tensors = [t for t in tree.flatten((args, kwargs.get("inputs"))) if _is_tensor(t)]
        graph = _functional_of(inner) if not hasattr(inner, "_run_through_graph") else inner
        if len(tensors) != len(graph.inputs):
            raise ModelImportError(
                f"model '{inner.name}' is called with {len(tensors)} inputs; it has "
                f"{len(graph.inputs)}"
            )
        return _run(inner, tensors, f"{prefix}{inner.name}{SEPARATOR}", copies, notes)

    return call


#: Layers that compute differently in training and in inference (besides BatchNormalization).
_TRAINING_ONLY = {
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianDropout",
    "GaussianNoise",
    "AlphaDropout",
}


def _refuse_training_mode(inner: Any, training: Any) -> None:
    """A nested model called with ``training=False`` (transfer learning's ``base(x,
    training=False)``) flattens to the same model only when none of its layers
    depends on the mode: a frozen BatchNormalization always runs in inference mode
    (Keras 3), so the usual frozen base imports; a trainable one, or dropout, does not."""
    found = [layer for layer in _leaves(inner) if _depends_on_mode(layer)]
    if not found:
        return
    names = ", ".join(f"'{layer.name}' ({type(layer).__name__})" for layer in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    raise ModelImportError(
        f"model '{inner.name}' ({type(inner).__name__}) is called with training={training!r}, "
        f"which fixes how {names}{more} behave; LayerLab calls every layer with its inputs "
        "only, so they would behave differently while training. Freeze the nested model "
        "(trainable = False) before saving it, or call it without training="
    )


def _leaves(model: Any) -> list[Any]:
    found = []
    for layer in model.layers:
        found += _leaves(layer) if is_model(layer) else [layer]
    return found


def _depends_on_mode(layer: Any) -> bool:
    cls = type(layer).__name__
    if cls == "BatchNormalization":
        return bool(layer.trainable)  # a frozen one runs in inference mode anyway
    if cls in _TRAINING_ONLY:
        return bool(getattr(layer, "rate", None) or getattr(layer, "stddev", None))
    if cls.startswith("Random"):
        return True
    return bool(getattr(layer, "dropout", 0) or getattr(layer, "recurrent_dropout", 0))


def _refuse_shared(graph: Any) -> None:
    calls: dict[str, int] = {}
    nested: dict[str, Any] = {}
    for nodes in graph._nodes_by_depth.values():
        for node in nodes:
            op = node.operation
            if op is not None and is_model(op):
                calls[op.name] = calls.get(op.name, 0) + 1
                nested[op.name] = op
    for name, n in calls.items():
        if n > 1:
            raise ModelImportError(
                f"model '{name}' ({type(nested[name]).__name__}) is a nested model called "
                f"{n} times (shared, as a Siamese network's embedding is): LayerLab calls "
                "each node once, and copying its layers for each call would give every "
                "call its own weights, a different model. Import the nested model on its "
                "own, or build the branches from separate layers"
            )


def _copy(layer: Any, name: str) -> Any:
    """A new layer with ``layer``'s config under ``name`` (weights are set once built)."""
    config = dict(layer.get_config())
    config["name"] = name
    return type(layer).from_config(config)


def _has_weights(op: Any) -> bool:
    """Whether ``op`` is a layer (with weights to copy), not a bare keras.ops Operation."""
    import keras

    return isinstance(op, keras.layers.Layer)


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "_keras_history")
