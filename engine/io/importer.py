"""Keras models (``.keras``, ``.h5``, a config JSON, ``keras.applications``) as editable projects.

One node per layer, with the catalog's parameters (values equal to the catalog
default are left out), edges from the functional graph in call order, and a
layered top-to-bottom layout. Nothing is silently lost: before anything is
loaded the model's config is read as data, and Lambda layers, custom objects,
layer types the catalog does not know and settings it cannot hold are all
listed in one :class:`ModelImportError`. Loading always uses Keras's safe mode.

The source model's weights can be kept next to the project (``weights_out``);
the project's ``"weights"`` key names that file, and training and export start
from them (:mod:`engine.build.weights`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

from engine.build.weights import save_start_weights
from engine.catalog.checks import check_value
from engine.catalog.specs import ACTIVATION_ALIASES, INITIALIZERS, ParamSpec
from engine.catalog.table import CATALOG
from engine.model.graph import Edge, Graph, Node, is_valid_id
from engine.model.project import Project, save_project

#: ``keras.applications`` architectures that can be asked for by name (untrained; nothing
#: is downloaded). MobileNetV3, ConvNeXt and InceptionResNetV2 are then refused with the
#: list of what the catalog cannot hold yet (docs/export-import.md).
APPLICATIONS = (
    "VGG16",
    "VGG19",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "ResNet50V2",
    "ResNet101V2",
    "ResNet152V2",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Small",
    "MobileNetV3Large",
    "DenseNet121",
    "DenseNet169",
    "DenseNet201",
    "InceptionV3",
    "Xception",
    "EfficientNetB0",
    "EfficientNetB1",
    "EfficientNetB2",
    "EfficientNetB3",
    "EfficientNetB4",
    "EfficientNetB5",
    "EfficientNetB6",
    "EfficientNetB7",
    "EfficientNetV2B0",
    "EfficientNetV2B1",
    "EfficientNetV2B2",
    "EfficientNetV2B3",
    "EfficientNetV2S",
    "NASNetMobile",
    "NASNetLarge",
    "ConvNeXtTiny",
    "InceptionResNetV2",
)
_MODEL_CLASSES = ("Functional", "Model", "Sequential")
#: Config keys that are about bookkeeping, not about what a layer computes.
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


class ModelImportError(ValueError):
    """The model cannot become a project; the message lists every reason, by layer."""


class UnreadableModelError(ModelImportError):
    """The file is missing, corrupt or not a Keras model; the message names it."""


# ---------------------------------------------------------------- reading
def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The model config (``{"class_name": ..., "config": ...}``) of a file, read as data.

    Raises:
        UnreadableModelError: Naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableModelError(f"{path}: no such file")
    if path.is_dir():
        raise UnreadableModelError(
            f"{path}: is a folder, not a model file (a SavedModel "
            "cannot be imported; use a .keras or .h5 file)"
        )
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                if "config.json" not in z.namelist():
                    raise UnreadableModelError(
                        f"{path}: a zip file without config.json, not a .keras model"
                    )
                config = json.loads(z.read("config.json"))
        elif _is_hdf5(path):
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
            if raw is None:
                raise UnreadableModelError(
                    f"{path}: an HDF5 file without a model config "
                    "(a weights-only file cannot be imported)"
                )
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        elif path.suffix in (".keras", ".h5"):
            raise UnreadableModelError(
                f"{path}: not a Keras model file (a .keras file is a zip archive and an .h5 "
                "file is HDF5; this one is neither: truncated or of another kind)"
            )
        else:
            config = json.loads(path.read_text(encoding="utf-8"))
    except UnreadableModelError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        kind = {".keras": "a .keras model", ".h5": "an HDF5 model"}.get(
            path.suffix, "a Keras model config"
        )
        raise UnreadableModelError(f"{path}: cannot be read as {kind} ({_short(exc)})") from None
    if isinstance(config, dict) and "config" not in config and "layers" in config:
        config = {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": config,
            "registered_name": "Functional",
        }
    if (
        not isinstance(config, dict)
        or config.get("class_name") not in _MODEL_CLASSES
        or not isinstance(config.get("config"), dict)
    ):
        raise UnreadableModelError(
            f"{path}: not a Keras model config (expected a "
            "Functional or Sequential model, as model.to_json() writes)"
        )
    return config


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def _short(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def refusals(config: dict[str, Any]) -> list[str]:
    """Everything in a model config that stops the import, one line each.

    Lambda layers, custom (non-Keras) objects, nested models and layer types the
    catalog does not know, all of them, by layer name and type.
    """
    unsafe, unknown = _scan(config)
    return unsafe + unknown


def _scan(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(unsafe, unknown)``: code Keras safe mode must not load; types the catalog lacks."""
    layers = config.get("config", {}).get("layers", [])
    unsafe: list[str] = []
    unknown: list[str] = []
    for i, entry in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
            raise UnreadableModelError(
                f"layer #{i + 1} of the model config is not a layer entry (got {str(entry)[:60]!r})"
            )
        cls = entry.get("class_name", "?")
        name = (entry.get("config") or {}).get("name") or entry.get("name") or "?"
        if cls == "Lambda":
            unsafe.append(
                f"'{name}' (Lambda): Lambda layers hold Python code, which is never "
                "loaded (Keras safe mode); rebuild it from catalog layers"
            )
            continue
        custom = _custom_objects(entry)
        module = str(entry.get("module") or "")
        if module.startswith(("keras.src.ops", "keras.ops")):
            unknown.append(
                f"'{name}' ({cls}): a Keras operation (such as `x + 3` or "
                f"keras.ops.{_snake(cls)}), not a layer; use a catalog layer instead"
            )
        elif custom:
            unsafe.append(
                f"'{name}' ({cls}): custom object{'s' if len(custom) > 1 else ''} "
                f"{', '.join(custom)} (code outside Keras is never loaded)"
            )
        elif cls in _MODEL_CLASSES:
            unknown.append(
                f"'{name}' ({cls}): a nested model; LayerLab projects hold one flat graph"
            )
        elif cls != "InputLayer" and cls not in CATALOG:
            unknown.append(f"'{name}' ({cls}): the catalog has no layer type '{cls}'")
    return unsafe, unknown


