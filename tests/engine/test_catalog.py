"""The layer catalog against Keras itself, plus check_value and caption.

The drift tests build real Keras layers from the catalog (no model, no data), so a
Keras upgrade that renames an argument, changes a default or drops a choice fails
here rather than in a user's project.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.catalog.checks import caption, check_params, check_value
from engine.catalog.specs import CATEGORIES, MERGE_TYPES, REGULARIZERS, LayerSpec, ParamSpec
from engine.catalog.table import CATALOG, PRETRAINED_TYPES
from engine.model.graph import Edge, Graph, Node

ROOT = Path(__file__).resolve().parents[2]
# Operation applies a keras.ops function, not a keras.layers class (tests/engine/test_operations.py);
# Backbone and BackbonePreprocessing neither (tests/engine/test_backbone.py).
SPECS = [s for s in CATALOG.values() if s.type != "Operation" and s.type not in PRETRAINED_TYPES]
PARAMS = [(spec, p) for spec in SPECS for p in spec.params]


SPEC_IDS = [s.type for s in SPECS]
PARAM_IDS = [f"{s.type}.{p.name}" for s, p in PARAMS]


# ------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def keras():
    """Keras, imported once for this module (TensorFlow takes seconds to start)."""
    import keras as k

    return k


def keras_class(keras, spec: LayerSpec):
    # keras.Input is a function; the layer it makes is an InputLayer.
    return keras.layers.InputLayer if spec.type == "Input" else getattr(keras.layers, spec.type)


def keras_signature(cls) -> dict[str, inspect.Parameter]:
    """Constructor arguments of ``cls`` and of the base classes it forwards **kwargs to."""
    import keras

    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" in klass.__dict__:
            for name, par in inspect.signature(klass.__dict__["__init__"]).parameters.items():
                if par.kind not in (par.VAR_KEYWORD, par.VAR_POSITIONAL) and name != "self":
                    found.setdefault(name, par)
        if klass is keras.layers.Layer:
            break
    return found


def plain(value: Any) -> Any:
    """Keras tuples as JSON lists, recursively (also inside dicts)."""
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def to_keras(keras, pspec: ParamSpec, value: Any) -> Any:
    """A catalog value as the Keras constructor takes it (stand-in for engine.build.builder)."""
    if value is None:
        return None
    if pspec.kind == "regularizer":
        cls = getattr(keras.regularizers, value["type"])
        return cls(**{k: value[k] for k in REGULARIZERS[value["type"]]})
    if pspec.kind == "layer":
        inner = CATALOG[value["type"]]
        kwargs = {n: to_keras(keras, inner.param(n), v) for n, v in value["params"].items()}
        return getattr(keras.layers, value["type"])(name="inner", **kwargs)
    if pspec.kind == "shape":
        return tuple(value)
    return value


def comparable(pspec: ParamSpec, keras_default: Any) -> Any:
    """Keras's default in the catalog's spelling, where the two differ only in form.

    Even ``[before, after]`` pairs (Cropping2D's ``((0, 0), (0, 0))``, ZeroPadding3D's
    ``((1, 1), (1, 1), (1, 1))``) are kept as one int per dimension, and initializer
    classes (PReLU's ``"Zeros"``) by their function name; the config comparison in
    test_catalog_defaults_mean_what_keras_defaults_mean checks they mean the same.
    """
    if (
        pspec.pairs
        and isinstance(keras_default, list)
        and all(isinstance(v, list) and len(v) == 2 and v[0] == v[1] for v in keras_default)
    ):
        return [v[0] for v in keras_default]
    if pspec.kind == "initializer" and isinstance(keras_default, str):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", keras_default).lower()
    return keras_default


def make_layer(keras, spec: LayerSpec, params: dict[str, Any]):
    kwargs = {n: to_keras(keras, spec.param(n), v) for n, v in params.items()}
    return keras_class(keras, spec)(name="probe", **kwargs)


def all_defaults(spec: LayerSpec) -> dict[str, Any]:
    return {p.name: p.default for p in spec.params}


# ------------------------------------------------------- drift against Keras
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_catalog_param_names_exist_in_keras(keras, spec):
    known = keras_signature(keras_class(keras, spec))
    unknown = [p.name for p in spec.params if p.name not in known]
    assert not unknown, f"{spec.type}: Keras has no argument {unknown}"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_catalog_defaults_match_keras(keras, spec):
    if spec.type == "Input":
        # keras.Input needs a shape; InputLayer's shape=None only means "see batch_shape",
        # so Input.shape is required here on purpose and has no Keras default to compare.
        return
    known = keras_signature(keras_class(keras, spec))
    for p in spec.params:
        keras_default = known[p.name].default
        has_default = keras_default is not inspect.Parameter.empty
        assert p.required == (not has_default), (
            f"{spec.type}.{p.name}: required={p.required} but Keras "
            f"{'has default ' + repr(keras_default) if has_default else 'has no default'}"
        )
        if has_default:
            assert p.default == comparable(p, plain(keras_default)), f"{spec.type}.{p.name}"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_catalog_defaults_mean_what_keras_defaults_mean(keras, spec):
    """A layer given every catalog default equals one given only the required params."""
    full = make_layer(keras, spec, all_defaults(spec)).get_config()
    minimal = make_layer(keras, spec, spec.defaults()).get_config()
    assert plain(full) == plain(minimal)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_catalog_layer_config_round_trips(keras, spec):
    layer = make_layer(keras, spec, all_defaults(spec))
    config = layer.get_config()
    # Wrapper.from_config pops "layer" out of the dict it is given: hand it a fresh one.
    again = type(layer).from_config(layer.get_config()).get_config()
    assert json.dumps(again, sort_keys=True, default=str) == json.dumps(
        config, sort_keys=True, default=str
    )


def _other_values(pspec: ParamSpec) -> list[Any]:
    """Non-default values a user can pick for ``pspec`` (all of them for choices)."""
    if pspec.kind in ("choice", "initializer"):
        return [c for c in pspec.choices if c != pspec.default]
    if pspec.kind == "regularizer":
        return [{"type": t, **{k: 0.01 for k in keys}} for t, keys in REGULARIZERS.items()]
    if pspec.kind == "bool":
        return [not pspec.default]
    return []


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if any(_other_values(p) for p in s.params)], ids=lambda s: s.type
)
def test_catalog_every_choice_is_accepted_by_keras(keras, spec):
    for p in spec.params:
        for value in _other_values(p):
            assert check_value(p, value) is None
            make_layer(keras, spec, {**spec.defaults(), p.name: value})  # Keras refuses by raising


def test_catalog_wrapped_layers_build_with_every_choice(keras):
    for spec in (CATALOG["Bidirectional"], CATALOG["TimeDistributed"]):
        pspec = spec.param("layer")
        for inner in pspec.choices:
            value = {"type": inner, "params": CATALOG[inner].defaults()}
            assert check_value(pspec, value) is None
            layer = make_layer(keras, spec, {"layer": value})
            assert layer.get_config()["layer"]["class_name"] == inner


# ---------------------------------------------------------------- structure
def test_catalog_has_the_palette_groups_in_order():
    used = [s.category for s in CATALOG.values()]
    assert set(used) == set(CATEGORIES)
    order = [CATEGORIES.index(c) for c in used]
    assert order == sorted(order), "CATALOG order is the palette order: grouped by category"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_catalog_spec_is_documented_and_consistent(spec):
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", spec.doc.strip()) if s]
    assert len(sentences) >= 2 and spec.doc.strip().endswith("."), spec.doc
    names = [p.name for p in spec.params]
    assert len(names) == len(set(names))
    assert set(spec.summary) <= set(names)
    for p in spec.params:
        assert p.doc.strip(), f"{spec.type}.{p.name} has no doc"
        assert p.kind in (
            "int",
            "float",
            "bool",
            "str",
            "choice",
            "ints",
            "shape",
            "regularizer",
            "initializer",
            "layer",
            "axes",
        )
    assert set(spec.defaults()) == {p.name for p in spec.params if p.required}


def test_catalog_new_node_params_are_fresh_copies():
    params = CATALOG["Input"].defaults()
    params["shape"].append(99)
    CATALOG["Bidirectional"].defaults()["layer"]["params"]["units"] = 1
    assert CATALOG["Input"].defaults()["shape"] == CATALOG["Input"].param("shape").default
    assert 99 not in CATALOG["Input"].param("shape").default
    assert CATALOG["Bidirectional"].defaults()["layer"]["params"]["units"] != 1


def test_catalog_input_counts():
    assert (CATALOG["Input"].min_inputs, CATALOG["Input"].max_inputs) == (0, 0)
    for name in MERGE_TYPES:
        spec = CATALOG[name]
        expected = (2, 2) if name in ("Subtract", "Dot") else (2, None)
        assert (spec.min_inputs, spec.max_inputs) == expected, name
    mha = CATALOG["MultiHeadAttention"]
    assert (mha.min_inputs, mha.max_inputs) == (2, 3)
    states = {"SimpleRNN": 1, "GRU": 1, "LSTM": 2, "ConvLSTM2D": 2, "Bidirectional": 4}
    for spec in SPECS:
        if spec.category not in ("Input", "Merge", "Attention", "Operations"):
            # a recurrent layer's initial state comes in on inputs 1..
            want = (1, 1 + states.get(spec.type, 0))
            assert (spec.min_inputs, spec.max_inputs) == want, spec.type


def test_catalog_arity_is_what_the_graph_enforces():
    graph = Graph()
    for node_id, node_type in [
        ("a", "Input"),
        ("b", "Input"),
        ("c", "Input"),
        ("diff", "Subtract"),
        ("sum", "Add"),
    ]:
        graph.add_node(Node(node_id, node_type, {}))
    assert graph.check_connect("a", "b") is not None  # an Input takes no inputs
    graph.connect(Edge("a", "diff", 0))
    graph.connect(Edge("b", "diff", 1))
    assert "at most 2" in graph.check_connect("c", "diff")
    for port, source in enumerate("abc"):
        graph.connect(Edge(source, "sum", port))  # Add takes any number
    assert len(graph.inputs_of("sum")) == 3


# -------------------------------------------------------------- check_value
@pytest.mark.parametrize(("spec", "pspec"), PARAMS, ids=PARAM_IDS)
def test_check_value_accepts_every_default(spec, pspec):
    assert check_value(pspec, pspec.default) is None


def _bad_values(p: ParamSpec) -> list[Any]:
    """Values a user might type that ``p`` must refuse."""
    bad: list[Any] = [] if p.optional or None in p.choices else [None]
    if p.kind == "int":
        bad += ["3", 2.5, True]
        bad += [p.min - 1] if p.min is not None else []
        bad += [p.max + 1] if p.max is not None else []
    elif p.kind == "float":
        bad += ["0.5", True, math.nan, math.inf]
        bad += [p.min - 0.5] if p.min is not None else []
        bad += [p.max + 0.5] if p.max is not None else []
    elif p.kind == "bool":
        bad += [1, "true"]
    elif p.kind == "str":
        bad += [3]
    elif p.kind in ("choice", "initializer"):
        bad += ["no_such_thing", 3]
    elif p.kind == "ints":
        bad += ["3", [], [1.5] * (p.length or 2), [True] * (p.length or 2)]
        bad += [[1] * (p.length + 1)] if p.length else [3, [2, 2], [0, 1]]
        bad += [p.min - 1] if p.min is not None and p.length else []
    elif p.kind == "shape":
        bad += [[], [0], [-2], "8", [1.5], 8]
    elif p.kind == "axes":
        bad += ["1", [1, 2, 3], 1.5]
    elif p.kind == "regularizer":
        bad += [
            "l2",
            {"type": "L3", "l2": 0.1},
            {"type": ["L2"], "l2": 0.1},
            {"type": "L2"},
            {"type": "L2", "l2": -1},
            {"type": "L1", "l1": 0.1, "weight": 2},
            {"type": "L2", "l1": 0.0, "l2": 0.1},
            {"type": "L1L2", "l1": 0.1},
            {"type": "L1", "l1": "0.1"},
        ]
    elif p.kind == "layer":
        inner = p.choices[0]
        required = next(q for q in CATALOG[inner].params if q.required)
        bad += [
            inner,
            {"type": "Conv3D", "params": {}},
            {"type": inner, "params": {**CATALOG[inner].defaults(), "no_such_arg": 1}},
            {"type": inner, "params": {}},
            {"type": inner, "params": {required.name: "many"}},
        ]
    return bad


@pytest.mark.parametrize(("spec", "pspec"), PARAMS, ids=PARAM_IDS)
def test_check_value_refuses_bad_values_and_names_them(spec, pspec):
    for value in _bad_values(pspec):
        message = check_value(pspec, value)
        assert message is not None, f"{spec.type}.{pspec.name} accepted {value!r}"
        assert message.startswith(pspec.name), message


def test_check_value_messages_read_well():
    dense, conv = CATALOG["Dense"], CATALOG["Conv2D"]
    assert check_value(dense.param("units"), -3) == "units must be an int >= 1; got -3"
    assert check_value(conv.param("padding"), "full") == (
        "padding must be one of 'valid', 'same'; got 'full'"
    )
    bidi = CATALOG["Bidirectional"].param("layer")
    message = check_value(bidi, {"type": "GRU", "params": {"units": 0}})
    assert "GRU" in message and "units" in message and "got 0" in message


def test_check_value_accepts_the_forms_users_write():
    conv, reg = CATALOG["Conv2D"], CATALOG["Dense"].param("kernel_regularizer")
    assert check_value(conv.param("kernel_size"), 5) is None
    assert check_value(conv.param("kernel_size"), [5, 3]) is None
    assert check_value(CATALOG["Dropout"].param("rate"), 0) is None  # an int is a number
    assert check_value(reg, {"type": "L1L2", "l1": 0.0, "l2": 1e-4}) is None
    assert check_value(reg, {"type": "L2", "l2": 1e-4}) is None
    assert check_value(CATALOG["Input"].param("shape"), [None, 16]) is None
    assert check_value(CATALOG["Reshape"].param("target_shape"), [4, -1]) is None
    assert check_value(CATALOG["Dense"].param("activation"), None) is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PARAMS), _JSON)
def test_check_value_never_crashes_on_any_json(param, value):
    _, pspec = param
    result = check_value(pspec, value)
    assert result is None or (isinstance(result, str) and result.startswith(pspec.name))


_RANGED = [(s, p) for s, p in PARAMS if p.kind in ("int", "float") and p.min is not None]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_RANGED), st.floats(-1000, 1000, allow_nan=False))
def test_check_value_follows_the_range(param, number):
    _, p = param
    value = round(number) if p.kind == "int" else number
    inside = value >= p.min and (p.max is None or value <= p.max)
    assert (check_value(p, value) is None) == inside


# ------------------------------------------------------------------ captions
def test_caption_examples():
    assert caption("Conv2D", {"filters": 32, "kernel_size": 3, "activation": "relu"}) == (
        "32 filters 3x3 relu"
    )
    assert caption("Dense", {"units": 128, "activation": "relu"}) == "128 units relu"
    assert caption("Dropout", {"rate": 0.5}) == "rate 0.5"
    assert caption("LSTM", {"units": 64}) == "64 units"
    assert caption("Input", {"shape": [8, 8, 1]}) == "8x8x1"


def test_caption_follows_the_params_and_fills_defaults():
    assert caption("Conv2D", {"filters": 8, "kernel_size": [5, 3]}) == "8 filters 5x3"
    pool = CATALOG["MaxPooling2D"].param("pool_size").default
    assert caption("MaxPooling2D", {}) == "x".join(map(str, pool))
    assert caption("LSTM", {"units": 16, "return_sequences": True}) == "16 units sequences"
    assert caption("Bidirectional", {"layer": {"type": "GRU", "params": {"units": 8}}}).startswith(
        "GRU 8 units"
    )
    assert caption("Input", {"shape": [None, 13]}) == "?x13"
    assert caption("Add", {}) == ""
    assert caption("NoSuchLayer", {"units": 3}) == ""


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_caption_is_short_for_every_type(spec):
    text = caption(spec.type, spec.defaults())
    assert len(text) <= 32 and "None" not in text, text


# ------------------------------------------------------------------ imports
def test_catalog_import_does_not_load_tensorflow():
    code = (
        "import sys, json, engine.catalog.table; "
        "print(json.dumps([m for m in ('tensorflow', 'keras') if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == []


_SCALARS = [(s, p) for s, p in PARAMS if p.kind in ("int", "float", "ints") and s.type != "Input"]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_SCALARS), st.integers(-3, 40) | st.floats(-1.5, 1.5))
def test_keras_takes_what_check_value_accepts(keras, param, value):
    spec, pspec = param
    if check_value(pspec, value) is None:
        params = {**spec.defaults(), pspec.name: value}
        # Keep the rules that tie two params together (check_params, tested below):
        if spec.type == "Normalization" and pspec.name in ("mean", "variance"):
            params.update(mean=value, variance=abs(value))
        if pspec.name == "output_padding":
            params["strides"] = (max(value) if isinstance(value, list) else value) + 1
        if check_params(spec.type, params):
            return
        make_layer(keras, spec, params)


# ------------------------------------------------------------- check_params
CROSS_CASES = [  # (type, params that break a rule tying two params, the same rule kept)
    ("Normalization", {"mean": 0.5}, {"mean": 0.5, "variance": 2.0}),
    ("Conv2D", {"strides": 2, "dilation_rate": [2, 1]}, {"strides": 2, "dilation_rate": 1}),
    ("Conv1D", {"strides": 2, "dilation_rate": 2}, {"strides": 1, "dilation_rate": 2}),
    ("Conv2DTranspose", {"output_padding": [1, 0]}, {"output_padding": [1, 0], "strides": 2}),
    (
        "Conv2DTranspose",
        {"output_padding": 1, "strides": [2, 1]},
        {"output_padding": [1, 0], "strides": [2, 1]},
    ),
]


@pytest.mark.parametrize(
    ("node_type", "bad", "good"),
    CROSS_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CROSS_CASES)],
)
def test_check_params_agrees_with_keras(keras, node_type, bad, good):
    spec = CATALOG[node_type]
    problems = check_params(node_type, {**spec.defaults(), **bad})
    assert len(problems) == 1 and all(name in problems[0] for name in bad), problems
    with pytest.raises(ValueError):
        make_layer(keras, spec, {**spec.defaults(), **bad})
    assert check_params(node_type, {**spec.defaults(), **good}) == []
    make_layer(keras, spec, {**spec.defaults(), **good})


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_check_params_accepts_defaults(spec):
    assert check_params(spec.type, spec.defaults()) == []


@pytest.mark.parametrize("type_, name", [("ZeroPadding2D", "padding"), ("Cropping2D", "cropping")])
def test_catalog_uneven_padding_pairs_are_accepted_and_keras_agrees(type_, name):
    import keras

    pspec = CATALOG[type_].param(name)
    assert check_value(pspec, [[0, 1], [2, 0]]) is None
    assert "pairs" in check_value(pspec, [[0, 1], [2]])
    layer = getattr(keras.layers, type_)(**{name: ((0, 1), (2, 0))})
    out = layer(keras.Input((8, 8, 3)))
    assert tuple(out.shape[1:3]) == ((9, 10) if type_ == "ZeroPadding2D" else (7, 6))


def test_catalog_per_channel_values_are_accepted_and_keras_agrees(keras):
    import numpy as np

    from engine.analysis.validation import validate
    from engine.model.project import Project

    norm, rescale = CATALOG["Normalization"], CATALOG["Rescaling"]
    imagenet = {"mean": [0.485, 0.456, 0.406], "variance": [0.052, 0.05, 0.051]}
    assert check_value(norm.param("mean"), imagenet["mean"]) is None
    assert check_value(rescale.param("scale"), [0.5, 0.25, 2.0]) is None
    assert "one per channel" in check_value(norm.param("variance"), [0.1, -1.0])
    assert check_value(CATALOG["Dropout"].param("rate"), [0.1, 0.2]) is not None
    layer = keras.layers.Normalization(**imagenet)
    out = np.asarray(layer(np.full((1, 2, 2, 3), 0.5, dtype="float32")))
    np.testing.assert_allclose(
        out[0, 0, 0], (0.5 - np.array(imagenet["mean"])) / np.sqrt(imagenet["variance"]), rtol=1e-5
    )
    assert caption("Normalization", imagenet) == "mean 0.485,0.456,0.406 var 0.052,0.05,0.051"

    def project(channels: int) -> Project:
        return Project.from_dict(
            {
                "format": "layerlab",
                "version": 1,
                "name": "n",
                "graph": {
                    "nodes": [
                        {"id": "x", "type": "Input", "params": {"shape": [8, 8, channels]}},
                        {"id": "norm", "type": "Normalization", "params": imagenet},
                    ],
                    "edges": [{"source": "x", "target": "norm", "port": 0}],
                },
            }
        )

    assert validate(project(3)).valid
    [problem] = validate(project(1)).errors
    assert problem.node == "norm" and problem.message == (
        "Normalization 'norm': mean has 3 values, variance has 3 values, but the input "
        "(None, 8, 8, 1) has 1 channel on axis -1; give one value per channel, or a single "
        "number"
    )


def test_check_value_refuses_ints_beyond_32_bits_by_name():
    assert (
        check_value(CATALOG["Dense"].param("units"), 3_000_000_000)
        == "units must be at most 2147483647 in size; got 3000000000"
    )
    assert check_value(CATALOG["Conv2D"].param("kernel_size"), [3, 2**40]) is not None
