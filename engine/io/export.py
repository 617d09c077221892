"""Write a model in the formats a Keras user needs, and prove each file by reloading it.

:func:`export` takes a project (object or file) or a run directory, writes one of
:data:`FORMATS`, then loads the file back with that format's own runtime
(``keras.models.load_model``, ``tf.saved_model.load``, ONNX Runtime, the LiteRT
interpreter, or the generated script's ``build_model()``) and compares its
predictions with the source model's on a fixed, seeded batch of inputs.

A run directory (``project.json`` + ``model.keras``) exports the trained model;
a project exports an untrained build made with the project's seed.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import re
import runpy
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.build.builder import build_model
from engine.build.errors import clean_message, first_line
from engine.build.weights import WeightsError, load_start_weights
from engine.codegen.script import generate
from engine.files import TEMP_MARK, atomic_path, write_atomic
from engine.model.project import Project, ProjectError, load_project

FORMATS = ("keras", "savedmodel", "onnx", "tflite", "python", "h5")
#: File name ending each format's output gets when the given path has none.
SUFFIXES = {
    "keras": ".keras",
    "onnx": ".onnx",
    "tflite": ".tflite",
    "python": ".py",
    "h5": ".h5",
    "savedmodel": "",
}
QUANTIZE = ("none", "float16", "int8")
#: Largest difference a float (unquantised) export may show against the source model.
TOLERANCE = 1e-4
#: How many seeded samples the check predicts on.
SAMPLES = 8
ONNX_MISSING = "ONNX export needs the packages tf2onnx and onnx: pip install 'layerlab[onnx]'"
_RUNTIME = {
    "keras": "Keras",
    "h5": "Keras (legacy HDF5)",
    "savedmodel": "TensorFlow",
    "onnx": "ONNX Runtime",
    "tflite": "the LiteRT interpreter",
    "python": "the generated script's build_model()",
}


class ExportError(ValueError):
    """The export cannot be written; the message names the format and, if known, the layer."""


class SourceError(ExportError):
    """The source (project file or run directory) cannot be read."""


@dataclass
class ExportResult:
    """What :func:`export` wrote and how the check went.

    Attributes:
        path: The file (or SavedModel folder) written.
        format: One of :data:`FORMATS`.
        size_bytes: Its size on disk (a folder: all files in it).
        max_abs_diff: Largest absolute difference between the reloaded model's and
            the source model's predictions, or None when not checked.
        verified: True when the file was reloaded and agrees with the source
            (within :data:`TOLERANCE`; quantised files only need to load and run).
        message: One line for the user ("verified: max |diff| 3.1e-07 over 8 samples").
        weights: For ``python``: the weights file the script loads, if any.
    """

    path: Path
    format: str
    size_bytes: int
    max_abs_diff: float | None
    verified: bool
    message: str
    weights: Path | None = None


# ------------------------------------------------------------------- sources
@dataclass
class _Source:
    project: Project | None
    model: Any
    run_dir: Path | None
    label: str
    note: str = ""  # how the imported weights a project names were loaded
    imported: bool = False  # the model holds some of those weights


def _load_source(source: Any) -> _Source:
    """The project and the Keras model behind ``source``.

    Raises:
        SourceError: Naming the file or folder that cannot be used.
    """
    if isinstance(source, Project):
        return _project_source(source, f"project '{source.name}'")
    path = Path(source)
    if path.is_dir():
        return _load_run_dir(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.suffix in (".keras", ".h5"):
        return _Source(None, _load_keras(path), None, str(path))
    try:
        project = load_project(path)
    except ProjectError as exc:
        raise SourceError(str(exc)) from None
    return _project_source(project, str(path))


def _project_source(project: Project, label: str) -> _Source:
    """A project's model, starting from the imported weights it names, if any."""
    model = _build(project)
    training = project.training if isinstance(project.training, dict) else {}
    if not training.get("imported_weights", True):
        return _Source(project, model, None, label)
    try:
        with _quiet():
            loaded = load_start_weights(model, project)
    except WeightsError as exc:
        return _Source(project, model, None, label, f"{exc}: exported with fresh weights")
    if loaded is None:
        return _Source(project, model, None, label)
    return _Source(project, model, None, label, loaded.message(), bool(loaded.loaded))


