"""Write the preset gallery (``presets/*.json``) reproducibly.

The JSON files are the product; this script is how the large ones (VGG, ResNet,
GoogLeNet) are made without hand-typing hundreds of nodes. Run it from the
repository root::

    .venv/bin/python bench/make_presets.py            # all presets
    .venv/bin/python bench/make_presets.py lenet5 mlp  # only these
    .venv/bin/python bench/make_presets.py --backbone-weights  # transfer-digits' weights

Layout: the data flows top to bottom, one level every :data:`DY` pixels; side
branches sit :data:`DX` pixels apart, centred on the main column.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
DX = 220
DY = 120

DIGITS = {"source": "builtin:digits", "validation_split": 0.2, "seed": 0}


class GraphBuilder:
    """Collects nodes and edges and lays them out top to bottom.

    A node's level is one more than the deepest of its inputs; its column is
    given, or that of its first input.
    """

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self._level: dict[str, int] = {}
        self._col: dict[str, float] = {}
        self.blocks: list[dict[str, Any]] = []

    def add(
        self,
        node_id: str,
        node_type: str,
        params: dict[str, Any] | None = None,
        inputs: str | Iterable[str] = (),
        col: float | None = None,
    ) -> str:
        """Add a node fed by ``inputs`` (in port order) and return its id."""
        if node_id in self._level:
            raise ValueError(f"duplicate node id {node_id!r}")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        level = 1 + max((self._level[i] for i in inputs), default=-1)
        if col is None:
            col = self._col[inputs[0]] if inputs else 0.0
        self._level[node_id] = level
        self._col[node_id] = col
        self.nodes.append({"id": node_id, "type": node_type, "params": dict(params or {})})
        for port, src in enumerate(inputs):
            self.edges.append({"source": src, "target": node_id, "port": port})
        return node_id

    def block(self, block_id: str, nodes: list[str], collapsed: bool) -> None:
        """Group ``nodes`` as a block (a stage, a residual unit, an inception module)."""
        self.blocks.append(
            {"id": block_id, "name": block_id, "nodes": list(nodes), "collapsed": collapsed}
        )

    def since(self, count: int) -> list[str]:
        """Ids of the nodes added after the first ``count``."""
        return [n["id"] for n in self.nodes[count:]]

    def to_dict(self) -> dict[str, Any]:
        nodes = []
        for n in self.nodes:
            x = self._col[n["id"]] * DX
            nodes.append(
                {
                    **n,
                    "position": [int(x) if float(x).is_integer() else x, self._level[n["id"]] * DY],
                }
            )
        out: dict[str, Any] = {"nodes": nodes, "edges": self.edges}
        if self.blocks:
            out["blocks"] = self.blocks
        return out


def project(
    name: str, description: str, graph: GraphBuilder, data: dict[str, Any], training: dict[str, Any]
) -> dict[str, Any]:
    """A project file dict in the format of DESIGN.md (version 3 when it has blocks)."""
    return {
        "format": "layerlab",
        "version": 3 if graph.blocks else 1,
        "name": name,
        "description": " ".join(description.split()),
        "graph": graph.to_dict(),
        "data": data,
        "training": training,
    }


def classifier_training(
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 0.001,
    early_stopping: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The usual sparse-label classification training section."""
    out: dict[str, Any] = {
        "optimizer": {"type": "Adam", "learning_rate": learning_rate},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": 0,
    }
    if early_stopping:
        out["early_stopping"] = early_stopping
    return out


# --------------------------------------------------------------------------- small presets


def lenet5() -> dict[str, Any]:
    g = GraphBuilder()
    g.add("input", "Input", {"shape": [8, 8, 1]})
    g.add(
        "conv1",
        "Conv2D",
        {"filters": 6, "kernel_size": 3, "padding": "same", "activation": "relu"},
        "input",
    )
    g.add("pool1", "MaxPooling2D", {"pool_size": 2}, "conv1")
    g.add(
        "conv2",
        "Conv2D",
        {"filters": 16, "kernel_size": 3, "padding": "same", "activation": "relu"},
        "pool1",
    )
    g.add("pool2", "MaxPooling2D", {"pool_size": 2}, "conv2")
    g.add("flatten", "Flatten", {}, "pool2")
    g.add("fc1", "Dense", {"units": 120, "activation": "relu"}, "flatten")
    g.add("fc2", "Dense", {"units": 84, "activation": "relu"}, "fc1")
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, "fc2")
    return project(
        "LeNet-5 on digits",
        """Yann LeCun's LeNet-5 (1998) read handwritten cheque amounts for banks and
        showed that convolution + pooling, trained end to end by backpropagation, beats
        hand-made features. Here it is adapted to the built-in 8x8 digits: two 3x3
        convolutions (6 and 16 filters, 'same' padding) each followed by 2x2 max pooling,
        then dense layers of 120, 84 and 10 units. Try: swap MaxPooling2D for
        AveragePooling2D and relu for tanh (closer to the original), or halve the filters
        and watch the parameter count and the accuracy.""",
        g,
        dict(DIGITS),
        classifier_training(epochs=20, batch_size=16),
    )


def mlp() -> dict[str, Any]:
    g = GraphBuilder()
    g.add("input", "Input", {"shape": [8, 8, 1]})
    g.add("flatten", "Flatten", {}, "input")
    g.add("hidden", "Dense", {"units": 64, "activation": "relu"}, "flatten")
    g.add("dropout", "Dropout", {"rate": 0.2}, "hidden")
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, "dropout")
    return project(
        "MLP on digits",
        """The multilayer perceptron: one hidden layer of 64 relu units between the 64
        pixels and the 10 classes, with dropout against overfitting. Backpropagation made
        networks like this trainable (Rumelhart, Hinton and Williams, 1986), and it is
        still the baseline every fancier model must beat. Try: remove the Dropout, add a
        second hidden layer, or change the optimizer's learning rate.""",
        g,
        dict(DIGITS),
        classifier_training(epochs=20),
    )


def _conv(g: GraphBuilder, node_id: str, x: str, filters: int, **extra: Any) -> str:
    """A 3x3 'same' relu convolution (the small presets' workhorse)."""
    params = {"filters": filters, "kernel_size": 3, "padding": "same", "activation": "relu"}
    params.update(extra)
    return g.add(node_id, "Conv2D", params, x)