def _custom_objects(value: Any) -> list[str]:
    """Names of serialized objects inside ``value`` whose code is not Keras's own."""
    found: list[str] = []
    if isinstance(value, dict):
        module = value.get("module")
        registered = value.get("registered_name")
        if "class_name" in value and (
            (
                isinstance(module, str)
                and not module.startswith("keras")
                and module not in ("builtins", "numpy")
            )
            or (isinstance(registered, str) and ">" in registered)
        ):
            found.append(f"{value.get('class_name')} from {module or registered}")
        for k, v in value.items():
            if k != "inbound_nodes":
                found += _custom_objects(v)
    elif isinstance(value, list):
        for v in value:
            found += _custom_objects(v)
    return found


def _load(path: Path, config: dict[str, Any]) -> Any:
    import keras

    try:
        if zipfile.is_zipfile(path) or _is_hdf5(path):
            return keras.models.load_model(path, safe_mode=True, compile=False)
        return keras.models.model_from_json(json.dumps(config))
    except Exception as exc:  # Keras raises many kinds for a bad file
        raise UnreadableModelError(f"{path}: Keras cannot load it ({_short(exc)})") from None


# ------------------------------------------------------------ param mapping
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


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
    name = _snake(cls)
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


def _resolved_at_build(layer: Any) -> dict[str, Any]:
    """Settings Keras fills in when the layer is built, as the unbuilt default resolves them."""
    if type(layer).__name__ != "MultiHeadAttention":
        return {}
    try:
        rank = len(layer._inbound_nodes[0].input_tensors[0].shape)
    except (AttributeError, IndexError):
        return {}
    return {"attention_axes": list(range(1, rank - 1))}


