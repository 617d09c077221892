"""Project -> one runnable, readable Python script.

:func:`generate` writes a file that imports only Keras, NumPy (and scikit-learn
for the built-in data sets) and defines ``build_model()`` (the functional API,
one line per layer), ``load_data()`` (the same sources, splits and
standardisation as :mod:`engine.data`) and ``main()`` (compile, fit with the
project's training settings, save).

Safety: text from the project never becomes code. Every string is written
through :func:`literal` (``repr``-based), node ids must pass
:func:`engine.graph.is_valid_id`, layer types must be catalog types, parameter
names must be catalog parameters, and free text (name, description) only ever
appears inside a docstring with every quote and backslash escaped, or as a
string literal.
"""

from __future__ import annotations

import builtins
import keyword
import math
import textwrap
import unicodedata
from pathlib import Path
from typing import Any

from engine.catalog import CATALOG, REGULARIZERS, ParamSpec
from engine.graph import Graph, Node, is_valid_id

__all__ = ["CodegenError", "generate", "literal", "variable_names"]

#: Names the generated script defines or imports at module level; node
#: variables never shadow them (nor Python keywords and builtins).
SCRIPT_NAMES = frozenset({
    "argparse", "csv", "math", "keras", "layers", "np", "tf", "Path", "model", "inputs",
    "outputs", "build_model", "load_data", "main", "split", "apportion", "standardize",
    "encode_targets", "read_csv", "read_npz", "read_images", "make_data", "make_optimizer",
    "balanced_class_weights", "DATA_DIR", "SEED", "EPOCHS", "BATCH_SIZE", "WEIGHTS",
    "steps_per_epoch", "learning_rate", "args", "parser", "history", "callbacks", "sklearn",
})
_TAKEN = SCRIPT_NAMES | set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist)
_WIDTH = 96  # generated lines are wrapped at argument boundaries past this width


class CodegenError(ValueError):
    """The project cannot be written as a script; the message names the node or key."""


# --------------------------------------------------------------------------- literals

