"""The importer's grouping of layers into stage and unit blocks by their name prefixes.

Pure name logic: the name lists of keras.applications networks are a fixture (taken
from the real models, built with weights=None), so no TensorFlow starts here;
tests/engine/test_importer.py imports a real ResNet50.
"""

import json
from pathlib import Path

import pytest

from engine.io.importing.grouping import group_by_prefix
from engine.model.blocks import parents
from engine.model.graph import Graph, Node

NAMES = json.loads(
    (Path(__file__).parent / "fixtures" / "application_layer_names.json").read_text()
)


def grouped(names):
    blocks = group_by_prefix(names)
    return {b.id: b for b in blocks}, blocks


def test_resnet50_opens_as_stages_of_collapsed_residual_blocks():
    by_id, blocks = grouped(NAMES["ResNet50"])
    stages = [b.id for b in blocks if "_" not in b.id]
    assert stages == ["conv1", "pool1", "conv2", "conv3", "conv4", "conv5"]
    units = [b.id for b in blocks if "_block" in b.id]
    assert units == (
        [f"conv2_block{i}" for i in range(1, 4)]
        + [f"conv3_block{i}" for i in range(1, 5)]
        + [f"conv4_block{i}" for i in range(1, 7)]
        + [f"conv5_block{i}" for i in range(1, 4)]
    )
    assert all(by_id[u].collapsed for u in units)
    assert not any(by_id[s].collapsed for s in ["conv2", "conv3", "conv4", "conv5"])
    assert by_id["conv1"].collapsed  # no units inside: the innermost level is collapsed
    assert "conv5_block3_out" in by_id["conv5_block3"].nodes
    assert "conv2_block1_0_conv" in by_id["conv2_block1"].nodes  # the projection shortcut
    up = parents(by_id)
    assert up["conv4_block6"] == "conv4" and up["conv4"] is None


def test_densenet121_groups_dense_units_in_stages_and_transitions_apart():
    by_id, blocks = grouped(NAMES["DenseNet121"])
    assert [b.id for b in blocks if "_" not in b.id] == [
        "conv1",
        "conv2",
        "pool2",
        "conv3",
        "pool3",
        "conv4",
        "pool4",
        "conv5",
    ]
    counts = {s: sum(1 for b in blocks if b.id.startswith(f"{s}_block")) for s in by_id}
    assert [counts[s] for s in ["conv2", "conv3", "conv4", "conv5"]] == [6, 12, 24, 16]
    assert by_id["conv3_block12"].nodes[-1] == "conv3_block12_concat"
    assert by_id["pool2"].collapsed and by_id["pool2"].nodes == [
        "pool2_bn",
        "pool2_relu",
        "pool2_conv",
        "pool2_pool",
    ]
    assert all(by_id[f"conv4_block{i}"].collapsed for i in range(1, 25))


def test_other_naming_schemes_group_and_keras_auto_names_do_not():
    by_id, _ = grouped(NAMES["EfficientNetB0"])
    assert {"block2", "block2a", "block2b", "block7"} <= set(by_id)
    assert parents(by_id)["block2b"] == "block2"
    by_id, _ = grouped(NAMES["MobileNetV2"])
    assert by_id["block_16"].nodes[0] == "block_16_expand"
    by_id, _ = grouped(NAMES["VGG16"])
    assert list(by_id) == ["block1", "block2", "block3", "block4", "block5"]
    # InceptionV3 names its layers conv2d_3, batch_normalization_3: no stages from those
    by_id, _ = grouped(NAMES["InceptionV3"])
    assert not any(b.startswith("conv") for b in by_id)


@pytest.mark.parametrize(
    "names",
    [
        ["input", "dense", "dense_1", "dense_2"],
        ["x", "conv2d", "conv2d_1", "max_pooling2d", "flatten", "dense"],
        ["x"] + [f"add{i}" for i in range(5)] + [f"d{i}" for i in range(5)],
        ["input", "block1_conv1", "dense"],  # one layer is not a group
    ],
)
def test_names_that_do_not_group_give_no_blocks(names):
    assert group_by_prefix(names) == []


def test_block_ids_avoid_layer_ids_and_the_blocks_are_valid_in_a_graph():
    names = ["conv1", "conv1_bn", "conv1_relu", "conv2_block1_a", "conv2_block1_b", "conv2_x"]
    by_id, blocks = grouped(names)
    assert by_id["conv1_group"].nodes == ["conv1", "conv1_bn", "conv1_relu"]
    g = Graph()
    for n in names:
        g.add_node(Node(n, "Dense", {"units": 2}))
    for b in blocks:
        g.add_block(b)  # refused if ids clashed or blocks cut across each other
    assert set(g.blocks) == {"conv1_group", "conv2", "conv2_block1"}


@pytest.mark.parametrize("preset", ["resnet18", "resnet50", "resnet101"])
def test_resnet_presets_are_grouped_as_an_import_of_them_would_be(preset):
    root = Path(__file__).resolve().parents[2]
    d = json.loads((root / "presets" / f"{preset}.json").read_text())
    ids = [n["id"] for n in d["graph"]["nodes"]]
    assert [b.to_dict() for b in group_by_prefix(ids)] == d["graph"]["blocks"]
    assert d["version"] == 3
