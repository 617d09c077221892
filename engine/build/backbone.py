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
from engine.model.problems import resolve_weights, weights_file_problem, who

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
        problem = weights_file_problem(self.node, self.base_dir)
        if problem:
            raise BuildError(problem)
        return str(resolve_weights(value, self.base_dir))

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


class _Wanted(Exception):
    """Raised by a probing ``get_file``: the file Keras wants and where it looks."""

    def __init__(self, name: str, origin: str, subdir: str) -> None:
        super().__init__(name)
        self.wanted = (name, origin, subdir)


def _where(name: Any, origin: Any, folder: Path) -> str:
    return (
        f"put {name} (from {origin}) into {folder}/, or set the Backbone's weights "
        "to a weights file"
    )


def _offline_message(node: Node, app_name: str, where: str) -> str:
    return (
        f"{who(node)}: the ImageNet weights of {app_name} are not in Keras's cache "
        f"and downloads are off ({OFFLINE_ENV}); {where}"
    )


_WANTED: dict[tuple[str, str, tuple], tuple[str, str, str] | None] = {}


def imagenet_problem(node: Node, input_shape: tuple[int | None, ...]) -> str | None:
    """When downloads are off (:func:`offline`), what a Backbone with ``weights:
    "imagenet"`` and input ``input_shape`` (without the batch axis) lacks: the message
    names the file Keras wants and the folder to put it in; None when the file is in
    Keras's cache, downloads are allowed, or the node loads no ImageNet weights.

    Cheap: the application is built with deferred variables (no values, as shape
    inference does) only until Keras asks for its weights file, once per settings
    (remembered); nothing is loaded or downloaded.
    """
    params = node.params if isinstance(node.params, dict) else {}
    if params.get("weights") != "imagenet" or not offline():
        return None
    try:
        kwargs = application_kwargs(node)
    except BuildError:
        return None  # reported by shape inference
    app_name = params["application"]
    key = (app_name, repr(sorted(kwargs.items())), tuple(input_shape))
    if key not in _WANTED:
        _WANTED[key] = _wanted_file(node, app_name, kwargs, input_shape)
    wanted = _WANTED[key]
    if wanted is None:
        return None
    name, origin, subdir = wanted
    folder = keras_models_dir(subdir)
    if (folder / name).exists():
        return None
    return _offline_message(node, app_name, _where(name, origin, folder))


def _wanted_file(
    node: Node, app_name: str, kwargs: dict[str, Any], input_shape: tuple[int | None, ...]
) -> tuple[str, str, str] | None:
    """The (file name, origin, cache sub-folder) Keras's application asks ``get_file`` for."""
    import keras
    from keras.src.backend.common import global_state

    before = list(global_state.get_global_attribute("uninitialized_variables") or [])
    try:
        with keras.StatelessScope(initialize_variables=False), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "weights for (224, 224) will be loaded"
            with _reported_downloads(node, app_name, probe=True):
                getattr(keras.applications, app_name)(
                    include_top=False, weights="imagenet", input_shape=input_shape, **kwargs
                )
    except _Wanted as wanted:
        return wanted.wanted
    except Exception:  # Keras refuses these settings: shape inference says why
        return None
    finally:
        global_state.set_global_attribute("uninitialized_variables", before)
    return None


@contextlib.contextmanager
def _reported_downloads(node: Node, app_name: str, probe: bool = False) -> Iterator[None]:
    """While an application loads its ImageNet weights: refuse downloads when offline,
    word a failed download, and report progress as :class:`DownloadProgress` warnings.
    With ``probe`` nothing is loaded: Keras's ``get_file`` raises :class:`_Wanted`."""
    from keras.src.utils import file_utils

    real_get_file = file_utils.get_file
    real_urlretrieve = file_utils.urlretrieve

    def get_file(fname: Any = None, origin: Any = None, *args: Any, **kwargs: Any) -> Any:
        name = fname or os.path.basename(urllib.parse.urlsplit(str(origin)).path)
        folder = keras_models_dir(str(kwargs.get("cache_subdir", "models")))
        cached = (folder / str(name)).exists()
        where = _where(name, origin, folder)
        if probe:
            raise _Wanted(str(name), str(origin), str(kwargs.get("cache_subdir", "models")))
        if not cached and offline():
            raise BuildError(_offline_message(node, app_name, where))
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
