"""Write the preset gallery (``presets/*.json``) reproducibly.

The JSON files are the product; this script is how the large ones (VGG, ResNet,
GoogLeNet) are made without hand-typing hundreds of nodes. Run it from the
repository root::

    .venv/bin/python bench/make_presets.py            # all presets
    .venv/bin/python bench/make_presets.py lenet5 mlp  # only these

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
ADAM = {"type": "Adam", "learning_rate": 0.001}


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

    def add(self, node_id: str, node_type: str, params: dict[str, Any] | None = None,
            inputs: str | Iterable[str] = (), col: float | None = None) -> str:
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

    def to_dict(self) -> dict[str, Any]:
        nodes = []
        for n in self.nodes:
            x = self._col[n["id"]] * DX
            nodes.append({**n, "position": [int(x) if float(x).is_integer() else x,
                                            self._level[n["id"]] * DY]})
        return {"nodes": nodes, "edges": self.edges}


def project(name: str, description: str, graph: GraphBuilder, data: dict[str, Any],
            training: dict[str, Any]) -> dict[str, Any]:
    """A project file dict in the format of DESIGN.md."""
    return {"format": "layerlab", "version": 1, "name": name,
            "description": " ".join(description.split()),
            "graph": graph.to_dict(), "data": data, "training": training}


def classifier_training(epochs: int, batch_size: int = 32, learning_rate: float = 0.001,
                        early_stopping: dict[str, Any] | None = None) -> dict[str, Any]:
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
    g.add("conv1", "Conv2D", {"filters": 6, "kernel_size": 3, "padding": "same",
                              "activation": "relu"}, "input")
    g.add("pool1", "MaxPooling2D", {"pool_size": 2}, "conv1")
    g.add("conv2", "Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same",
                              "activation": "relu"}, "pool1")
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
        g, dict(DIGITS), classifier_training(epochs=20))


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
        g, dict(DIGITS), classifier_training(epochs=20))


PRESETS: dict[str, Callable[[], dict[str, Any]]] = {
    "lenet5": lenet5,
    "mlp": mlp,
}


def dumps(preset: dict[str, Any]) -> str:
    """Indented JSON with one line per node and per edge (readable, diff-friendly)."""
    lines = ["{"]
    items = list(preset.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key == "graph":
            lines.append('  "graph": {')
            for part in ("nodes", "edges"):
                rows = [json.dumps(r) for r in value[part]]
                lines.append(f'    "{part}": [')
                lines.extend(f"      {r}," for r in rows[:-1])
                lines.extend(f"      {r}" for r in rows[-1:])
                lines.append("    ]," if part == "nodes" else "    ]")
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
    names = (argv if argv is not None else sys.argv[1:]) or list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        print(f"unknown preset(s): {', '.join(unknown)}; known: {', '.join(PRESETS)}",
              file=sys.stderr)
        return 2
    for name in names:
        preset = PRESETS[name]()
        path = write(name, preset)
        print(f"{path.relative_to(PRESETS_DIR.parent)}: {len(preset['graph']['nodes'])} nodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