def literal(value: Any, tuples: bool = False) -> str:
    """Python source for a JSON-like value that evaluates back to the same value.

    Strings use double quotes when they contain none (``"relu"``), else ``repr``;
    either way the result is one string literal and nothing in the text can
    escape it. Lists become tuples when ``tuples`` is true (Keras sizes).

    Raises:
        CodegenError: For a value that is not None, bool, number, text, list or dict.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else '-float("inf")'
        return repr(float(value))
    if isinstance(value, str):
        text = repr(value)
        if text[0] == "'" and '"' not in value and "'" not in value:
            return '"' + text[1:-1] + '"'
        return text
    if isinstance(value, (list, tuple)):
        items = [literal(v, tuples) for v in value]
        if tuples or isinstance(value, tuple):
            return "(" + items[0] + ",)" if len(items) == 1 else "(" + ", ".join(items) + ")"
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        if not all(isinstance(k, str) or type(k) is int for k in value):
            raise CodegenError(f"cannot write {value!r} as code: dict keys must be text")
        return "{" + ", ".join(f"{literal(k)}: {literal(v, tuples)}"
                               for k, v in value.items()) + "}"
    raise CodegenError(f"cannot write {value!r} ({type(value).__name__}) as code")


def docstring(text: str, indent: str = "") -> str:
    """A triple-quoted docstring holding ``text``, whatever the text contains.

    Backslashes and double quotes are escaped, and so is every character that
    is not printable (newlines and tabs aside), so the text cannot end the
    string. Lines after the first get ``indent``; trailing spaces are dropped.
    """
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch in "\n\t" or ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    lines = "".join(out).split("\n")
    lines = [lines[0].rstrip()] + [(indent + line).rstrip() if line.strip() else ""
                                   for line in lines[1:]]
    body = "\n".join(lines)
    return '"""' + body + ("\n" + indent if len(lines) > 1 else "") + '"""'


def _call(head: str, args: list[str], indent: str, tail: str = "") -> str:
    """``head(arg, arg, ...)tail``, wrapped at argument boundaries when too long."""
    one = f"{indent}{head}({', '.join(args)}){tail}"
    if len(one) <= _WIDTH or not args:
        return one
    lines, line = [], indent + "    "
    for i, arg in enumerate(args):
        piece = arg + ("," if i < len(args) - 1 else "")
        if line.strip() and len(line) + 1 + len(piece) > _WIDTH:
            lines.append(line.rstrip())
            line = indent + "    "
        line += ("" if not line.strip() else " ") + piece
    lines.append(line.rstrip())
    return f"{indent}{head}(\n" + "\n".join(lines) + f"\n{indent}){tail}"


# --------------------------------------------------------------------------- the model

def variable_names(graph: Graph) -> dict[str, str]:
    """A Python variable name for each node: its id, suffixed where it would clash.

    Ids that are keywords, builtins or names the script uses (``keras``,
    ``layers``, ``model``, ...) get ``_`` (then ``_2``, ``_3``, ...). Ids are
    compared in NFKC form, as Python itself reads identifiers.

    Raises:
        CodegenError: Naming the node whose id is not a valid identifier.
    """
    wanted: dict[str, str] = {}
    for node_id, node in graph.nodes.items():
        if not is_valid_id(node_id) or node.id != node_id:
            raise CodegenError(f"layer {node_id!r}: the id is not a valid Python identifier "
                               "(letters, digits and underscores, not starting with a digit)")
        base = unicodedata.normalize("NFKC", node_id)
        wanted[node_id] = base if base.isidentifier() else "layer"
    names: dict[str, str] = {}
    used: set[str] = set()
    for node_id, base in wanted.items():  # ids keep their own names where they can
        if base not in _TAKEN and base not in used:
            names[node_id] = base
            used.add(base)
    taken = _TAKEN | set(wanted.values())
    for node_id, base in wanted.items():
        if node_id in names:
            continue
        name, i = base + "_", 2
        while name in taken or name in used:
            name, i = f"{base}_{i}", i + 1
        names[node_id] = name
        used.add(name)
    return {node_id: names[node_id] for node_id in wanted}


def _same(value: Any, default: Any) -> bool:
    """Whether a param value equals its catalog default (lists vs tuples, bools apart)."""
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default) and value == default
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return len(value) == len(default) and all(_same(a, b) for a, b in zip(value, default))
    return value == default


def _regularizer_code(value: Any, where: str) -> str:
    if value is None or isinstance(value, str):
        return literal(value)
    if not isinstance(value, dict) or value.get("type") not in REGULARIZERS:
        raise CodegenError(f"{where}: a regularizer must be null or "
                           f'{{"type": "L1"|"L2"|"L1L2", ...}}; got {value!r}')
    kind = value["type"]
    keys = [k for k in REGULARIZERS[kind] if value.get(k) is not None]
    for k in keys:
        if isinstance(value[k], bool) or not isinstance(value[k], (int, float)):
            raise CodegenError(f"{where}: regularizer {k} must be a number; got {value[k]!r}")
    if len(keys) == 1 and len(REGULARIZERS[kind]) == 1:
        return f"keras.regularizers.{kind}({literal(float(value[keys[0]]))})"
    args = ", ".join(f"{k}={literal(float(value[k]))}" for k in keys)
    return f"keras.regularizers.{kind}({args})"


def _layer_args(node_type: str, params: Any, where: str) -> list[str]:
    """``name=value`` source for each param that differs from its catalog default."""
    spec = CATALOG.get(node_type)
    if spec is None:
        raise CodegenError(f"{where}: unknown layer type {node_type!r}")
    if not isinstance(params, dict):
        raise CodegenError(f"{where}: params must be a mapping; got {params!r}")
    args = []
    for pspec in spec.params:  # catalog order reads best (units before activation, ...)
        if pspec.name not in params:
            continue
        value = params[pspec.name]
        if not pspec.required and _same(value, pspec.default):
            continue
        args.append(f"{pspec.name}={_value_code(pspec, value, where)}")
    unknown = [name for name in params if spec.param(name) is None]
    if unknown:
        raise CodegenError(f"{where}: unknown parameter {unknown[0]!r}")
    return args


def _value_code(pspec: ParamSpec, value: Any, where: str) -> str:
    if pspec.kind in ("ints", "shape", "axes"):
        return literal(value, tuples=True)
    if pspec.kind == "regularizer":
        return _regularizer_code(value, f"{where}: {pspec.name}")
    if pspec.kind == "layer" and value is not None:
        if not isinstance(value, dict) or value.get("type") not in CATALOG \
                or (pspec.choices and value.get("type") not in pspec.choices):
            raise CodegenError(f"{where}: {pspec.name} must be "
                               f'{{"type": <layer type>, "params": {{...}}}}; got {value!r}')
        inner = value["type"]
        inner_args = _layer_args(inner, value.get("params") or {},
                                 f"{where}: {pspec.name} ({inner})")
        return f"layers.{inner}({', '.join(inner_args)})"
    return literal(value)


def _check_graph(graph: Graph) -> None:
    from engine.validation import ERROR, structural_problems

    errors = [p for p in structural_problems(graph) if p.severity == ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise CodegenError(errors[0].message + more)


def model_code(graph: Graph, name: str) -> str:
    """The ``build_model()`` function: one line per layer, in topological order."""
    from engine.builder import POSITIONAL_INPUTS, model_name

    names = variable_names(graph)
    _check_graph(graph)
    lines = ["def build_model():",
             '    """The model, one line per layer (Keras functional API)."""']
    for nid in graph.topological_order():
        node: Node = graph.nodes[nid]
        where = f"{node.type} '{nid}'"
        args = _layer_args(node.type, node.params, where) + [f"name={literal(nid)}"]
        var = names[nid]
        if node.type == "Input":
            lines.append(_call(f"{var} = keras.Input", args, "    "))
            continue
        inputs = [names[e.source] for e in graph.inputs_of(nid)]
        if len(inputs) == 1:
            tail = f"({inputs[0]})"
        elif node.type in POSITIONAL_INPUTS:
            tail = f"({', '.join(inputs)})"
        else:
            tail = f"([{', '.join(inputs)}])"
        lines.append(_call(f"{var} = layers.{node.type}", args, "    ", tail))
    ins = [names[n] for n, node in graph.nodes.items() if node.type == "Input"]
    outs = [names[n] for n in graph.output_nodes()]
    ins_code = ins[0] if len(ins) == 1 else "[" + ", ".join(ins) + "]"
    outs_code = outs[0] if len(outs) == 1 else "[" + ", ".join(outs) + "]"
    lines.append(_call("return keras.Model", [f"inputs={ins_code}", f"outputs={outs_code}",
                                              f"name={literal(model_name(name))}"], "    "))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the data

_SPLIT = '''
def split(y, validation, test, seed, classification):
    """Seeded (train, validation) indices, as LayerLab splits (the test share is left out).

    Classification splits are stratified: each class gives its share of samples.
    """
    n = len(y)
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(n * validation), round(n * test)
    if not classification:
        return np.sort(order[n_val + n_test:]), np.sort(order[n_test:n_test + n_val])
    groups = [order[y[order] == c] for c in np.unique(y)]
    sizes = np.array([len(g) for g in groups])
    take_test = apportion(sizes, n_test, sizes)
    take_val = apportion(sizes - take_test, n_val, sizes)
    train = [g[t + v:] for g, t, v in zip(groups, take_test, take_val)]
    val = [g[t:t + v] for g, t, v in zip(groups, take_test, take_val)]
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def apportion(capacity, total, weights):
    """Share total out over groups in proportion to weights (largest remainders)."""
    share = weights / weights.sum() * total
    take = np.minimum(np.floor(share).astype(int), capacity)
    for i in np.argsort(-(share - take), kind="stable"):
        if take.sum() >= total:
            break
        if take[i] < capacity[i]:
            take[i] += 1
    return take
'''

_STANDARDIZE = '''
def standardize(x_train, x_val, onehot=()):
    """Scale each feature to mean 0 and std 1 with the training split's statistics."""
    mean = x_train.mean(axis=0).astype(np.float32)
    std = x_train.std(axis=0).astype(np.float32)
    std[std < 1e-7] = 1.0
    if onehot:
        mean[list(onehot)] = 0.0
        std[list(onehot)] = 1.0
    return ((x_train - mean) / std).astype(np.float32), ((x_val - mean) / std).astype(np.float32)
