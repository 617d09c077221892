"""The layer table: one LayerSpec per Keras layer type LayerLab offers.

Palette, inspector, validation, builder, code generator and importer all read
:data:`CATALOG`; no other module spells out a layer type's parameters. Parameter
names are Keras constructor argument names and defaults equal Keras's own
(``tests/engine/test_catalog.py`` checks both against Keras itself). The small
builders at the top (``_activation``, ``_conv``, ``_rnn``, ...) write the params
several layer types share; the spec types are in :mod:`engine.catalog.specs`.
"""

from __future__ import annotations

from typing import Any

from engine.catalog.backbones import BACKBONES, PREPROCESS_MODES
from engine.catalog.specs import (
    ACTIVATIONS,
    INITIALIZERS,
    OPERATIONS,
    REGULARIZERS,
    LayerSpec,
    ParamSpec,
)


# ------------------------------------------------------------- param builders
def _activation(
    default: str | None = None,
    name: str = "activation",
    doc: str = "Function applied to the output; None keeps it linear.",
) -> ParamSpec:
    return ParamSpec(name, "choice", default, doc, choices=ACTIVATIONS)


def _init(name: str, default: str, doc: str) -> ParamSpec:
    return ParamSpec(name, "initializer", default, doc, choices=INITIALIZERS)


def _reg(name: str, doc: str) -> ParamSpec:
    return ParamSpec(name, "regularizer", None, doc, choices=tuple(REGULARIZERS), optional=True)


def _bool(name: str, default: bool, doc: str) -> ParamSpec:
    return ParamSpec(name, "bool", default, doc)


def _fraction(name: str, default: float, doc: str, required: bool = False) -> ParamSpec:
    return ParamSpec(name, "float", default, doc, min=0.0, max=1.0, required=required)


def _ints(
    name: str,
    default: Any,
    length: int | None,
    doc: str,
    *,
    min: float = 1,
    required: bool = False,
    optional: bool = False,
) -> ParamSpec:
    return ParamSpec(
        name, "ints", default, doc, min=min, length=length, required=required, optional=optional
    )


def _padding(*extra: str) -> ParamSpec:
    return ParamSpec(
        "padding",
        "choice",
        "valid",
        "'valid' uses no padding (the output shrinks); 'same' pads the edges so "
        "the output keeps the input's size (at stride 1).",
        choices=("valid", "same", *extra),
    )


_USE_BIAS = _bool("use_bias", True, "Add a learned bias (offset) to each output.")


_GROUPS = ParamSpec(
    "groups",
    "int",
    1,
    "Split the channels into this many groups convolved separately; must divide both "
    "the input channels and filters.",
    min=1,
)


_ACTIVITY_REG = _reg("activity_regularizer", "Penalty on the layer's outputs, added to the loss.")


def _weights(prefix: str = "kernel", bias: bool = True) -> tuple[ParamSpec, ...]:
    """Initializer and regularizer params for one weight matrix (and the bias)."""
    out = [
        _init(f"{prefix}_initializer", "glorot_uniform", "How the weights start before training."),
        _reg(f"{prefix}_regularizer", "Penalty on the weights that discourages large values."),
    ]
    if bias:
        out[1:1] = [_init("bias_initializer", "zeros", "How the biases start before training.")]
        out.append(_reg("bias_regularizer", "Penalty on the biases."))
    return tuple(out)


def _conv(
    rank: int, *, filters: bool = True, padding_extra: tuple[str, ...] = ()
) -> tuple[ParamSpec, ...]:
    """The shared head of convolution params: filters, kernel size, strides, padding."""
    one: Any = 1 if rank == 1 else [1] * rank
    head = (
        [
            ParamSpec(
                "filters",
                "int",
                32,
                "How many feature maps (patterns) the layer learns.",
                min=1,
                required=True,
            )
        ]
        if filters
        else []
    )
    return (
        *head,
        _ints("kernel_size", 3, rank, "Size of the sliding window.", required=True),
        _ints("strides", one, rank, "Step of the window; 2 halves the output size."),
        _padding(*padding_extra),
        _ints("dilation_rate", one, rank, "Spacing between window taps; >1 sees a wider area."),
    )


def _pooling(rank: int, *, required: bool) -> tuple[ParamSpec, ...]:
    size: Any = 2 if rank == 1 else [2] * rank
    return (
        _ints(
            "pool_size", size, rank, "Size of the window each output summarises.", required=required
        ),
        _ints(
            "strides", None, rank, "Step of the window; empty means the pool size.", optional=True
        ),
        _padding(),
    )


def _rnn(kind: str) -> tuple[ParamSpec, ...]:
    """Params of SimpleRNN (``kind`` "simple"), LSTM ("lstm") and GRU ("gru")."""
    gated = kind != "simple"
    out = [
        ParamSpec(
            "units",
            "int",
            32,
            "Size of the hidden state (the layer's memory).",
            min=1,
            required=True,
        ),
        _activation("tanh", doc="Function applied to the new state and output."),
    ]
    if gated:
        out.append(
            _activation(
                "sigmoid",
                "recurrent_activation",
                "Function applied to the gates that decide what to keep.",
            )
        )
    out += [
        _USE_BIAS,
        _init("kernel_initializer", "glorot_uniform", "How the input weights start."),
        _init("recurrent_initializer", "orthogonal", "How the state-to-state weights start."),
        _init("bias_initializer", "zeros", "How the biases start."),
    ]
    if kind == "lstm":
        out.append(
            _bool(
                "unit_forget_bias",
                True,
                "Start the forget gate open so early training remembers more.",
            )
        )
    out += [
        _reg("kernel_regularizer", "Penalty on the input weights."),
        _reg("recurrent_regularizer", "Penalty on the state-to-state weights."),
        _reg("bias_regularizer", "Penalty on the biases."),
        _ACTIVITY_REG,
        _fraction("dropout", 0.0, "Fraction of the inputs dropped at each step while training."),
        _fraction(
            "recurrent_dropout", 0.0, "Fraction of the state dropped at each step while training."
        ),
        _bool(
            "return_sequences",
            False,
            "Output the state at every time step (needed to stack another recurrent "
            "layer) instead of only the last one.",
        ),
        _bool("go_backwards", False, "Read the sequence from the end to the start."),
        _bool(
            "return_state",
            False,
            "Also output the final state (h, and c for an LSTM) on extra output ports, "
            "e.g. to start a decoder from an encoder's state (its initial-state inputs).",
        ),
    ]
    return tuple(out)