def alexnet_mini() -> dict[str, Any]:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [8, 8, 1]})
    x = _conv(g, "conv1", x, 32)
    x = g.add("pool1", "MaxPooling2D", {"pool_size": 2}, x)
    x = _conv(g, "conv2", x, 64)
    x = g.add("pool2", "MaxPooling2D", {"pool_size": 2}, x)
    x = _conv(g, "conv3", x, 96)
    x = _conv(g, "conv4", x, 96)
    x = _conv(g, "conv5", x, 64)
    x = g.add("flatten", "Flatten", {}, x)
    x = g.add("drop6", "Dropout", {"rate": 0.5}, x)
    x = g.add("fc6", "Dense", {"units": 256, "activation": "relu"}, x)
    x = g.add("drop7", "Dropout", {"rate": 0.5}, x)
    x = g.add("fc7", "Dense", {"units": 128, "activation": "relu"}, x)
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, x)
    return project(
        "AlexNet-mini on digits",
        """AlexNet's recipe (Krizhevsky, Sutskever and Hinton, 2012) shrunk to 8x8 digits:
        five relu convolutions with max pooling after the first two, then two dense layers
        guarded by dropout and a softmax classifier. AlexNet's win on ImageNet 2012 started
        the deep learning boom; relu, dropout and GPU training were its key ingredients.
        Try: set both Dropout rates to 0 and compare the gap between training and
        validation accuracy; see alexnet.json for the full-size network.""",
        g,
        dict(DIGITS),
        classifier_training(epochs=30),
    )


def vgg_mini() -> dict[str, Any]:
    g = GraphBuilder()
    reg = {"kernel_regularizer": {"type": "L2", "l2": 0.0001}}
    x = g.add("input", "Input", {"shape": [8, 8, 1]})
    for b, filters in ((1, 16), (2, 32)):
        x = _conv(g, f"block{b}_conv1", x, filters, **reg)
        x = _conv(g, f"block{b}_conv2", x, filters, **reg)
        x = g.add(f"block{b}_pool", "MaxPooling2D", {"pool_size": 2}, x)
    x = g.add("flatten", "Flatten", {}, x)
    x = g.add("fc1", "Dense", {"units": 64, "activation": "relu", **reg}, x)
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, x)
    return project(
        "VGG-mini on digits",
        """VGG's idea (Simonyan and Zisserman, 2014) at digit size: blocks of two 3x3
        convolutions followed by 2x2 max pooling, doubling the filters after every pooling
        (16, then 32), then a small dense classifier. Two stacked 3x3 convolutions see a 5x5
        area with fewer weights than one 5x5, which is why VGG used nothing else. Every
        weight layer here carries a small L2 penalty (weight decay). Try: add a third block
        (the 2x2 maps become 1x1), or remove the L2 penalties; see vgg16.json for the full
        network.""",
        g,
        dict(DIGITS),
        classifier_training(epochs=30),
    )


def inception_mini() -> dict[str, Any]:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [8, 8, 1]})
    x = _conv(g, "stem", x, 16)
    x = _inception(g, x, "inception_a", 8, 8, 16, 4, 8, 8)
    x = g.add("pool", "MaxPooling2D", {"pool_size": 2}, x, col=0)
    x = _inception(g, x, "inception_b", 16, 16, 24, 4, 8, 8)
    x = g.add("avg_pool", "GlobalAveragePooling2D", {}, x, col=0)
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, x)
    return project(
        "Inception-mini on digits",
        """Two Inception modules (GoogLeNet, Szegedy et al., 2014) on 8x8 digits. Each module
        looks at the same input four ways side by side, a 1x1 convolution, a 1x1 then 3x3,
        a 1x1 then 5x5 and a 3x3 max pooling then 1x1, and concatenates the four results
        along the channels (40 and 56 channels here). The 1x1 convolutions shrink the
        channels before the wide filters to keep them cheap. Global average pooling feeds
        the classifier instead of big dense layers. Try: widen one branch (more filters in
        its last convolution) and watch the Concatenate's channel count and the parameters
        grow; see googlenet.json for the full network.""",
        g,
        dict(DIGITS),
        classifier_training(epochs=40),
    )


def resnet_mini() -> dict[str, Any]:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [8, 8, 1]})
    x = g.add(
        "stem_conv",
        "Conv2D",
        {"filters": 16, "kernel_size": 3, "padding": "same", "use_bias": False},
        x,
    )
    x = g.add("stem_bn", "BatchNormalization", {}, x)
    x = g.add("stem_relu", "Activation", {"activation": "relu"}, x)
    x = _basic_block(g, x, 16, 1, False, "block1", epsilon=0.001)
    x = _basic_block(g, x, 32, 2, True, "block2", epsilon=0.001)
    x = _basic_block(g, x, 32, 1, False, "block3", epsilon=0.001)
    x = g.add("avg_pool", "GlobalAveragePooling2D", {}, x, col=0)
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, x)
    return project(
        "ResNet-mini on digits",
        """A small residual network (He et al., 2015) on 8x8 digits: a convolution stem and
        three basic blocks, each two 3x3 convolutions with batch normalisation whose output
        is added to the block's input (Add), then relu. The second block halves the size
        and doubles the filters, so its shortcut is a 1x1 convolution with stride 2 (a
        projection) instead of the identity. Try: copy and paste block3 to make the network
        deeper and see that it trains just as easily; see resnet18.json and resnet50.json
        for the full networks.""",
        g,
        dict(DIGITS),
        classifier_training(epochs=20),
    )


def _dense_depth(g: GraphBuilder, x: str, hidden: int, width: int, residual: bool) -> str:
    """``hidden`` relu Dense layers: a stem, then pairs (with identity shortcuts if residual)."""
    x = g.add("stem", "Dense", {"units": width, "activation": "relu"}, x)
    for b in range(1, (hidden - 1) // 2 + 1):
        if residual:
            y = g.add(f"block{b}_fc1", "Dense", {"units": width, "activation": "relu"}, x, col=1)
            y = g.add(f"block{b}_fc2", "Dense", {"units": width}, y)
            y = g.add(f"block{b}_add", "Add", {}, [x, y], col=0)
            x = g.add(f"block{b}_relu", "Activation", {"activation": "relu"}, y)
        else:
            x = g.add(f"block{b}_fc1", "Dense", {"units": width, "activation": "relu"}, x)
            x = g.add(f"block{b}_fc2", "Dense", {"units": width, "activation": "relu"}, x)
    return x


DEEP_HIDDEN = 31
DEEP_WIDTH = 48


def residual_mlp() -> dict[str, Any]:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [8, 8, 1]})
    x = g.add("flatten", "Flatten", {}, x)
    x = _dense_depth(g, x, DEEP_HIDDEN, DEEP_WIDTH, residual=True)
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, x)
    return project(
        "Residual MLP on digits (31 hidden layers)",
        f"""A very deep multilayer perceptron that trains: {DEEP_HIDDEN} hidden Dense layers of
        {DEEP_WIDTH} relu units, arranged as a stem and 15 blocks whose output is added to
        their input (an identity shortcut, the idea behind ResNet, He et al. 2015). The
        shortcut gives the gradient a direct path back to the first layers, so the network
        learns quickly even though it is deep. Open plain-deep-mlp.json, the same depth and
        width without the shortcuts: it stays at chance (about 10%) for the same epochs.
        Try: compare the first epochs of both presets, or make the blocks narrower.""",
        g,
        dict(DIGITS),
        classifier_training(epochs=30),
    )