'''

_ENCODE = '''
def encode_targets(values, task=None):
    """Targets -> (y, classification): int64 class indices, or float32 (n, k) values.

    Text is always classes; whole numbers with at most 20 distinct values are
    classes unless task is "regression".
    """
    if values.dtype.kind in "USO":
        _, y = np.unique(values.astype(str), return_inverse=True)
        return y.astype(np.int64).reshape(-1), True
    numbers = values.astype(np.float64)
    if task is None:
        whole = bool(np.all(numbers == np.round(numbers)))
        few = len(np.unique(numbers)) <= 20
        task = "classification" if whole and few and numbers.ndim == 1 else "regression"
    if task == "regression":
        y = numbers.astype(np.float32)
        return (y[:, None] if y.ndim == 1 else y), False
    _, y = np.unique(numbers, return_inverse=True)
    return y.astype(np.int64).reshape(-1), True
'''

_READ_CSV = '''
def read_csv(path, target=None, features=None, categorical=(), delimiter=None, task=None):
    """Inputs and targets of a CSV file with a header row.

    Categorical feature columns become one 0/1 column per value (returned in
    onehot so standardisation leaves them alone).
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        if delimiter is None:
            delimiter = max(",;\\t", key=f.readline().count)
            f.seek(0)
        rows = [row for row in csv.reader(f, delimiter=delimiter) if any(c.strip() for c in row)]
    header = [c.strip() for c in rows[0]]
    body = [[c.strip() for c in row] for row in rows[1:]]
    target = header[-1] if target is None else target
    features = [c for c in header if c != target] if features is None else features
    columns, onehot = [], []
    for name in features:
        cells = [row[header.index(name)] for row in body]
        if name in categorical:
            for level in sorted(set(cells)):
                onehot.append(len(columns))
                columns.append(np.array([c == level for c in cells], dtype=np.float32))
        else:
            columns.append(np.array([float(c) for c in cells]))
    x = np.stack(columns, axis=1).astype(np.float32)
    cells = [row[header.index(target)] for row in body]
    try:
        values = np.array([float(c) for c in cells])
        if not np.all(np.isfinite(values)):
            raise ValueError
    except ValueError:
        values = np.array(cells)
    y, classification = encode_targets(values, task)
    return x, y, classification, onehot
'''

_READ_NPZ = '''
def read_npz(path, x_name="x", y_name="y", task=None):
    """Inputs and targets from two arrays of a NumPy .npz file (one-hot targets -> indices)."""
    with np.load(path, allow_pickle=False) as archive:
        x, y = archive[x_name], archive[y_name]
    if x.ndim < 2:
        x = x.reshape(-1, 1)
    if (y.ndim == 2 and y.shape[1] > 1 and task != "regression"
            and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
        y = y.argmax(axis=1)
    y, classification = encode_targets(y, task)
    return x.astype(np.float32), y, classification
'''

_READ_IMAGES = '''
def read_images(folder, image_size=None, color_mode="rgb"):
    """Images from one sub-folder per class, resized and scaled to [0, 1].

    Without image_size, every image takes the size of the first one.
    """
    folder = Path(folder)
    if image_size is None:
        suffixes = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
        first = next(p for d in sorted(folder.iterdir())
                     if d.is_dir() and not d.name.startswith(".")
                     for p in sorted(d.iterdir()) if p.suffix.lower() in suffixes)
        image = tf.io.decode_image(tf.io.read_file(str(first)), expand_animations=False)
        image_size = tuple(image.shape[:2])
    images = keras.utils.image_dataset_from_directory(
        folder, label_mode="int", color_mode=color_mode, image_size=image_size,
        batch_size=None, shuffle=False)
    pairs = [(image.numpy(), int(label)) for image, label in images]
    x = np.clip(np.stack([p[0] for p in pairs]) / 255.0, 0.0, 1.0).astype(np.float32)
    y = np.array([p[1] for p in pairs], dtype=np.int64)
    return x, y
'''

#: Built-in point sets: the same generators (and seeds) as engine.data_sources.
_PLANES = {
    "moons": '''
def make_data(n, noise, seed):
    """Two interleaving half circles (class 0 above, class 1 below)."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0 = rng.uniform(0, np.pi, n0)
    t1 = rng.uniform(0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)])
    return x.astype(np.float32), y.astype(np.int64)
