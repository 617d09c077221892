"""The Operation node (issue 16): allow-listed keras.ops built, inferred, generated, imported.

What a user notices: a functional model that writes ``x + y``, ``x * 0.5``,
``keras.ops.expand_dims`` or ``x[:, 0]`` imports (it used to be refused), the project
builds the very same operations (saved ``.keras`` files load without custom objects,
export verifies), ``validate`` counts what Keras counts, the generated script writes the
same ``keras.ops`` calls, and nothing outside the allow-list runs, nor is text evaluated.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from engine.analysis.shapes import ShapeInference
from engine.build.builder import build_model
from engine.build.errors import BuildError
from engine.catalog.checks import check_value, format_index, parse_index
from engine.catalog.specs import OPERATIONS
from engine.catalog.table import CATALOG
from engine.codegen.script import model_code
from engine.codegen.text import CodegenError
from engine.io.importing.read import ModelImportError
from engine.io.importing.rebuild import import_application, import_model, import_model_with_notes
from engine.model.graph import Edge, Graph, Node

keras = pytest.importorskip("keras")
layers = keras.layers
ops = keras.ops


# ------------------------------------------------------------------ helpers
def graph_of(*nodes: Node, edges: list[tuple[str, str, int]]) -> Graph:
    g = Graph()
    for n in nodes:
        g.nodes[n.id] = n
    g.edges += [Edge(a, b, p) for a, b, p in edges]
    return g


def copy_weights(source, target, ids=None) -> None:
    for layer in source.layers:
        if layer.get_weights():
            target.get_layer((ids or {}).get(layer.name, layer.name)).set_weights(
                layer.get_weights()
            )


def op_names(model) -> list[str]:
    return [type(o).__name__ for o in model.operations]


def round_trip(model, x, *, tol: float = 1e-5):
    """Import ``model``, rebuild it with its weights; return the project and the rebuilt model."""
    project = import_model(model)
    rebuilt = build_model(project)
    copy_weights(model, rebuilt)
    assert rebuilt.count_params() == model.count_params()
    info = ShapeInference(project.graph)
    assert not info.problems
    assert info.totals().total == model.count_params()
    diff = np.abs(np.asarray(model(x)) - np.asarray(rebuilt(x))).max()
    assert diff <= tol
    return project, rebuilt


def scripted(project):
    namespace: dict = {}
    exec("import keras\nfrom keras import layers\n" + model_code(project.graph, "m"), namespace)
    return namespace["build_model"]()


# ------------------------------------------------- every op: build == keras.ops
CASES = [
    # (op params, input shapes, the same computation written with keras.ops)
    ({"op": "add"}, [(3, 4), (3, 4)], lambda a, b: a + b),
    ({"op": "subtract", "constant": 2.0, "constant_first": True}, [(3, 4)], lambda a: 2.0 - a),
    ({"op": "multiply", "constant": 0.5}, [(3, 4)], lambda a: a * 0.5),
    ({"op": "divide"}, [(3, 4), (3, 4)], lambda a, b: ops.divide(a, b)),
    ({"op": "relu"}, [(3, 4)], ops.relu),
    ({"op": "relu6"}, [(3, 4)], ops.relu6),
    ({"op": "silu"}, [(3, 4)], ops.silu),
    ({"op": "hard_sigmoid"}, [(3, 4)], ops.hard_sigmoid),
    ({"op": "hard_silu"}, [(3, 4)], ops.hard_silu),
    ({"op": "sigmoid"}, [(3, 4)], ops.sigmoid),
    ({"op": "tanh"}, [(3, 4)], ops.tanh),
    ({"op": "gelu", "approximate": False}, [(3, 4)], lambda a: ops.gelu(a, approximate=False)),
    ({"op": "softmax", "axis": 1}, [(3, 4)], lambda a: ops.softmax(a, axis=1)),
    ({"op": "expand_dims", "axis": 1}, [(3, 4)], lambda a: ops.expand_dims(a, 1)),
    ({"op": "squeeze", "axis": 2}, [(3, 1, 4)], lambda a: ops.squeeze(a, 2)),
    ({"op": "reshape", "newshape": [-1, 12]}, [(3, 4)], lambda a: ops.reshape(a, (-1, 12))),
    ({"op": "transpose", "axes": [0, 2, 1]}, [(3, 4)], lambda a: ops.transpose(a, (0, 2, 1))),
    (
        {"op": "concatenate", "axis": -1},
        [(3, 4), (3, 2)],
        lambda a, b: ops.concatenate([a, b], axis=-1),
    ),
    ({"op": "stack", "axis": 1}, [(3, 4), (3, 4)], lambda a, b: ops.stack([a, b], axis=1)),
    (
        {"op": "mean", "axis": [1, 2], "keepdims": True},
        [(3, 4)],
        lambda a: ops.mean(a, axis=(1, 2), keepdims=True),
    ),
    ({"op": "sum", "axis": -1}, [(3, 4)], lambda a: ops.sum(a, axis=-1)),
    ({"op": "max", "axis": 1}, [(3, 4)], lambda a: ops.max(a, axis=1)),
    (
        {"op": "get_item", "key": [[None, None, None], [1, None, None], "...", None, 0]},
        [(3, 4)],
        lambda a: a[:, 1:, ..., None, 0],
    ),
]


def test_every_op_of_the_allow_list_has_a_case():
    assert sorted({params["op"] for params, _s, _f in CASES}) == sorted(OPERATIONS)


@pytest.mark.parametrize("params,shapes,fn", CASES, ids=[c[0]["op"] for c in CASES])
def test_an_operation_node_is_the_keras_operation(params, shapes, fn):
    nodes = [Node(f"in{i}", "Input", {"shape": list(s)}) for i, s in enumerate(shapes)]
    op = Node("op", "Operation", params)
    g = graph_of(*nodes, op, edges=[(f"in{i}", "op", i) for i in range(len(shapes))])
    model = build_model(g)
    inputs = [keras.Input(s) for s in shapes]
    reference = keras.Model(inputs, fn(*inputs))
    assert op_names(model)[-1] == op_names(reference)[-1]  # the same keras.ops class
    info = ShapeInference(g).info["op"]
    assert info.output_shape == tuple(reference.output.shape)
    assert info.params == 0
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, *s)).astype("float32") + 2 for s in shapes]
    np.testing.assert_allclose(model(xs), reference(xs), rtol=1e-6, atol=1e-6)
    again = scripted(project_of(g))  # the generated keras.ops call
    np.testing.assert_allclose(again(xs), reference(xs), rtol=1e-6, atol=1e-6)


def project_of(g: Graph):
    from engine.model.project import Project

    return Project(name="ops", graph=g)


# ------------------------------------------------------- refusals and safety
def test_nothing_outside_the_allow_list_is_built_or_generated():
    g = graph_of(
        Node("x", "Input", {"shape": [4]}),
        Node("op", "Operation", {"op": "eval"}),
        edges=[("x", "op", 0)],
    )
    with pytest.raises(BuildError, match="op must be one of"):
        build_model(g)
    with pytest.raises(CodegenError, match="op must be one of"):
        model_code(g, "m")
    assert check_value(CATALOG["Operation"].param("op"), "__import__") is not None


def test_slicing_indices_are_data_never_text():
    key = CATALOG["Operation"].param("key")
    assert check_value(key, "x[__import__('os')]") is not None
    assert check_value(key, [["a", None, None]]) is not None
    assert check_value(key, [[None, None, 0]]) is not None  # a zero step
    assert check_value(key, [[None, None, None], 1, "...", None]) is None
    assert parse_index(":, 1:5, ..., None, -1") == [
        [None, None, None],
        [1, 5, None],
        "...",
        None,
        -1,
    ]
    assert format_index([[None, None, None], [1, 5, 2], 0]) == ":, 1:5:2, 0"
    with pytest.raises(ValueError, match="not an int"):
        parse_index(":, os.system")


def test_an_op_says_which_params_it_does_not_take():
    g = graph_of(
        Node("x", "Input", {"shape": [4]}),
        Node("op", "Operation", {"op": "relu", "axis": 1}),
        edges=[("x", "op", 0)],
    )
    problems = ShapeInference(g).problems
    assert problems and "op 'relu' takes no axis" in problems[0].message
    g.nodes["op"].params = {"op": "add"}  # one input, no constant
    problems = ShapeInference(g).problems
    assert problems and "takes 2 inputs" in problems[0].message


# ----------------------------------------------------------------- import
def keras_io_style_model():
    """What keras.io examples write inline: residual x + y, x * c, c - x, expand_dims,
    silu, slicing, stack, mean over axes, reshape, x / c."""
    x = keras.Input((10, 4), name="series")
    y = layers.Dense(4, name="proj")(x)
    a = x + y
    b = 2.0 * a
    c = 1.0 - ops.expand_dims(b, 1)
    d = ops.squeeze(c, 1)
    e = ops.silu(d)
    f = e[:, 1:5, :]
    g = ops.stack([f, f], axis=1)
    h = ops.mean(g, axis=-1, keepdims=True)
    i = ops.reshape(ops.hard_silu(h), (-1, 8))
    out = layers.Dense(3, name="head")(i / 3)
    return keras.Model(x, out, name="ops_model")


def test_a_model_with_keras_operations_round_trips_exactly():
    model = keras_io_style_model()
    x = np.random.default_rng(1).standard_normal((3, 10, 4)).astype("float32")
    project, rebuilt = round_trip(model, x)
    kinds = [n.params.get("op") for n in project.graph.nodes.values() if n.type == "Operation"]
    assert kinds == [
        "add",
        "multiply",
        "expand_dims",
        "subtract",
        "squeeze",
        "silu",
        "get_item",
        "stack",
        "mean",
        "hard_silu",
        "reshape",
        "divide",
    ]
    by_op = {
        n.params["op"]: n.params for n in project.graph.nodes.values() if n.type == "Operation"
    }
    assert by_op["multiply"] == {"op": "multiply", "constant": 2.0, "constant_first": True}
    assert by_op["get_item"]["key"] == [[None, None, None], [1, 5, None], [None, None, None]]
    # the same operation classes (x / 3 records TrueDivide; the node builds ops.divide)
    same = [n if n != "TrueDivide" else "Divide" for n in op_names(model)]
    assert op_names(rebuilt) == same
    again = scripted(project)
    assert [type(o).__name__ for o in again.operations] == same
    copy_weights(model, again)
    np.testing.assert_allclose(again(x), model(x), atol=1e-5)


def test_a_saved_model_with_operations_imports_and_builds_without_custom_objects(tmp_path):
    model = keras_io_style_model()
    model.save(tmp_path / "ops.keras")
    project, notes = import_model_with_notes(tmp_path / "ops.keras")
    assert not notes
    rebuilt = build_model(project)
    rebuilt.save(tmp_path / "rebuilt.keras")
    loaded = keras.saving.load_model(tmp_path / "rebuilt.keras", safe_mode=True)
    assert op_names(loaded) == op_names(rebuilt)


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "tflite", "onnx", "python"])
def test_a_model_with_operations_exports_and_verifies(fmt, tmp_path):
    import importlib.util

    from engine.io.export import export

    if fmt == "onnx" and importlib.util.find_spec("tf2onnx") is None:
        pytest.skip("tf2onnx is not installed")
    project = import_model(keras_io_style_model())
    result = export(project, fmt, tmp_path / "model")
    assert result.verified, result.message


def test_a_legacy_h5_export_says_it_cannot_hold_operations(tmp_path):
    from engine.io.export import export

    project = import_model(keras_io_style_model())
    result = export(project, "h5", tmp_path / "model")
    assert not result.verified
    assert "are Keras operations (Operation nodes), which Keras's legacy HDF5" in result.message
    assert "export .keras instead" in result.message


def test_operations_outside_the_allow_list_are_named_with_what_to_do():
    x = keras.Input((4,))
    model = keras.Model(x, ops.cumsum(layers.Dense(4, name="d")(x), axis=1))
    with pytest.raises(ModelImportError) as err:
        import_model(model)
    text = str(err.value)
    assert "(Cumsum): the Keras operation keras.ops.cumsum is not one the Operation node" in text
    assert "get_item" in text  # says what is offered


def test_a_tensor_index_is_refused_not_guessed():
    x = keras.Input((4,))
    idx = keras.Input((2,), dtype="int32")
    model = keras.Model([x, idx], ops.take(x, idx, axis=1))
    with pytest.raises(ModelImportError, match=r"\(Take\)"):
        import_model(model)


# ---------------------------------------------------------- MobileNetV3 by name
@pytest.mark.parametrize("name", ["MobileNetV3Small", "MobileNetV3Large"])
def test_mobilenet_v3_imports_by_name_and_round_trips(name):
    source = getattr(keras.applications, name)(weights=None, input_shape=(64, 64, 3), classes=5)
    project = import_application(name, input_shape=(64, 64, 3), classes=5)
    ops_nodes = [n for n in project.graph.nodes.values() if n.type == "Operation"]
    assert ops_nodes  # x * hard_sigmoid(x), the residual adds
    rebuilt = build_model(project)
    copy_weights(source, rebuilt)
    totals = ShapeInference(project.graph).totals()
    assert (totals.total, totals.trainable) == (
        source.count_params(),
        sum(int(np.prod(w.shape)) for w in source.trainable_weights),
    )
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    assert np.abs(np.asarray(source(x)) - np.asarray(rebuilt(x))).max() <= 1e-5


# ---------------------------------------------------------- GroupQueryAttention
def test_a_group_query_attention_model_imports_and_builds():
    x = keras.Input((6, 8))
    gqa = layers.GroupQueryAttention(
        head_dim=4, num_query_heads=4, num_key_value_heads=2, name="gqa"
    )
    model = keras.Model(x, gqa(x, x))
    x_ = np.random.default_rng(0).standard_normal((2, 6, 8)).astype("float32")
    project, _rebuilt = round_trip(model, x_)
    assert [e.port for e in project.graph.inputs_of("gqa")] == [0, 1]  # query, value
    assert "layers.GroupQueryAttention(" in model_code(project.graph, "m")
    assert re.search(r"\)\((\w+), \1\)", model_code(project.graph, "m"))  # gqa(x, x)


# ---------------------------------------------------------- refusal wording
class Twice(layers.Layer):
    def call(self, x):
        return x * 2


def test_a_custom_class_is_called_a_custom_class_and_its_input_is_not_blamed():
    x = keras.Input((3,), name="features")
    model = keras.Model(x, layers.Dense(2, name="head")(Twice(name="twice")(x)))
    with pytest.raises(ModelImportError) as err:
        import_model(model)
    text = str(err.value)
    assert "'twice' (Twice): a custom class (Twice from" in text
    assert "rewrite it with built-in Keras layers" in text
    assert "feeds no layer" not in text


def test_an_input_feeding_an_unsupported_layer_is_not_said_to_feed_nothing():
    x = keras.Input((3,), name="ids")
    model = keras.Model(x, layers.Dense(2)(ops.cumsum(x, axis=1)))
    with pytest.raises(ModelImportError) as err:
        import_model(model)
    assert "feeds no layer" not in str(err.value)
    assert "(Cumsum)" in str(err.value)


# -------------------------------------------------- train_step subclasses
class TrainStepModel(keras.Model):
    """keras.io "Customizing what happens in fit()": a functional graph, own train_step."""

    def train_step(self, data):
        return super().train_step(data)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.dense = layers.Dense(2)

    def call(self, x):
        return self.dense(x) * 2


def _train_step_model():
    x = keras.Input((4,))
    return TrainStepModel(x, layers.Dense(2, name="out")(layers.Dense(3)(x)), name="custom_fit")


@pytest.mark.parametrize("saved", [False, True], ids=["object", "file"])
def test_a_train_step_subclass_imports_as_its_graph_with_a_note(saved, tmp_path):
    model = _train_step_model()
    source = model
    if saved:
        model.save(tmp_path / "custom_fit.keras")
        source = tmp_path / "custom_fit.keras"
    project, notes = import_model_with_notes(source)
    assert any("TrainStepModel (a keras.Model subclass)" in n for n in notes)
    assert any("training step (train_step, compile) is not kept" in n for n in notes)
    rebuilt = build_model(project)
    copy_weights(model, rebuilt)
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(rebuilt(x), model(x), atol=1e-6)


def test_a_subclassed_model_is_refused_naming_the_class_and_what_to_do(tmp_path):
    model = Subclassed()
    model(np.zeros((1, 4), "float32"))
    for source in (model, None):
        if source is None:
            model.save(tmp_path / "sub.keras")
            source = tmp_path / "sub.keras"
        with pytest.raises(ModelImportError) as err:
            import_model(source)
        text = str(err.value)
        assert "(Subclassed): a subclassed keras.Model whose call() is Python code" in text
        assert "keras.Model(inputs, outputs)" in text


def test_a_layer_class_private_to_keras_applications_is_said_to_be_private():
    from engine.io.importing.read import scan

    entry = {
        "class_name": "LayerScale",
        "module": "keras.src.applications.convnext",
        "config": {"name": "block_layer_scale"},
    }
    _unsafe, unknown = scan({"config": {"layers": [entry]}})
    assert unknown == [
        "'block_layer_scale' (LayerScale): the catalog has no layer type 'LayerScale'; "
        "it is private to keras.applications (not in keras.layers)"
    ]


def test_an_operation_card_says_what_it_does():
    from engine.catalog.checks import caption

    assert caption("Operation", {"op": "get_item", "key": [[None, None, None], -1]}) == (
        "get_item [:, -1]"
    )
    assert caption("Operation", {"op": "multiply", "constant": 0.5}) == "multiply 0.5"
    assert caption("Operation", {"op": "mean", "axis": [1, 2]}) == "mean axis 1,2"


def test_group_query_heads_must_divide_evenly():
    from engine.catalog.checks import check_params

    assert check_params(
        "GroupQueryAttention", {"head_dim": 4, "num_query_heads": 4, "num_key_value_heads": 3}
    ) == [
        "num_query_heads must be a multiple of num_key_value_heads; got "
        "num_query_heads=4, num_key_value_heads=3"
    ]


def test_one_tensor_may_feed_both_inputs_of_an_operation():
    x = keras.Input((4,))
    h = layers.Dense(4, name="h")(x)
    model = keras.Model(x, h * h + 1)  # x * x, then + 1 (an int constant)
    project, rebuilt = round_trip(model, np.ones((2, 4), "float32"))
    square = next(n for n in project.graph.nodes.values() if n.params.get("op") == "multiply")
    assert [(e.source, e.port) for e in project.graph.inputs_of(square.id)] == [("h", 0), ("h", 1)]
    plus = next(n for n in project.graph.nodes.values() if n.params.get("op") == "add")
    assert plus.params["constant"] == 1