def plain_deep_mlp() -> dict[str, Any]:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [8, 8, 1]})
    x = g.add("flatten", "Flatten", {}, x)
    x = _dense_depth(g, x, DEEP_HIDDEN, DEEP_WIDTH, residual=False)
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, x)
    return project(
        "Plain deep MLP on digits (does not train)",
        f"""The counter-example to residual-mlp.json: the same {DEEP_HIDDEN} hidden Dense
        layers of {DEEP_WIDTH} relu units, stacked without shortcuts. It is expected to fail:
        the signal and its gradient fade through so many layers and the accuracy stays near
        chance (10%) for all its epochs. This degradation of plain deep networks is what
        ResNet's shortcuts fixed (He et al., 2015). Try: delete layers until it trains (a
        handful of hidden layers is plenty for digits), or see whether BatchNormalization
        after each Dense layer rescues it.""",
        g,
        dict(DIGITS),
        classifier_training(epochs=30),
    )


def _recurrent_digits(kind: str) -> dict[str, Any]:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [8, 8]})
    x = g.add(kind.lower(), kind, {"units": 64}, x)
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, x)
    return g


def lstm_digits() -> dict[str, Any]:
    return project(
        "LSTM reading digits row by row",
        """An LSTM (Hochreiter and Schmidhuber, 1997) reads each 8x8 digit as a sequence of 8
        rows of 8 pixels, top to bottom, and classifies it from its final state. The gates
        (input, forget, output) decide what to keep in memory, which is why LSTMs learn
        long-range patterns where a plain RNN forgets. Try: wrap the LSTM in Bidirectional
        to read the rows both ways, set return_sequences and stack a second LSTM, or compare
        with gru-digits.json.""",
        _recurrent_digits("LSTM"),
        {**DIGITS, "source": "builtin:digits-rows"},
        classifier_training(epochs=30, learning_rate=0.002),
    )


def gru_digits() -> dict[str, Any]:
    return project(
        "GRU reading digits row by row",
        """A GRU (Cho et al., 2014) reads each 8x8 digit as 8 rows of 8 pixels. It merges the
        LSTM's gates into two (update and reset) and keeps no separate cell state, so it has
        a quarter fewer weights and often learns just as well. Try: compare its parameter
        count, speed and accuracy with lstm-digits.json, or change units to 32.""",
        _recurrent_digits("GRU"),
        {**DIGITS, "source": "builtin:digits-rows"},
        classifier_training(epochs=30, learning_rate=0.002),
    )


ADDING_DATA = {
    "source": "builtin:adding",
    "length": 50,
    "samples": 5000,
    "validation_split": 0.2,
    "seed": 0,
}
ADDING_TRAINING = {
    "optimizer": {"type": "Adam", "learning_rate": 0.003},
    "loss": "mse",
    "metrics": ["mae"],
    "batch_size": 32,
    "epochs": 30,
    "seed": 0,
}
ADDING_STORY = """The adding problem (Hochreiter and Schmidhuber, 1997): each sequence has 50
steps of (value, marker); two steps are marked, one in each half, and the target is the sum of
the two marked values. Guessing the average sum scores a mean squared error of about 0.17;
solving it needs memory that lasts for dozens of steps. The Input takes sequences of any
length (shape [None, 2]), so the data's length can be changed alone."""


def _adding(kind: str) -> GraphBuilder:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [None, 2]})
    x = g.add(kind.lower(), kind, {"units": 32}, x)
    g.add("output", "Dense", {"units": 1}, x)
    return g


def adding_simple_rnn() -> dict[str, Any]:
    return project(
        "SimpleRNN vs LSTM (1/2): SimpleRNN on the adding problem",
        f"""{ADDING_STORY} Half of a pair with adding-lstm.json, which is the same graph with
        an LSTM in place of this SimpleRNN (Elman, 1990). Train both and compare val_loss:
        the SimpleRNN's gradient vanishes over 50 steps, so it stays near the 0.17 baseline,
        while the LSTM drops to almost zero. (Two files rather than one graph with two
        branches, because a training run fits one output to the data.) Try: set the data
        length to 10 and the SimpleRNN copes.""",
        _adding("SimpleRNN"),
        dict(ADDING_DATA),
        dict(ADDING_TRAINING),
    )


def adding_lstm() -> dict[str, Any]:
    return project(
        "SimpleRNN vs LSTM (2/2): LSTM on the adding problem",
        f"""{ADDING_STORY} Half of a pair with adding-simple-rnn.json: the same graph with an
        LSTM in place of the SimpleRNN. The LSTM's forget gate lets its cell state carry the
        first marked value across the sequence, so after some epochs of searching its
        val_loss falls from about 0.17 to nearly zero, where the SimpleRNN stays stuck. Try:
        swap in a GRU, or raise the data length to 100.""",
        _adding("LSTM"),
        dict(ADDING_DATA),
        dict(ADDING_TRAINING),
    )


def playground() -> dict[str, Any]:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [2]})
    x = g.add("hidden1", "Dense", {"units": 16, "activation": "tanh"}, x)
    x = g.add("hidden2", "Dense", {"units": 16, "activation": "tanh"}, x)
    x = g.add("hidden3", "Dense", {"units": 16, "activation": "tanh"}, x)
    g.add("output", "Dense", {"units": 2, "activation": "softmax"}, x)
    return project(
        "Playground: two spirals",
        """A small network on the hardest toy problem of the TensorFlow Playground (2016):
        two interleaved spirals in the plane. Three tanh layers of 16 units bend the plane
        until a line separates the two arms. It trains in
        seconds, so it is the place to experiment. Try: remove a hidden layer, switch tanh
        to relu, change the data source to builtin:moons, builtin:circles or builtin:xor,
        or raise the data noise.""",
        g,
        {
            "source": "builtin:spirals",
            "samples": 500,
            "noise": 0.05,
            "validation_split": 0.2,
            "seed": 0,
        },
        classifier_training(epochs=150, batch_size=16, learning_rate=0.01),
    )