def _lost_settings(
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


# ------------------------------------------------------------------- graph
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


def _edges_of(model: Any, problems: list[str]) -> tuple[list[Any], list[tuple[str, str, int]]]:
    """The model's layers (inputs first) and edges ``(source, target, port)`` by layer name."""
    if type(model).__name__ == "Sequential":
        return _sequential_edges(model, problems)
    layers = list(model.layers)
    edges: list[tuple[str, str, int]] = []
    calls: dict[str, int] = {}
    by_depth = getattr(model, "_nodes_by_depth", {})
    for node in (n for depth in sorted(by_depth, reverse=True) for n in by_depth[depth]):
        op = node.operation
        if type(op).__name__ == "InputLayer":
            continue
        calls[op.name] = calls.get(op.name, 0) + 1
        for port, tensor in enumerate(_call_inputs(op, node, problems)):
            src, _node_index, tensor_index = tensor._keras_history
            if tensor_index:
                problems.append(
                    f"'{op.name}' ({type(op).__name__}) reads output "
                    f"{tensor_index} of '{src.name}'; LayerLab layers have one "
                    "output"
                )
            edges.append((src.name, op.name, port))
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
    from engine.build.layers import POSITIONAL_INPUTS

    args, kwargs = node.arguments.args, node.arguments.kwargs
    if type(op).__name__ in POSITIONAL_INPUTS:
        names = ("query", "value", "key")
        ordered = list(args[:3]) + [kwargs[k] for k in names[len(args[:3]) :] if k in kwargs]
        extra = [k for k, v in kwargs.items() if k not in names and _has_tensor(v)]
    else:
        from keras import tree

        ordered = [t for t in tree.flatten(args) if _is_tensor(t)]
        extra = [k for k, v in kwargs.items() if _has_tensor(v)]
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
    import inspect

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


def _outputs_in_order(model: Any, ids: dict[str, str], graph: Graph, problems: list[str]) -> None:
    """Check the outputs can be expressed, and order nodes so output/input order is kept."""
    if type(model).__name__ == "Sequential":
        return
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
        if name in ids and ids[name] not in fed:
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


def project_from_model(model: Any, *, name: str | None = None) -> tuple[Project, list[str]]:
    """Turn a loaded Keras model into a project.

    Returns:
        The project and notes (approximations the user should know about).

    Raises:
        ModelImportError: Listing every layer or setting that cannot be expressed.
    """
    project, notes, _ids = _project_from_model(model, name)
    return project, notes


def _project_from_model(model: Any, name: str | None) -> tuple[Project, list[str], dict[str, str]]:
    from engine.build.layers import make_layer

    config = {"class_name": type(model).__name__, "config": _safe_config(model)}
    unsafe, problems = _scan(config)
    if unsafe:
        raise ModelImportError(_refusal_text(model.name, unsafe + problems))
    layers, edges = _edges_of(model, problems)
    ids = _node_ids(layers)
    notes: list[str] = []
    graph = Graph()
    for layer in layers:
        nid = ids[layer.name]
        cls = type(layer).__name__
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
        if cls not in CATALOG:  # already listed by _scan
            graph.nodes[nid] = Node(nid, cls, {})
            continue
        where = f"'{layer.name}' ({cls})"
        cfg = layer.get_config()
        params, bad = catalog_params(cls, cfg, notes, where)
        problems += [f"{where}: {b}" for b in bad]
        node = Node(nid, cls, params)
        if not bad:
            try:
                rebuilt = make_layer(node).get_config()
            except (ValueError, TypeError) as exc:
                problems.append(f"{where}: cannot be rebuilt ({_short(exc)})")
            else:
                lost = _lost_settings(cfg, rebuilt, _resolved_at_build(layer))
                if lost:
                    problems.append(
                        f"{where}: setting{'s' if len(lost) > 1 else ''} the "
                        f"catalog cannot hold: {', '.join(lost)}"
                    )
        graph.nodes[nid] = node
    for src, dst, port in edges:
        if src in ids and dst in ids:  # operations that are not layers are already listed
            graph.edges.append(Edge(ids[src], ids[dst], port))
    _outputs_in_order(model, ids, graph, problems)
    if problems:
        raise ModelImportError(_refusal_text(model.name, problems))
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
    subclassed = ModelImportError(
        f"model '{model.name}' ({type(model).__name__}): a subclassed model is Python code, "
        "not a graph; only Functional and Sequential models can be imported"
    )
    if type(model).__name__ != "Sequential" and not isinstance(
        getattr(model, "outputs", None), (list, tuple)
    ):
        raise subclassed
    try:
        return model.get_config()
    except Exception:  # a subclassed model has no config: it holds code
        raise subclassed from None


def _refusal_text(model_name: str, problems: list[str]) -> str:
    n = len(problems)
    head = f"model '{model_name}' cannot be imported: {n} problem{'s' if n > 1 else ''}"
    missing = dict.fromkeys(
        re.findall(r"the catalog has no layer type '(\w+)'", "\n".join(problems))
    )
    if missing:
        head += f" (layer types the catalog lacks: {', '.join(missing)})"
    return head + "\n" + "\n".join(f"  - {p}" for p in problems)


def _lay_out(graph: Graph) -> None:
    from engine.model.layout import layered_layout

    for nid, pos in layered_layout(graph).items():
        graph.nodes[nid].position = (float(pos[0]), float(pos[1]))


# ---------------------------------------------------------------- weights
def _save_weights(model: Any, project: Project, ids: dict[str, str], out: Path) -> None:
    """Build the project, copy the source's weights by layer name, save them to ``out``."""
    from engine.build.builder import build_model

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
                f"'{layer.name}': its weights do not fit the rebuilt layer ({_short(exc)})"
            ) from None
    if rebuilt.count_params() != model.count_params():
        raise ModelImportError(
            f"model '{model.name}': the rebuilt model has "
            f"{rebuilt.count_params():,} parameters; the source has "
            f"{model.count_params():,}"
        )
    save_start_weights(rebuilt, project, out)


