"""``layerlab inspect RUN_DIR [--sample N | --file PATH] --out DIR [--json] [--arrays]
[--class K]``: see inside a trained run's model (issue 19).

The input is sample N of the validation split, or with ``--file`` the input read from
PATH (an image file for image models, a ``.npy`` of one sample, a one-row ``.csv`` of
feature values: :mod:`engine.train.inside_file`).

Writes PNG files into ``DIR``: ``activations/NN-<layer>.png`` (a grid of feature maps
for convolution layers, a heat strip for dense and recurrent ones), ``filters.png``
(the first Conv2D's kernels), ``grad_cam.png`` (the input beside its heat map for the
predicted class, or ``--class K``) for image models, and ``decision_boundary.png`` for
two-feature data. With ``--json`` it prints one object::

    {"run": RUN_DIR, "sample": N, "layers": [{"name", "output_shape", "mean", "std",
     "zero_fraction", "weight_norm", "gradient_norm"}, ...]}

(with ``--file``: ``"sample": null, "file": PATH``)

one entry per layer in graph order (statistics of that layer's output for the
sample; ``weight_norm`` of the final weights, ``gradient_norm`` from the last epoch's
``health.jsonl``, null when the layer has none). ``--arrays`` also writes the arrays
the window draws (``arrays/*.npy``) and ``inside.json`` describing them (the Inside
tab runs this command in a child process, so the window never loads TensorFlow).
PNGs are written with numpy and zlib only. Exit status 2 when the run or the file
cannot be read.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from engine.files import write_atomic
from engine.train.health import read_health
from engine.train.inside import (
    InsideError,
    activations,
    decision_boundary,
    filters,
    grad_cam,
    last_health,
    open_run,
    to_json,
)
from engine.train.inside_file import file_input

MIN_SIDE = 96
"""Small pictures are scaled up (nearest pixel) to at least this many pixels."""

_STOPS = np.array(  # a viridis-like ramp: dark blue, teal, green, yellow
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float
)
CLASS_COLOURS = np.array(
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
     [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]],
    float,
)  # fmt: skip


def add_parser(sub: Any) -> None:
    """The ``inspect`` sub-command's arguments."""
    s = sub.add_parser("inspect", help="see inside a trained run's model: PNGs (and JSON)")
    s.add_argument("run_dir", metavar="RUN_DIR")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--sample", type=int, help="sample of the validation split (0)")
    which.add_argument(
        "--file", help="an input of your own: an image file, a .npy sample, a one-row .csv"
    )
    s.add_argument("--out", required=True, help="folder for the PNG files")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--arrays", action="store_true", help="also write .npy arrays (the window)")
    s.add_argument("--class", dest="class_index", type=int, help="Grad-CAM for this class")


def cli_inspect(args: argparse.Namespace) -> int:
    """Run ``layerlab inspect`` with parsed ``args``; return the exit status."""
    try:
        report = inspect_run(
            args.run_dir,
            args.sample or 0,
            args.out,
            arrays=args.arrays,
            class_index=args.class_index,
            file=args.file,
        )
    except InsideError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {args.out}: cannot be written: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        for row in report["layers"]:
            print(
                f"{row['name']:<24} {str(tuple(row['output_shape'])):<18} "
                f"mean {row['mean']:+.3g}  std {row['std']:.3g}  zero {row['zero_fraction']:.0%}"
            )
        print(f"pictures in {args.out}")
    return 0