def augmentation() -> dict[str, Any]:
    g = GraphBuilder()
    shift = {"fill_mode": "constant", "fill_value": 0.0}
    x = g.add("input", "Input", {"shape": [8, 8, 1]})
    x = g.add("rotate", "RandomRotation", {"factor": 0.03, **shift}, x)
    x = g.add("zoom", "RandomZoom", {"height_factor": 0.1, **shift}, x)
    x = g.add("shift", "RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1, **shift}, x)
    x = _conv(g, "conv1", x, 32)
    x = g.add("pool1", "MaxPooling2D", {"pool_size": 2}, x)
    x = _conv(g, "conv2", x, 64)
    x = g.add("pool2", "MaxPooling2D", {"pool_size": 2}, x)
    x = g.add("flatten", "Flatten", {}, x)
    x = g.add("fc", "Dense", {"units": 128, "activation": "relu"}, x)
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, x)
    return project(
        "Data augmentation on digits",
        """Data augmentation shows the network a slightly different version of every image
        each epoch (here: rotated by up to about 11 degrees, zoomed by up to 10%, shifted by
        up to 10%), so it cannot memorise the 1,438 training digits and must learn what
        makes a 3 a 3. The random layers only act while training; at prediction time they
        pass the image through unchanged. There is no RandomFlip on purpose: a mirrored 2,
        3, 4 or 7 is not that digit any more, so flips would teach wrong answers. Try: raise
        the rotation factor to 0.25 (a quarter turn, where a 6 starts to look like a 9) and
        see what happens to the validation accuracy: augmentations must keep the label
        true.""",
        g,
        dict(DIGITS),
        classifier_training(epochs=40),
    )


def batchnorm_dropout() -> dict[str, Any]:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [8, 8, 1]})
    for i, filters in ((1, 32), (2, 64)):
        x = g.add(
            f"conv{i}",
            "Conv2D",
            {"filters": filters, "kernel_size": 3, "padding": "same", "use_bias": False},
            x,
        )
        x = g.add(f"bn{i}", "BatchNormalization", {}, x)
        x = g.add(f"relu{i}", "Activation", {"activation": "relu"}, x)
        x = g.add(f"pool{i}", "MaxPooling2D", {"pool_size": 2}, x)
        x = g.add(f"drop{i}", "Dropout", {"rate": 0.25}, x)
    x = g.add("flatten", "Flatten", {}, x)
    x = g.add("fc", "Dense", {"units": 128, "use_bias": False}, x)
    x = g.add("bn3", "BatchNormalization", {}, x)
    x = g.add("relu3", "Activation", {"activation": "relu"}, x)
    x = g.add("drop3", "Dropout", {"rate": 0.5}, x)
    g.add("output", "Dense", {"units": 10, "activation": "softmax"}, x)
    return project(
        "Batch normalisation, dropout and early stopping",
        """Three standard ways to train faster and overfit less, together. Batch
        normalisation (Ioffe and Szegedy, 2015) rescales each layer's outputs to a steady
        mean and spread, so training is faster and less sensitive to the learning rate; it
        sits between each convolution and its relu, and the layers before it need no bias.
        Dropout (Srivastava, Hinton et al., 2014) switches off a random part of the units at
        every step so none can be relied on alone. Early stopping ends training when
        val_loss has not improved for 5 epochs and restores the best weights, so the
        generous epoch count is only a ceiling. Try: remove the BatchNormalization nodes and
        compare the first epochs, or set patience to 20.""",
        g,
        dict(DIGITS),
        classifier_training(
            epochs=60,
            early_stopping={"monitor": "val_loss", "patience": 5, "restore_best_weights": True},
        ),
    )


# --------------------------------------------------------------------------- reference-size

IMAGENET_NOTE = """Built at full ImageNet size (224x224x3 in, 1000 classes out) for study and
export; it is too big to train on a laptop CPU. Its data section is a placeholder image folder
(imagenet/train next to the project, one sub-folder per class): point it at your own images
to train it for real."""
IMAGE_FOLDER_DATA = {
    "source": "images",
    "path": "imagenet/train",
    "image_size": [224, 224],
    "color_mode": "rgb",
    "validation_split": 0.1,
    "seed": 0,
}
REFERENCE_TRAINING = {
    "optimizer": {"type": "SGD", "learning_rate": 0.01, "momentum": 0.9},
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "batch_size": 64,
    "epochs": 90,
    "seed": 0,
}


def _reference(name: str, description: str, g: GraphBuilder) -> dict[str, Any]:
    return project(
        name, f"{description} {IMAGENET_NOTE}", g, dict(IMAGE_FOLDER_DATA), dict(REFERENCE_TRAINING)
    )


def _vgg(convs_per_block: tuple[int, ...]) -> GraphBuilder:
    """keras.applications.VGG16/VGG19 (include_top=True), layer for layer."""
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [224, 224, 3]})
    for b, (n, filters) in enumerate(zip(convs_per_block, (64, 128, 256, 512, 512)), 1):
        for c in range(1, n + 1):
            x = g.add(
                f"block{b}_conv{c}",
                "Conv2D",
                {"filters": filters, "kernel_size": 3, "padding": "same", "activation": "relu"},
                x,
            )
        x = g.add(f"block{b}_pool", "MaxPooling2D", {"pool_size": 2, "strides": 2}, x)
    x = g.add("flatten", "Flatten", {}, x)
    x = g.add("fc1", "Dense", {"units": 4096, "activation": "relu"}, x)
    x = g.add("fc2", "Dense", {"units": 4096, "activation": "relu"}, x)
    g.add("predictions", "Dense", {"units": 1000, "activation": "softmax"}, x)
    return g


def vgg16() -> dict[str, Any]:
    return _reference(
        "VGG16 (ImageNet size)",
        """VGG16 (Simonyan and Zisserman, Oxford, 2014): thirteen 3x3 convolutions in five
        blocks, each block ending in 2x2 max pooling, then three dense layers. It showed that
        depth built from the smallest useful filter beats large filters, and its features are
        still a favourite for transfer learning. Same layers and names as
        keras.applications.VGG16, 138,357,544 parameters, over 100 million of them in fc1.
        Try: replace Flatten + fc1 + fc2 with GlobalAveragePooling2D and watch the count
        drop to about 15 million.""",
        _vgg((2, 2, 3, 3, 3)),
    )


