"""``layerlab new --backbone NAME --data FOLDER --out PROJECT.json``: a transfer-learning
project in one step ("New from pretrained…" in the window calls :func:`new_from_pretrained`).

The project it writes::

    image (Input, the backbone's ImageNet size or --size)
      -> flip (RandomFlip horizontal) -> rotate (RandomRotation 0.05)
      -> preprocess (BackbonePreprocessing: the network's own preprocess_input,
         from LayerLab's [0, 1] pixels)
      -> backbone (Backbone, frozen, ImageNet weights unless told otherwise)
      -> pool (GlobalAveragePooling2D) -> dropout (Dropout 0.2)
      -> probs (Dense, one unit per class folder, softmax)

trained with Adam at 1e-3, sparse categorical cross-entropy, accuracy, early stopping
on the validation loss (patience 3, best weights kept), 20% of the images held out.
Nothing here imports TensorFlow: the classes are the data folder's sub-folders.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path
from typing import Any

from engine.catalog.backbones import BACKBONES
from engine.model.graph import Edge, Graph, Node
from engine.model.project import Project, ProjectError, save_project

#: Image files the images source reads (as engine.data.sources does).
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class NewProjectError(ValueError):
    """The choices cannot make a project (the message says which and why)."""


def class_folders(folder: str | os.PathLike) -> list[str]:
    """The class names of an image folder: its sub-folders, hidden ones left out.

    Raises:
        NewProjectError: The folder does not exist, is not a folder, or has fewer
            than two class sub-folders.
    """
    path = Path(folder).expanduser()
    if not path.exists():
        raise NewProjectError(f"image folder not found: {path}")
    if not path.is_dir():
        raise NewProjectError(
            f"{path} is not a folder (give a folder with one sub-folder per class)"
        )
    try:
        names = sorted(
            p.name
            for p in path.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX"
        )
    except OSError as exc:
        raise NewProjectError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if len(names) < 2:
        raise NewProjectError(
            f"{path} has {len(names)} class sub-folder{'s' if len(names) != 1 else ''}; "
            "put each class's images in a sub-folder named after the class (at least two)"
        )
    return names


def new_from_pretrained(
    backbone: str,
    data: str | os.PathLike,
    *,
    size: int | None = None,
    weights: str | None = "imagenet",
    base_dir: str | os.PathLike | None = None,
    name: str | None = None,
    classes: list[str] | None = None,
) -> Project:
    """A transfer-learning project on an image folder (see the module docstring).

    Args:
        backbone: A ``keras.applications`` network (:data:`BACKBONES`).
        data: The image folder, one sub-folder per class.
        size: Input height and width; default the network's ImageNet size.
        weights: ``"imagenet"``, None (random start) or a weights file's path.
        base_dir: The folder the project will be saved in: the data folder (and a
            relative weights file) are written relative to it.
        name: The project's name (default "<backbone> on <folder>").
        classes: The class folders when already listed (the window lists them on a
            background thread); else :func:`class_folders` lists them.

    Raises:
        NewProjectError: Unknown network, a size below what it takes, a data folder
            without classes.
    """
    spec = BACKBONES.get(backbone)
    if spec is None:
        close = difflib.get_close_matches(backbone, list(BACKBONES), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise NewProjectError(
            f"unknown backbone {backbone!r}{hint}; choose one of {', '.join(BACKBONES)}"
        )
    size = spec.size if size is None else size
    if isinstance(size, bool) or not isinstance(size, int) or size < spec.min_size:
        raise NewProjectError(
            f"{backbone} takes images of at least {spec.min_size}x{spec.min_size} pixels; "
            f"got size {size!r}"
        )
    classes = class_folders(data) if classes is None else list(classes)
    data_path = _relative(Path(data).expanduser(), base_dir)
    if weights not in (None, "imagenet"):
        weights = _relative(Path(str(weights)).expanduser(), base_dir)
    layers = [
        ("image", "Input", {"shape": [size, size, 3]}),
        ("flip", "RandomFlip", {"mode": "horizontal"}),
        ("rotate", "RandomRotation", {"factor": 0.05}),
        ("preprocess", "BackbonePreprocessing", {"mode": spec.preprocess, "pixel_max": 1}),
        ("backbone", "Backbone", {"application": backbone, "weights": weights}),
        ("pool", "GlobalAveragePooling2D", {}),
        ("dropout", "Dropout", {"rate": 0.2}),
        ("probs", "Dense", {"units": len(classes), "activation": "softmax"}),
    ]
    graph = Graph()
    for i, (node_id, node_type, params) in enumerate(layers):
        graph.add_node(Node(node_id, node_type, params, position=(0.0, 120.0 * i)))
        if i:
            graph.connect(Edge(layers[i - 1][0], node_id))
    graph.set_trainable("backbone", False)
    folder = Path(data).expanduser().resolve().name
    shown = ", ".join(classes[:6]) + (f" and {len(classes) - 6} more" if len(classes) > 6 else "")
    project = Project(
        name=name or f"{backbone} on {folder}",
        description=(
            f"Transfer learning: {backbone} pretrained on ImageNet, frozen, turns each "
            f"{size}x{size} picture into features; only the new classifier on top learns "
            f"to tell the {len(classes)} classes apart ({shown}). The preprocessing node "
            f"scales pixels the way {backbone} was trained ('{spec.preprocess}' mode). "
            "Once it has learned, unfreeze the backbone's top layers and train on at a "
            "smaller learning rate to fine-tune."
        ),
    )
    project.graph = graph
    project.data = {"source": "images", "path": data_path, "validation_split": 0.2, "seed": 0}
    project.training = {
        "optimizer": {"type": "Adam", "learning_rate": 0.001},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "batch_size": 32,
        "epochs": 20,
        "seed": 0,
        "early_stopping": {"monitor": "val_loss", "patience": 3, "restore_best_weights": True},
    }
    return project


def _relative(path: Path, base_dir: str | os.PathLike | None) -> str:
    """``path`` relative to ``base_dir`` when it lies below it, else absolute."""
    if base_dir is None:
        return str(path)
    try:
        return Path(os.path.relpath(path.resolve(), Path(base_dir).resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return str(path.resolve())


def add_parser(sub: Any) -> None:
    """The ``new`` sub-command's arguments (``engine.cli.main`` calls this)."""
    s = sub.add_parser("new", help="a transfer-learning project from a pretrained network")
    s.add_argument(
        "--backbone", required=True, help="a keras.applications network, e.g. MobileNetV2"
    )
    s.add_argument("--data", required=True, help="image folder, one sub-folder per class")
    s.add_argument("--out", required=True, help="the project file to write")
    s.add_argument("--size", type=int, help="input height and width (default: the network's)")
    s.add_argument(
        "--weights",
        default="imagenet",
        help="imagenet (default; Keras downloads and caches them), none, or a weights file",
    )
    s.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def cli_new(args: argparse.Namespace) -> int:
    """Run ``layerlab new`` with parsed ``args``; return the exit status."""
    out = Path(args.out)
    if out.suffix.lower() != ".json":
        out = out.with_name(out.name + ".json")
    if out.exists() and not args.force:
        print(f"error: {out} already exists; choose another --out or add --force", file=sys.stderr)
        return 2
    weights = None if str(args.weights).lower() in ("none", "null", "") else args.weights
    try:
        project = new_from_pretrained(
            args.backbone, args.data, size=args.size, weights=weights, base_dir=out.parent
        )
        save_project(project, out)
    except (NewProjectError, ProjectError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    units = project.graph.nodes["probs"].params["units"]
    shape = project.graph.nodes["image"].params["shape"]
    where = {
        None: "random start",
        "imagenet": "ImageNet weights (downloaded into Keras's cache on first use)",
    }.get(weights, f"weights from {weights}")
    print(
        f"wrote {out}: {args.backbone} (frozen, {where}) at {shape[0]}x{shape[1]}, "
        f"{units} classes from {args.data}"
    )
    print(f"next: layerlab validate {out}   then   layerlab train {out}")
    return 0
