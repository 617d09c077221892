"""The pretrained networks a ``Backbone`` node may hold, written as data.

The window's process never imports TensorFlow, so the catalog cannot ask
``keras.applications`` which networks exist: this table lists them
(``tests/engine/test_backbone.py`` compares it with ``keras.applications``'
callables and each module's ``preprocess_input``, so a Keras upgrade that adds or
renames one fails a test instead of going unnoticed).

For each application: the ``keras.applications`` module it lives in, the input
size its ImageNet weights were trained at (the size "New from pretrained…" starts
with), the smallest size Keras accepts, and the preprocessing its
``preprocess_input`` does (``imagenet_utils.preprocess_input``'s modes):

- ``"tf"``: scale pixels from [0, 255] to [-1, 1];
- ``"torch"``: scale to [0, 1], then subtract the ImageNet mean and divide by its
  standard deviation, per channel;
- ``"caffe"``: RGB -> BGR, then subtract the ImageNet mean per channel (no scaling);
- ``"none"``: the network does it itself (its first layers rescale [0, 255] input).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backbone:
    """One ``keras.applications`` network.

    Attributes:
        name: The callable's name (``keras.applications.<name>``).
        module: The ``keras.applications`` submodule with its ``preprocess_input``.
        size: Height and width its ImageNet weights were trained at.
        min_size: The smallest height and width Keras accepts.
        preprocess: ``"tf"``, ``"torch"``, ``"caffe"`` or ``"none"`` (see above).
        extra: Constructor arguments beyond the common ones a user may set
            (``alpha``, ``minimalistic``, ``include_preprocessing``).
    """

    name: str
    module: str
    size: int
    min_size: int
    preprocess: str
    extra: tuple[str, ...] = ()


_PRE = ("include_preprocessing",)
_V3 = ("alpha", "minimalistic", "include_preprocessing")

BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone("ConvNeXtTiny", "convnext", 224, 32, "none", _PRE),
        Backbone("ConvNeXtSmall", "convnext", 224, 32, "none", _PRE),
        Backbone("ConvNeXtBase", "convnext", 224, 32, "none", _PRE),
        Backbone("ConvNeXtLarge", "convnext", 224, 32, "none", _PRE),
        Backbone("ConvNeXtXLarge", "convnext", 224, 32, "none", _PRE),
        Backbone("DenseNet121", "densenet", 224, 32, "torch"),
        Backbone("DenseNet169", "densenet", 224, 32, "torch"),
        Backbone("DenseNet201", "densenet", 224, 32, "torch"),
        Backbone("EfficientNetB0", "efficientnet", 224, 32, "none"),
        Backbone("EfficientNetB1", "efficientnet", 240, 32, "none"),
        Backbone("EfficientNetB2", "efficientnet", 260, 32, "none"),
        Backbone("EfficientNetB3", "efficientnet", 300, 32, "none"),
        Backbone("EfficientNetB4", "efficientnet", 380, 32, "none"),
        Backbone("EfficientNetB5", "efficientnet", 456, 32, "none"),
        Backbone("EfficientNetB6", "efficientnet", 528, 32, "none"),
        Backbone("EfficientNetB7", "efficientnet", 600, 32, "none"),
        Backbone("EfficientNetV2B0", "efficientnet_v2", 224, 32, "none", _PRE),
        Backbone("EfficientNetV2B1", "efficientnet_v2", 240, 32, "none", _PRE),
        Backbone("EfficientNetV2B2", "efficientnet_v2", 260, 32, "none", _PRE),
        Backbone("EfficientNetV2B3", "efficientnet_v2", 300, 32, "none", _PRE),
        Backbone("EfficientNetV2S", "efficientnet_v2", 384, 32, "none", _PRE),
        Backbone("EfficientNetV2M", "efficientnet_v2", 480, 32, "none", _PRE),
        Backbone("EfficientNetV2L", "efficientnet_v2", 480, 32, "none", _PRE),
        Backbone("InceptionResNetV2", "inception_resnet_v2", 299, 75, "tf"),
        Backbone("InceptionV3", "inception_v3", 299, 75, "tf"),
        Backbone("MobileNet", "mobilenet", 224, 32, "tf", ("alpha",)),
        Backbone("MobileNetV2", "mobilenet_v2", 224, 32, "tf", ("alpha",)),
        Backbone("MobileNetV3Small", "mobilenet_v3", 224, 32, "none", _V3),
        Backbone("MobileNetV3Large", "mobilenet_v3", 224, 32, "none", _V3),
        Backbone("NASNetMobile", "nasnet", 224, 32, "tf"),
        Backbone("NASNetLarge", "nasnet", 331, 32, "tf"),
        Backbone("ResNet50", "resnet", 224, 32, "caffe"),
        Backbone("ResNet101", "resnet", 224, 32, "caffe"),
        Backbone("ResNet152", "resnet", 224, 32, "caffe"),
        Backbone("ResNet50V2", "resnet_v2", 224, 32, "tf"),
        Backbone("ResNet101V2", "resnet_v2", 224, 32, "tf"),
        Backbone("ResNet152V2", "resnet_v2", 224, 32, "tf"),
        Backbone("VGG16", "vgg16", 224, 32, "caffe"),
        Backbone("VGG19", "vgg19", 224, 32, "caffe"),
        Backbone("Xception", "xception", 299, 71, "tf"),
    )
}

#: ``BackbonePreprocessing`` modes, as ``imagenet_utils.preprocess_input`` names them.
PREPROCESS_MODES: tuple[str, ...] = ("tf", "torch", "caffe", "none")

#: ImageNet's per-channel mean and standard deviation (RGB, pixels in [0, 1]), and the
#: Caffe models' mean (BGR, pixels in [0, 255]): Keras's own constants.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