def vgg19() -> dict[str, Any]:
    return _reference(
        "VGG19 (ImageNet size)",
        """VGG19 (Simonyan and Zisserman, 2014) is VGG16 with one more 3x3 convolution in each
        of the last three blocks: sixteen convolutions and three dense layers. The extra
        depth bought little accuracy, a first hint that plain stacks stop improving (ResNet
        answered why a year later). Same layers and names as keras.applications.VGG19,
        143,667,240 parameters. Try: compare its parameter count and output shapes with
        VGG16 side by side.""",
        _vgg((2, 2, 4, 4, 4)),
    )


def _bn(g: GraphBuilder, node_id: str, x: str, col: float | None = None) -> str:
    return g.add(node_id, "BatchNormalization", {"epsilon": 1.001e-5}, x, col=col)


def _resnet_stem(g: GraphBuilder, x: str, use_bias: bool = True) -> str:
    """keras.applications' ResNet stem: 7x7/2 conv, BN, relu, 3x3/2 max pooling."""
    start = len(g.nodes)
    x = g.add("conv1_pad", "ZeroPadding2D", {"padding": 3}, x)
    conv = {"filters": 64, "kernel_size": 7, "strides": 2}
    if not use_bias:
        conv["use_bias"] = False
    x = g.add("conv1_conv", "Conv2D", conv, x)
    x = _bn(g, "conv1_bn", x)
    x = g.add("conv1_relu", "Activation", {"activation": "relu"}, x)
    g.block("conv1", g.since(start), collapsed=True)
    start = len(g.nodes)
    x = g.add("pool1_pad", "ZeroPadding2D", {"padding": 1}, x)
    x = g.add("pool1_pool", "MaxPooling2D", {"pool_size": 3, "strides": 2}, x)
    g.block("pool1", g.since(start), collapsed=True)
    return x


def _bottleneck(
    g: GraphBuilder, x: str, filters: int, stride: int, projection: bool, name: str
) -> str:
    """keras.applications.resnet.block1: 1x1 -> 3x3 -> 1x1 (4x filters) plus a shortcut."""
    if projection:
        shortcut = g.add(
            f"{name}_0_conv",
            "Conv2D",
            {"filters": 4 * filters, "kernel_size": 1, "strides": stride},
            x,
            col=0,
        )
        shortcut = _bn(g, f"{name}_0_bn", shortcut)
    else:
        shortcut = x
    first = {"filters": filters, "kernel_size": 1}
    if stride != 1:
        first["strides"] = stride
    y = g.add(f"{name}_1_conv", "Conv2D", first, x, col=1)
    y = _bn(g, f"{name}_1_bn", y)
    y = g.add(f"{name}_1_relu", "Activation", {"activation": "relu"}, y)
    y = g.add(
        f"{name}_2_conv", "Conv2D", {"filters": filters, "kernel_size": 3, "padding": "same"}, y
    )
    y = _bn(g, f"{name}_2_bn", y)
    y = g.add(f"{name}_2_relu", "Activation", {"activation": "relu"}, y)
    y = g.add(f"{name}_3_conv", "Conv2D", {"filters": 4 * filters, "kernel_size": 1}, y)
    y = _bn(g, f"{name}_3_bn", y)
    y = g.add(f"{name}_add", "Add", {}, [shortcut, y], col=0)
    return g.add(f"{name}_out", "Activation", {"activation": "relu"}, y)


def _stage(g: GraphBuilder, name: str, units: list[tuple[str, list[str]]]) -> None:
    """A stage block (expanded) holding its units (collapsed: residual units, inception
    modules), as an imported keras.applications ResNet is grouped
    (engine/io/importing/grouping.py)."""
    g.block(name, [n for _, ids in units for n in ids], collapsed=False)
    for unit, ids in units:
        g.block(unit, ids, collapsed=True)


def _resnet_bottleneck(blocks: tuple[int, int, int, int]) -> GraphBuilder:
    """keras.applications.ResNet50/101/152 (include_top=True), layer for layer."""
    g = GraphBuilder()
    x = _resnet_stem(g, g.add("input", "Input", {"shape": [224, 224, 3]}))
    for stage, (n, filters) in enumerate(zip(blocks, (64, 128, 256, 512)), 2):
        units = []
        for b in range(1, n + 1):
            stride = 2 if b == 1 and stage > 2 else 1
            start = len(g.nodes)
            x = _bottleneck(g, x, filters, stride, projection=b == 1, name=f"conv{stage}_block{b}")
            units.append((f"conv{stage}_block{b}", g.since(start)))
        _stage(g, f"conv{stage}", units)
    x = g.add("avg_pool", "GlobalAveragePooling2D", {}, x)
    g.add("predictions", "Dense", {"units": 1000, "activation": "softmax"}, x)
    return g


def resnet50() -> dict[str, Any]:
    return _reference(
        "ResNet-50 (ImageNet size)",
        """ResNet-50 (He, Zhang, Ren and Sun, Microsoft Research, 2015) won ImageNet 2015 by
        making very deep networks trainable: each block adds its input back to its output
        (x + F(x)), so gradients flow through the shortcut even when the block has learned
        nothing yet. Bottleneck blocks (1x1 reduce, 3x3, 1x1 expand) in stages of 3, 4, 6
        and 3; the first block of each stage has a projection shortcut (1x1 conv + BN).
        Same layers and names as keras.applications.ResNet50, 25,636,712 parameters. Try:
        follow one conv*_block*_add node and see where its two inputs come from.""",
        _resnet_bottleneck((3, 4, 6, 3)),
    )


def resnet101() -> dict[str, Any]:
    return _reference(
        "ResNet-101 (ImageNet size)",
        """ResNet-101 (He et al., 2015) is ResNet-50 with 23 instead of 6 bottleneck blocks in
        the third stage: 101 weighted layers that still train, because of the identity
        shortcuts. Deeper ResNets kept getting better where deeper plain networks got worse.
        Same layers and names as keras.applications.ResNet101, 44,707,176 parameters. Try:
        compare its output shapes with ResNet-50; only the conv4 stage is longer.""",
        _resnet_bottleneck((3, 4, 23, 3)),
    )