# ------------------------------------------------------------------ public
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


def import_model_with_notes(
    path_or_model: Any, *, name: str | None = None, weights_out: str | os.PathLike | None = None
) -> tuple[Project, list[str]]:
    """Like :func:`import_model`, also returning notes on approximations."""
    import keras

    if isinstance(path_or_model, keras.Model):
        model = path_or_model
        has_weights = True
    else:
        path = Path(path_or_model)
        config = read_config(path)
        try:
            unsafe, unknown = _scan(config)
        except UnreadableModelError as exc:
            raise UnreadableModelError(f"{path}: {exc}") from None
        label = (config.get("config") or {}).get("name") or path.name
        if unsafe:
            raise ModelImportError(f"{path}: " + _refusal_text(label, unsafe + unknown))
        try:
            model = _load(path, config)
        except UnreadableModelError:
            if unknown:  # e.g. an application's private layer class Keras cannot rebuild
                raise ModelImportError(f"{path}: " + _refusal_text(label, unknown)) from None
            raise
        has_weights = zipfile.is_zipfile(path) or _is_hdf5(path)
        generic = re.fullmatch(r"(functional|sequential|model)(_\d+)?", model.name or "")
        name = name or (path.stem if generic else None)
    project, notes, ids = _project_from_model(model, name)
    if weights_out is not None and has_weights:
        _save_weights(model, project, ids, Path(weights_out))
    return project, notes


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


def application_name(name: str) -> str | None:
    """The ``keras.applications`` name matching ``name`` (any case), or None."""
    key = name.removeprefix("keras.applications.").lower()
    return next((a for a in APPLICATIONS if a.lower() == key), None)


def application_model(
    name: str,
    input_shape: Any = None,
    classes: int = 1000,
    weights: str | os.PathLike | None = None,
) -> Any:
    """Build a ``keras.applications`` architecture (untrained unless a local weights file)."""
    import keras

    app = application_name(name)
    if app is None:
        raise ModelImportError(
            f"unknown application {name!r}; choose one of {', '.join(APPLICATIONS)}"
        )
    if weights is not None and not Path(weights).is_file():
        raise ModelImportError(
            f"{weights}: no such weights file (nothing is downloaded; give "
            "a local file or no weights)"
        )
    kwargs: dict[str, Any] = {"weights": str(weights) if weights else None, "classes": classes}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    try:
        return getattr(keras.applications, app)(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ModelImportError(f"{app}: {_short(exc)}") from None


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
    model = application_model(name, input_shape, classes, weights)
    out = weights_out if weights is not None else None
    project, _notes = import_model_with_notes(model, name=application_name(name), weights_out=out)
    return project


def cli_import(args: Any) -> int:
    """``layerlab import MODEL --out PROJECT``: write the project and the weights beside it.

    MODEL is a ``.keras``/``.h5``/config JSON file or a ``keras.applications`` name.
    Returns 0 on success, 1 when the model cannot be expressed, 2 when unreadable.
    """
    out = Path(args.out)
    if out.suffix != ".json":
        out = out.with_name(out.name + ".json")
    weights_out = out.with_name(out.stem + ".weights.h5")
    source = str(args.model)
    try:
        if not Path(source).exists() and application_name(source):
            project = import_application(source)
            notes: list[str] = []
        else:
            project, notes = import_model_with_notes(source, weights_out=weights_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_project(project, out)
    except UnreadableModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ModelImportError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n = sum(1 for node in project.graph.nodes.values() if node.type != "Input")
    print(f"imported {n} layers ({len(project.graph.edges)} connections) into {out}")
    if project.extra.get("weights"):
        print(f"weights: {out.parent / project.extra['weights']}")
    else:
        print("weights: none (the source holds no trained weights)")
    for note in grouped_notes(notes):
        print(f"note: {note}")
    return 0