''',
    "circles": '''
def make_data(n, noise, seed):
    """A ring (class 0) around a circle (class 1)."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(np.arange(n) < n0, 1.0, 0.5)
    x = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1) + rng.normal(0, noise, (n, 2))
    y = (np.arange(n) >= n0).astype(np.int64)
    return x.astype(np.float32), y
''',
    "spirals": '''
def make_data(n, noise, seed):
    """Two interleaved spirals."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    y = (np.arange(n) >= n0).astype(np.int64)
    along = np.concatenate([np.linspace(0, 1, n0), np.linspace(0, 1, n - n0)])
    angle = 1.75 * 2 * np.pi * along + np.pi * y
    x = np.stack([along * np.sin(angle), along * np.cos(angle)], axis=1)
    return (x + rng.normal(0, noise, (n, 2))).astype(np.float32), y
''',
    "xor": '''
def make_data(n, noise, seed):
    """Points in the four quadrants; class 1 where the signs of x1 and x2 differ."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    x += np.sign(x) * 0.05
    y = (x[:, 0] * x[:, 1] < 0).astype(np.int64)
    return (x + rng.normal(0, noise, (n, 2))).astype(np.float32), y
''',
    "adding": '''
def make_data(n, length, seed):
    """The adding problem: (length, 2) sequences of values and two markers -> marked sum."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, length))
    markers = np.zeros((n, length))
    half = length // 2
    rows = np.arange(n)
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)[:, None]
    return x, y