def _basic_block(
    g: GraphBuilder,
    x: str,
    filters: int,
    stride: int,
    projection: bool,
    name: str,
    epsilon: float = 1.001e-5,
) -> str:
    """Two 3x3 convolutions plus a shortcut (ResNet-18/34's block)."""
    bn = {"epsilon": epsilon}
    if projection:
        shortcut = g.add(
            f"{name}_0_conv",
            "Conv2D",
            {"filters": filters, "kernel_size": 1, "strides": stride, "use_bias": False},
            x,
            col=0,
        )
        shortcut = g.add(f"{name}_0_bn", "BatchNormalization", dict(bn), shortcut)
    else:
        shortcut = x
    first = {"filters": filters, "kernel_size": 3, "padding": "same", "use_bias": False}
    if stride != 1:
        first["strides"] = stride
    y = g.add(f"{name}_1_conv", "Conv2D", first, x, col=1)
    y = g.add(f"{name}_1_bn", "BatchNormalization", dict(bn), y)
    y = g.add(f"{name}_1_relu", "Activation", {"activation": "relu"}, y)
    y = g.add(
        f"{name}_2_conv",
        "Conv2D",
        {"filters": filters, "kernel_size": 3, "padding": "same", "use_bias": False},
        y,
    )
    y = g.add(f"{name}_2_bn", "BatchNormalization", dict(bn), y)
    y = g.add(f"{name}_add", "Add", {}, [shortcut, y], col=0)
    return g.add(f"{name}_out", "Activation", {"activation": "relu"}, y)


def resnet18() -> dict[str, Any]:
    g = GraphBuilder()
    x = _resnet_stem(g, g.add("input", "Input", {"shape": [224, 224, 3]}), use_bias=False)
    for stage, filters in enumerate((64, 128, 256, 512), 2):
        units = []
        for b in (1, 2):
            stride = 2 if b == 1 and stage > 2 else 1
            start = len(g.nodes)
            x = _basic_block(
                g, x, filters, stride, projection=stride != 1, name=f"conv{stage}_block{b}"
            )
            units.append((f"conv{stage}_block{b}", g.since(start)))
        _stage(g, f"conv{stage}", units)
    x = g.add("avg_pool", "GlobalAveragePooling2D", {}, x)
    g.add("predictions", "Dense", {"units": 1000, "activation": "softmax"}, x)
    return _reference(
        "ResNet-18 (ImageNet size)",
        """ResNet-18 (He et al., 2015) is the smallest ResNet: basic blocks of two 3x3
        convolutions (no bottleneck), two blocks per stage for 64, 128, 256 and 512
        filters. Where a stage halves the size, a 1x1 convolution with stride 2 projects the
        shortcut; elsewhere the input is added back unchanged. Convolutions before a
        BatchNormalization carry no bias (the norm's offset does that job), as in the
        torchvision model. Try: copy and paste blocks to grow the stages to 3, 4, 6 and 3
        blocks, which makes it a ResNet-34.""",
        g,
    )


def alexnet() -> dict[str, Any]:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [224, 224, 3]})
    x = g.add("conv1_pad", "ZeroPadding2D", {"padding": 2}, x)
    x = g.add(
        "conv1", "Conv2D", {"filters": 64, "kernel_size": 11, "strides": 4, "activation": "relu"}, x
    )
    x = g.add("pool1", "MaxPooling2D", {"pool_size": 3, "strides": 2}, x)
    x = g.add(
        "conv2",
        "Conv2D",
        {"filters": 192, "kernel_size": 5, "padding": "same", "activation": "relu"},
        x,
    )
    x = g.add("pool2", "MaxPooling2D", {"pool_size": 3, "strides": 2}, x)
    for i, filters in ((3, 384), (4, 256), (5, 256)):
        x = g.add(
            f"conv{i}",
            "Conv2D",
            {"filters": filters, "kernel_size": 3, "padding": "same", "activation": "relu"},
            x,
        )
    x = g.add("pool5", "MaxPooling2D", {"pool_size": 3, "strides": 2}, x)
    x = g.add("flatten", "Flatten", {}, x)
    x = g.add("drop6", "Dropout", {"rate": 0.5}, x)
    x = g.add("fc6", "Dense", {"units": 4096, "activation": "relu"}, x)
    x = g.add("drop7", "Dropout", {"rate": 0.5}, x)
    x = g.add("fc7", "Dense", {"units": 4096, "activation": "relu"}, x)
    g.add("predictions", "Dense", {"units": 1000, "activation": "softmax"}, x)
    return _reference(
        "AlexNet (ImageNet size)",
        """AlexNet (Krizhevsky, Sutskever and Hinton, 2012) won ImageNet 2012 by a wide margin
        and started the deep learning boom: five convolutions, three dense layers, relu
        instead of tanh, dropout against overfitting, trained on GPUs. This is the common
        single-GPU version (64-192-384-256-256 filters, as in torchvision), about 61 million
        parameters, most of them in the dense layers. The original's local response
        normalisation is left out (later work found it did little). Try: see how a 224x224
        image shrinks to 6x6x256 before Flatten.""",
        g,
    )


def _inception(
    g: GraphBuilder, x: str, name: str, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int
) -> str:
    """One Inception v1 module: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 pool -> 1x1, concatenated."""
    conv = {"padding": "same", "activation": "relu"}
    b1 = g.add(f"{name}_1x1", "Conv2D", {"filters": c1, "kernel_size": 1, **conv}, x, col=-1.5)
    b3 = g.add(
        f"{name}_3x3_reduce", "Conv2D", {"filters": c3r, "kernel_size": 1, **conv}, x, col=-0.5
    )
    b3 = g.add(f"{name}_3x3", "Conv2D", {"filters": c3, "kernel_size": 3, **conv}, b3)
    b5 = g.add(
        f"{name}_5x5_reduce", "Conv2D", {"filters": c5r, "kernel_size": 1, **conv}, x, col=0.5
    )
    b5 = g.add(f"{name}_5x5", "Conv2D", {"filters": c5, "kernel_size": 5, **conv}, b5)
    bp = g.add(
        f"{name}_pool",
        "MaxPooling2D",
        {"pool_size": 3, "strides": 1, "padding": "same"},
        x,
        col=1.5,
    )
    bp = g.add(f"{name}_pool_proj", "Conv2D", {"filters": cp, "kernel_size": 1, **conv}, bp)
    return g.add(f"{name}_concat", "Concatenate", {}, [b1, b3, b5, bp], col=0)