def _load_run_dir(path: Path) -> _Source:
    missing = [n for n in ("project.json", "model.keras") if not (path / n).is_file()]
    if missing:
        raise SourceError(
            f"{path}: not a run directory (it has no {' and no '.join(missing)}); "
            "export a project file or a finished run"
        )
    try:
        project = load_project(path / "project.json")
    except ProjectError as exc:
        raise SourceError(str(exc)) from None
    return _Source(project, _load_keras(path / "model.keras"), path, str(path))


def _load_keras(path: Path) -> Any:
    import keras

    try:
        with _quiet():
            try:  # compiled, so a .keras export keeps the optimizer state
                return keras.models.load_model(path, safe_mode=True, compile=True)
            except Exception:
                return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # corrupt zip, wrong HDF5, unsafe content: all one message
        raise SourceError(
            f"{path}: cannot be loaded as a Keras model ({first_line(exc)})"
        ) from None


def _build(project: Project) -> Any:
    import keras

    seed = project.training.get("seed", 0) if isinstance(project.training, dict) else 0
    keras.utils.set_random_seed(seed if isinstance(seed, int) and seed >= 0 else 0)
    try:
        with _quiet():
            return build_model(project)
    except ValueError as exc:
        raise SourceError(f"project '{project.name}': the model cannot be built: {exc}") from None


# ---------------------------------------------------------------- sample data
def sample_inputs(model: Any, n: int = SAMPLES, seed: int = 0) -> list[Any]:
    """A fixed batch of ``n`` inputs for each model input (seeded).

    Variable dimensions become :func:`variable_length` (8 unless a layer needs more);
    inputs that feed an ``Embedding`` get integer ids below its ``input_dim`` (as
    float32, which Keras casts); integer inputs get small integers of their own dtype.
    """
    rng = np.random.default_rng(seed)
    ids = _embedding_limits(model)
    length = variable_length(model)
    out = []
    for tensor in model.inputs:
        shape = [n] + [length if d is None else int(d) for d in tensor.shape[1:]]
        limit = ids.get(_tensor_name(tensor))
        dtype = str(getattr(tensor, "dtype", "float32"))
        integer = "int" in dtype
        if limit is not None or integer:
            values = rng.integers(0, limit or 10, size=shape)
            out.append(values.astype(dtype if integer else "float32"))
        else:
            out.append(rng.standard_normal(shape).astype("float32"))
    return out


#: Lengths tried for variable-length axes, shortest first (the sample stays small).
SAMPLE_LENGTHS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


def variable_length(model: Any) -> int:
    """The shortest length of :data:`SAMPLE_LENGTHS` every layer accepts on the model's
    variable-length axes (a Conv1D with kernel 7 and stride 3 after another needs more
    than 8), asked of Keras symbolically: no layer runs. 8 when no axis is variable or
    no length fits (the run then says what Keras refuses)."""
    import keras
    from keras import tree

    if not any(d is None for t in model.inputs for d in t.shape[1:]):
        return SAMPLE_LENGTHS[0]
    for length in SAMPLE_LENGTHS:
        specs = [
            keras.KerasTensor(
                (1, *(length if d is None else int(d) for d in t.shape[1:])), dtype=t.dtype
            )
            for t in model.inputs
        ]
        try:
            with _quiet():
                out = model.compute_output_spec(specs[0] if len(specs) == 1 else specs)
        except Exception:  # Keras refuses a too short sequence in many ways
            continue
        if all(d is None or d > 0 for o in tree.flatten(out) for d in o.shape):
            return length
    return SAMPLE_LENGTHS[0]


def _embedding_limits(model: Any) -> dict[str, int]:
    """Input name -> smallest ``input_dim`` of the Embedding layers that read it directly."""
    limits: dict[str, int] = {}
    for layer in model.layers:
        if type(layer).__name__ != "Embedding":
            continue
        for node in getattr(layer, "_inbound_nodes", []):
            for t in node.input_tensors:
                name = _tensor_name(t)
                limits[name] = min(limits.get(name, layer.input_dim), layer.input_dim)
    return limits


def _tensor_name(tensor: Any) -> str:
    history = getattr(tensor, "_keras_history", None)
    if history is not None:
        return history[0].name
    return str(getattr(tensor, "name", ""))


def _input_names(model: Any) -> list[str]:
    return [_tensor_name(t) for t in model.inputs]


