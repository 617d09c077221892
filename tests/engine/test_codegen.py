"""The code generator: the script it writes rebuilds, loads and trains what LayerLab does.

TensorFlow starts once for the module (building models in-process); one test
runs a generated script end to end in a subprocess.
"""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.codegen.script import generate, variable_names
from engine.codegen.text import CodegenError, docstring, literal
from engine.data.dataset import load_data as engine_load_data
from engine.model.graph import Graph, Node
from engine.model.project import Project

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "presets").glob("*.json"))
HOSTILE = 'x"); import os; os.system("echo pwned")  #'
ALLOWED_IMPORTS = {
    "argparse",
    "csv",
    "math",
    "pathlib",
    "keras",
    "numpy",
    "sklearn",
    "sklearn.datasets",
    "tensorflow",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.csv",
}

# --------------------------------------------------------------------------- helpers


def make_project(
    nodes, edges, *, data=None, training=None, name="Test model", description=""
) -> Project:
    """A project from compact node tuples ``(id, type, params)`` and ``(src, dst[, port])``."""
    d = {
        "format": "layerlab",
        "version": 1,
        "name": name,
        "description": description,
        "graph": {
            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
            "edges": [
                {"source": e[0], "target": e[1], "port": e[2] if len(e) > 2 else 0} for e in edges
            ],
        },
        "data": data or {"source": "builtin:iris", "validation_split": 0.2},
        "training": training
        or {
            "optimizer": {"type": "Adam", "learning_rate": 0.01},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": 32,
            "epochs": 2,
            "seed": 0,
        },
    }
    return Project.from_dict(d)


