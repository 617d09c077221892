"""Reading a Keras model safely: its config as data first, then the model in safe mode.

:func:`read_config` reads a ``.keras``/``.h5`` file or a config JSON without
running anything; :func:`scan` and :func:`refusals` list what stops an import
(Lambda layers, custom objects, layer types the catalog lacks; inside nested models too)
before Keras loads the model (:func:`load_model`, always in safe mode).
``keras.applications`` architectures are built by name (:func:`application_model`).
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from engine.build.errors import first_line
from engine.catalog.table import CATALOG
from engine.io.importing.operations import is_operation_entry, unsupported_operation
from engine.limits import (
    MODEL_CONFIG_MB,
    MODEL_MB,
    LimitExceeded,
    NotRegularFile,
    check_mb,
    check_zip_member,
    loads,
    open_regular,
    read_zip_member,
)

#: ``keras.applications`` architectures that can be asked for by name (untrained; nothing
#: is downloaded). ConvNeXtTiny and InceptionResNetV2 (layers private to keras.applications)
#: import as a Backbone node and their top (engine/io/importing/private.py,
#: docs/export-import.md); MobileNetV3 imports (its Keras
#: operations as Operation nodes).
APPLICATIONS = (
    "VGG16",
    "VGG19",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "ResNet50V2",
    "ResNet101V2",
    "ResNet152V2",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Small",
    "MobileNetV3Large",
    "DenseNet121",
    "DenseNet169",
    "DenseNet201",
    "InceptionV3",
    "Xception",
    "EfficientNetB0",
    "EfficientNetB1",
    "EfficientNetB2",
    "EfficientNetB3",
    "EfficientNetB4",
    "EfficientNetB5",
    "EfficientNetB6",
    "EfficientNetB7",
    "EfficientNetV2B0",
    "EfficientNetV2B1",
    "EfficientNetV2B2",
    "EfficientNetV2B3",
    "EfficientNetV2S",
    "NASNetMobile",
    "NASNetLarge",
    "ConvNeXtTiny",
    "InceptionResNetV2",
)


_MODEL_CLASSES = ("Functional", "Model", "Sequential")


class ModelImportError(ValueError):
    """The model cannot become a project; the message lists every reason, by layer."""


class UnreadableModelError(ModelImportError):
    """The file is missing, corrupt or not a Keras model; the message names it."""


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The model config (``{"class_name": ..., "config": ...}``) of a file, read as data.

    Raises:
        UnreadableModelError: Naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableModelError(f"{path}: no such file")
    if path.is_dir():
        raise UnreadableModelError(
            f"{path}: is a folder, not a model file (a SavedModel "
            "cannot be imported; use a .keras or .h5 file)"
        )
    try:
        config = _read_config_data(path)
    except UnreadableModelError:
        raise
    except (NotRegularFile, LimitExceeded) as exc:
        text = str(exc)
        raise UnreadableModelError(
            text if text.startswith(str(path)) else f"{path}: {text}"
        ) from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        kind = {".keras": "a .keras model", ".h5": "an HDF5 model"}.get(
            path.suffix, "a Keras model config"
        )
        raise UnreadableModelError(
            f"{path}: cannot be read as {kind} ({first_line(exc, 200)})"
        ) from None
    if isinstance(config, dict) and "config" not in config and "layers" in config:
        config = {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": config,
            "registered_name": "Functional",
        }
    subclass = _subclass_name(config)
    if subclass is not None:
        inner = config.get("config")
        if not _functional_graph(inner):
            raise ModelImportError(
                f"{path}: " + subclassed_text(str(inner.get("name") or path.stem), subclass)
            )
        config = {  # a functional graph built through a keras.Model subclass
            **config,
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "registered_name": "Functional",
            SUBCLASS_KEY: subclass,
        }
    if (
        not isinstance(config, dict)
        or config.get("class_name") not in _MODEL_CLASSES
        or not isinstance(config.get("config"), dict)
    ):
        raise UnreadableModelError(
            f"{path}: not a Keras model config (expected a "
            "Functional or Sequential model, as model.to_json() writes)"
        )
    return config


#: Key :func:`read_config` adds to a functional config saved by a ``keras.Model`` subclass
#: (its class name; the subclass's own training step is not kept).
SUBCLASS_KEY = "layerlab_subclass"


def _subclass_name(config: Any) -> str | None:
    """The class name of a saved ``keras.Model`` subclass (``GAN``), or None for the
    Keras model classes and anything else."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        return None
    cls = config.get("class_name")
    if not isinstance(cls, str) or cls in _MODEL_CLASSES or "build_config" not in config:
        return None
    module = config.get("module")
    return cls if module is None or not str(module).startswith("keras") else None


