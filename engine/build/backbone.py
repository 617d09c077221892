"""The pretrained types: a ``Backbone`` node (a whole ``keras.applications`` network,
nested) and a ``BackbonePreprocessing`` node (the network's ``preprocess_input`` as
one ordinary Keras layer).

A Backbone is built the Keras way::

    base = keras.applications.MobileNetV3Small(
        include_top=False, weights="imagenet", input_shape=x.shape[1:], pooling=None)
    base.name = "backbone"          # the node's id
    base.trainable = False          # when the node is frozen
    y = base(x)

so the input shape is only known when the node is called: :func:`make_layer` in
:mod:`engine.build.layers` returns a :class:`BackboneCall` that builds the network
on its first call. Shape inference never loads weights (the counts do not depend on
them); the builder does, through Keras's own download and cache
(``~/.keras/models`` or ``$KERAS_HOME/models``), reporting progress as
:class:`DownloadProgress` warnings (the training worker turns warnings into log
events; the command line prints them). ``LAYERLAB_OFFLINE=1`` forbids downloads:
a file not in the cache then gives a message naming it and where to put it.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.build.errors import BuildError, clean_message
from engine.catalog.backbones import BACKBONES, CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD
from engine.human import human_size
from engine.model.graph import Node
from engine.model.problems import who

#: Set (to anything but "" or "0") to forbid downloading pretrained weights.
OFFLINE_ENV = "LAYERLAB_OFFLINE"

#: The params of a Backbone that only some applications take.
EXTRA_PARAMS = ("alpha", "minimalistic", "include_preprocessing")


class DownloadProgress(UserWarning):
    """Progress of a pretrained-weights download (one line per quarter)."""


def offline() -> bool:
    """True when ``LAYERLAB_OFFLINE`` forbids downloads."""
    return os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0")


def keras_models_dir(subdir: str = "models") -> Path:
    """Where Keras caches downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``
    (as ``keras.utils.get_file`` decides it, ``/tmp/.keras`` when that is read-only)."""
    from keras.src.backend import config

    home = os.path.expanduser(config.keras_home())
    if not os.access(home, os.W_OK):
        home = os.path.join("/tmp", ".keras")
    return Path(home) / subdir


def resolve_weights(value: Any, base_dir: str | Path | None) -> Path:
    """A weights file named in a Backbone's ``weights``, relative to the project's folder."""
    path = Path(os.path.expanduser(str(value)))
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def application_kwargs(node: Node) -> dict[str, Any]:
    """The keyword arguments a Backbone node passes to its application, besides
    ``include_top``, ``weights``, ``input_shape`` and ``name``.

    Raises:
        BuildError: For an unknown application, or a param the application does
            not take set to a value other than its default.
    """
    params = node.params if isinstance(node.params, dict) else {}
    app = params.get("application")
    backbone = BACKBONES.get(app) if isinstance(app, str) else None
    if backbone is None:
        raise BuildError(
            f"{who(node)}: application must be one of the keras.applications "
            f"networks ({', '.join(BACKBONES)}); got {app!r}"
        )
    kwargs: dict[str, Any] = {"pooling": params.get("pooling")}
    defaults = {"alpha": None, "minimalistic": False, "include_preprocessing": True}
    for name in EXTRA_PARAMS:
        if name not in params or params[name] == defaults[name]:
            continue
        if name not in backbone.extra:
            takers = [b.name for b in BACKBONES.values() if name in b.extra]
            families = sorted({t.rstrip("0123456789").removesuffix("V") for t in takers})
            raise BuildError(
                f"{who(node)}: {app} has no {name} (only {', '.join(families)}* take it); "
                f"clear {name} or choose another application"
            )
        kwargs[name] = params[name]
    return kwargs


class BackboneCall:
    """A Backbone node's network, built on its first call (it needs the input shape).

    After the call, ``model`` is the nested ``keras.Model`` (named after the node),
    and ``trainable_weights`` / ``non_trainable_weights`` are its own.
    """

    def __init__(self, node: Node, load_weights: bool, base_dir: str | Path | None) -> None:
        self.node = node
        self.kwargs = application_kwargs(node)
        self.load_weights = load_weights
        self.base_dir = base_dir
        self.model: Any = None

    @property
    def name(self) -> str:
        return self.node.id

    @property
    def trainable_weights(self) -> list:
        return list(self.model.trainable_weights) if self.model is not None else []

    @property
    def non_trainable_weights(self) -> list:
        return list(self.model.non_trainable_weights) if self.model is not None else []

    def weights_argument(self) -> Any:
        """What ``weights=`` the application gets: None, "imagenet" or a file's path."""
        value = self.node.params.get("weights")
        if not self.load_weights or value in (None, ""):
            return None
        if value == "imagenet":
            return "imagenet"
        if not isinstance(value, str):
            raise BuildError(
                f"{who(self.node)}: weights must be null, 'imagenet' or a file's "
                f"path; got {value!r}"
            )
        try:
            path = resolve_weights(value, self.base_dir)
            exists = path.exists()
        except (OSError, ValueError, RuntimeError) as exc:  # a NUL, a name too long, ~nobody
            raise BuildError(
                f"{who(self.node)}: weights file {value[:200]!r} cannot be used ({exc})"
            ) from None
        if not exists:
            raise BuildError(
                f"{who(self.node)}: weights file {value!r} not found (looked for {path}); "
                "choose an existing .h5 or .weights.h5 file, 'imagenet', or no weights"
            )
        if not path.is_file():
            raise BuildError(f"{who(self.node)}: weights file {path} is not a regular file")
        return str(path)

    def __call__(self, x: Any) -> Any:
        import keras

        app_name = self.node.params["application"]
        app = getattr(keras.applications, app_name)
        weights = self.weights_argument()
        kwargs = dict(self.kwargs)
        try:
            with _reported_downloads(self.node, app_name):
                shape = tuple(x.shape[1:])
                base = app(
                    include_top=False,
                    weights=weights,
                    input_shape=shape,
                    # named, so two builds (the builder's, the script's) give the same config
                    input_tensor=keras.Input(shape, name=f"{self.node.id}_input"),
                    **kwargs,
                )
        except BuildError:
            raise
        except (ValueError, TypeError, OSError) as exc:
            text = clean_message(str(exc)).strip()
            if weights not in (None, "imagenet"):
                raise BuildError(
                    f"{who(self.node)}: weights file {weights} does not fit {app_name} with "
                    f"these settings and input shape {tuple(x.shape[1:])}: {text}"
                ) from None
            raise BuildError(f"{who(self.node)}: {app_name}: {text}") from None
        # Named after the node afterwards: EfficientNetV2 reads its name= as its variant.
        base.name = self.node.id
        if not self.node.trainable:
            base.trainable = False
        self.model = base
        return base(x)