''',
}


_BUILTIN_CLASSES = {"digits": 10, "digits-rows": 10, "iris": 3, "wine": 3, "breast_cancer": 2,
                    "moons": 2, "circles": 2, "spirals": 2, "xor": 2, "adding": 0}


class _Part:
    """Imports, module constants and function sources contributed to the script."""

    def __init__(self) -> None:
        self.imports: set[str] = set()
        self.constants: list[str] = []
        self.functions: list[str] = []
        self.task: str | None = None  # what the data is, when known without loading it
        self.num_classes: int | None = None
        self.has_val = True


def data_code(section: dict[str, Any], base_dir: Any, input_shape: tuple | None,
              loss: Any) -> _Part:
    """The ``load_data()`` function (and its helpers) for a project's data section.

    Raises:
        CodegenError: For an unknown source or a bad key (the message names it).
    """
    from engine.data import ONE_HOT_LOSSES, SOURCES, loss_key
    from engine.data_sources import (BUILTINS, DataError, get_float, get_int, get_str,
                                     get_str_list, get_task)

    part = _Part()
    part.imports.add("import numpy as np")
    try:
        if not isinstance(section, dict):
            raise DataError(f"the data section must be an object; got {section!r}")
        source = section.get("source")
        val = get_float(section, "validation_split", 0.2, 0.0, 1.0)
        test = get_float(section, "test_split", 0.0, 0.0, 1.0)
        seed = get_int(section, "seed", 0)
        standardize = section.get("standardize")
        if standardize is not None and not isinstance(standardize, bool):
            raise DataError(f'data section: "standardize" must be true or false; '
                            f"got {standardize!r}")
        body: list[str] = []
        classification = "True"
        onehot = ""
        if isinstance(source, str) and source.startswith("builtin:") \
                and source[8:] in BUILTINS:
            name = source[8:]
            default_std = _builtin_code(name, section, seed, part, body)
            classification = "False" if name == "adding" else "True"
            part.task = "regression" if name == "adding" else "classification"
            part.num_classes = _BUILTIN_CLASSES.get(name, 0)
        elif source == "csv":
            path = _path_code(section, base_dir, part)
            args = [path]
            for key in ("target", "features", "categorical", "delimiter"):
                if section.get(key) is not None:
                    value = section[key]
                    if key in ("features", "categorical"):
                        value = get_str_list(section, key)
                    elif not isinstance(value, str):
                        raise DataError(f'data section: "{key}" must be a text; got {value!r}')
                    args.append(f"{key}={literal(value)}")
            if get_task(section):
                args.append(f"task={literal(get_task(section))}")
            body.append(_call("x, y, classification, onehot = read_csv", args, "    "))
            part.imports.add("import csv")
            part.functions += [_ENCODE, _READ_CSV]
            classification, onehot, default_std = "classification", "onehot", True
            part.task = get_task(section)
        elif source == "npz":
            path = _path_code(section, base_dir, part)
            args = [path]
            for key in ("x", "y"):
                if key in section:
                    args.append(f"{key}_name={literal(get_str(section, key, key))}")
            if get_task(section):
                args.append(f"task={literal(get_task(section))}")
            body.append(_call("x, y, classification = read_npz", args, "    "))
            part.functions += [_ENCODE, _READ_NPZ]
            classification, default_std = "classification", "x.ndim == 2"
            part.task = get_task(section)
        elif source == "images":
            path = _path_code(section, base_dir, part)
            size, mode = _image_geometry(section, input_shape)
            body.append(_call("x, y = read_images",
                              [path, f"image_size={literal(size)}",
                               f"color_mode={literal(mode)}"], "    "))
            part.imports |= {"import tensorflow as tf", "from pathlib import Path"}
            part.functions.append(_READ_IMAGES)
            default_std = False
            part.task = "classification"
        else:
            raise DataError(f"unknown data source {source!r}; choose one of "
                            f"{', '.join(SOURCES)}")
    except DataError as exc:
        raise CodegenError(str(exc)) from None

    part.has_val = val > 0
    body.append(_call("train, val = split", [
        "y", f"validation={literal(val)}", f"test={literal(test)}", f"seed={seed}",
        f"classification={classification}"], "    "))
    body.append("    x_train, y_train, x_val, y_val = x[train], y[train], x[val], y[val]")
    on = default_std if standardize is None else standardize
    if on is True:
        body.append(f"    x_train, x_val = standardize(x_train, x_val{', onehot' if onehot else ''})")
    elif on == "x.ndim == 2":
        body.append("    if x.ndim == 2:  # tabular inputs are standardised")
        body.append("        x_train, x_val = standardize(x_train, x_val)")
    if on:
        part.functions.append(_STANDARDIZE)
    if loss_key(loss) in ONE_HOT_LOSSES:
        indent = "    "
        if classification == "classification":
            body.append("    if classification:  # the loss wants one-hot targets")
            indent = "        "
        elif classification == "False":
            indent = ""
        if indent:
            body += [f"{indent}num_classes = int(y.max()) + 1",
                     f"{indent}y_train = np.eye(num_classes, dtype=np.float32)[y_train]",
                     f"{indent}y_val = np.eye(num_classes, dtype=np.float32)[y_val]"]
    body.append("    return (x_train, y_train), (x_val, y_val)")
    what = {"csv": "the CSV file", "npz": "the NumPy arrays", "images": "the image folders"
            }.get(source, f"the {source} data")
    doc = (f"    {docstring(f'Load {what}; split off {val:g} for validation (seed {seed}).')}")
    part.functions = [_SPLIT] + _dedupe(part.functions)
    part.functions.insert(0, "def load_data():\n" + doc + "\n" + "\n".join(body) + "\n")
    return part


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _builtin_code(name: str, section: dict[str, Any], seed: int, part: _Part,
                  body: list[str]) -> bool:
    """Body lines that set ``x`` and ``y`` for a built-in set; returns standardize's default."""
    from engine.data_sources import get_float, get_int

    if name in ("digits", "digits-rows"):
        part.imports.add("from sklearn.datasets import load_digits")
        body.append("    digits = load_digits()")
        scaled = "(digits.images / 16.0).astype(np.float32)"
        body.append(f"    x = {scaled}[..., None]  # (8, 8, 1) images in [0, 1]" if name == "digits"
                    else f"    x = {scaled}  # 8 rows of 8 pixels in [0, 1]")
        body.append("    y = digits.target.astype(np.int64)")
        return False
    if name in ("iris", "wine", "breast_cancer"):
        part.imports.add(f"from sklearn.datasets import load_{name}")
        body.append(f"    table = load_{name}()")
        body.append("    x, y = table.data.astype(np.float32), table.target.astype(np.int64)")
        return True
    part.functions.append(_PLANES[name])
    if name == "adding":
        samples = get_int(section, "samples", 1000, 1)
        length = get_int(section, "length", 50, 2)
        body.append(f"    x, y = make_data({samples}, length={length}, seed={seed})")
        return False
    samples = get_int(section, "samples", 500, 2)
    default_noise = {"moons": 0.1, "circles": 0.05, "spirals": 0.05, "xor": 0.0}[name]
    noise = get_float(section, "noise", default_noise)
    body.append(f"    x, y = make_data({samples}, noise={literal(noise)}, seed={seed})")
    return True


def _path_code(section: dict[str, Any], base_dir: Any, part: _Part) -> str:
    """Source for the data path: ``DATA_DIR / "file"`` (absolute paths stay absolute)."""
    from engine.data_sources import get_str

    raw = get_str(section, "path", None)
    part.imports.add("from pathlib import Path")
    if base_dir is not None:
        where = literal(str(Path(base_dir).resolve()))
        part.constants.append(f"DATA_DIR = Path({where})  # relative data paths start here")
    else:
        part.constants.append("DATA_DIR = Path(__file__).resolve().parent  # relative data "
                              "paths start here")
    if raw.startswith("~"):
        return f"DATA_DIR / Path({literal(raw)}).expanduser()"
    return f"DATA_DIR / {literal(raw)}"


def _image_geometry(section: dict[str, Any], input_shape: tuple | None,
                    ) -> tuple[tuple[int, int] | None, str]:
    from engine.data_sources import image_geometry as geometry

    size, channels = geometry(section, input_shape)
    return (tuple(size) if size else None), ("grayscale" if channels == 1 else "rgb")


# --------------------------------------------------------------------------- training

_LOSS_CLASSES = {"categorical_crossentropy": "CategoricalCrossentropy",
                 "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
                 "binary_crossentropy": "BinaryCrossentropy", "mse": "MeanSquaredError",
                 "mae": "MeanAbsoluteError", "huber": "Huber"}
_CLASS_WEIGHTS = '''
def balanced_class_weights(y):
    """Weight each class by n / (k * count), so rare classes count as much as common ones."""
    labels = y.argmax(-1) if y.ndim > 1 and y.shape[-1] > 1 else y.ravel()
    counts = np.bincount(labels.astype(int))
    n, k = len(labels), int((counts > 0).sum())
    return {c: n / (k * counts[c]) for c in range(len(counts)) if counts[c]}
