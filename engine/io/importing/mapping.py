"""A Keras layer's config as catalog params, and the settings a rebuilt layer would lose.

:func:`catalog_params` maps ``layer.get_config()`` to the params of the catalog
type (values equal to the catalog default are left out; approximate initializers
become notes); :func:`lost_settings` compares the source layer's config with the
rebuilt layer's, so nothing is silently dropped.
"""

from __future__ import annotations

import re
from typing import Any

from engine.catalog.checks import check_value
from engine.catalog.specs import ACTIVATION_ALIASES, INITIALIZERS, ParamSpec
from engine.catalog.table import CATALOG

#: Config keys that are about bookkeeping, not about what a layer computes
#: (``trainable`` is kept, as the node's own flag: see :func:`layer_trainable`).
_IGNORED_KEYS = {
    "name",
    "trainable",
    "dtype",
    "seed",
    "registered_name",
    "module",
    "build_config",
    "input_shape",
    "batch_input_shape",
}


def layer_trainable(config: dict[str, Any], layer: Any = None) -> bool:
    """False when the source layer is frozen (``"trainable": false`` in its config, or
    ``layer.trainable`` False on the loaded layer); the node keeps it."""
    if config.get("trainable") is False:
        return False
    return bool(getattr(layer, "trainable", True))


def snake_case(name: str) -> str:
    """A Keras class name as its function or config name: ``"GlorotUniform"`` -> ``"glorot_uniform"``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def catalog_params(
    layer_type: str, config: dict[str, Any], notes: list[str], where: str
) -> tuple[dict[str, Any], list[str]]:
    """Map a layer's ``get_config()`` to catalog params.

    Returns:
        ``(params, problems)``: params the catalog knows, without values equal to
        the catalog default (required ones are always kept); problems are values
        the catalog cannot hold. Approximate initializers go to ``notes``.
    """
    spec = CATALOG[layer_type]
    params: dict[str, Any] = {}
    problems: list[str] = []
    for pspec in spec.params:
        if pspec.name not in config:
            continue
        value = config[pspec.name]
        try:
            value = _convert(pspec, value, notes, where)
            value = _one_factor(layer_type, pspec, value)
        except ValueError as exc:
            problems.append(f"{pspec.name}: {exc} cannot be represented")
            continue
        problem = check_value(pspec, value)
        if problem:
            problems.append(problem)
            continue
        value = _compact(pspec, value)
        if pspec.required or not _same(pspec, value, pspec.default):
            params[pspec.name] = value
    pool = spec.param("pool_size")
    if (
        pool is not None
        and "strides" in params
        and _same(pool, params["strides"], params.get("pool_size", pool.default))
    ):
        del params["strides"]  # Keras's default: the step is the window size
    return params, problems


def _convert(pspec: ParamSpec, value: Any, notes: list[str], where: str) -> Any:
    if pspec.kind == "regularizer":
        return _regularizer(value)
    if pspec.kind == "initializer":
        name, note = _initializer_name(value)
        if note:
            notes.append(
                f"{where}: {pspec.name} {note.split(' ', 1)[1]} is approximated by "
                f"{name or pspec.default!r} (only matters when training from scratch)"
            )
        return name or pspec.default
    if pspec.kind == "layer":
        return _wrapped(pspec, value, notes, where)
    if pspec.kind == "ints" and pspec.length and _pairs(value):
        if any(a != b for a, b in value):  # ((top, bottom), (left, right))
            pairs = [[int(a), int(b)] for a, b in value]
            if check_value(pspec, pairs) is None:  # the catalog takes [before, after] pairs
                return pairs
            raise ValueError(f"uneven value {pairs!r}")
        return [int(a) for a, _b in value]
    if pspec.kind == "int" and isinstance(value, (list, tuple)) and len(value) == 1:
        return _json_value(value[0])
    if pspec.kind == "choice" and pspec.name.endswith("activation"):
        if isinstance(value, dict):
            raise ValueError(f"activation {value.get('class_name', value)!r}")
        value = ACTIVATION_ALIASES.get(value, value)
        if value == "linear" and pspec.default is None:
            return None
        return value
    return _json_value(value)


def _initializer_name(value: Any) -> tuple[str | None, str | None]:
    """A Keras initializer config -> (catalog name, note when it is only approximate)."""
    if value is None or isinstance(value, str):
        name = value
        return (
            name if name in INITIALIZERS else None,
            None if name in INITIALIZERS or name is None else f"initializer {name!r}",
        )
    if not isinstance(value, dict):
        return None, f"initializer {value!r}"
    cls = str(value.get("class_name", ""))
    name = snake_case(cls)
    constant = (value.get("config") or {}).get("value") if cls == "Constant" else None
    if constant in (0, 1) and not isinstance(constant, bool):  # EfficientNetV2's bias
        return ("zeros" if constant == 0 else "ones"), None
    if name not in INITIALIZERS:
        return None, f"initializer {cls}"
    import keras

    given = {k: v for k, v in (value.get("config") or {}).items() if k != "seed"}
    default = {k: v for k, v in keras.initializers.get(name).get_config().items() if k != "seed"}
    if given != default:
        changed = ", ".join(
            f"{k}={v!r}" for k, v in given.items() if k not in default or default[k] != v
        )
        return name, f"initializer {cls}({changed})"
    return name, None


def _regularizer(value: Any) -> Any:
    """A Keras regularizer config -> ``{"type": "L2", "l2": ...}`` (ValueError if impossible)."""
    if value is None:
        return None
    if isinstance(value, dict) and value.get("class_name") in ("L1", "L2", "L1L2"):
        cls = value["class_name"]
        cfg = value.get("config") or {}
        keys = ("l1", "l2") if cls == "L1L2" else (cls.lower(),)
        return {"type": cls, **{k: float(cfg.get(k, 0.0)) for k in keys}}
    raise ValueError(
        f"regularizer {value.get('class_name') if isinstance(value, dict) else value!r}"
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _same(pspec: ParamSpec, value: Any, default: Any) -> bool:
    """Equal, with an int standing for the same int in each dimension (kernel sizes)."""
    if value == default:
        return True
    length = pspec.length or 0
    if pspec.kind == "ints" and length:

        def expand(v: Any) -> Any:
            return [v] * length if isinstance(v, int) and not isinstance(v, bool) else v

        return expand(value) == expand(default)
    return False


def _compact(pspec: ParamSpec, value: Any) -> Any:
    """``[3, 3]`` -> ``3`` for sizes that are the same in every dimension (as users write them)."""
    if (
        pspec.kind == "ints"
        and pspec.length
        and pspec.length > 1
        and isinstance(value, list)
        and len(value) == pspec.length
        and len(set(map(repr, value))) == 1
        and isinstance(value[0], int)
        and check_value(pspec, value[0]) is None
    ):
        return value[0]
    return value


def _one_factor(layer_type: str, pspec: ParamSpec, value: Any) -> Any:
    """The number a (lower, upper) pair stands for: Keras writes RandomRotation(0.1)'s
    factor back as ``(-0.1, 0.1)`` and RandomContrast(0.2)'s as ``(0, 0.2)``. Kept as
    is when no single number gives the same layer."""
    if pspec.kind != "float" or pspec.per_channel or not isinstance(value, list) or len(value) != 2:
        return value
    import keras

    cls = getattr(keras.layers, layer_type)
    for candidate in dict.fromkeys((value[1], -value[0])):
        try:
            again = cls(**{pspec.name: candidate}).get_config()[pspec.name]
        except (ValueError, TypeError, KeyError):
            continue
        if _json_value(again) == value:
            return candidate
    return value


def _pairs(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value)
    )


def _wrapped(pspec: ParamSpec, value: Any, notes: list[str], where: str) -> dict[str, Any]:
    """A wrapped layer's config (Bidirectional, TimeDistributed) -> ``{"type", "params"}``."""
    if not isinstance(value, dict) or value.get("class_name") not in CATALOG:
        cls = value.get("class_name") if isinstance(value, dict) else value
        raise ValueError(f"wrapped layer {cls!r}")
    inner = value["class_name"]
    params, problems = catalog_params(inner, value.get("config") or {}, notes, where)
    if problems:
        raise ValueError(f"wrapped {inner} ({'; '.join(problems)})")
    return {"type": inner, "params": params}