def _spec(
    type: str,
    category: str,
    doc: str,
    *params: ParamSpec,
    summary: tuple[str, ...] = (),
    min_inputs: int = 1,
    max_inputs: int | None = 1,
    repeat_source: bool = False,
) -> LayerSpec:
    return LayerSpec(
        type, category, doc, min_inputs, max_inputs, tuple(params), summary, repeat_source
    )


_SPECS: tuple[LayerSpec, ...] = (
    # ------------------------------------------------------------------ Input
    _spec(
        "Input",
        "Input",
        "The entry point of the model: it states the shape of one example of your data, "
        "without the batch size. Use one Input per kind of data the model reads, for "
        "example 8x8x1 for a small grey image or 13 for a row of 13 numbers.",
        ParamSpec(
            "shape",
            "shape",
            [8, 8, 1],
            "Shape of one example, without the batch size; None for any length.",
            required=True,
        ),
        summary=("shape",),
        min_inputs=0,
        max_inputs=0,
    ),
    # ------------------------------------------------------------------- Core
    _spec(
        "Dense",
        "Core",
        "A fully connected layer: every output is a weighted sum of all inputs plus a bias, "
        "passed through an activation. Use it for the final classifier or regressor and "
        "for hidden layers on flat feature vectors.",
        ParamSpec(
            "units", "int", 128, "How many outputs (neurons) the layer has.", min=1, required=True
        ),
        _activation(),
        _USE_BIAS,
        *_weights(),
        _ACTIVITY_REG,
        summary=("units", "activation"),
    ),
    _spec(
        "Activation",
        "Core",
        "Applies a fixed function such as relu or softmax to its input, with nothing to "
        "learn. Use it when you want the activation as its own step, for example after "
        "BatchNormalization.",
        ParamSpec(
            "activation",
            "choice",
            "relu",
            "The function applied to each value.",
            choices=ACTIVATIONS[1:],
            required=True,
        ),
        summary=("activation",),
    ),
    _spec(
        "ReLU",
        "Core",
        "The rectified linear unit as its own layer, with options: a cap on the output "
        "(ReLU6 in MobileNet uses 6), a slope for negative inputs and a threshold. Use it "
        "when you need one of those options; otherwise the relu activation is simpler.",
        ParamSpec(
            "max_value",
            "float",
            None,
            "Largest output value; none means no cap.",
            min=0.0,
            optional=True,
        ),
        ParamSpec("negative_slope", "float", 0.0, "Slope for inputs below the threshold.", min=0.0),
        ParamSpec("threshold", "float", 0.0, "Inputs below this are treated as negative.", min=0.0),
        summary=("max_value",),
    ),
    _spec(
        "LeakyReLU",
        "Core",
        "Like relu, but negative inputs keep a small slope instead of becoming zero, so no "
        "unit stops learning. Use it in GANs and other models where plain relu leaves units dead.",
        ParamSpec("negative_slope", "float", 0.3, "Slope applied to negative inputs.", min=0.0),
        summary=("negative_slope",),
    ),
    _spec(
        "PReLU",
        "Core",
        "Like LeakyReLU, but the slope for negative inputs is learned, one per value (or "
        "shared along the axes you name). Use it when you want the network to pick how "
        "much of the negative side to keep.",
        _init("alpha_initializer", "zeros", "How the learned negative slopes start."),
        _reg("alpha_regularizer", "Penalty on the learned slopes."),
        ParamSpec(
            "shared_axes",
            "shape",
            None,
            "Axes (from 1, batch excluded) that share one slope, e.g. 1, 2 for one slope "
            "per channel of an image; empty for one slope per value.",
            optional=True,
        ),
        summary=("shared_axes",),
    ),
    _spec(
        "ELU",
        "Core",
        "The exponential linear unit: positive inputs pass unchanged and negative ones "
        "curve smoothly towards -alpha. Use it instead of relu when you want smooth, "
        "slightly negative outputs that can speed up training.",
        ParamSpec("alpha", "float", 1.0, "The value negative inputs approach."),
        summary=("alpha",),
    ),
    _spec(
        "Softmax",
        "Core",
        "Turns a vector of scores into probabilities that are positive and add up to 1 "
        "along one axis. Use it as the last step of a classifier, or along another axis "
        "for attention-like weights.",
        ParamSpec("axis", "int", -1, "The axis whose values add up to 1; -1 is the last."),
        summary=("axis",),
    ),
    _spec(
        "Flatten",
        "Core",
        "Unrolls a multi-dimensional input (such as an image or feature maps) into one long "
        "vector per example. Use it between convolution/pooling layers and Dense layers.",
    ),
    _spec(
        "Reshape",
        "Core",
        "Rearranges the values of each example into a new shape without changing them; the "
        "total number of values must stay the same. Use -1 for the one dimension Keras "
        "should work out itself.",
        ParamSpec(
            "target_shape",
            "shape",
            [-1],
            "New shape of one example, without the batch size; -1 means the rest.",
            min=-1,
            required=True,
        ),
        summary=("target_shape",),
    ),
    _spec(
        "Permute",
        "Core",
        "Swaps the axes of each example, like a transpose. Use it to move time or channel "
        "axes where the next layer expects them; axes are numbered from 1.",
        _ints(
            "dims",
            [2, 1],
            None,
            "New order of the axes, numbered from 1 (batch excluded).",
            required=True,
        ),
        summary=("dims",),
    ),
    _spec(
        "RepeatVector",
        "Core",
        "Repeats a vector n times, turning it into a sequence of n identical steps. Use it "
        "in sequence-to-sequence models to feed one summary vector to a decoder.",
        ParamSpec("n", "int", 4, "How many times to repeat the input.", min=1, required=True),
        summary=("n",),
    ),
    _spec(
        "Embedding",
        "Core",
        "Turns integer ids (such as word indices) into learned dense vectors, one vector per "
        "id. Use it as the first layer for text or any other categorical input coded as "
        "integers.",
        ParamSpec(
            "input_dim",
            "int",
            1000,
            "How many different ids there are (vocabulary size).",
            min=1,
            required=True,
        ),
        ParamSpec(
            "output_dim",
            "int",
            64,
            "Length of the vector learned for each id.",
            min=1,
            required=True,
        ),
        _init("embeddings_initializer", "uniform", "How the vectors start before training."),
        _reg("embeddings_regularizer", "Penalty on the vectors that discourages large values."),
        _bool("mask_zero", False, "Treat id 0 as padding that later layers should skip."),
        summary=("input_dim", "output_dim"),
    ),
    # ------------------------------------------------------------ Convolution
    _spec(
        "Conv1D",
        "Convolution",
        "Slides small learned filters along a sequence, so each output sees a short window "
        "of neighbouring steps. Use it for time series, audio or text to find local patterns "
        "cheaply.",
        *_conv(1, padding_extra=("causal",)),
        _GROUPS,
        _activation(),
        _USE_BIAS,
        *_weights(),
        _ACTIVITY_REG,
        summary=("filters", "kernel_size", "activation"),
    ),
    _spec(
        "Conv2D",
        "Convolution",
        "Slides small learned filters over an image, so each output pixel sees a small "
        "neighbourhood of the input. Use it as the main building block for images; stack "
        "several to find larger and more abstract patterns.",
        *_conv(2),
        _GROUPS,
        _activation(),
        _USE_BIAS,
        *_weights(),
        _ACTIVITY_REG,
        summary=("filters", "kernel_size", "activation"),
    ),
    _spec(
        "Conv3D",
        "Convolution",
        "Slides small learned filters through a volume (depth, height and width), so each "
        "output sees a small 3-D neighbourhood. Use it for video, medical scans and other "
        "3-D data.",
        *_conv(3),
        _GROUPS,
        _activation(),
        _USE_BIAS,
        *_weights(),
        _ACTIVITY_REG,
        summary=("filters", "kernel_size", "activation"),
    ),
    _spec(
        "Conv1DTranspose",
        "Convolution",
        "A learned upsampling for sequences: it works like Conv1D run backwards, so a "
        "stride of 2 doubles the length. Use it in sequence decoders and audio generators.",
        *_conv(1),
        _ints(
            "output_padding",
            None,
            1,
            "Extra steps added to the end of the output.",
            min=0,
            optional=True,
        ),
        _activation(),
        _USE_BIAS,
        *_weights(),
        _ACTIVITY_REG,
        summary=("filters", "kernel_size", "activation"),
    ),
    _spec(
        "Conv2DTranspose",
        "Convolution",
        "A learned upsampling: it works like Conv2D run backwards, so strides of 2 double the "
        "height and width. Use it in decoders, autoencoders and segmentation models to grow "
        "feature maps back to image size.",
        *_conv(2),
        _ints(
            "output_padding",
            None,
            2,
            "Extra rows/columns added to one side of the output.",
            min=0,
            optional=True,
        ),
        _activation(),
        _USE_BIAS,
        *_weights(),
        _ACTIVITY_REG,
        summary=("filters", "kernel_size", "activation"),
    ),
    _spec(
        "Conv3DTranspose",
        "Convolution",
        "A learned upsampling for volumes: it works like Conv3D run backwards, so strides "
        "of 2 double depth, height and width. Use it in 3-D decoders and segmentation models.",
        *_conv(3),
        _ints(
            "output_padding",
            None,
            3,
            "Extra slices added to one side of the output in each dimension.",
            min=0,
            optional=True,
        ),
        _activation(),
        _USE_BIAS,
        *_weights(),
        _ACTIVITY_REG,
        summary=("filters", "kernel_size", "activation"),
    ),
    _spec(
        "SeparableConv2D",
        "Convolution",
        "A cheaper Conv2D: it first filters each channel on its own, then mixes the channels "
        "with 1x1 filters. Use it to get most of a Conv2D's power with far fewer weights, as "
        "in mobile networks.",
        *_conv(2),
        ParamSpec(
            "depth_multiplier", "int", 1, "Filters per input channel in the first step.", min=1
        ),
        _activation(),
        _USE_BIAS,
        _init("depthwise_initializer", "glorot_uniform", "How the per-channel filters start."),
        _init("pointwise_initializer", "glorot_uniform", "How the 1x1 mixing filters start."),
        _init("bias_initializer", "zeros", "How the biases start before training."),
        _reg("depthwise_regularizer", "Penalty on the per-channel filters."),
        _reg("pointwise_regularizer", "Penalty on the 1x1 mixing filters."),
        _reg("bias_regularizer", "Penalty on the biases."),
        _ACTIVITY_REG,
        summary=("filters", "kernel_size", "activation"),
    ),
    _spec(
        "DepthwiseConv2D",
        "Convolution",
        "Filters each input channel separately with its own small filter and never mixes "
        "channels. Use it in light-weight image models, usually followed by a 1x1 Conv2D.",
        *_conv(2, filters=False),
        ParamSpec("depth_multiplier", "int", 1, "Output channels per input channel.", min=1),
        _activation(),
        _USE_BIAS,
        _init("depthwise_initializer", "glorot_uniform", "How the filters start."),
        _init("bias_initializer", "zeros", "How the biases start before training."),
        _reg("depthwise_regularizer", "Penalty on the filters."),
        _reg("bias_regularizer", "Penalty on the biases."),
        _ACTIVITY_REG,
        summary=("kernel_size", "activation"),
    ),
    _spec(
        "ZeroPadding1D",
        "Convolution",
        "Adds zeros at the start and end of a sequence. Use it to keep a convolution from "
        "shrinking the sequence or to line up two branches.",
        _ints("padding", 1, 2, "Zeros added at the start and end.", min=0),
        summary=("padding",),
    ),
    _spec(
        "ZeroPadding2D",
        "Convolution",
        "Adds a border of zeros around an image or feature map. Use it to control the "
        "output size of the next convolution or to line up two branches.",
        ParamSpec(
            "padding",
            "ints",
            [1, 1],
            "Rows of zeros top and bottom, columns left and right; "
            "(top, bottom), (left, right) for uneven borders.",
            min=0,
            length=2,
            pairs=True,
        ),
        summary=("padding",),
    ),
    _spec(
        "ZeroPadding3D",
        "Convolution",
        "Adds a border of zeros around a volume, in depth, height and width. Use it to "
        "control the output size of the next Conv3D or to line up two branches.",
        ParamSpec(
            "padding",
            "ints",
            [1, 1, 1],
            "Zeros added on both sides in depth, height and width; "
            "[before, after] pairs for uneven borders.",
            min=0,
            length=3,
            pairs=True,
        ),
        summary=("padding",),
    ),
    _spec(
        "Cropping1D",
        "Convolution",
        "Cuts steps off the start and end of a sequence. Use it to trim a sequence to "
        "the length another branch expects.",
        _ints("cropping", [1, 1], 2, "Steps removed from the start and from the end.", min=0),
        summary=("cropping",),
    ),
    _spec(
        "Cropping2D",
        "Convolution",
        "Cuts rows and columns off the edges of an image or feature map. Use it to trim "
        "borders or to make two branches the same size before merging them.",
        ParamSpec(
            "cropping",
            "ints",
            [0, 0],
            "Rows removed top and bottom, columns removed left and right; "
            "(top, bottom), (left, right) for uneven edges.",
            min=0,
            length=2,
            pairs=True,
        ),
        summary=("cropping",),
    ),
    _spec(
        "Cropping3D",
        "Convolution",
        "Cuts slices off the edges of a volume in depth, height and width. Use it to trim "
        "borders or to make two 3-D branches the same size before merging them.",
        ParamSpec(
            "cropping",
            "ints",
            [1, 1, 1],
            "Slices removed on both sides in depth, height and width; "
            "[before, after] pairs for uneven edges.",
            min=0,
            length=3,
            pairs=True,
        ),
        summary=("cropping",),
    ),
    _spec(
        "UpSampling1D",
        "Convolution",
        "Repeats every step of a sequence, making it longer, with nothing to learn. Use it "
        "in sequence decoders to undo pooling.",
        ParamSpec("size", "int", 2, "How many times each step is repeated.", min=1),
        summary=("size",),
    ),
    _spec(
        "UpSampling2D",
        "Convolution",
        "Enlarges an image or feature map by repeating or interpolating pixels, with "
        "nothing to learn. Use it in decoders and segmentation models as a cheap alternative "
        "to Conv2DTranspose.",
        _ints("size", [2, 2], 2, "Factor for the height and for the width."),
        ParamSpec(
            "interpolation",
            "choice",
            "nearest",
            "'nearest' repeats pixels; 'bilinear' blends neighbours smoothly.",
            choices=("nearest", "bilinear"),
        ),
        summary=("size",),
    ),
    _spec(
        "UpSampling3D",
        "Convolution",
        "Enlarges a volume by repeating each value along depth, height and width, with "
        "nothing to learn. Use it in 3-D decoders as a cheap alternative to Conv3DTranspose.",
        _ints("size", [2, 2, 2], 3, "Factor for the depth, the height and the width."),
        summary=("size",),
    ),
    # ---------------------------------------------------------------- Pooling
    _spec(
        "MaxPooling1D",
        "Pooling",
        "Shrinks a sequence by keeping only the largest value in each window. Use it after "
        "Conv1D to shorten the sequence and keep the strongest signals.",
        *_pooling(1, required=False),
        summary=("pool_size",),
    ),
    _spec(
        "MaxPooling2D",
        "Pooling",
        "Shrinks an image or feature map by keeping only the largest value in each window, "
        "usually halving height and width. Use it after convolutions to cut computation and "
        "make the model tolerate small shifts.",
        *_pooling(2, required=False),
        summary=("pool_size",),
    ),
    _spec(
        "MaxPooling3D",
        "Pooling",
        "Shrinks a volume by keeping only the largest value in each 3-D window, usually "
        "halving depth, height and width. Use it after Conv3D layers on video or scans.",
        *_pooling(3, required=False),
        summary=("pool_size",),
    ),
    _spec(
        "AveragePooling1D",
        "Pooling",
        "Shrinks a sequence by averaging the values in each window. Use it to shorten a "
        "sequence smoothly, keeping the overall level rather than the peaks.",
        *_pooling(1, required=True),
        summary=("pool_size",),
    ),
    _spec(
        "AveragePooling2D",
        "Pooling",
        "Shrinks an image or feature map by averaging each window, usually halving height "
        "and width. Use it for a smoother downsampling than max pooling.",
        *_pooling(2, required=True),
        summary=("pool_size",),
    ),
    _spec(
        "AveragePooling3D",
        "Pooling",
        "Shrinks a volume by averaging each 3-D window. Use it for a smoother downsampling "
        "of video or scans than max pooling.",
        *_pooling(3, required=True),
        summary=("pool_size",),
    ),
    _spec(
        "GlobalAveragePooling1D",
        "Pooling",
        "Averages each feature over all time steps, giving one vector per sequence. Use it "
        "to turn a sequence into a fixed-size summary before Dense layers.",
        _bool("keepdims", False, "Keep the time axis with length 1."),
    ),
    _spec(
        "GlobalAveragePooling2D",
        "Pooling",
        "Averages each feature map over its whole height and width, giving one number per "
        "channel. Use it instead of Flatten before the classifier: it has no weights and "
        "works for any image size.",
        _bool("keepdims", False, "Keep height and width with size 1."),
    ),
    _spec(
        "GlobalAveragePooling3D",
        "Pooling",
        "Averages each feature map over its whole depth, height and width, giving one "
        "number per channel. Use it before the classifier of a 3-D model instead of Flatten.",
        _bool("keepdims", False, "Keep depth, height and width with size 1."),
    ),
    _spec(
        "GlobalMaxPooling1D",
        "Pooling",
        "Keeps the largest value of each feature over all time steps, giving one vector per "
        "sequence. Use it when what matters is whether a pattern appears anywhere.",
        _bool("keepdims", False, "Keep the time axis with length 1."),
    ),
    _spec(
        "GlobalMaxPooling2D",
        "Pooling",
        "Keeps the largest value of each feature map over its whole height and width. Use "
        "it before the classifier when a pattern anywhere in the image should count.",
        _bool("keepdims", False, "Keep height and width with size 1."),
    ),
    _spec(
        "GlobalMaxPooling3D",
        "Pooling",
        "Keeps the largest value of each feature map over its whole depth, height and "
        "width. Use it before the classifier of a 3-D model when a pattern anywhere counts.",
        _bool("keepdims", False, "Keep depth, height and width with size 1."),
    ),
    # -------------------------------------------------------------- Recurrent
    _spec(
        "SimpleRNN",
        "Recurrent",
        "Reads a sequence one step at a time, carrying a hidden state from step to step. "
        "Use it for short sequences; for longer ones LSTM or GRU remember better.",
        *_rnn("simple"),
        summary=("units", "return_sequences"),
        max_inputs=2,  # the sequence, then its initial state (engine.model.graph.STATES)
    ),
    _spec(
        "LSTM",
        "Recurrent",
        "A recurrent layer with gates that learn what to remember and what to forget, so it "
        "can follow patterns over long sequences. Use it for time series, text and other "
        "ordered data.",
        *_rnn("lstm"),
        summary=("units", "return_sequences"),
        max_inputs=3,  # the sequence, then its initial state (engine.model.graph.STATES)
    ),
    _spec(
        "GRU",
        "Recurrent",
        "A recurrent layer like LSTM with fewer gates, so it is a little faster and smaller. "
        "Use it for sequences when an LSTM is slow or overfits.",
        *_rnn("gru"),
        summary=("units", "return_sequences"),
        max_inputs=2,  # the sequence, then its initial state (engine.model.graph.STATES)
    ),
    _spec(
        "ConvLSTM2D",
        "Recurrent",
        "An LSTM whose inputs and state are images: each step's gates are convolutions, so "
        "it follows how a picture changes over time. Use it for video frames, radar or "
        "weather maps, input shaped (time, height, width, channels).",
        ParamSpec(
            "filters",
            "int",
            32,
            "How many feature maps the hidden state has.",
            min=1,
            required=True,
        ),
        _ints("kernel_size", 3, 2, "Size of the convolution window.", required=True),
        _ints("strides", 1, 2, "Step of the window; 2 halves the output size."),
        _padding(),
        _ints("dilation_rate", 1, 2, "Spacing between window taps; >1 sees a wider area."),
        *_rnn("lstm")[1:],
        summary=("filters", "kernel_size", "return_sequences"),
        max_inputs=3,  # the sequence, then its initial state h, c
    ),
    _spec(
        "Bidirectional",
        "Recurrent",
        "Runs a recurrent layer over the sequence forwards and a copy of it backwards, then "
        "combines both results. Use it when the whole sequence is known in advance, such as "
        "for classifying sentences.",
        ParamSpec(
            "layer",
            "layer",
            {"type": "LSTM", "params": {"units": 32}},
            "The recurrent layer run in both directions.",
            choices=("LSTM", "GRU", "SimpleRNN"),
            required=True,
        ),
        ParamSpec(
            "merge_mode",
            "choice",
            "concat",
            "How the outputs of the two directions are combined.",
            choices=("concat", "sum", "mul", "ave"),
        ),
        summary=("layer", "merge_mode"),
        max_inputs=5,  # the sequence, then the forward and backward initial states
    ),
    _spec(
        "TimeDistributed",
        "Recurrent",
        "Applies the same layer separately to every time step of a sequence, sharing its "
        "weights across steps. Use it to get one prediction per step, for example after an "
        "LSTM with return_sequences.",
        ParamSpec(
            "layer",
            "layer",
            {"type": "Dense", "params": {"units": 32}},
            "The layer applied to each time step.",
            choices=("Dense",),
            required=True,
        ),
        summary=("layer",),
    ),
    # ---------------------------------------------------------- Normalization
    _spec(
        "BatchNormalization",
        "Normalization",
        "Rescales each feature to a steady mean and spread using batch statistics while "
        "training and running averages afterwards. Use it after convolutions or Dense "
        "layers to train faster and more stably.",
        ParamSpec("axis", "int", -1, "The feature (channel) axis; -1 is the last one."),
        _fraction("momentum", 0.99, "How slowly the running averages follow new batches."),
        ParamSpec(
            "epsilon", "float", 0.001, "Small number added to avoid dividing by zero.", min=0.0
        ),
        _bool("center", True, "Learn an offset (beta) after normalizing."),
        _bool("scale", True, "Learn a scale (gamma) after normalizing."),
        _init("beta_initializer", "zeros", "How the learned offset starts."),
        _init("gamma_initializer", "ones", "How the learned scale starts."),
        _reg("beta_regularizer", "Penalty on the learned offset."),
        _reg("gamma_regularizer", "Penalty on the learned scale."),
    ),
    _spec(
        "LayerNormalization",
        "Normalization",
        "Rescales the features of each example to a steady mean and spread, independently "
        "of the rest of the batch. Use it in transformers and recurrent models, or when "
        "batches are small.",
        ParamSpec("axis", "int", -1, "The axis normalized over; -1 is the last one."),
        ParamSpec(
            "epsilon", "float", 0.001, "Small number added to avoid dividing by zero.", min=0.0
        ),
        _bool("center", True, "Learn an offset (beta) after normalizing."),
        _bool("scale", True, "Learn a scale (gamma) after normalizing."),
        _init("beta_initializer", "zeros", "How the learned offset starts."),
        _init("gamma_initializer", "ones", "How the learned scale starts."),
        _reg("beta_regularizer", "Penalty on the learned offset."),
        _reg("gamma_regularizer", "Penalty on the learned scale."),
    ),
    _spec(
        "GroupNormalization",
        "Normalization",
        "Splits the channels into groups and normalizes each group within each example. Use "
        "it for image models trained with small batches, where BatchNormalization struggles.",
        ParamSpec(
            "groups", "int", 32, "Number of channel groups; must divide the channels.", min=1
        ),
        ParamSpec("axis", "int", -1, "The channel axis; -1 is the last one."),
        ParamSpec(
            "epsilon", "float", 0.001, "Small number added to avoid dividing by zero.", min=0.0
        ),
        _bool("center", True, "Learn an offset (beta) after normalizing."),
        _bool("scale", True, "Learn a scale (gamma) after normalizing."),
        summary=("groups",),
    ),
    # --------------------------------------------------------- Regularization
    _spec(
        "Dropout",
        "Regularization",
        "While training, sets a random fraction of its inputs to zero at each step; when "
        "predicting it does nothing. Use it to fight overfitting, typically between Dense "
        "layers.",
        _fraction("rate", 0.5, "Fraction of the inputs set to zero while training.", required=True),
        ParamSpec(
            "noise_shape",
            "shape",
            None,
            "Shape of the drop mask, batch axis included; 1 shares one decision "
            "along an axis (None = each value on its own).",
            optional=True,
        ),
        summary=("rate",),
    ),
    _spec(
        "SpatialDropout1D",
        "Regularization",
        "While training, drops whole feature channels of a sequence instead of single "
        "values. Use it after Conv1D or Embedding layers, where neighbouring steps are "
        "strongly related.",
        _fraction("rate", 0.5, "Fraction of the channels dropped while training.", required=True),
        summary=("rate",),
    ),
    _spec(
        "SpatialDropout2D",
        "Regularization",
        "While training, drops whole feature maps instead of single pixels. Use it after "
        "Conv2D layers, where plain Dropout does little because neighbouring pixels agree.",
        _fraction(
            "rate", 0.5, "Fraction of the feature maps dropped while training.", required=True
        ),
        summary=("rate",),
    ),
    _spec(
        "SpatialDropout3D",
        "Regularization",
        "While training, drops whole 3-D feature maps instead of single values. Use it "
        "after Conv3D layers, where neighbouring values agree and plain Dropout does little.",
        _fraction(
            "rate", 0.5, "Fraction of the feature maps dropped while training.", required=True
        ),
        summary=("rate",),
    ),
    _spec(
        "GaussianNoise",
        "Regularization",
        "While training, adds random noise with mean zero to every value; when predicting "
        "it does nothing. Use it to make a model robust to small changes in its input.",
        ParamSpec(
            "stddev",
            "float",
            0.1,
            "Standard deviation (strength) of the noise.",
            min=0.0,
            max=1.0,
            required=True,
        ),
        summary=("stddev",),
    ),
    _spec(
        "GaussianDropout",
        "Regularization",
        "While training, multiplies every value by random noise centred on 1; when "
        "predicting it does nothing. Use it as a smoother alternative to Dropout.",
        _fraction("rate", 0.1, "Drop probability the noise is equivalent to.", required=True),
        summary=("rate",),
    ),
    _spec(
        "ActivityRegularization",
        "Regularization",
        "Passes its input through unchanged but adds a penalty on the size of the values to "
        "the loss. Use it to push a layer towards small or sparse outputs.",
        ParamSpec(
            "l1", "float", 0.0, "Weight of the penalty on absolute values (sparsity).", min=0.0
        ),
        ParamSpec("l2", "float", 0.0, "Weight of the penalty on squared values.", min=0.0),
        summary=("l1", "l2"),
    ),
    # ------------------------------------------------------------------ Merge
    _spec(
        "Add",
        "Merge",
        "Adds its inputs element by element; all inputs must have the same shape. Use it "
        "for residual (skip) connections, as in ResNet.",
        min_inputs=2,
        max_inputs=None,
    ),
    _spec(
        "Subtract",
        "Merge",
        "Subtracts its second input from its first, element by element. Use it to compare "
        "two branches of the same shape, for example in Siamese networks.",
        min_inputs=2,
        max_inputs=2,
    ),
    _spec(
        "Multiply",
        "Merge",
        "Multiplies its inputs element by element; all inputs must have the same shape. Use "
        "it for gating, where one branch decides how much of another passes through.",
        min_inputs=2,
        max_inputs=None,
    ),
    _spec(
        "Average",
        "Merge",
        "Averages its inputs element by element; all inputs must have the same shape. Use "
        "it to combine the predictions of several branches, as in a small ensemble.",
        min_inputs=2,
        max_inputs=None,
    ),
    _spec(
        "Maximum",
        "Merge",
        "Keeps the largest of its inputs at every position; all inputs must have the same "
        "shape. Use it to let the strongest of several branches win.",
        min_inputs=2,
        max_inputs=None,
    ),
    _spec(
        "Minimum",
        "Merge",
        "Keeps the smallest of its inputs at every position; all inputs must have the same "
        "shape. Use it when the weakest response of several branches should decide.",
        min_inputs=2,
        max_inputs=None,
    ),
    _spec(
        "Concatenate",
        "Merge",
        "Joins its inputs side by side along one axis, so the result holds all their "
        "features. Use it to combine branches, as in Inception blocks or U-Net skip "
        "connections; the other axes must match.",
        ParamSpec("axis", "int", -1, "The axis to join along; -1 is the last (features)."),
        summary=("axis",),
        min_inputs=2,
        max_inputs=None,
    ),
    _spec(
        "Dot",
        "Merge",
        "Takes the dot product of its two inputs along the given axes. Use it to score how "
        "similar two vectors are, for example in recommenders or matching models.",
        ParamSpec(
            "axes",
            "axes",
            1,
            "Axis (or one axis per input) summed over in the product.",
            required=True,
        ),
        _bool("normalize", False, "Scale the inputs to length 1 first (cosine similarity)."),
        summary=("axes",),
        min_inputs=2,
        max_inputs=2,
    ),
    # ------------------------------------------- Operations (issue 16, keras.ops)
    # One node type for the Keras operations functional models record (``x + y``,
    # ``keras.ops.expand_dims``, ``x[:, 0]``): ``op`` is one of OPERATIONS, the allow-list;
    # building, shapes and code are in engine/build/operations.py. Nothing is evaluated.
    _spec(
        "Operation",
        "Operations",
        "Applies one Keras operation (keras.ops) with nothing to learn: arithmetic with a "
        "constant or a second input, an activation, a reshape, a reduction or a slice. Use "
        "it for the small steps Keras code writes inline, such as x + y or x * 0.5.",
        ParamSpec(
            "op",
            "choice",
            "add",
            "The keras.ops function applied.",
            choices=OPERATIONS,
            required=True,
        ),
        ParamSpec(
            "constant",
            "float",
            None,
            "add/subtract/multiply/divide: the number combined with the input; "
            "empty combines two inputs.",
            optional=True,
        ),
        _bool(
            "constant_first",
            False,
            "add/subtract/multiply/divide: the constant comes first (2 - x, not x - 2).",
        ),
        ParamSpec(
            "axis",
            "axes",
            None,
            "The axis (or axes) the op works along, counting the batch axis as 0; "
            "-1 is the last. Empty: Keras's default for the op.",
            optional=True,
            many=True,
        ),
        _bool("keepdims", False, "mean/sum/max: keep the reduced axes with size 1."),
        ParamSpec(
            "newshape",
            "shape",
            None,
            "reshape: the new shape including the batch axis; -1 for what is left "
            "(-1, 8 gives 8 features per example).",
            min=-1,
            optional=True,
        ),
        ParamSpec(
            "axes",
            "axes",
            None,
            "transpose: the new order of all axes including the batch axis (0, 2, 1); "
            "empty reverses them.",
            optional=True,
            many=True,
        ),
        _bool("approximate", True, "gelu: use the tanh approximation (Keras's default)."),
        ParamSpec(
            "key",
            "index",
            None,
            "get_item: constant indices, one per axis from the batch axis: :, 1:5, 0, "
            "None (new axis) or ... (the rest).",
            optional=True,
        ),
        summary=("op", "constant", "axis", "newshape", "key"),
        min_inputs=1,
        max_inputs=None,
        repeat_source=True,  # x * x, stack([x, x])
    ),
    # -------------------------------------------------------------- Attention
    _spec(
        "MultiHeadAttention",
        "Attention",
        "Lets every position of the first input (the query) gather information from all "
        "positions of the second (the value), with several attention heads in parallel. "
        "Use it to build transformer blocks; connect the same sequence to query and value "
        "for self-attention, and an optional third input as the key.",
        ParamSpec(
            "num_heads", "int", 4, "How many attention heads run in parallel.", min=1, required=True
        ),
        ParamSpec(
            "key_dim", "int", 16, "Size of each head's query and key vectors.", min=1, required=True
        ),
        ParamSpec(
            "value_dim",
            "int",
            None,
            "Size of each head's value vectors; empty means key_dim.",
            min=1,
            optional=True,
        ),
        _fraction("dropout", 0.0, "Fraction of attention weights dropped while training."),
        _USE_BIAS,
        _init("kernel_initializer", "glorot_uniform", "How the projection weights start."),
        _init("bias_initializer", "zeros", "How the biases start before training."),
        _reg("kernel_regularizer", "Penalty on the projection weights."),
        _reg("bias_regularizer", "Penalty on the biases."),
        _ACTIVITY_REG,
        summary=("num_heads", "key_dim"),
        min_inputs=2,
        max_inputs=3,
        repeat_source=True,
    ),
    _spec(  # its Keras class is GroupedQueryAttention: see POSITIONAL_INPUTS
        "GroupQueryAttention",
        "Attention",
        "Attention where groups of query heads share one key and value head: it gives "
        "almost what MultiHeadAttention gives with fewer weights. Use it in transformer "
        "blocks; connect the same sequence to query and value for self-attention.",
        ParamSpec("head_dim", "int", 16, "Size of each attention head.", min=1, required=True),
        ParamSpec(
            "num_query_heads",
            "int",
            4,
            "How many query heads run in parallel.",
            min=1,
            required=True,
        ),
        ParamSpec(
            "num_key_value_heads",
            "int",
            2,
            "How many key and value heads; must divide num_query_heads.",
            min=1,
            required=True,
        ),
        _fraction("dropout", 0.0, "Fraction of attention weights dropped while training."),
        _USE_BIAS,
        _init("kernel_initializer", "glorot_uniform", "How the projection weights start."),
        _init("bias_initializer", "zeros", "How the biases start before training."),
        _reg("kernel_regularizer", "Penalty on the projection weights."),
        _reg("bias_regularizer", "Penalty on the biases."),
        _ACTIVITY_REG,
        summary=("num_query_heads", "num_key_value_heads"),
        min_inputs=2,
        max_inputs=3,
        repeat_source=True,
    ),
    # ---------------------------------------------- Preprocessing & augmentation
    _spec(
        "Rescaling",
        "Preprocessing & augmentation",
        "Multiplies every value by a scale and adds an offset, with nothing to learn. Use it "
        "as the first layer to bring pixel values from 0..255 down to 0..1.",
        ParamSpec(
            "scale",
            "float",
            1 / 255,
            "Factor every value is multiplied by (or one per channel).",
            required=True,
            per_channel=True,
        ),
        ParamSpec(
            "offset",
            "float",
            0.0,
            "Number added after scaling (or one per channel).",
            per_channel=True,
        ),
        summary=("scale",),
    ),
    _spec(
        "Normalization",
        "Preprocessing & augmentation",
        "Shifts and scales each feature to mean 0 and variance 1 using a fixed mean and "
        "variance. Give them here, or leave them empty to have them computed from the "
        "training data (adapt) before training.",
        ParamSpec(
            "axis",
            "int",
            -1,
            "The feature axis that keeps its own mean and variance.",
            optional=True,
        ),
        ParamSpec(
            "mean",
            "float",
            None,
            "Mean to subtract (or one per channel, such as "
            "0.485, 0.456, 0.406); empty to learn it from the data.",
            optional=True,
            per_channel=True,
        ),
        ParamSpec(
            "variance",
            "float",
            None,
            "Variance to divide by (or one per channel); empty to learn it from the data.",
            min=0.0,
            optional=True,
            per_channel=True,
        ),
        _bool("invert", False, "Undo the normalization instead (map back to the data scale)."),
        summary=("mean", "variance"),
    ),
    _spec(
        "RandomFlip",
        "Preprocessing & augmentation",
        "Randomly mirrors each training image; it is active only while training and passes "
        "images through unchanged when predicting. Use it to get more varied training data "
        "when a mirrored picture shows the same thing.",
        ParamSpec(
            "mode",
            "choice",
            "horizontal_and_vertical",
            "Which flips may happen.",
            choices=("horizontal", "vertical", "horizontal_and_vertical"),
        ),
        summary=("mode",),
    ),
    _spec(
        "RandomRotation",
        "Preprocessing & augmentation",
        "Randomly rotates each training image by up to the given fraction of a full turn; it "
        "is active only while training. Use it when the objects in your images can appear at "
        "slightly different angles.",
        ParamSpec(
            "factor",
            "float",
            0.1,
            "Largest rotation as a fraction of a full turn (0.1 = 36 degrees).",
            min=0.0,
            max=1.0,
            required=True,
        ),
        ParamSpec(
            "fill_mode",
            "choice",
            "reflect",
            "How the uncovered corners are filled.",
            choices=("reflect", "wrap", "constant", "nearest"),
        ),
        ParamSpec(
            "interpolation",
            "choice",
            "bilinear",
            "How pixels are resampled.",
            choices=("nearest", "bilinear"),
        ),
        ParamSpec("fill_value", "float", 0.0, "Value used when fill_mode is 'constant'."),
        summary=("factor",),
    ),
    _spec(
        "RandomZoom",
        "Preprocessing & augmentation",
        "Randomly zooms each training image in or out; it is active only while training. Use "
        "it when objects can appear at slightly different sizes.",
        ParamSpec(
            "height_factor",
            "float",
            0.1,
            "Largest zoom in or out as a fraction of the height (0.2 = up to 20%).",
            min=0.0,
            max=1.0,
            required=True,
        ),
        ParamSpec(
            "width_factor",
            "float",
            None,
            "Largest zoom of the width; empty keeps the aspect ratio.",
            min=0.0,
            max=1.0,
            optional=True,
        ),
        ParamSpec(
            "fill_mode",
            "choice",
            "reflect",
            "How the uncovered border is filled.",
            choices=("reflect", "wrap", "constant", "nearest"),
        ),
        ParamSpec(
            "interpolation",
            "choice",
            "bilinear",
            "How pixels are resampled.",
            choices=("nearest", "bilinear"),
        ),
        ParamSpec("fill_value", "float", 0.0, "Value used when fill_mode is 'constant'."),
        summary=("height_factor",),
    ),
    _spec(
        "RandomTranslation",
        "Preprocessing & augmentation",
        "Randomly shifts each training image up, down, left or right; it is active only "
        "while training. Use it when objects can appear anywhere in the picture.",
        ParamSpec(
            "height_factor",
            "float",
            0.1,
            "Largest vertical shift as a fraction of the height.",
            min=0.0,
            max=1.0,
            required=True,
        ),
        ParamSpec(
            "width_factor",
            "float",
            0.1,
            "Largest horizontal shift as a fraction of the width.",
            min=0.0,
            max=1.0,
            required=True,
        ),
        ParamSpec(
            "fill_mode",
            "choice",
            "reflect",
            "How the uncovered border is filled.",
            choices=("reflect", "wrap", "constant", "nearest"),
        ),
        ParamSpec(
            "interpolation",
            "choice",
            "bilinear",
            "How pixels are resampled.",
            choices=("nearest", "bilinear"),
        ),
        ParamSpec("fill_value", "float", 0.0, "Value used when fill_mode is 'constant'."),
        summary=("height_factor", "width_factor"),
    ),
    _spec(
        "RandomContrast",
        "Preprocessing & augmentation",
        "Randomly raises or lowers the contrast of each training image; it is active only "
        "while training. Use it when lighting differs between pictures.",
        ParamSpec(
            "factor",
            "float",
            0.2,
            "Largest contrast change as a fraction (0.2 = plus or minus 20%).",
            min=0.0,
            max=1.0,
            required=True,
        ),
        _ints("value_range", [0, 255], 2, "Smallest and largest pixel value of the images.", min=0),
        summary=("factor",),
    ),
)