@contextlib.contextmanager
def _reported_downloads(node: Node, app_name: str) -> Iterator[None]:
    """While an application loads its ImageNet weights: refuse downloads when offline,
    word a failed download, and report progress as :class:`DownloadProgress` warnings."""
    from keras.src.utils import file_utils

    real_get_file = file_utils.get_file
    real_urlretrieve = file_utils.urlretrieve

    def get_file(fname: Any = None, origin: Any = None, *args: Any, **kwargs: Any) -> Any:
        name = fname or os.path.basename(urllib.parse.urlsplit(str(origin)).path)
        folder = keras_models_dir(str(kwargs.get("cache_subdir", "models")))
        cached = (folder / str(name)).exists()
        where = (
            f"put {name} (from {origin}) into {folder}/, or set the Backbone's weights "
            "to a weights file"
        )
        if not cached and offline():
            raise BuildError(
                f"{who(node)}: the ImageNet weights of {app_name} are not in Keras's cache "
                f"and downloads are off ({OFFLINE_ENV}); {where}"
            )
        try:
            return real_get_file(name, origin, *args, **kwargs)
        except Exception as exc:  # urllib's many errors, Keras's "URL fetch failure"
            raise BuildError(
                f"{who(node)}: the ImageNet weights of {app_name} could not be downloaded "
                f"({clean_message(str(exc)).strip()[:200]}); {where}"
            ) from None

    def urlretrieve(url: Any, filename: Any, reporthook: Any = None, data: Any = None) -> Any:
        name = os.path.basename(str(filename))
        shown: set[int] = set()

        def hook(block_num: int, block_size: int, total_size: int) -> None:
            if reporthook is not None:
                reporthook(block_num, block_size, total_size)
            done = block_num * block_size
            if total_size and total_size > 0:
                quarter = min(4, done * 4 // total_size)
                if quarter not in shown:
                    shown.add(quarter)
                    warnings.warn(
                        f"'{node.id}': downloading {name}: {quarter * 25}% of "
                        f"{human_size(total_size)}",
                        DownloadProgress,
                        stacklevel=2,
                    )

        return real_urlretrieve(url, filename, hook, data)

    file_utils.get_file = get_file
    file_utils.urlretrieve = urlretrieve
    try:
        yield
    finally:
        file_utils.get_file = real_get_file
        file_utils.urlretrieve = real_urlretrieve


def make_preprocessing(node: Node) -> Any:
    """The one Keras layer that does what ``preprocess_input`` does in ``node``'s mode.

    ``tf``: ``Rescaling(1/127.5, offset=-1)``; ``torch``: a per-channel ``Rescaling``
    by ImageNet's mean and standard deviation; ``caffe``: a frozen ``Dense(3)`` whose
    kernel swaps RGB to BGR and whose bias subtracts the Caffe mean; ``none``:
    ``Identity``. With ``pixel_max`` 1 (LayerLab's image folders load pixels in
    [0, 1]) each also multiplies by 255 first. All are plain Keras layers without
    tensors as inputs: exports carry them and nothing needs custom objects.
    """
    import keras

    spec = preprocessing_spec(node)
    if spec[0] == "Dense":
        _, kernel, bias = spec
        layer = keras.layers.Dense(
            3,
            kernel_initializer=keras.initializers.Constant(kernel),
            bias_initializer=keras.initializers.Constant(bias),
            name=node.id,
        )
        layer.trainable = False
        return layer
    if spec[0] == "Identity":
        return keras.layers.Identity(name=node.id)
    _, scale, offset = spec
    return keras.layers.Rescaling(scale, offset=offset, name=node.id)


def preprocessing_spec(node: Node) -> tuple[Any, ...]:
    """The Keras layer of a BackbonePreprocessing node as data (the builder and the
    generated script both write it from this): ``("Rescaling", scale, offset)``,
    ``("Dense", kernel, bias)`` or ``("Identity",)``.

    ``torch`` is a per-channel ``Rescaling`` (``x * scale + offset`` equals
    ``(x / 255 - mean) / std``), not a ``Normalization``: a Normalization's mean and
    variance would become inputs of an ONNX file.

    Raises:
        BuildError: For an unknown mode or pixel_max.
    """
    params = node.params if isinstance(node.params, dict) else {}
    mode, pixel_max = params.get("mode"), params.get("pixel_max", 255)
    if pixel_max not in (255, 1) or isinstance(pixel_max, bool):
        raise BuildError(f"{who(node)}: pixel_max must be 255 or 1; got {pixel_max!r}")
    k = 255.0 / pixel_max  # to [0, 255] first
    if mode == "tf":
        return ("Rescaling", k / 127.5, -1.0)
    if mode == "torch":
        scale = [k / (255.0 * s) for s in IMAGENET_STD]
        offset = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
        return ("Rescaling", scale, offset)
    if mode == "caffe":
        kernel = [[k * v for v in row] for row in CAFFE_KERNEL]
        return ("Dense", kernel, [-m for m in CAFFE_MEAN_BGR])
    if mode == "none":
        return ("Identity",) if k == 1.0 else ("Rescaling", k, 0.0)
    raise BuildError(f"{who(node)}: mode must be 'tf', 'torch', 'caffe' or 'none'; got {mode!r}")


#: The caffe mode's kernel: output channel c is input channel 2 - c (RGB -> BGR).
CAFFE_KERNEL = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