def _predict(model: Any, xs: list[Any]) -> list[Any]:
    """The model's outputs on ``xs`` as a flat list of numpy arrays."""
    with _quiet():
        out = model(xs[0] if len(xs) == 1 else list(xs), training=False)
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out)]
    if not isinstance(out, (list, tuple)):
        out = [out]
    return [np.asarray(o) for o in out]


def _max_diff(expected: list[Any], got: list[Any], where: str) -> float:
    if len(expected) != len(got):
        raise ExportError(
            f"{where}: the reloaded model has {len(got)} outputs; the source has {len(expected)}"
        )
    worst = 0.0
    for i, (a, b) in enumerate(zip(expected, got)):
        b = np.asarray(b)
        if a.shape != b.shape:
            raise ExportError(
                f"{where}: output {i} has shape {tuple(b.shape)}; the source's is {tuple(a.shape)}"
            )
        if a.size:
            worst = max(worst, float(np.max(np.abs(a.astype("float64") - b.astype("float64")))))
    return worst


# -------------------------------------------------------------------- export
def export(
    source: Any,
    fmt: str,
    out: str | os.PathLike,
    *,
    verify: bool = True,
    quantize: str = "none",
    weights: str | os.PathLike | None = None,
) -> ExportResult:
    """Write ``source``'s model as ``fmt`` to ``out`` and (by default) prove it by reloading.

    Args:
        source: A :class:`Project`, a project file, a run directory (``project.json``
            and ``model.keras``: the trained model is exported) or a ``.keras``/``.h5``
            model file.
        fmt: One of :data:`FORMATS`.
        out: The output path; the format's usual ending is added when it has none.
        verify: Reload the file with its own runtime and compare predictions.
        quantize: ``tflite`` only: ``"none"`` (float32), ``"float16"`` or ``"int8"``
            (dynamic-range).
        weights: ``python`` only: the weights file the script loads. From a run
            directory the trained weights are written next to the script by default.

    Returns:
        An :class:`ExportResult`. A failed check is reported (``verified`` False),
        not raised.

    Raises:
        SourceError: The source cannot be read or built.
        ExportError: Unknown format or option, a missing optional package, or a
            converter failure (naming the format and the layer when known).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if quantize not in QUANTIZE:
        raise ExportError(f"unknown quantisation {quantize!r}; choose one of {', '.join(QUANTIZE)}")
    if quantize != "none" and fmt != "tflite":
        raise ExportError(f"quantisation ({quantize}) applies to tflite exports only, not {fmt}")
    if fmt == "onnx":
        _require_onnx()
    out = _out_path(Path(out), fmt)
    src = _load_source(source)
    model = src.model
    if fmt == "python" and weights is not None and Path(weights).is_file():
        try:  # the script will start from these weights, so the check compares with them
            with _quiet():
                model.load_weights(weights)
        except Exception as exc:  # wrong file or wrong model
            raise ExportError(
                f"{weights}: these weights do not fit the model ({first_line(exc)})"
            ) from None
    xs = sample_inputs(model)
    try:
        expected = _predict(model, xs)  # also makes sure a loaded model has been called
    except Exception as exc:
        shapes = ", ".join(str(tuple(x.shape[1:])) for x in xs)
        raise ExportError(
            converter_message(
                fmt, exc, model, f"the model does not run on a sample input of shape {shapes}"
            )
        ) from None
    weights_path = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "python":
            weights_path = _write_python(src, out, weights)
        else:
            _convert(model, fmt, out, quantize, xs)
    except OSError as exc:  # a folder that cannot be written, a file in the way
        raise ExportError(f"{fmt}: cannot write {out}: {exc.strerror or exc}") from None
    size = _size(out)
    if not verify:
        result = ExportResult(
            out, fmt, size, None, False, "not verified (--no-verify)", weights_path
        )
    else:
        result = _verify(src, fmt, out, xs, expected, quantize, size, weights_path)
    if src.note:
        result.message += f"; {src.note}"
    return result


def _out_path(out: Path, fmt: str) -> Path:
    suffix = SUFFIXES[fmt]
    if not out.name or out.name in (".", ".."):
        raise ExportError(f"{out}: give a file name for the {fmt} export, not a folder")
    if fmt == "savedmodel":
        if out.exists() and not out.is_dir():
            raise ExportError(f"{out}: a SavedModel is a folder, but a file of that name exists")
        if out.is_dir() and any(out.iterdir()) and not (out / "saved_model.pb").is_file():
            raise ExportError(
                f"{out}: the folder is not empty and holds no SavedModel; "
                "choose a new folder name (nothing was overwritten)"
            )
        return out
    if out.suffix == "":
        return out.with_name(out.name + suffix)
    if fmt == "keras" and out.suffix != ".keras":
        raise ExportError(
            f"{out}: a keras export must end in .keras (use --format h5 for the legacy HDF5 file)"
        )
    if out.suffix != suffix:
        raise ExportError(f"{out}: a {fmt} export must end in {suffix}")
    if out.is_dir():
        raise ExportError(f"{out}: is a folder; give a file name")
    return out


def _require_onnx() -> None:
    for name in ("tf2onnx", "onnx"):
        try:
            importlib.import_module(name)
        except ImportError:
            raise ExportError(ONNX_MISSING) from None


def _convert(model: Any, fmt: str, out: Path, quantize: str, xs: list[Any]) -> None:
    """Write ``model`` as ``fmt``; a converter failure becomes one :class:`ExportError`."""
    writer = _atomic_folder(out) if fmt == "savedmodel" else atomic_path(out, suffix=out.suffix)
    with writer as tmp:  # the file (or folder) appears only when it is complete
        try:
            with _quiet():
                if fmt in ("keras", "h5"):
                    model.save(tmp)
                elif fmt == "savedmodel":
                    _inference(model, xs).export(str(tmp), format="tf_saved_model", verbose=False)
                elif fmt == "onnx":
                    _inference(model, xs).export(str(tmp), format="onnx", verbose=False)
                else:
                    model.export(
                        str(tmp), format="litert", verbose=False, **_quantize_options(quantize)
                    )
        except Exception as exc:  # converters raise anything; the user gets one sentence
            raise ExportError(converter_message(fmt, exc, model)) from None


@contextlib.contextmanager
def _atomic_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` to write a SavedModel into; on success it takes
    ``out``'s place (an old SavedModel there is removed only then), on failure it is
    removed and ``out`` is left as it was."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{TEMP_MARK}", dir=out.parent))
    try:
        shutil.rmtree(tmp)  # the exporter wants to make the folder itself
        yield tmp
        old = None
        if out.exists():  # _out_path checked it is an old SavedModel or empty
            old = out.with_name(f".{out.name}{TEMP_MARK}old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _inference(model: Any, xs: list[Any]) -> Any:
    """``model`` with its random augmentation layers off. SavedModel and ONNX serve
    ``call`` without ``training``, and those layers then default to training (and
    ONNX has no random ops): a wrapper calls the model with ``training=False``."""
    import keras

    if not any(type(layer).__name__.startswith("Random") for layer in model.layers):
        return model
    inputs = [
        keras.Input(t.shape[1:], dtype=t.dtype, name=t._keras_history[0].name) for t in model.inputs
    ]
    one = inputs[0] if len(inputs) == 1 else inputs
    wrapper = keras.Model(one, model(one, training=False), name=model.name)
    wrapper(xs[0] if len(xs) == 1 else list(xs))  # exporters want a model that was called
    return wrapper


def _quantize_options(quantize: str) -> dict[str, Any]:
    import tensorflow as tf

    if quantize == "float16":
        return {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_types": [tf.float16]},
        }
    if quantize == "int8":  # dynamic range: int8 weights, float activations
        return {"optimizations": [tf.lite.Optimize.DEFAULT]}
    return {}


def converter_message(fmt: str, exc: BaseException, model: Any = None, what: str = "") -> str:
    """One sentence for a converter failure: the format, the layer when the text names one
    (file paths in the text are not searched for names)."""
    first = first_line(exc)
    banner = first.startswith("Exception encountered when calling")  # Keras: reason below
    text = clean_message(str(exc) if banner else first)[:300]
    full = re.sub(r"(?<![\w.])/[\w./-]*", " ", str(exc))  # not file paths (/proc/x.keras)
    node = None
    if model is not None:
        names = sorted((layer.name for layer in model.layers), key=len, reverse=True)
        for name in names:
            if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", full):
                node = next(la for la in model.layers if la.name == name)
                break
        called = re.search(r"when calling (\w+)\.call\(\)", full)
        same = [la for la in model.layers if called and type(la).__name__ == called.group(1)]
        if node is None and len(same) == 1:
            node = same[0]
    where = f" at layer '{node.name}' ({type(node).__name__})" if node is not None else ""
    return f"{fmt} export failed{where}: {what + ': ' if what else ''}{text}"


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def _write_python(src: _Source, out: Path, weights: Any) -> Path | None:
    """Write the script; from a run directory also the trained weights next to it."""
    if src.project is None:
        raise ExportError(
            f"{src.label}: python export needs a project or a run directory "
            "(a bare model file has no project to turn into code; import it "
            "first with `layerlab import`)"
        )
    weights_path: Path | None = None
    if weights is not None:
        weights_path = Path(weights)
    elif src.run_dir is not None or src.imported:  # trained or imported weights
        weights_path = out.with_name(out.stem + ".weights.h5")
        with _quiet(), atomic_path(weights_path, suffix=".weights.h5") as tmp:
            src.model.save_weights(tmp)
    try:
        text = generate(src.project, weights=str(weights_path) if weights_path else None)
    except ValueError as exc:
        raise ExportError(f"python export failed: {exc}") from None
    write_atomic(out, text)
    return weights_path


# -------------------------------------------------------------------- checks
def _verify(
    src: _Source,
    fmt: str,
    out: Path,
    xs: list[Any],
    expected: list[Any],
    quantize: str,
    size: int,
    weights_path: Path | None,
) -> ExportResult:
    runtime = _RUNTIME[fmt]
    try:
        got = _RELOAD[fmt](out, xs, src, weights_path)
        diff = _max_diff(expected, got, f"{out}")
    except Exception as exc:  # any runtime failure means the file did not prove itself
        msg = f"not verified: {runtime} could not run {out.name}: " + (
            _known_gap(fmt, str(exc), src.model) or first_line(exc)
        )
        return ExportResult(out, fmt, size, None, False, msg, weights_path)
    n = len(xs[0]) if xs else 0
    if quantize != "none":
        msg = (
            f"verified: loads and runs; max |diff| {diff:.2g} over {n} samples "
            f"({quantize} quantisation, not held to {TOLERANCE:g})"
        )
        return ExportResult(out, fmt, size, diff, True, msg, weights_path)
    if diff <= TOLERANCE:
        msg = f"verified: max |diff| {diff:.2g} over {n} samples"
        return ExportResult(out, fmt, size, diff, True, msg, weights_path)
    msg = (
        f"verification failed: {runtime} predicts up to {diff:.3g} away from the source "
        f"model over {n} samples (allowed {TOLERANCE:g})"
    )
    return ExportResult(out, fmt, size, diff, False, msg, weights_path)


#: Recurrent layers a TFLite file runs only with TensorFlow's Flex ops.
_FLEX_RECURRENT = ("SimpleRNN", "LSTM", "GRU", "Bidirectional")
#: Other layers a TFLite file runs only with Flex ops (measured with Keras 3.15).
_FLEX_OTHER = ("ConvLSTM2D", "MaxPooling3D", "AveragePooling3D")
_CONVOLUTIONS = ("Conv1D", "Conv2D", "Conv3D")


def _known_gap(fmt: str, text: str, model: Any) -> str | None:
    """The cause, by layer, of runtime failures that converters are known to produce."""

    def named(types: tuple[str, ...]) -> str:
        found = [
            f"'{la.name}' ({type(la).__name__})"
            for la in model.layers
            if type(la).__name__ in types
        ]
        return ", ".join(found[:3]) + (" and more" if len(found) > 3 else "")

    if fmt == "tflite" and "Select TensorFlow op" in text and named(_FLEX_RECURRENT):
        return (
            f"layer {named(_FLEX_RECURRENT)} needs TensorFlow's Flex ops, which the plain "
            "LiteRT interpreter does not have (the file runs with the Flex delegate; "
            "for plain LiteRT use Conv1D or Dense layers instead of recurrent ones)"
        )
    if fmt == "tflite" and "Select TensorFlow op" in text and named(_FLEX_OTHER):
        return (
            f"layer {named(_FLEX_OTHER)} needs TensorFlow's Flex ops, which the plain "
            "LiteRT interpreter does not have (the file runs with the Flex delegate)"
        )
    grouped = [
        f"'{la.name}' (groups={la.groups})"
        for la in model.layers
        if type(la).__name__ in _CONVOLUTIONS and getattr(la, "groups", 1) > 1
    ]
    if grouped and fmt in ("onnx", "tflite"):
        return (
            f"layer {', '.join(grouped[:3])} is a grouped convolution, which the "
            f"{'ONNX' if fmt == 'onnx' else 'TFLite'} converter does not translate into a "
            "file its runtime accepts; export another format, or use groups=1"
        )
    operations = [  # Operation nodes: Keras operations, which legacy HDF5 cannot load
        f"'{op.name}' ({type(op).__name__})"
        for op in getattr(model, "operations", [])
        if not hasattr(op, "weights") and type(op).__name__ != "InputLayer"
    ]
    if fmt == "h5" and "Unknown layer" in text and operations:
        return (
            f"{', '.join(operations[:3])}{' and more' if len(operations) > 3 else ''} "
            f"{'is a Keras operation' if len(operations) == 1 else 'are Keras operations'} "
            "(Operation nodes), which Keras's legacy HDF5 format cannot load back; "
            "export .keras instead, which holds them"
        )
    if fmt == "onnx" and "missing from input feed" in text and named(("Normalization",)):
        return (
            f"the converter turned the mean and variance of layer "
            f"{named(('Normalization',))} into inputs of the file; export another "
            "format, or leave the Normalization out and normalise the data beforehand"
        )
    return None


def _reload_keras(out: Path, xs: list[Any], src: _Source, _w: Any) -> list[Any]:
    import keras

    with _quiet():
        model = keras.models.load_model(out, safe_mode=True, compile=False)
    return _predict(model, xs)


def _by_name(names: list[str], wanted: list[str], xs: list[Any]) -> dict[str, Any]:
    """Feed ``xs`` (in model-input order ``names``) to a runtime's inputs ``wanted``."""
    if sorted(names) == sorted(wanted):
        return dict(zip(names, xs))
    return dict(zip(wanted, xs))  # names were changed by the converter: keep the order