# -------------------------------------------------------------- Pretrained
# Types that are not one keras.layers class: a Backbone is a whole keras.applications
# network (nested, the Keras way), BackbonePreprocessing is the Keras layer that does
# what that network's preprocess_input does (engine/build/backbone.py builds both).
PRETRAINED_TYPES: tuple[str, ...] = ("Backbone", "BackbonePreprocessing")

_PRETRAINED: tuple[LayerSpec, ...] = (
    _spec(
        "Backbone",
        "Pretrained",
        "A whole pretrained image network from keras.applications without its classifier "
        "top, used as one layer: it turns an image into feature maps learned on ImageNet. "
        "Use it for transfer learning: freeze it, put preprocessing before it and a small "
        "classifier after it.",
        ParamSpec(
            "application",
            "choice",
            "MobileNetV3Small",
            "Which keras.applications network.",
            choices=tuple(BACKBONES),
            required=True,
        ),
        ParamSpec(
            "weights",
            "str",
            "imagenet",
            "'imagenet' downloads Keras's pretrained weights (cached in ~/.keras/models); "
            "empty starts from random weights; or a weights file (.h5, .weights.h5), "
            "relative to the project file.",
            choices=(None, "imagenet"),
            optional=True,
            required=True,
        ),
        ParamSpec(
            "pooling",
            "choice",
            None,
            "None keeps the feature maps; 'avg' or 'max' pools them to one vector.",
            choices=(None, "avg", "max"),
        ),
        ParamSpec(
            "alpha",
            "float",
            None,
            "MobileNet only: width multiplier (fewer filters below 1.0); empty uses 1.0.",
            min=0.0,
            optional=True,
        ),
        _bool("minimalistic", False, "MobileNetV3 only: the smaller, simpler block design."),
        _bool(
            "include_preprocessing",
            True,
            "MobileNetV3, EfficientNetV2 and ConvNeXt only: the network rescales pixels in "
            "[0, 255] itself; off expects input already scaled as it was trained.",
        ),
        summary=("application", "weights"),
    ),
    _spec(
        "BackbonePreprocessing",
        "Pretrained",
        "Scales image pixels the way a pretrained network expects, like that network's "
        "keras.applications preprocess_input. Put it just before a Backbone: "
        "'tf' for MobileNet, MobileNetV2, Inception, Xception and ResNetV2, 'torch' for "
        "DenseNet, 'caffe' for VGG and ResNet, 'none' for networks that do it themselves.",
        ParamSpec(
            "mode",
            "choice",
            "tf",
            "'tf': to [-1, 1]; 'torch': ImageNet mean and std; 'caffe': RGB to BGR minus the "
            "ImageNet mean; 'none': unchanged.",
            choices=PREPROCESS_MODES,
            required=True,
        ),
        ParamSpec(
            "pixel_max",
            "choice",
            255,
            "The largest pixel value coming in: 255 for raw pixels (as preprocess_input "
            "expects), 1 for LayerLab's image folders, which load pixels in [0, 1].",
            choices=(255, 1),
        ),
        summary=("mode", "pixel_max"),
    ),
)


CATALOG: dict[str, LayerSpec] = {spec.type: spec for spec in (*_SPECS, *_PRETRAINED)}