def run_source(source: str, file: Path | None = None) -> dict:
    """Execute generated source as a module (``main()`` does not run) and return its names."""
    namespace = {"__name__": "generated", "__file__": str(file or "generated.py")}
    exec(compile(source, str(file or "generated.py"), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def keras():
    import keras as k

    return k


def build_both(keras, project: Project, source: str | None = None):
    """(LayerLab's model, the generated script's model), weights shaped but not filled."""
    from keras.src.backend.common import global_state

    from engine.build.builder import build_model

    namespace = run_source(source or generate(project))
    before = list(global_state.get_global_attribute("uninitialized_variables") or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            return build_model(project), namespace["build_model"]()
    finally:
        global_state.set_global_attribute("uninitialized_variables", before)


def without_inner_names(config):
    """A model config with the auto-generated names of wrapped layers removed.

    Top-level layer names are node ids and stay; a wrapped layer (Bidirectional's
    LSTM) gets a name from a global counter that differs between two builds.
    """

    def strip(obj, depth):
        if isinstance(obj, dict):
            return {
                k: strip(v, depth + 1)
                for k, v in obj.items()
                if not (k == "name" and depth > 3 and isinstance(v, str))
            }
        if isinstance(obj, list):
            return [strip(v, depth + 1) for v in obj]
        return obj

    return strip(config, 0)


def assert_same_model(keras, project: Project) -> str:
    source = generate(project)
    ours, theirs = build_both(keras, project, source)
    assert theirs.name == ours.name
    assert [(type(x).__name__, x.name) for x in theirs.layers] == [
        (type(x).__name__, x.name) for x in ours.layers
    ]
    assert without_inner_names(theirs.get_config()) == without_inner_names(ours.get_config())
    assert theirs.count_params() == ours.count_params()
    return source


def statements(source: str, function: str = "build_model") -> list[str]:
    """Each statement of a generated function on one line (argument wrapping undone)."""
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    out = []
    for stmt in func.body:
        text = ast.get_source_segment(source, stmt)
        text = re.sub(r"\(\s*\n\s*", "(", text)
        text = re.sub(r",?\s*\n\s*\)", ")", text)
        out.append(re.sub(r",\s*\n\s*", ", ", text))
    return out


# --------------------------------------------------------------------------- models

CNN = [
    ("input", "Input", {"shape": [8, 8, 1]}),
    (
        "conv1",
        "Conv2D",
        {
            "filters": 6,
            "kernel_size": 3,
            "padding": "same",
            "activation": "relu",
            "strides": [1, 1],
            "use_bias": True,
        },
    ),
    ("pool", "MaxPooling2D", {"pool_size": [2, 1], "padding": "valid"}),
    ("flat", "Flatten", {}),
    ("out", "Dense", {"units": 10, "activation": "softmax"}),
]
CNN_EDGES = [("input", "conv1"), ("conv1", "pool"), ("pool", "flat"), ("flat", "out")]


def test_codegen_small_cnn_builds_the_same_model(keras):
    source = assert_same_model(keras, make_project(CNN, CNN_EDGES))
    lines = statements(source)
    assert any('keras.Input(shape=(8, 8, 1), name="input")' in line for line in lines)
    conv = next(line for line in lines if "layers.Conv2D" in line)
    assert "strides" not in conv and "use_bias" not in conv  # defaults are left out
    assert 'padding="same"' in conv and "filters=6" in conv
    assert 'pool = layers.MaxPooling2D(pool_size=(2, 1), name="pool")(conv1)' in lines


def test_codegen_seeded_script_starts_from_the_same_weights_as_layerlab(keras):
    from engine.build.builder import build_model

    project = make_project(CNN, CNN_EDGES)
    namespace = run_source(generate(project))
    keras.utils.set_random_seed(0)
    ours = build_model(project)
    keras.utils.set_random_seed(0)
    theirs = namespace["build_model"]()
    assert len(ours.weights) == len(theirs.weights) > 0
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_codegen_residual_add_graph_builds_the_same_model(keras):
    nodes = [
        ("input", "Input", {"shape": [16]}),
        ("a", "Dense", {"units": 16, "activation": "relu"}),
        ("b", "Dense", {"units": 16}),
        ("add", "Add", {}),
        ("out", "Dense", {"units": 3, "activation": "softmax"}),
    ]
    edges = [("input", "a"), ("a", "b"), ("b", "add", 0), ("input", "add", 1), ("add", "out")]
    source = assert_same_model(keras, make_project(nodes, edges))
    assert 'add = layers.Add(name="add")([b, input_])' in statements(source)


def test_codegen_concatenate_orders_its_inputs_by_port(keras):
    nodes = [
        ("input", "Input", {"shape": [8, 8, 1]}),
        ("wide", "Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}),
        ("narrow", "Conv2D", {"filters": 2, "kernel_size": 1}),
        ("join", "Concatenate", {"axis": -1}),
        ("flat", "Flatten", {}),
        ("out", "Dense", {"units": 10}),
    ]
    # edges listed against port order: the code must follow the ports
    edges = [
        ("input", "wide"),
        ("input", "narrow"),
        ("wide", "join", 1),
        ("narrow", "join", 0),
        ("join", "flat"),
        ("flat", "out"),
    ]
    source = assert_same_model(keras, make_project(nodes, edges))
    assert 'join = layers.Concatenate(name="join")([narrow, wide])' in statements(source)


def test_codegen_multi_input_multi_output_graph_builds_the_same_model(keras):
    nodes = [
        ("image", "Input", {"shape": [8, 8, 1]}),
        ("meta", "Input", {"shape": [3]}),
        ("flat", "Flatten", {}),
        ("both", "Concatenate", {}),
        ("hidden", "Dense", {"units": 8, "activation": "relu"}),
        ("label", "Dense", {"units": 10, "activation": "softmax"}),
        ("score", "Dense", {"units": 1}),
    ]
    edges = [
        ("image", "flat"),
        ("flat", "both", 0),
        ("meta", "both", 1),
        ("both", "hidden"),
        ("hidden", "label"),
        ("hidden", "score"),
    ]
    source = assert_same_model(keras, make_project(nodes, edges))
    assert (
        statements(source)[-1]
        == 'return keras.Model(inputs=[image, meta], outputs=[label, score], name="Test_model")'
    )


def test_codegen_wrapped_layers_bidirectional_and_time_distributed(keras):
    nodes = [
        ("input", "Input", {"shape": [8, 8]}),
        (
            "rnn",
            "Bidirectional",
            {
                "layer": {"type": "LSTM", "params": {"units": 12, "return_sequences": True}},
                "merge_mode": "sum",
            },
        ),
        ("per_step", "TimeDistributed", {"layer": {"type": "Dense", "params": {"units": 4}}}),
        ("gru", "GRU", {"units": 5}),
        ("out", "Dense", {"units": 10, "activation": "softmax"}),
    ]
    edges = [("input", "rnn"), ("rnn", "per_step"), ("per_step", "gru"), ("gru", "out")]
    source = assert_same_model(
        keras, make_project(nodes, edges, data={"source": "builtin:digits-rows"})
    )
    lines = statements(source)
    assert (
        "rnn = layers.Bidirectional(layer=layers.LSTM(units=12, return_sequences=True), "
        'merge_mode="sum", name="rnn")(input_)' in lines
    )
    assert (
        'per_step = layers.TimeDistributed(layer=layers.Dense(units=4), name="per_step")(rnn)'
        in lines
    )


def test_codegen_regularizers_become_keras_regularizers(keras):
    nodes = [
        ("input", "Input", {"shape": [4]}),
        (
            "a",
            "Dense",
            {
                "units": 8,
                "kernel_regularizer": {"type": "L2", "l2": 0.01},
                "bias_regularizer": {"type": "L1", "l1": 0.001},
                "activity_regularizer": {"type": "L1L2", "l1": 0.01, "l2": 0.02},
            },
        ),
        ("b", "Dense", {"units": 3, "kernel_regularizer": None}),
    ]
    source = assert_same_model(keras, make_project(nodes, [("input", "a"), ("a", "b")]))
    assert "kernel_regularizer=keras.regularizers.L2(0.01)" in source
    assert "bias_regularizer=keras.regularizers.L1(0.001)" in source
    assert "activity_regularizer=keras.regularizers.L1L2(l1=0.01, l2=0.02)" in source


def test_codegen_self_attention_passes_query_and_value_positionally(keras):
    nodes = [
        ("input", "Input", {"shape": [6, 8]}),
        ("attention", "MultiHeadAttention", {"num_heads": 2, "key_dim": 4}),
        ("pool", "GlobalAveragePooling1D", {}),
        ("out", "Dense", {"units": 2}),
    ]
    edges = [
        ("input", "attention", 0),
        ("input", "attention", 1),
        ("attention", "pool"),
        ("pool", "out"),
    ]
    source = assert_same_model(keras, make_project(nodes, edges))
    assert (
        'attention = layers.MultiHeadAttention(num_heads=2, key_dim=4, name="attention")'
        "(input_, input_)" in statements(source)
    )


# --------------------------------------------------------------------------- blocks

BLOCK_NODES = [
    ("input", "Input", {"shape": [16]}),
    ("a", "Dense", {"units": 16, "activation": "relu"}),
    ("b", "Dense", {"units": 16}),
    ("add", "Add", {}),
    ("c", "Dense", {"units": 16, "activation": "relu"}),
    ("d", "Dense", {"units": 16}),
    ("add2", "Add", {}),
    ("aux", "Dense", {"units": 2}),
    ("side", "Dense", {"units": 16}),
    ("mix", "Add", {}),
    ("out", "Dense", {"units": 3, "activation": "softmax"}),
]
BLOCK_EDGES = [
    ("input", "a"),
    ("a", "b"),
    ("b", "add", 0),
    ("input", "add", 1),
    ("add", "c"),
    ("c", "d"),
    ("d", "add2", 0),
    ("add", "add2", 1),
    ("c", "aux"),  # a model output inside the stage: the stage returns two tensors
    ("input", "side"),  # not in any block, read by a block's layer
    ("add2", "mix", 0),
    ("side", "mix", 1),
    ("mix", "out"),
]


def blocks_project(with_blocks: bool = True) -> Project:
    from engine.model.blocks import Block

    project = make_project(BLOCK_NODES, BLOCK_EDGES)
    if with_blocks:
        g = project.graph
        g.add_block(Block("stage", "Stage 1", ["input", "a", "b", "add", "c", "d", "add2", "aux"]))
        g.add_block(Block("unit1", "Unit", ["a", "b", "add"], collapsed=True))
        g.add_block(Block("unit2", "Unit", ["c", "d", "add2"], collapsed=True))
        g.add_block(Block("merge", "Merge", ["mix"]))
        g.add_block(Block("head", "Head", ["mix", "out"]))
    return project


def test_blocks_build_the_same_keras_model_and_report_as_without(keras):
    from engine.analysis.validation import validate
    from engine.build.builder import build_model

    plain, grouped = blocks_project(False), blocks_project()
    with keras.StatelessScope(initialize_variables=False):
        ours, theirs = build_model(plain), build_model(grouped)
    assert [x.name for x in theirs.layers] == [x.name for x in ours.layers]
    assert theirs.get_config() == ours.get_config()
    assert theirs.count_params() == ours.count_params()
    assert validate(grouped).to_dict() == validate(plain).to_dict()


def test_codegen_writes_each_block_as_a_function_called_where_it_is_used(keras, tmp_path):
    source = assert_same_model(keras, blocks_project())
    assert statements(source, "unit1")[1:] == [
        'a = layers.Dense(units=16, activation="relu", name="a")(input_)',
        'b = layers.Dense(units=16, name="b")(a)',
        'add = layers.Add(name="add")([b, input_])',
        "return add",
    ]
    assert statements(source, "stage")[1:] == [
        "add = unit1(input_)",
        "c, add2 = unit2(add)",
        'aux = layers.Dense(units=2, name="aux")(c)',
        "return add2, aux",  # several outputs: a tuple
    ]
    build = statements(source)
    assert build[1] == 'input_ = keras.Input(shape=(16,), name="input")'  # Inputs stay here
    assert "add2, aux = stage(input_)" in build
    assert "out = head(add2, side)" in build
    assert statements(source, "head")[1:2] == ["mix = merge(add2, side)"]
    path = tmp_path / "blocks.py"
    path.write_text(source, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--select", "F,E9,E3"]
        + [str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_codegen_a_block_a_wire_leaves_and_reenters_is_written_inline(keras):
    from engine.model.blocks import Block

    project = blocks_project(False)
    # a -> b leaves {a, add}; b feeds add: not one call, so no function for it
    project.graph.add_block(Block("loop", "Loop", ["a", "add"]))
    project.graph.add_block(Block("pair", "Pair", ["c", "d"]))
    source = assert_same_model(keras, project)
    assert "def loop" not in source and "def pair(add):" in source


def test_codegen_block_function_names_avoid_script_names(keras):
    from engine.model.blocks import Block

    project = blocks_project(False)
    project.graph.add_block(Block("layers", "Clash", ["c", "d"]))
    project.graph.add_block(Block("keras_", "Clash", ["a", "b"]))
    source = assert_same_model(keras, project)
    assert "def layers_block(add):" in source


def test_codegen_a_block_with_many_outputs_wraps_its_return_and_its_call(keras):
    from engine.model.blocks import Block

    heads = [f"classification_head_for_task_{i}" for i in range(6)]
    nodes = [("input", "Input", {"shape": [8]}), ("trunk", "Dense", {"units": 8})]
    nodes += [(h, "Dense", {"units": 2, "activation": "softmax"}) for h in heads]
    edges = [("input", "trunk")] + [("trunk", h) for h in heads]
    project = make_project(nodes, edges)
    project.graph.add_block(Block("heads", "Heads", ["trunk", *heads]))
    source = assert_same_model(keras, project)  # six model outputs leave the block
    assert max(len(line) for line in source.splitlines()) <= 100
    assert statements(source, "heads")[-1] == "return (" + ", ".join(heads) + ")"
    assert "(" + ", ".join(heads) + ") = heads(input_)" in statements(source)


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_codegen_every_preset_builds_the_same_model(keras, preset):
    from engine.model.project import load_project

    assert_same_model(keras, load_project(preset))


def test_codegen_variable_names_avoid_keywords_builtins_and_script_names():
    graph = Graph()
    for nid in (
        "input",
        "keras",
        "layers",
        "model",
        "np",
        "input_",
        "list",
        "conv",
        "\uff4beras",
        "caf\u00e9",
    ):  # a fullwidth k: Python reads it as "keras"
        graph.nodes[nid] = Node(nid, "Dense", {"units": 1})
    names = variable_names(graph)
    assert names["caf\u00e9"] == "caf\u00e9"
    assert names["\uff4beras"].startswith("keras_")
    assert names["conv"] == "conv"
    assert names["input_"] == "input_"  # an id keeps its own name where it can
    assert names["input"] not in ("input", "input_")
    for nid in ("keras", "layers", "model", "np", "list"):
        assert names[nid] != nid and names[nid].startswith(nid)
    assert len(set(names.values())) == len(names)


# --------------------------------------------------------------------------- safety


def tokens_holding(source: str, text: str) -> set[str]:
    """Token types of every token whose text contains ``text``."""
    return {
        tokenize.tok_name[t.type]
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if text in t.string
    }


def assert_inert(source: str, marker: str = "pwned") -> None:
    """The source parses, imports only the allowed modules, and ``marker`` is never code."""
    tree = ast.parse(source)
    assert tokens_holding(source, marker) <= {"STRING", "COMMENT"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= ALLOWED_IMPORTS
        elif isinstance(node, ast.ImportFrom):
            assert node.module in ALLOWED_IMPORTS
        elif isinstance(node, ast.Name):
            assert node.id not in ("os", "system", "eval", "exec", "__import__")


def test_codegen_hostile_project_text_stays_inside_strings(tmp_path):
    description = (
        'Ends a docstring: """ + __import__("os").system("echo pwned") #\n'
        "''' and a backslash \\\r\nand a NUL \x00 and \u2028 " + HOSTILE
    )
    nodes = [("input", "Input", {"shape": [4]}), ("out", "Dense", {"units": 3})]
    data = {
        "source": "csv",
        "path": HOSTILE + ".csv",
        "target": HOSTILE,
        "features": [HOSTILE + "a"],
        "categorical": [HOSTILE + "a"],
        "delimiter": ";",
    }
    project = make_project(
        nodes, [("input", "out")], data=data, name=HOSTILE, description=description
    )
    source = generate(project, weights=HOSTILE + ".weights.h5")
    assert_inert(source)
    tree = ast.parse(source)
    doc = ast.get_docstring(tree, clean=False)
    assert doc.startswith(HOSTILE + "\n") and doc.count(HOSTILE) == 3
    assert 'Ends a docstring: """ + __import__("os")' in doc
    namespace = run_source(source)  # defining the functions runs nothing hostile
    assert callable(namespace["main"])


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=8,
    )
)
def test_codegen_literal_round_trips_any_value(value):
    code = literal(value)
    assert eval(code, {"__builtins__": {}, "float": float}) == value


@given(st.text())
@settings(max_examples=60, deadline=None)
def test_codegen_text_is_one_string_token_as_literal_and_as_docstring(text):
    for code in (literal(text), docstring(text, indent="    ")):
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(code).readline)
            if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)
        ]
        assert [tokenize.tok_name[t.type] for t in tokens] == ["STRING"]
    assert ast.literal_eval(literal(text)) == text
    lines = [line.rstrip(" \t") for line in text.split("\n")]
    expected = "\n".join(lines[:1] + [("    " + line) if line else "" for line in lines[1:]])
    assert ast.literal_eval(docstring(text, indent="    ")) == expected + (
        "\n    " if len(lines) > 1 else ""
    )


@pytest.mark.parametrize("nid", [HOSTILE, "1abc", "class", ""])
def test_codegen_refuses_invalid_ids_naming_the_node(nid):
    project = make_project([("input", "Input", {"shape": [4]})], [])
    project.graph.nodes[nid] = Node(nid, "Dense", {"units": 1})
    with pytest.raises(ValueError, match=r"layer .*not a valid Python identifier") as info:
        generate(project)
    assert repr(nid) in str(info.value)


@pytest.mark.parametrize(
    "node_type, params, words",
    [
        ("os.system", {}, "os.system"),
        ("Dense", {"units": 3, "x=1); import os; os.system('pwned'); f(y": 1}, "os.system"),
        ("Dense", {"units": 3, "activation": HOSTILE}, "activation"),
    ],
)
def test_codegen_refuses_unknown_types_params_and_values(node_type, params, words):
    project = make_project(
        [("input", "Input", {"shape": [4]}), ("bad", node_type, params)], [("input", "bad")]
    )
    with pytest.raises(CodegenError, match="bad") as info:
        generate(project)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "training, words",
    [
        ({"optimizer": {"type": "os.system", "learning_rate": 0.1}}, "os.system"),
        ({"metrics": [HOSTILE]}, "pwned"),
        ({"optimizer": {"type": "Adam", HOSTILE: 1}}, "pwned"),
    ],
)
def test_codegen_refuses_unknown_training_settings(training, words):
    project = make_project(CNN, CNN_EDGES, training=training)
    with pytest.raises(CodegenError, match="training") as info:
        generate(project)
    assert words in str(info.value)


def test_codegen_output_passes_ruff_for_every_kind_of_project(tmp_path):
    projects = [
        make_project(CNN, CNN_EDGES, data={"source": s, "validation_split": 0.25, **extra})
        for s, extra in [
            ("builtin:digits", {}),
            ("builtin:moons", {"samples": 50}),
            ("builtin:adding", {}),
            ("csv", {"path": "a.csv"}),
            ("npz", {"path": "a.npz", "x": "inputs"}),
            ("images", {"path": "pics"}),
        ]
    ]
    projects.append(
        make_project(
            CNN,
            CNN_EDGES,
            training={
                "optimizer": {"type": "SGD", "learning_rate": 0.1, "momentum": 0.9},
                "schedule": {"type": "cosine", "warmup_epochs": 1},
                "class_weight": "balanced",
                "loss": {"type": "categorical_crossentropy", "label_smoothing": 0.1},
                "early_stopping": {"patience": 2},
                "precision": "mixed_float16",
            },
        )
    )
    files = []
    for i, project in enumerate(projects):
        path = tmp_path / f"script_{i}.py"
        path.write_text(
            generate(project, weights="model.weights.h5" if i % 2 else None), encoding="utf-8"
        )
        files.append(str(path))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "F,E9",
            *files,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


# --------------------------------------------------------------------------- data


def generated_data(
    section: dict,
    input_shape=(4,),
    loss="sparse_categorical_crossentropy",
    base: Path | None = None,
):
    project = make_project(
        [("input", "Input", {"shape": list(input_shape)}), ("out", "Dense", {"units": 2})],
        [("input", "out")],
        data=section,
        training={"loss": loss},
    )
    if base is not None:
        project.path = base / "project.json"
    source = generate(project)
    assert_inert(source)
    return run_source(source)["load_data"]()


def assert_same_data(ours, theirs, exact=True):
    (x_train, y_train), (x_val, y_val) = theirs
    compare = np.testing.assert_array_equal if exact else np.testing.assert_allclose
    for got, want in (
        (x_train, ours.x_train),
        (y_train, ours.y_train),
        (x_val, ours.x_val),
        (y_val, ours.y_val),
    ):
        assert got.dtype == want.dtype and got.shape == want.shape
        compare(got, want)


@pytest.mark.parametrize(
    "section",
    [
        {"source": "builtin:digits"},
        {"source": "builtin:digits-rows", "validation_split": 0.3, "seed": 4},
        {"source": "builtin:iris", "validation_split": 0.2, "test_split": 0.1, "seed": 2},
        {"source": "builtin:wine"},
        {"source": "builtin:breast_cancer", "standardize": False},
        {"source": "builtin:moons", "samples": 120, "noise": 0.3, "seed": 5},
        {"source": "builtin:circles", "samples": 90},
        {"source": "builtin:spirals", "samples": 80, "validation_split": 0.25},
        {"source": "builtin:xor", "samples": 60, "noise": 0.1},
        {"source": "builtin:adding", "samples": 40, "length": 6, "seed": 3},
    ],
    ids=lambda s: s["source"],
)
def test_codegen_load_data_matches_engine_data_for_builtins(section):
    assert_same_data(engine_load_data(section), generated_data(section))


def test_codegen_load_data_matches_engine_data_for_npz(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "table.npz", inputs=rng.normal(size=(40, 3)), y=np.eye(3)[rng.integers(0, 3, 40)]
    )  # one-hot targets become indices
    np.savez(tmp_path / "series.npz", x=rng.normal(size=30), y=rng.normal(size=30) * 5)
    for section in (
        {"source": "npz", "path": "table.npz", "x": "inputs", "seed": 1},
        {"source": "npz", "path": str(tmp_path / "series.npz")},
    ):
        assert_same_data(
            engine_load_data(section, tmp_path), generated_data(section, base=tmp_path)
        )


def test_codegen_load_data_matches_engine_data_for_csv(tmp_path):
    rows = ["size; colour ;weight;kind"] + [
        f"{i * 1.5};{('red', 'blue', 'green')[i % 3]};{(i * 7) % 11};{('cat', 'dog')[i % 2]}"
        for i in range(30)
    ]
    (tmp_path / "pets.csv").write_text("\n".join(rows) + "\n\n", encoding="utf-8")
    section = {
        "source": "csv",
        "path": "pets.csv",
        "categorical": ["colour"],
        "validation_split": 0.3,
    }
    assert_same_data(
        engine_load_data(section, tmp_path), generated_data(section, base=tmp_path), exact=False
    )
    regression = {
        "source": "csv",
        "path": "pets.csv",
        "target": "weight",
        "features": ["size"],
        "task": "regression",
    }
    assert_same_data(
        engine_load_data(regression, tmp_path),
        generated_data(regression, base=tmp_path),
        exact=False,
    )


def test_codegen_load_data_one_hot_targets_for_categorical_loss():
    section = {"source": "builtin:iris"}
    (_, y_train), (_, y_val) = generated_data(section, loss="categorical_crossentropy")
    ours = engine_load_data(section)
    np.testing.assert_array_equal(y_train, np.eye(3, dtype=np.float32)[ours.y_train])
    assert y_val.shape == (len(ours.y_val), 3)


def test_codegen_load_data_reads_image_folders_like_engine_data(keras, tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        for i in range(5):
            pixels = rng.integers(0, 256, (6, 6, 1)).astype(np.uint8)
            path = tmp_path / "pics" / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tf.io.encode_png(pixels).numpy())
    (tmp_path / "pics" / ".hidden").mkdir()
    (tmp_path / "pics" / "cats" / "notes.txt").write_text("not an image", encoding="utf-8")
    section = {"source": "images", "path": "pics", "validation_split": 0.2}
    for shape in ((6, 6, 1), (None, None, 1)):  # without a size: the first image's size
        ours = engine_load_data(section, tmp_path, input_shape=shape)
        # streamed with keras.utils.image_dataset_from_directory (its split is not
        # stratified: the script says so), scaled to [0, 1] like LayerLab's
        (train, _), (val, _) = generated_data(section, input_shape=shape, base=tmp_path)
        x, y = (np.concatenate(a) for a in zip(*train.as_numpy_iterator()))
        xv, yv = (np.concatenate(a) for a in zip(*val.as_numpy_iterator()))
        assert x.shape[1:] == ours.input_shape and len(x) + len(xv) == 10
        assert sorted(np.concatenate([y, yv]).tolist()) == [0] * 5 + [1] * 5
        assert 0.0 <= x.min() and x.max() <= 1.0 and sorted(train.labels) == sorted(y)
        np.testing.assert_allclose(
            np.sort(np.concatenate([x, xv]).ravel()),
            np.sort(np.concatenate([ours.x_train, ours.x_val]).ravel()),
            atol=1e-6,
        )


# --------------------------------------------------------------------------- training


def iris_project(**training) -> Project:
    nodes = [
        ("input", "Input", {"shape": [4]}),
        ("hidden", "Dense", {"units": 8, "activation": "relu"}),
        ("out", "Dense", {"units": 3, "activation": "softmax"}),
    ]
    section = {
        "optimizer": {"type": "Adam", "learning_rate": 0.01},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "batch_size": 16,
        "epochs": 3,
        "seed": 0,
        **training,
    }
    return make_project(
        nodes,
        [("input", "hidden"), ("hidden", "out")],
        data={"source": "builtin:iris", "validation_split": 0.2},
        training=section,
        name="Iris MLP",
    )


@pytest.fixture(scope="module", autouse=True)
def script_run(tmp_path_factory):
    """Start the end-to-end script run first, so it overlaps the in-process tests."""
    folder = tmp_path_factory.mktemp("script")
    script = folder / "iris_mlp.py"
    script.write_text(generate(iris_project()), encoding="utf-8")
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin", "HOME": str(folder)}
    process = subprocess.Popen(
        [sys.executable, str(script), "--epochs", "1", "--out", "trained.keras"],
        cwd=folder,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    yield folder, process
    process.kill()
    process.communicate()


def run_main(namespace: dict, *args: str) -> None:
    old = sys.argv
    sys.argv = ["script.py", *args]
    try:
        namespace["main"]()
    finally:
        sys.argv = old


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
@pytest.mark.parametrize("weights_name", ["model.weights.h5", "model.keras"])
def test_codegen_script_with_weights_reproduces_the_trained_model(keras, tmp_path, weights_name):
    from engine.build.builder import build_model

    project = iris_project()
    trained = build_model(project)
    trained.set_weights(
        [np.full(w.shape, 0.01 * (i + 1), np.float32) for i, w in enumerate(trained.get_weights())]
    )
    if weights_name.endswith(".weights.h5"):
        trained.save_weights(tmp_path / weights_name)
    else:
        trained.save(tmp_path / weights_name)
    script = tmp_path / "script.py"
    source = generate(project, weights=f"/somewhere/run/{weights_name}")
    script.write_text(source, encoding="utf-8")
    namespace = run_source(source, script)
    run_main(namespace, "--out", str(tmp_path / "out.keras"))  # no --epochs: 0 when loaded
    rebuilt = keras.models.load_model(tmp_path / "out.keras")
    for got, want in zip(rebuilt.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "schedule",
    [
        {"type": "exponential", "decay_rate": 0.5, "decay_epochs": 2},
        {"type": "step", "boundaries_epochs": [1, 2], "values": [0.1, 0.01, 0.001]},
        {"type": "step", "factor": 0.5, "every_steps": 3},
        {"type": "step"},
        {"type": "polynomial", "power": 2.0},
        {"type": "cosine", "alpha": 0.1},
        {"type": "cosine", "warmup_epochs": 1, "warmup_start": 0.001},
    ],
    ids=lambda s: "-".join(map(str, s.values())),
)
def test_codegen_schedules_match_engine_training(keras, schedule):
    from engine.train.config import make_optimizer

    training = {
        "optimizer": {"type": "SGD", "learning_rate": 0.05, "momentum": 0.8, "nesterov": True},
        "schedule": schedule,
    }
    project = iris_project(**training)
    namespace = run_source(generate(project))
    for steps, epochs in ((8, 3), (5, 10)):
        got = namespace["make_optimizer"](steps, epochs).get_config()
        want = make_optimizer(project.training, steps, epochs).get_config()
        for config in (got, want):
            config.pop("name", None)
        assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)


def test_codegen_constant_learning_rate_trains_with_the_optimizer_settings(keras, tmp_path):
    project = iris_project(
        optimizer={"type": "rmsprop", "learning_rate": 0.02, "rho": 0.8},
        metrics=["accuracy", {"type": "top_k", "k": 2}],
    )
    source = generate(project)
    assert "make_optimizer" not in source
    run_main(run_source(source), "--epochs", "1", "--out", str(tmp_path / "m.keras"))
    model = keras.models.load_model(tmp_path / "m.keras")
    config = model.optimizer.get_config()
    assert (type(model.optimizer).__name__, config["learning_rate"], config["rho"]) == (
        "RMSprop",
        pytest.approx(0.02),
        pytest.approx(0.8),
    )
    assert model.get_compile_config()["metrics"][-1]["config"]["name"] == "top_2_accuracy"


def test_codegen_early_stopping_and_loss_settings_reach_the_script():
    project = iris_project(
        early_stopping={"patience": 3, "restore_best_weights": False},
        loss={"type": "categorical_crossentropy", "label_smoothing": 0.1},
        schedule={"type": "reduce_on_plateau", "factor": 0.5},
        class_weight={"0": 2.0, "1": 1.0, "2": 1.0},
        shuffle=False,
    )
    source = generate(project)
    calls = {
        ast.unparse(n.func): {k.arg: ast.literal_eval(k.value) for k in n.keywords}
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Call)
        and ast.unparse(n.func).startswith(("keras.callbacks", "keras.losses"))
    }
    assert calls["keras.callbacks.EarlyStopping"] == {
        "monitor": "val_loss",
        "patience": 3,
        "min_delta": 0.0,
        "mode": "min",
        "restore_best_weights": False,
        "start_from_epoch": 0,
    }
    assert calls["keras.callbacks.ReduceLROnPlateau"]["factor"] == 0.5
    assert calls["keras.losses.CategoricalCrossentropy"] == {"label_smoothing": 0.1}
    assert "class_weight={0: 2.0, 1: 1.0, 2: 1.0}" in source and "shuffle=False" in source