#: Inception v1 module widths: 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection.
GOOGLENET_MODULES = {
    "inception_3a": (64, 96, 128, 16, 32, 32),
    "inception_3b": (128, 128, 192, 32, 96, 64),
    "inception_4a": (192, 96, 208, 16, 48, 64),
    "inception_4b": (160, 112, 224, 24, 64, 64),
    "inception_4c": (128, 128, 256, 24, 64, 64),
    "inception_4d": (112, 144, 288, 32, 64, 64),
    "inception_4e": (256, 160, 320, 32, 128, 128),
    "inception_5a": (256, 160, 320, 32, 128, 128),
    "inception_5b": (384, 192, 384, 48, 128, 128),
}


def googlenet() -> dict[str, Any]:
    g = GraphBuilder()
    x = g.add("input", "Input", {"shape": [224, 224, 3]})
    x = g.add(
        "conv1_7x7",
        "Conv2D",
        {"filters": 64, "kernel_size": 7, "strides": 2, "padding": "same", "activation": "relu"},
        x,
    )
    x = g.add("pool1", "MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}, x)
    x = g.add(
        "conv2_3x3_reduce", "Conv2D", {"filters": 64, "kernel_size": 1, "activation": "relu"}, x
    )
    x = g.add(
        "conv2_3x3",
        "Conv2D",
        {"filters": 192, "kernel_size": 3, "padding": "same", "activation": "relu"},
        x,
    )
    x = g.add("pool2", "MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}, x)
    stages: dict[str, list[tuple[str, list[str]]]] = {}
    for name, widths in GOOGLENET_MODULES.items():
        start = len(g.nodes)
        x = _inception(g, x, name, *widths)
        stages.setdefault(name[:-1], []).append((name, g.since(start)))
        if name in ("inception_3b", "inception_4e"):
            pool = "pool3" if name == "inception_3b" else "pool4"
            x = g.add(pool, "MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}, x)
    for stage, modules in stages.items():  # inception_3 (2 modules), _4 (5), _5 (2)
        _stage(g, stage, modules)
    x = g.add("avg_pool", "GlobalAveragePooling2D", {}, x)
    x = g.add("dropout", "Dropout", {"rate": 0.4}, x)
    g.add("predictions", "Dense", {"units": 1000, "activation": "softmax"}, x)
    return _reference(
        "GoogLeNet / Inception v1 (ImageNet size)",
        """GoogLeNet (Szegedy et al., Google, 2014) won ImageNet 2014 with about a ninth
        of AlexNet's parameters (7.0 million against 61 million). Its nine inception modules look at the same feature map
        through 1x1, 3x3 and 5x5 convolutions and a 3x3 max pooling side by side and
        concatenate the results; cheap 1x1 convolutions shrink the channels first so the
        wide filters stay affordable. 22 layers deep counting layers with weights; global
        average pooling replaces the big dense layers. The two auxiliary classifiers used
        only during the original training, and its local response normalisation, are left
        out. Try: open one inception module and add up the channels its Concatenate
        produces.""",
        g,
    )


def transfer_flowers() -> dict[str, Any]:
    """What File > New from Pretrained makes (MobileNetV2 on a folder of flower photos)."""
    g = GraphBuilder()
    x = g.add("image", "Input", {"shape": [160, 160, 3]})
    x = g.add("flip", "RandomFlip", {"mode": "horizontal"}, x)
    x = g.add("rotate", "RandomRotation", {"factor": 0.05}, x)
    x = g.add("preprocess", "BackbonePreprocessing", {"mode": "tf", "pixel_max": 1}, x)
    x = g.add("backbone", "Backbone", {"application": "MobileNetV2", "weights": None}, x)
    x = g.add("pool", "GlobalAveragePooling2D", {}, x)
    x = g.add("dropout", "Dropout", {"rate": 0.2}, x)
    g.add("probs", "Dense", {"units": 5, "activation": "softmax"}, x)
    for node in g.nodes:
        if node["id"] == "backbone":
            node["trainable"] = False
    stop = {"monitor": "val_loss", "patience": 3, "restore_best_weights": True}
    return project(
        "Transfer learning: MobileNetV2 on your photos",
        """Transfer learning reuses a network trained on ImageNet's 1.3 million photos: the
        Backbone node holds MobileNetV2 from keras.applications, frozen (the lock), so it
        turns each 160x160 picture into 1,280 features and only the small classifier on top
        learns your five classes; the preprocessing node scales pixels to [-1, 1] the way
        MobileNetV2 was trained, and RandomFlip and RandomRotation vary the pictures while
        training. This is exactly what File > New from Pretrained makes. Before training:
        point the data section at your image folder (one sub-folder per class, here
        flowers/train) and set the backbone's weights to imagenet (Keras downloads about
        9 MB once into ~/.keras/models). The file ships with weights none so that opening
        and validating it never downloads; frozen random weights learn nothing, so this
        preset is not trained here and has no measured result (transfer-digits is the one
        that trains offline, with a small backbone pretrained on digits that ships with it).
        Try: after a first run, tick the backbone's Trainable box and train a few more
        epochs at a learning rate ten times smaller to fine-tune it.""",
        g,
        {
            "source": "images",
            "path": "flowers/train",
            "image_size": [160, 160],
            "color_mode": "rgb",
            "validation_split": 0.2,
            "seed": 0,
        },
        classifier_training(epochs=20, early_stopping=stop),
    )


#: The transfer-digits preset's pretrained backbone (next to the preset; written by
#: ``bench/make_presets.py --backbone-weights``).
DIGITS_WEIGHTS = "transfer-digits-backbone.weights.h5"
DIGITS_SOURCE_CLASSES = [0, 1, 2, 3, 4]
DIGITS_TARGET_CLASSES = [5, 6, 7, 8, 9]


def digits_backbone_graph(weights: str | None, units: int, frozen: bool) -> GraphBuilder:
    """8x8 digits -> 32x32x3 -> MobileNet (width 0.25) -> a new softmax head."""
    g = GraphBuilder()
    x = g.add("digit", "Input", {"shape": [8, 8, 1]})
    x = g.add("upsample", "UpSampling2D", {"size": 4}, x)
    x = g.add("rgb", "Concatenate", {"axis": -1}, [x, x, x])
    x = g.add("preprocess", "BackbonePreprocessing", {"mode": "tf", "pixel_max": 1}, x)
    x = g.add(
        "backbone",
        "Backbone",
        {"application": "MobileNet", "weights": weights, "alpha": 0.25},
        x,
    )
    x = g.add("pool", "GlobalAveragePooling2D", {}, x)
    x = g.add("dropout", "Dropout", {"rate": 0.2}, x)
    g.add("probs", "Dense", {"units": units, "activation": "softmax"}, x)
    if frozen:
        for node in g.nodes:
            if node["id"] == "backbone":
                node["trainable"] = False
    return g


def transfer_digits() -> dict[str, Any]:
    """A frozen backbone pretrained on digits 0-4 (shipped), a new head for digits 5-9."""
    return project(
        "Transfer learning on digits: pretrained on 0-4, learns 5-9 from 90 images",
        f"""Transfer learning you can run offline. The Backbone node holds a small
        MobileNet (width 0.25) whose weights file ({DIGITS_WEIGHTS}, 1 MB, next to this
        preset) was trained on the digits 0 to 4 only; here it is frozen (the lock) and only
        a new Dense head learns the digits 5 to 9, from 90 training images (18 per class;
        the other 806 are the validation set). The 8x8 digits are upsampled to 32x32 and
        copied into three channels because MobileNet wants at least 32x32 colour images,
        and the preprocessing node scales them to [-1, 1] as the backbone was trained.
        Measured (presets/README.md): about 47% validation accuracy, where the same network
        trained from scratch on the same 90 images stays at chance (20%). Honest caveat:
        LeNet-5 from scratch reaches 96% on those 90 images; 8x8 digits are easy from
        their pixels and features learnt on five digits transfer only partly, so this
        preset shows how transfer works, not that it wins here. It pays off when the
        pretrained network learnt from far more, and more varied, images than you have
        (ImageNet: File > New from Pretrained). Try: set training.fine_tune to unfreeze
        the backbone's top layers for a second phase, or set the backbone's weights to
        none and untick its lock to train it from scratch.""",
        digits_backbone_graph(DIGITS_WEIGHTS, len(DIGITS_TARGET_CLASSES), frozen=True),
        {
            "source": "builtin:digits",
            "classes": DIGITS_TARGET_CLASSES,
            "validation_split": 0.9,
            "seed": 0,
        },
        classifier_training(epochs=40, batch_size=16, learning_rate=0.01),
    )


def make_digits_backbone(path: Path = PRESETS_DIR / DIGITS_WEIGHTS, epochs: int = 5) -> float:
    """Train the transfer-digits backbone on the source task and save its weights.

    Source task: the digits 0-4 (80% of them; each image also shifted by one pixel
    in the 8 directions, 9x the data), the same graph with a 5-unit head, trainable,
    seeded. The backbone's BatchNormalization momentum is 0.9 while it trains here
    (Keras's 0.99 needs thousands of steps before the moving variances, which start
    at 1, come down to the tiny ones of this data: with fewer steps the network is at
    chance in inference mode, the mode a frozen backbone runs in). Returns the
    source model's accuracy on the held-out 20% of digits 0-4.
    """
    import keras
    import numpy as np

    sys.path.insert(0, str(PRESETS_DIR.parent))
    from engine.build.builder import build_model
    from engine.data.dataset import load_data
    from engine.model.project import Project

    data = {"source": "builtin:digits", "classes": DIGITS_SOURCE_CLASSES}
    data.update(validation_split=0.2, seed=0)
    source = project(
        "source",
        "",
        digits_backbone_graph(None, len(DIGITS_SOURCE_CLASSES), frozen=False),
        data,
        classifier_training(epochs),
    )
    ds = load_data(data)
    train, val = ds.parts["train"], ds.parts["validation"]
    x, y = ds.x[train], ds.y[train]
    shifted = [np.roll(np.roll(x, dy, 1), dx, 2) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    xa, ya = np.concatenate(shifted), np.tile(y, 9)
    keras.utils.set_random_seed(0)
    model = build_model(Project.from_dict(source))
    for layer in model.get_layer("backbone").layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(xa, ya, batch_size=32, epochs=epochs, verbose=0)
    accuracy = float(model.evaluate(ds.x[val], ds.y[val], verbose=0)[1])
    model.get_layer("backbone").save_weights(path)
    return accuracy


PRESETS: dict[str, Callable[[], dict[str, Any]]] = {
    "lenet5": lenet5,
    "mlp": mlp,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "alexnet": alexnet,
    "googlenet": googlenet,
    "alexnet-mini": alexnet_mini,
    "vgg-mini": vgg_mini,
    "inception-mini": inception_mini,
    "resnet-mini": resnet_mini,
    "residual-mlp": residual_mlp,
    "plain-deep-mlp": plain_deep_mlp,
    "lstm-digits": lstm_digits,
    "gru-digits": gru_digits,
    "adding-simple-rnn": adding_simple_rnn,
    "adding-lstm": adding_lstm,
    "playground": playground,
    "augmentation": augmentation,
    "batchnorm-dropout": batchnorm_dropout,
    "transfer-flowers": transfer_flowers,
    "transfer-digits": transfer_digits,
}


def dumps(preset: dict[str, Any]) -> str:
    """Indented JSON with one line per node and per edge (readable, diff-friendly)."""
    lines = ["{"]
    items = list(preset.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key == "graph":
            lines.append('  "graph": {')
            parts = [p for p in ("nodes", "edges", "blocks") if p in value]
            for part in parts:
                rows = [json.dumps(r) for r in value[part]]
                lines.append(f'    "{part}": [')
                lines.extend(f"      {r}," for r in rows[:-1])
                lines.extend(f"      {r}" for r in rows[-1:])
                lines.append("    ]," if part != parts[-1] else "    ]")
            lines.append("  }" + comma)
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write(name: str, preset: dict[str, Any], folder: Path = PRESETS_DIR) -> Path:
    """Write one preset file."""
    path = folder / f"{name}.json"
    path.write_text(dumps(preset), encoding="utf-8")
    json.loads(path.read_text(encoding="utf-8"))
    return path


def main(argv: list[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    if args == ["--backbone-weights"]:  # trains for a minute or two
        accuracy = make_digits_backbone()
        print(f"presets/{DIGITS_WEIGHTS}: source accuracy (digits 0-4, held out) {accuracy:.3f}")
        return 0
    names = args or list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        print(
            f"unknown preset(s): {', '.join(unknown)}; known: {', '.join(PRESETS)}", file=sys.stderr
        )
        return 2
    for name in names:
        preset = PRESETS[name]()
        path = write(name, preset)
        print(f"{path.relative_to(PRESETS_DIR.parent)}: {len(preset['graph']['nodes'])} nodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