'''


def _kwargs(params: dict[str, Any], skip: tuple[str, ...] = ("type",)) -> list[str]:
    """``name=value`` for checked settings (names come from the training tables)."""
    out = []
    for key, value in params.items():
        if key in skip:
            continue
        if not is_valid_id(key) or not key.isascii():  # never reached after training_problems
            raise CodegenError(f"training section: {key!r} is not a setting name")
        out.append(f"{key}={literal(value)}")
    return out


def _steps_code(params: dict[str, Any], base: str, default: str) -> str:
    """Source for a schedule length in steps (``<base>_steps`` or ``<base>_epochs``)."""
    if f"{base}_steps" in params:
        return str(max(1, int(params[f"{base}_steps"])))
    if f"{base}_epochs" in params:
        return f"max(1, round({literal(float(params[f'{base}_epochs']))} * steps_per_epoch))"
    return default


def _schedule_code(section: dict[str, Any], lr: float) -> list[str] | None:
    """Lines of ``make_optimizer`` that set ``learning_rate``, or None for a constant rate.

    The same schedules and lengths as :func:`engine.training.make_schedule`, with
    the step counts computed from ``steps_per_epoch`` and ``epochs`` at run time.
    """
    from engine.training import SCHEDULES, find_key, split_typed

    name, params, _ = split_typed(section.get("schedule") or "constant", "schedule")
    kind = find_key(name, SCHEDULES)
    if kind in (None, "constant", "reduce_on_plateau"):
        return None
    total = "max(1, steps_per_epoch * epochs)"
    num = literal

    def schedule(cls: str, *args: str) -> list[str]:
        return [_call(f"learning_rate = keras.optimizers.schedules.{cls}", list(args), "    ")]

    if kind == "step" and "values" in params:
        values = num([float(v) for v in params["values"]])
        if "boundaries_steps" in params:
            return schedule("PiecewiseConstantDecay",
                            num([int(b) for b in params["boundaries_steps"]]), values)
        epochs = num([float(b) for b in params["boundaries_epochs"]])
        return [f"    boundaries = [round(b * steps_per_epoch) for b in {epochs}]",
                *schedule("PiecewiseConstantDecay", "boundaries", values)]
    if kind == "step":
        every = _steps_code(params, "every", "max(1, steps_per_epoch * epochs // 3)")
        return schedule("ExponentialDecay", num(lr), f"decay_steps={every}",
                        f"decay_rate={num(float(params.get('factor', 0.1)))}", "staircase=True")
    if kind == "exponential":
        return schedule("ExponentialDecay", num(lr),
                        f"decay_steps={_steps_code(params, 'decay', 'steps_per_epoch')}",
                        f"decay_rate={num(float(params.get('decay_rate', 0.96)))}",
                        f"staircase={bool(params.get('staircase'))}")
    if kind == "polynomial":
        return schedule("PolynomialDecay", num(lr),
                        f"decay_steps={_steps_code(params, 'decay', total)}",
                        f"end_learning_rate={num(float(params.get('end_learning_rate', 0.0001)))}",
                        f"power={num(float(params.get('power', 1.0)))}",
                        f"cycle={bool(params.get('cycle'))}")
    warmup = _steps_code(params, "warmup", "0")
    alpha = f"alpha={num(float(params.get('alpha', 0.0)))}"
    if warmup == "0":
        return schedule("CosineDecay", num(lr),
                        f"decay_steps={_steps_code(params, 'decay', total)}", alpha)
    decay = _steps_code(params, "decay", "max(1, steps_per_epoch * epochs - warmup_steps)")
    return [f"    warmup_steps = {warmup}",
            *schedule("CosineDecay", num(float(params.get("warmup_start", 0.0))),
                      f"decay_steps={decay}", alpha, f"warmup_target={num(lr)}",
                      "warmup_steps=warmup_steps")]


def _loss_code(section: dict[str, Any], task: str | None) -> str:
    from engine.training import LOSSES, LOSS_ALIASES, find_key, split_typed

    loss = section.get("loss")
    if loss is None:
        if task == "regression":
            return '"mse"'
        if task == "classification":
            return '"sparse_categorical_crossentropy"'
        return '"mse" if y_train.dtype.kind == "f" else "sparse_categorical_crossentropy"'
    name, params, _ = split_typed(loss, "loss")
    canonical = find_key(name, LOSSES, LOSS_ALIASES)
    args = _kwargs(params)
    if not args:
        return literal(canonical)
    return f"keras.losses.{_LOSS_CLASSES[canonical]}({', '.join(args)})"


def _metrics_code(section: dict[str, Any], loss: str, num_classes: int | None) -> list[str]:
    from engine.training import METRICS, find_key, split_typed

    sparse = loss == "sparse_categorical_crossentropy"
    out = []
    for m in section.get("metrics", []):
        name, params, _ = split_typed(m, "metric")
        metric = find_key(name, METRICS)
        if metric == "accuracy":
            out.append('"accuracy"')
        elif metric == "top_k":
            k = int(params.get("k", 5))
            cls = "SparseTopKCategoricalAccuracy" if sparse else "TopKCategoricalAccuracy"
            out.append(f'keras.metrics.{cls}(k={k}, name="top_{k}_accuracy")')
        elif metric in ("precision", "recall", "auc"):
            if sparse and (num_classes is None or num_classes > 2):
                continue  # needs one-hot labels; LayerLab leaves it out too
            cls = {"precision": "Precision", "recall": "Recall", "auc": "AUC"}[metric]
            out.append(f'keras.metrics.{cls}(name="{metric}")')
        elif metric in ("mae", "mse", "rmse"):
            cls = {"mae": "MeanAbsoluteError", "mse": "MeanSquaredError",
                   "rmse": "RootMeanSquaredError"}[metric]
            out.append(f'keras.metrics.{cls}(name="{metric}")')
    return out


def _callbacks_code(section: dict[str, Any], has_val: bool) -> list[str]:
    from engine.training import SCHEDULES, find_key, monitor_mode

    out = []
    es = section.get("early_stopping") or None
    monitor = (es or {}).get("monitor") or ("val_loss" if has_val else "loss")
    if not has_val and monitor.startswith("val_"):
        monitor = monitor[4:]
    if es:
        out.append(_call("keras.callbacks.EarlyStopping", [
            f"monitor={literal(monitor)}", f"patience={int(es.get('patience', 5))}",
            f"min_delta={literal(float(es.get('min_delta', 0.0)))}",
            f"mode={literal(monitor_mode(monitor))}",
            f"restore_best_weights={bool(es.get('restore_best_weights', True))}",
            f"start_from_epoch={int(es.get('start_from_epoch', 0))}"], "        ", ","))
    schedule = section.get("schedule")
    if isinstance(schedule, dict) and find_key(schedule.get("type"), SCHEDULES) == \
            "reduce_on_plateau":
        watch = schedule.get("monitor", monitor)
        out.append(_call("keras.callbacks.ReduceLROnPlateau", [
            f"monitor={literal(watch)}", f"factor={literal(float(schedule.get('factor', 0.1)))}",
            f"patience={int(schedule.get('patience', 5))}", f"mode={literal(monitor_mode(watch))}",
            f"min_delta={literal(float(schedule.get('min_delta', 1e-4)))}",
            f"cooldown={int(schedule.get('cooldown', 0))}",
            f"min_lr={literal(float(schedule.get('min_lr', 0.0)))}"], "        ", ","))
    return out


def main_code(training: dict[str, Any], name: str, weights: str | None, *,
              has_val: bool = True, task: str | None = None,
              num_classes: int | None = None) -> _Part:
    """The ``main()`` function: compile and fit as :mod:`engine.training` does, then save.

    Args:
        training: The project's training section.
        name: The project name (shown by ``--help``).
        weights: Trained weights the script starts from when found, or None.
        has_val: Whether the data has a validation split.
        task: ``classification``/``regression`` when known from the data source.
        num_classes: Number of classes when known from the data source.

    Raises:
        CodegenError: Listing what is wrong with the training section.
    """
    from engine.training import OPTIMIZERS, find_key, split_typed, loss_name, training_problems

    problems = training_problems(training)
    if problems:
        raise CodegenError("training section: " + "; ".join(problems))
    part = _Part()
    part.imports |= {"import argparse", "import keras"}
    seed = training.get("seed")
    if seed is not None:
        part.constants.append(f"SEED = {int(seed)}")
    part.constants += [f"EPOCHS = {int(training.get('epochs', 10))}",
                       f"BATCH_SIZE = {int(training.get('batch_size', 32))}"]
    if weights:
        part.imports.add("from pathlib import Path")
        part.constants.append(f"WEIGHTS = {literal(Path(weights).name)}  # trained weights, "
                              "used when found next to this script")

    opt_name, opt_params, _ = split_typed(training.get("optimizer", "Adam"), "optimizer")
    optimizer = find_key(opt_name, OPTIMIZERS) or "Adam"
    lr = float(opt_params.get("learning_rate", 0.001))
    schedule = _schedule_code(training, lr)
    opt_args = ["learning_rate=" + ("learning_rate" if schedule else literal(lr))]
    opt_args += _kwargs(opt_params, ("type", "learning_rate"))
    loss = loss_name(training, task, num_classes) if training.get("loss") or task else None
    optimizer_code = f"keras.optimizers.{optimizer}({', '.join(opt_args)})"
    if schedule:
        part.imports.add("import math")
        part.functions.append("\n".join([
            "def make_optimizer(steps_per_epoch, epochs):",
            '    """The optimizer, its learning rate scheduled over the optimizer steps of the '
            'run."""',
            *schedule,
            _call(f"return keras.optimizers.{optimizer}", opt_args, "    ")]) + "\n")
        optimizer_code = "make_optimizer(steps_per_epoch, epochs)"
    compile_args = [f"optimizer={optimizer_code}",
                    f"loss={_loss_code(training, task)}"]
    metrics = _metrics_code(training, loss or "sparse_categorical_crossentropy", num_classes)
    if metrics:
        compile_args.append(f"metrics=[{', '.join(metrics)}]")
    if training.get("jit_compile", "auto") != "auto":
        compile_args.append(f"jit_compile={bool(training['jit_compile'])}")
    if int(training.get("steps_per_execution", 1)) != 1:
        compile_args.append(f"steps_per_execution={int(training['steps_per_execution'])}")
    callbacks = _callbacks_code(training, has_val)

    help_epochs = "epochs to train (default {EPOCHS}" + (
        "; 0 when weights are loaded)" if weights else ")")
    lines = ["def main():",
             '    """Train the model on its data with the project\'s settings, then save it."""',
             _call("parser = argparse.ArgumentParser",
                   [f"description={literal('Train ' + name)}"], "    "),
             '    parser.add_argument("--epochs", type=int, default=None,',
             f'                        help=f"{help_epochs}")',
             '    parser.add_argument("--out", default="model.keras", '
             'help="where to save the trained model")']
    if weights:
        lines += ['    parser.add_argument("--weights", default=str(Path(__file__).resolve()'
                  '.parent / WEIGHTS),',
                  '                        help="trained weights to start from (if the file '
                  'exists)")']
    lines += ["    args = parser.parse_args()", ""]
    if training.get("precision", "float32") != "float32":
        lines.append(f"    keras.mixed_precision.set_global_policy("
                     f"{literal(training['precision'])})")
    if seed is not None:
        lines.append("    keras.utils.set_random_seed(SEED)")
    lines += ["    (x_train, y_train), (x_val, y_val) = load_data()",
              "    model = build_model()",
              "    epochs = EPOCHS if args.epochs is None else args.epochs"]
    if weights:
        lines += ["    if Path(args.weights).is_file():",
                  "        model.load_weights(args.weights)",
                  '        print(f"loaded weights from {args.weights}")',
                  "        epochs = 0 if args.epochs is None else args.epochs"]
    if schedule:
        lines.append("    steps_per_epoch = math.ceil(len(x_train) / BATCH_SIZE)")
    lines += ["    model.compile(", *[f"        {a}," for a in compile_args], "    )"]
    fit_args = ["x_train", "y_train", "batch_size=BATCH_SIZE", "epochs=epochs"]
    if has_val:
        fit_args.append("validation_data=(x_val, y_val)")
    cw = training.get("class_weight")
    if cw == "balanced":
        part.functions.append(_CLASS_WEIGHTS)
        fit_args.append("class_weight=balanced_class_weights(y_train)")
    elif isinstance(cw, dict):
        fit_args.append("class_weight=" + literal({int(k): float(v) for k, v in cw.items()}))
    if training.get("shuffle", True) is False:
        fit_args.append("shuffle=False")
    if callbacks:
        lines += ["    callbacks = [", *callbacks, "    ]"]
        fit_args.append("callbacks=callbacks")
    lines += ["    if epochs > 0:", _call("history = model.fit", fit_args, "        "),
              '        print(f"trained {len(history.epoch)} epochs")']
    if has_val:
        lines += ['    print("validation:", model.evaluate(x_val, y_val, verbose=0, '
                  'return_dict=True))']
    lines += ["    model.save(args.out)", '    print(f"saved {args.out}")']
    part.functions.append("\n".join(lines) + "\n")
    return part


# --------------------------------------------------------------------------- the script

def generate(project: Any, weights: str | None = None) -> str:
    """The whole script for ``project``: ``build_model()``, ``load_data()``, ``main()``.

    Args:
        project: An :class:`engine.project.Project`.
        weights: File name (or path) of trained weights (``model.weights.h5`` or
            ``model.keras``); the script loads the file of that name from its own
            folder when it is there (``--weights`` overrides), so it reproduces
            the trained model.

    Returns:
        Python source text.

    Raises:
        CodegenError: Naming the node, layer type, parameter or data/training
            key that cannot be written.
    """
    model = model_code(project.graph, project.name)
    data = data_code(project.data or {}, getattr(project, "base_dir", None),
                     _input_shape(project.graph), (project.training or {}).get("loss"))
    main = main_code(project.training or {}, project.name, weights, has_val=data.has_val,
                     task=data.task, num_classes=data.num_classes)
    blocks = [_header(project.name, project.description or "", weights),
              _imports(data.imports | main.imports),
              "\n".join(_dedupe(data.constants + main.constants)) + "\n"]
    functions = [model] + data.functions + main.functions
    text = "\n".join(blocks) + "\n\n" + "\n\n".join(f.strip("\n") + "\n" for f in functions)
    return text + '\n\nif __name__ == "__main__":\n    main()\n'


def _input_shape(graph: Graph) -> tuple | None:
    """The first Input's shape: what LayerLab resizes image data to (as engine.training)."""
    for node in graph.nodes.values():
        if node.type == "Input" and isinstance(node.params.get("shape"), list):
            return tuple(node.params["shape"])
    return None


def _header(name: str, description: str, weights: str | None) -> str:
    text = [name or "Untitled", ""]
    for line in description.strip().splitlines():
        text += textwrap.wrap(line, 79, break_long_words=False, break_on_hyphens=False) or [""]
    if description.strip():
        text.append("")
    text += ["This LayerLab project as a plain Keras script: build_model() rebuilds the model",
             "layer by layer, load_data() loads and splits the project's data as LayerLab does,",
             "and main() trains the model and saves it."]
    if weights:
        text += ["", f"main() starts from the trained weights in {Path(weights).name} when that "
                 "file lies", "next to this script (see --weights)."]
    text += ["", "Usage: python <this file> [--epochs N] [--out model.keras]"]
    return docstring("\n".join(text)) + "\n"


def _imports(wanted: set[str]) -> str:
    """Import lines grouped as isort does: standard library, then third party."""
    def module(line: str) -> str:
        return line.split()[1]

    if "import keras" in wanted:
        wanted = wanted | {"from keras import layers"}
    std = sorted((s for s in wanted if module(s) in ("argparse", "csv", "math", "pathlib")),
                 key=lambda s: (s.startswith("from"), module(s)))
    third = sorted((s for s in wanted if s not in std),
                   key=lambda s: (s.startswith("from"), module(s)))
    return "\n".join(std + [""] + third) + "\n"
