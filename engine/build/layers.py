"""One layer from one node: catalog values turned into Keras objects.

:func:`make_layer` and :func:`call_layer` are used by both the builder and shape
inference, so what validation reports is what gets built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.build.backbone import BackboneCall, make_preprocessing
from engine.build.errors import BuildError, clean_message
from engine.build.operations import make_operation
from engine.catalog.specs import REGULARIZERS
from engine.catalog.table import CATALOG
from engine.model.graph import Node

# Layers that take their several inputs as separate positional arguments
# (query, value[, key]) instead of one list. keras.layers.GroupQueryAttention's class is
# named GroupedQueryAttention (its configs say GroupQueryAttention): both are listed.
POSITIONAL_INPUTS = frozenset(
    {"MultiHeadAttention", "GroupQueryAttention", "GroupedQueryAttention"}
)

#: Keras layer classes whose ``__name__`` is not their ``keras.layers`` name (the catalog's).
CLASS_ALIASES = {"GroupedQueryAttention": "GroupQueryAttention"}


def _to_tuple(value: Any) -> Any:
    """Lists (also nested) to tuples; everything else unchanged."""
    if isinstance(value, (list, tuple)):
        return tuple(_to_tuple(v) for v in value)
    return value


def _regularizer(value: Any, where: str) -> Any:
    import keras

    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, dict) or value.get("type") not in REGULARIZERS:
        raise BuildError(
            f"{where}: a regularizer must be null or "
            f'{{"type": "L1"|"L2"|"L1L2", ...}}; got {value!r}'
        )
    kind = value["type"]
    factors = {k: float(value[k]) for k in REGULARIZERS[kind] if value.get(k) is not None}
    unknown = set(value) - {"type", *REGULARIZERS[kind]}
    if unknown:
        raise BuildError(
            f"{where}: regularizer {kind} has no setting "
            f"'{sorted(unknown)[0]}'; it takes {', '.join(REGULARIZERS[kind])}"
        )
    return getattr(keras.regularizers, kind)(**factors)


def layer_kwargs(
    node_type: str, params: dict[str, Any], *, node_id: str | None = None
) -> dict[str, Any]:
    """Convert project-file values to Keras constructor keyword arguments.

    ``ints``/``shape``/``axes`` lists become tuples, regularizer dicts become
    ``keras.regularizers`` objects, and ``layer`` values (``{"type": "LSTM",
    "params": {...}}``) become constructed inner layers. Other values pass as they are.

    Args:
        node_type: A catalog type.
        params: The node's params.
        node_id: Named in error messages when given.

    Raises:
        BuildError: For an unknown type or parameter, or a malformed value.
    """
    where = f"{node_type} '{node_id}'" if node_id else node_type
    spec = CATALOG.get(node_type)
    if spec is None:
        raise BuildError(f"{where}: unknown layer type '{node_type}'")
    if not isinstance(params, dict):
        raise BuildError(f"{where}: params must be a mapping; got {params!r}")
    kwargs: dict[str, Any] = {}
    for name, value in params.items():
        pspec = spec.param(name)
        if pspec is None:
            raise BuildError(f"{where}: unknown parameter '{name}'")
        if pspec.kind in ("ints", "shape", "axes"):
            value = _to_tuple(value)
        elif pspec.kind == "regularizer":
            value = _regularizer(value, f"{where}: {name}")
        elif pspec.kind == "layer" and value is not None:
            value = _inner_layer(value, f"{where}: {name}")
        kwargs[name] = value
    return kwargs


def _inner_layer(value: Any, where: str) -> Any:
    import keras

    if not isinstance(value, dict) or value.get("type") not in CATALOG:
        raise BuildError(
            f'{where} must be {{"type": <layer type>, "params": {{...}}}}; got {value!r}'
        )
    inner_type = value["type"]
    kwargs = layer_kwargs(inner_type, value.get("params") or {})
    try:
        return getattr(keras.layers, inner_type)(**kwargs)
    except (ValueError, TypeError) as exc:
        raise BuildError(f"{where}: {inner_type}: {exc}") from None


def make_layer(
    node: Node, *, load_weights: bool = False, base_dir: str | Path | None = None
) -> Any:
    """Create the Keras layer for ``node`` (named ``node.id``), not yet called.

    For an ``Input`` node this returns the ``keras.Input`` tensor itself. A frozen
    node (``node.trainable`` False) gives a layer with ``trainable = False``. A
    ``Backbone`` gives a :class:`engine.build.backbone.BackboneCall` (the network is
    built when it is called); only with ``load_weights`` does it load its pretrained
    weights (a weights file's path is relative to ``base_dir``).

    Raises:
        BuildError: If the type, a parameter or a value is unusable.
    """
    import keras

    kwargs = layer_kwargs(node.type, node.params, node_id=node.id)
    if node.type == "Operation":  # a keras.ops function, not a layer
        return make_operation(node)
    try:
        if node.type == "Backbone":
            return BackboneCall(node, load_weights, base_dir)
        if node.type == "BackbonePreprocessing":
            layer = make_preprocessing(node)
            if not node.trainable:
                layer.trainable = False
            return layer
        if node.type == "Input":
            return keras.Input(name=node.id, **kwargs)
        cls = getattr(keras.layers, node.type, None)
        if cls is None:
            raise BuildError(f"{node.type} '{node.id}': Keras has no layer type '{node.type}'")
        layer = cls(name=node.id, **kwargs)
        if not node.trainable:
            # Frozen: weights count as non-trainable and fit() leaves them as they are;
            # a frozen BatchNormalization also runs in inference mode (Keras 3).
            layer.trainable = False
        return layer
    except (ValueError, TypeError) as exc:
        if isinstance(exc, BuildError):
            raise
        raise BuildError(f"{node.type} '{node.id}': {clean_message(str(exc))}") from None


def call_layer(node_type: str, layer: Any, inputs: list[Any]) -> Any:
    """Call ``layer`` on its inputs (ordered by port) the way its type expects.

    One input is passed alone; attention layers get them positionally (query,
    value[, key]); merge layers get a list; an ``Operation`` node's
    :class:`~engine.build.operations.OperationCall` places them itself.
    """
    if node_type == "Operation":
        return layer(inputs)
    if len(inputs) == 1:
        return layer(inputs[0])
    if node_type in POSITIONAL_INPUTS:
        return layer(*inputs)
    return layer(list(inputs))