def _functional_graph(config: dict[str, Any]) -> bool:
    return all(isinstance(config.get(k), list) for k in ("layers", "input_layers", "output_layers"))


def subclassed_text(model_name: str, cls: str) -> str:
    """The refusal of a truly subclassed model (its ``call()`` is Python code)."""
    return (
        f"model '{model_name}' ({cls}): a subclassed keras.Model whose call() is Python "
        "code, not a graph of layers LayerLab can read. Build the same layers as a "
        "functional model (keras.Model(inputs, outputs)) or a Sequential model and "
        "import that; a subclass that only overrides train_step or compile imports as "
        "its graph"
    )


def subclass_note(model_name: str, cls: str) -> str:
    """The note on a functional graph built through a ``keras.Model`` subclass."""
    return (
        f"model '{model_name}' is a {cls} (a keras.Model subclass): its functional graph "
        "is imported; its own training step (train_step, compile) is not kept, LayerLab "
        "trains with the project's training settings"
    )


def _read_config_data(path: Path) -> Any:
    """The parsed config of a ``.keras``/``.h5``/JSON file, every read bounded.

    A ``.keras`` file's members are checked by their declared sizes (and packing
    ratios) before anything is unpacked, so the model Keras later loads from it is
    bounded too; ``config.json`` is read within :data:`MODEL_CONFIG_MB`.
    """
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        f.seek(0)
        if zipfile.is_zipfile(f):
            f.seek(0)
            with zipfile.ZipFile(f) as z:
                if "config.json" not in z.namelist():
                    raise UnreadableModelError(
                        f"{path}: a zip file without config.json, not a .keras model"
                    )
                check_zip_member(z.getinfo("config.json"), MODEL_CONFIG_MB)
                infos = z.infolist()
                for info in infos:
                    check_zip_member(info, MODEL_MB)
                check_mb(MODEL_MB, sum(i.file_size for i in infos), "the model unpacked")
                raw = read_zip_member(z, "config.json", MODEL_CONFIG_MB)
            return _parse(raw)
        if head == HDF5_SIGNATURE:
            return _parse(_hdf5_config(path))
        if path.suffix in (".keras", ".h5"):
            raise UnreadableModelError(
                f"{path}: not a Keras model file (a .keras file is a zip archive and an .h5 "
                "file is HDF5; this one is neither: truncated or of another kind)"
            )
        check_mb(MODEL_CONFIG_MB, size, "the config file")
        f.seek(0)
        raw = f.read(MODEL_CONFIG_MB.value() * 10**6 + 1)
        check_mb(MODEL_CONFIG_MB, len(raw), "the config file")
    return _parse(raw)


def _hdf5_config(path: Path) -> bytes:
    """The ``model_config`` attribute of an HDF5 model, its size checked before it is read."""
    import h5py

    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise UnreadableModelError(
                f"{path}: an HDF5 file without a model config "
                "(a weights-only file cannot be imported)"
            )
        attr = f.attrs.get_id("model_config")
        string = h5py.check_string_dtype(attr.dtype)
        if string is None or string.length is not None:  # fixed size: known before reading
            count = math.prod(attr.shape) if attr.shape else 1
            check_mb(MODEL_CONFIG_MB, attr.dtype.itemsize * count, "the model config")
        raw = f.attrs["model_config"]
    if isinstance(raw, np.ndarray):
        raw = raw.tobytes() if raw.dtype.kind == "S" else raw.item()
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    check_mb(MODEL_CONFIG_MB, len(raw), "the model config")
    return raw


def _parse(raw: bytes) -> Any:
    """JSON text of a model config, within :mod:`engine.limits` (depth, integers, keys)."""
    return loads(raw.decode("utf-8"))


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: Path) -> bool:
    with open_regular(path) as f:
        return f.read(8) == HDF5_SIGNATURE


def refusals(config: dict[str, Any]) -> list[str]:
    """Everything in a model config that stops the import, one line each.

    Lambda layers, custom (non-Keras) objects and layer types the catalog does not
    know, all of them (inside nested models too), by layer name and type.
    """
    unsafe, unknown = scan(config)
    return unsafe + unknown