@pytest.mark.parametrize("setting, written", [("auto", None), (None, None), (1, None), (8, 8)])
def test_codegen_writes_a_number_of_steps_per_call_and_leaves_auto_to_keras(setting, written):
    """ "auto" needs the built model's shapes, which the script's writer has not: the
    script compiles with Keras's one step per call; a number is written as it is."""
    extra = {} if setting is None else {"steps_per_execution": setting}
    source = generate(iris_project(**extra))
    compiles = [
        {k.arg: k.value for k in n.keywords}
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "model.compile"
    ]
    assert compiles
    for keywords in compiles:
        value = keywords.get("steps_per_execution")
        assert (None if value is None else ast.literal_eval(value)) == written


def test_codegen_script_trains_end_to_end_in_a_subprocess(script_run):
    folder, process = script_run
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr[-2000:]
    assert "trained 1 epochs" in stdout  # --epochs 1 overrides the project's 3
    assert (folder / "trained.keras").is_file()


def test_codegen_script_adapts_normalization_like_layerlab(keras, tmp_path, monkeypatch):
    from engine.train.fit import load_dataset
    from tests.engine.test_training import normalization_project

    data = normalization_project()
    source = generate(Project.from_dict(data))
    assert 'ADAPT = ["norm"]' in source
    namespace = run_source(source)
    out = tmp_path / "adapted.keras"
    monkeypatch.setattr(sys, "argv", ["script", "--epochs", "0", "--out", str(out)])
    namespace["main"]()
    layer = keras.models.load_model(out, compile=False).get_layer("norm")
    x_train = load_dataset(data, None).x_train
    np.testing.assert_allclose(np.ravel(layer.mean), (x_train * 2 + 5).mean(axis=0), rtol=1e-4)


def test_codegen_follows_layerlab_for_early_stopping_plateau_and_metrics():
    from tests.engine.test_training import dense_project

    data = dense_project(
        {
            "early_stopping": True,
            "schedule": "reduce_on_plateau",
            "metrics": ["accuracy", "mae", {"type": "top_k", "k": 5}],
        }
    )
    source = generate(Project.from_dict(data))
    assert "keras.callbacks.EarlyStopping(" in source
    assert "keras.callbacks.ReduceLROnPlateau(" in source
    assert 'metrics=["accuracy"]' in source  # mae of class indices and top-5 of 3 classes