def inspect_run(
    run_dir: str | Path,
    sample: int,
    out: str | Path,
    *,
    arrays: bool = False,
    class_index: int | None = None,
    file: str | Path | None = None,
) -> dict[str, Any]:
    """Write the pictures (and with ``arrays`` the .npy files and ``inside.json``) of
    sample ``sample`` of a run, or of the input read from ``file``; return the
    ``--json`` object."""
    run = open_run(run_dir)
    x = run.sample(sample) if file is None else file_input(run, file)
    which: dict[str, Any] = (
        {"sample": sample} if file is None else {"sample": None, "file": str(file)}
    )
    out = Path(out)
    (out / "activations").mkdir(parents=True, exist_ok=True)
    if arrays:
        (out / "arrays").mkdir(exist_ok=True)
    health = last_health(run.run_dir)
    rows = activations(run.model, x)
    layers, manifest_layers = [], []
    for i, row in enumerate(rows):
        stem = f"{i:02d}-{_file_name(row['name'])}"
        write_atomic(out / "activations" / f"{stem}.png", png(_activation_picture(row)))
        layer = run.model.get_layer(row["name"])
        weights = [np.asarray(w.numpy()).ravel() for w in layer.weights]
        weight_norm = float(np.linalg.norm(np.concatenate(weights))) if weights else None
        layers.append(
            {
                "name": row["name"],
                "output_shape": row["output_shape"],
                "mean": row["mean"],
                "std": row["std"],
                "zero_fraction": row["zero_fraction"],
                "weight_norm": weight_norm,
                "gradient_norm": (health.get(row["name"]) or {}).get("gradient_norm"),
            }
        )
        if arrays:
            np.save(out / "arrays" / f"{stem}.npy", row["values"])
            manifest_layers.append(
                {**layers[-1], "type": row["type"], "kind": row["kind"], "array": f"{stem}.npy"}
            )
    manifest: dict[str, Any] = {
        "run": str(run_dir),
        **which,
        "split": run.split(),
        "layers": manifest_layers,
        "input": "input.npy",
    }
    found = filters(run.model)
    if found is not None:
        name, images = found
        write_atomic(out / "filters.png", png(_grid([_scaled(m) for m in images], pad=2)))
        manifest["filters"] = {"layer": name, "array": "filters.npy"}
        if arrays:
            np.save(out / "arrays" / "filters.npy", images)
    cam = grad_cam(run.model, x, class_index) if x.ndim == 4 else None
    if cam is not None:
        picture = _grad_cam_picture(x[0], cam["heat"])
        write_atomic(out / "grad_cam.png", png(picture))
        names = list(run.data.class_names or [])
        label = names[cam["class_index"]] if 0 <= cam["class_index"] < len(names) else None
        manifest["grad_cam"] = {
            "layer": cam["layer"],
            "class_index": cam["class_index"],
            "class_name": label,
            "array": "grad_cam.npy",
            "input": "input.npy",
        }
        if arrays:
            np.save(out / "arrays" / "grad_cam.npy", cam["heat"])
    plane = run.plane()
    field = decision_boundary(run.model, plane[0]) if plane is not None else None
    if field is not None:
        points, labels = plane
        write_atomic(out / "decision_boundary.png", png(_boundary_picture(field, points, labels)))
        manifest["decision_boundary"] = {"array": "boundary.npz"}
        if arrays:
            np.savez(
                out / "arrays" / "boundary.npz",
                classes=field["classes"],
                confidence=field["confidence"],
                x=field["x"],
                y=field["y"],
                points=points,
                labels=labels,
            )
    if arrays:
        np.save(out / "arrays" / "input.npy", x[0])
        manifest["health"] = _health_summary(run.run_dir)
        write_atomic(out / "inside.json", to_json(manifest))
    return {"run": str(run_dir), **which, "layers": layers}


def _health_summary(run_dir: Path) -> list[dict[str, Any]]:
    """Per probed epoch: each layer's histogram, norms and dead fraction, and warnings."""
    return read_health(run_dir)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60] or "layer"


# ------------------------------------------------------------------------------ pictures