def _numbered(outputs: dict[str, Any]) -> list[Any]:
    """``output_0``, ``output_1``, ... in numeric order."""

    def key(name: str) -> tuple[int, str]:
        m = re.search(r"(\d+)$", name)
        return (int(m.group(1)) if m else -1, name)

    return [outputs[k] for k in sorted(outputs, key=key)]


def _reload_savedmodel(out: Path, xs: list[Any], src: _Source, _w: Any) -> list[Any]:
    import tensorflow as tf

    with _quiet():
        fn = tf.saved_model.load(str(out)).signatures["serving_default"]
        wanted = list(fn.structured_input_signature[1])
        feed = _by_name(_input_names(src.model), wanted, xs)
        result = fn(**{k: tf.constant(v) for k, v in feed.items()})
    return [np.asarray(v) for v in _numbered(result)]


def _reload_onnx(out: Path, xs: list[Any], src: _Source, _w: Any) -> list[Any]:
    try:
        import onnxruntime
    except ImportError:
        raise ExportError(
            "onnxruntime is not installed, so the ONNX file cannot be checked: "
            "pip install onnxruntime"
        ) from None
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]
    return session.run(None, _by_name(_input_names(src.model), wanted, xs))


def _tflite_interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(path))


def _reload_tflite(out: Path, xs: list[Any], src: _Source, _w: Any) -> list[Any]:
    with _quiet():
        interpreter = _tflite_interpreter(out)
        signatures = interpreter.get_signature_list()
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        runner = interpreter.get_signature_runner(key)
        wanted = list(signatures[key]["inputs"])
        feed = _by_name(_input_names(src.model), wanted, xs)
        result = runner(**feed)
    return _numbered(result)


def _reload_python(out: Path, xs: list[Any], src: _Source, weights_path: Any) -> list[Any]:
    """Run the script's ``build_model()`` in a fresh namespace and load the source's weights."""
    with tempfile.TemporaryDirectory() as tmp:
        if weights_path is None or not Path(weights_path).is_file():
            weights_path = Path(tmp) / "source.weights.h5"
            with _quiet():
                src.model.save_weights(weights_path)
        with _quiet():
            namespace = runpy.run_path(str(out), run_name="layerlab_export_check")
            model = namespace["build_model"]()
            model.load_weights(weights_path)
    return _predict(model, xs)


_RELOAD = {
    "keras": _reload_keras,
    "h5": _reload_keras,
    "savedmodel": _reload_savedmodel,
    "onnx": _reload_onnx,
    "tflite": _reload_tflite,
    "python": _reload_python,
}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the converters' progress prints, warnings and absl logging."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        absl.setLevel(level)