def resolved_at_build(layer: Any) -> dict[str, Any]:
    """Settings Keras fills in when the layer is built, as the unbuilt default resolves them."""
    if type(layer).__name__ != "MultiHeadAttention":
        return {}
    try:
        rank = len(layer._inbound_nodes[0].input_tensors[0].shape)
    except (AttributeError, IndexError):
        return {}
    return {"attention_axes": list(range(1, rank - 1))}


def lost_settings(
    original: dict[str, Any], rebuilt: dict[str, Any], resolved: dict[str, Any] | None = None
) -> list[str]:
    """Settings whose value the rebuilt layer does not reproduce (initializers aside)."""
    lost = []
    resolved = resolved or {}
    for key, value in original.items():
        if key in _IGNORED_KEYS or key.endswith("_initializer"):
            continue
        if key not in rebuilt:  # Keras writes some settings only when set (lora_rank)
            if value not in (None, False):
                lost.append(f"{key}={_describe(value)}")
            continue
        if key in resolved and rebuilt[key] is None and _normal(value) == resolved[key]:
            continue
        if _unwrap(_normal(value)) != _unwrap(_normal(rebuilt[key])):
            lost.append(f"{key}={_describe(value)}")
    return lost


def _unwrap(value: Any) -> Any:
    """A one-element list as its element: a built layer writes ``axis=[-1]`` for ``-1``."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _describe(value: Any) -> str:
    """A config value in a few words: serialized objects as ``MaxNorm(max_value=2)``."""
    if isinstance(value, dict) and "class_name" in value:
        cfg = value.get("config")
        args = ", ".join(f"{k}={v!r}" for k, v in cfg.items()) if isinstance(cfg, dict) else ""
        return f"{value['class_name']}({args})"
    return repr(_json_value(value))


def _normal(value: Any) -> Any:
    """A config value without names, dtypes, seeds and initializers, lists for tuples."""
    if isinstance(value, dict):
        return {
            k: _normal(v)
            for k, v in value.items()
            if k not in _IGNORED_KEYS and not k.endswith("_initializer")
        }
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