def scan(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(unsafe, unknown)``: code Keras safe mode must not load; types the catalog lacks."""
    layers = config.get("config", {}).get("layers", [])
    unsafe: list[str] = []
    unknown: list[str] = []
    for i, entry in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
            raise UnreadableModelError(
                f"layer #{i + 1} of the model config is not a layer entry (got {str(entry)[:60]!r})"
            )
        cls = entry.get("class_name", "?")
        name = (entry.get("config") or {}).get("name") or entry.get("name") or "?"
        if cls == "Lambda":
            unsafe.append(
                f"'{name}' (Lambda): Lambda layers hold Python code, which is never "
                "loaded (Keras safe mode); rebuild it from catalog layers"
            )
            continue
        custom = _custom_objects(entry)
        if is_operation_entry(entry):  # x + y, keras.ops.*: an Operation node when allowed
            line = unsupported_operation(name, cls)
            if line:
                unknown.append(line)
        elif custom and custom[0].startswith(f"{cls} from "):
            unsafe.append(
                f"'{name}' ({cls}): a custom class ({custom[0]}), Python code outside "
                "Keras, which LayerLab never loads (Keras safe mode); rewrite it with "
                "built-in Keras layers (the catalog), as a Lambda layer would be refused too"
            )
        elif custom:
            unsafe.append(
                f"'{name}' ({cls}): custom object{'s' if len(custom) > 1 else ''} "
                f"{', '.join(custom)} (code outside Keras is never loaded); use "
                "built-in Keras settings instead"
            )
        elif cls in _MODEL_CLASSES:  # flattened on import (engine.io.importing.nested)
            inner_unsafe, inner_unknown = scan(entry)
            unsafe += inner_unsafe
            unknown += inner_unknown
        elif cls != "InputLayer" and cls not in CATALOG:
            private = str(entry.get("module") or "").startswith("keras.src.applications")
            unknown.append(
                f"'{name}' ({cls}): the catalog has no layer type '{cls}'"
                + ("; it is private to keras.applications (not in keras.layers)" if private else "")
            )
    return unsafe, unknown


def _custom_objects(value: Any) -> list[str]:
    """Names of serialized objects inside ``value`` whose code is not Keras's own."""
    found: list[str] = []
    if isinstance(value, dict):
        module = value.get("module")
        registered = value.get("registered_name")
        if "class_name" in value and (
            (
                isinstance(module, str)
                and not module.startswith("keras")
                and module not in ("builtins", "numpy")
            )
            or (isinstance(registered, str) and ">" in registered)
        ):
            found.append(f"{value.get('class_name')} from {module or registered}")
        for k, v in value.items():
            if k != "inbound_nodes":
                found += _custom_objects(v)
    elif isinstance(value, list):
        for v in value:
            found += _custom_objects(v)
    return found


def refusal_text(model_name: str, problems: list[str]) -> str:
    n = len(problems)
    head = f"model '{model_name}' cannot be imported: {n} problem{'s' if n > 1 else ''}"
    missing = dict.fromkeys(
        re.findall(r"the catalog has no layer type '(\w+)'", "\n".join(problems))
    )
    if missing:
        head += f" (layer types the catalog lacks: {', '.join(missing)})"
    return head + "\n" + "\n".join(f"  - {p}" for p in problems)


def load_model(path: Path, config: dict[str, Any]) -> Any:
    import keras

    try:
        if SUBCLASS_KEY in config:  # Keras cannot find the subclass: rebuild the graph
            plain = {k: v for k, v in config.items() if k not in (SUBCLASS_KEY, "build_config")}
            model = keras.models.model_from_json(json.dumps(plain))
            if zipfile.is_zipfile(path) or is_hdf5(path):
                model.load_weights(path)
            return model
        if zipfile.is_zipfile(path) or is_hdf5(path):
            return keras.models.load_model(path, safe_mode=True, compile=False)
        return keras.models.model_from_json(json.dumps(config))
    except Exception as exc:  # Keras raises many kinds for a bad file
        raise UnreadableModelError(
            f"{path}: Keras cannot load it ({first_line(exc, 200)})"
        ) from None


def application_name(name: str) -> str | None:
    """The ``keras.applications`` name matching ``name`` (any case), or None."""
    key = name.removeprefix("keras.applications.").lower()
    return next((a for a in APPLICATIONS if a.lower() == key), None)


def application_model(
    name: str,
    input_shape: Any = None,
    classes: int = 1000,
    weights: str | os.PathLike | None = None,
) -> Any:
    """Build a ``keras.applications`` architecture (untrained unless a local weights file)."""
    import keras

    app = application_name(name)
    if app is None:
        raise ModelImportError(
            f"unknown application {name!r}; choose one of {', '.join(APPLICATIONS)}"
        )
    if weights is not None and not Path(weights).is_file():
        raise ModelImportError(
            f"{weights}: no such weights file (nothing is downloaded; give "
            "a local file or no weights)"
        )
    kwargs: dict[str, Any] = {"weights": str(weights) if weights else None, "classes": classes}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    try:
        return getattr(keras.applications, app)(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ModelImportError(f"{app}: {first_line(exc, 200)}") from None