def colour(a: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Values -> RGB uint8 on the viridis-like ramp (``lo``..``hi``: their own range)."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float64))
    lo = float(a.min()) if lo is None else lo
    hi = float(a.max()) if hi is None else hi
    t = np.clip((a - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(a)
    pos = t * (len(_STOPS) - 1)
    i = np.minimum(pos.astype(int), len(_STOPS) - 2)
    f = (pos - i)[..., None]
    return (_STOPS[i] * (1 - f) + _STOPS[i + 1] * f).astype(np.uint8)


def _scaled(image: np.ndarray) -> np.ndarray:
    """A (h, w) map or (h, w, 3) 0..1 image -> RGB uint8."""
    if image.ndim == 3:
        return (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return colour(image)


def _upscale(rgb: np.ndarray, side: int = MIN_SIDE) -> np.ndarray:
    k = max(1, int(np.ceil(side / max(1, min(rgb.shape[0], rgb.shape[1])))))
    k = min(k, max(1, 1024 // max(rgb.shape[0], rgb.shape[1])))
    return np.repeat(np.repeat(rgb, k, 0), k, 1)


def _grid(images: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """RGB images of one size in a near-square grid on a white background."""
    k = max(1, int(np.ceil(MIN_SIDE / 2 / max(images[0].shape[:2]))))
    images = [np.repeat(np.repeat(im, k, 0), k, 1) for im in images]
    h, w = images[0].shape[:2]
    cols = int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for n, im in enumerate(images):
        r, c = divmod(n, cols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) :][:, :w] = im
    return out


def _activation_picture(row: dict[str, Any]) -> np.ndarray:
    v = np.asarray(row["values"], dtype=np.float64)
    if row["kind"] == "maps":
        lo, hi = float(v.min()), float(v.max())
        return _grid([colour(m, lo, hi) for m in v])
    if row["kind"] == "strip":
        return _upscale(colour(v.T))
    cols = max(1, int(np.ceil(np.sqrt(v.size * 4))))  # a block of cells, not a thin line
    rows = int(np.ceil(v.size / cols))
    flat = np.full(rows * cols, float(v.min()) if v.size else 0.0)
    flat[: v.size] = v
    block = colour(flat.reshape(rows, cols), float(v.min()), float(v.max()))
    block.reshape(-1, 3)[v.size :] = 255
    return _upscale(block)


def _grad_cam_picture(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The input (grey or RGB) and the same with the heat map blended over it."""
    img = np.asarray(image, dtype=np.float64)
    img = img[:, :, :3] if img.shape[-1] >= 3 else np.repeat(img[:, :, :1], 3, -1)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    base = (img * 255).astype(np.uint8)
    blend = (0.45 * base + 0.55 * colour(heat, 0.0, 1.0)).astype(np.uint8)
    gap = np.full((base.shape[0], 1, 3), 255, np.uint8)
    return _upscale(np.concatenate([base, gap, blend], 1))


def _boundary_picture(field: dict[str, Any], points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    grid = field["classes"].shape[0]
    scale = 4
    conf = np.clip((field["confidence"] - 0.5) * 2, 0, 1)[..., None]
    base = CLASS_COLOURS[field["classes"] % len(CLASS_COLOURS)]
    img = 255 - (255 - base) * (0.25 + 0.35 * conf)  # pale field, deeper where sure
    img = np.repeat(np.repeat(img, scale, 0), scale, 1)
    xs, ys = field["x"], field["y"]
    size = grid * scale
    cols = ((points[:, 0] - xs[0]) / (xs[-1] - xs[0]) * (size - 1)).astype(int)
    rows = ((points[:, 1] - ys[0]) / (ys[-1] - ys[0]) * (size - 1)).astype(int)
    for r, c, label in zip(rows, cols, labels, strict=True):
        r0, c0 = max(r - 1, 0), max(c - 1, 0)
        img[r0 : r + 2, c0 : c + 2] = CLASS_COLOURS[label % len(CLASS_COLOURS)] * 0.8
    return img[::-1].astype(np.uint8)  # the second feature grows upwards


def png(rgb: np.ndarray) -> bytes:
    """An RGB uint8 (h, w, 3) image as PNG bytes (no compression library but zlib)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
