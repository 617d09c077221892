"""The import corpus of issue 16: models written the way the keras.io examples write them.

Each model is built here (small sizes, no downloads) and either round-trips exactly
-- the same layer types and configs, the same parameter counts (validate's = Keras's),
predictions of the rebuilt model with copied weights within 1e-5, and, for some, the
generated script builds the same model -- or is refused with a message that names each
unsupported layer and says why (Lambda layers and custom Python classes stay refused:
safe mode). The comment on each builder names the keras.io example it stands for.
A nested model flattened into the outer graph has its own tests (test_nested_import.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from engine.analysis.shapes import ShapeInference
from engine.build.builder import build_model
from engine.build.layers import CLASS_ALIASES
from engine.build.operations import CLASS_ALIASES as OP_ALIASES
from engine.build.operations import OP_CLASSES
from engine.codegen.script import model_code
from engine.io.importing.read import ModelImportError
from engine.io.importing.rebuild import import_model_with_notes

keras = pytest.importorskip("keras")
layers = keras.layers
ops = keras.ops
RNG = np.random.default_rng(0)


def images(h: int = 16, w: int = 16, c: int = 3) -> np.ndarray:
    return RNG.uniform(0, 1, (2, h, w, c)).astype("float32")


# ======================================================================= vision
def simple_convnet():
    """keras.io/examples/vision/mnist_convnet (Simple MNIST convnet)."""
    return keras.Sequential(
        [
            keras.Input((16, 16, 1)),
            layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    ), images(c=1)


def resnet_ish():
    """keras.io/examples/vision/image_classification_from_scratch (residual blocks, Add)."""
    inputs = keras.Input((16, 16, 3))
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(8, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous = x
    for size in (8, 16):
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous)
        x = layers.add([x, residual])
        previous = x
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation=None)(layers.Dropout(0.25)(x))
    return keras.Model(inputs, outputs), images() * 255


def mobilenet_v3_ish():
    """keras.applications.MobileNetV3 blocks as written there: hard_swish as
    x * hard_sigmoid(x) (ops), squeeze-and-excite with a multiply, residual add."""

    def hard_sigmoid(x):
        return layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)

    def hard_swish(x):
        return layers.Activation("hard_silu")(x)

    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = hard_swish(x)
    shortcut = x
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    se = layers.GlobalAveragePooling2D(keepdims=True)(x)
    se = layers.Conv2D(4, 1, activation="relu")(se)
    se = hard_sigmoid(layers.Conv2D(8, 1)(se))
    x = layers.Multiply()([x, se])
    x = layers.Conv2D(8, 1, use_bias=False)(x)
    x = layers.Add()([shortcut, x])
    x = x * ops.hard_sigmoid(x)  # an inline hard_swish
    outputs = layers.Dense(5)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs), images()


def gan_generator():
    """keras.io/examples/generative/dcgan_overriding_train_step (generator, LeakyReLU)."""
    latent = keras.Input((16,))
    x = layers.Dense(4 * 4 * 16)(latent)
    x = layers.Reshape((4, 4, 16))(x)
    x = layers.Conv2DTranspose(16, kernel_size=4, strides=2, padding="same")(x)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = layers.Conv2DTranspose(8, kernel_size=4, strides=2, padding="same")(x)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    outputs = layers.Conv2D(3, kernel_size=5, padding="same", activation="sigmoid")(x)
    return keras.Model(latent, outputs, name="generator"), RNG.normal(size=(2, 16)).astype(
        "float32"
    )


def gan_discriminator():
    """keras.io/examples/generative/dcgan_overriding_train_step (discriminator)."""
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Conv2D(8, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(16, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="discriminator",
    ), images()


def conv_autoencoder():
    """keras.io/examples/vision/autoencoder (Conv2DTranspose decoder)."""
    inputs = keras.Input((16, 16, 1))
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(inputs)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2DTranspose(8, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(8, (3, 3), strides=2, activation="relu", padding="same")(x)
    outputs = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)
    return keras.Model(inputs, outputs), images(c=1)


def conv_mixer():
    """keras.io/examples/vision/convmixer (patch embedding, grouped convolution, gelu, Add)."""
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(16, kernel_size=2, strides=2)(inputs)
    x = layers.BatchNormalization()(layers.Activation("gelu")(x))
    for _ in range(2):
        x0 = x
        x = layers.Conv2D(16, kernel_size=3, padding="same", groups=16)(x)  # depthwise
        x = layers.Add()([layers.BatchNormalization()(layers.Activation("gelu")(x)), x0])
        x = layers.Conv2D(16, kernel_size=1)(x)
        x = layers.BatchNormalization()(layers.Activation("gelu")(x))
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAvgPool2D()(x))
    return keras.Model(inputs, outputs), images()


def convnext_block():
    """keras.applications.ConvNeXt's block, flat: depthwise conv, LayerNormalization,
    pointwise Dense with gelu, layer scale as x * gamma (here a constant), residual x + y."""
    inputs = keras.Input((8, 8, 16))
    x = layers.DepthwiseConv2D(kernel_size=7, padding="same")(inputs)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    x = layers.Dense(64)(x)
    x = layers.Activation("gelu")(x)
    x = layers.Dense(16)(x)
    x = x * 1e-6
    outputs = inputs + x
    return keras.Model(inputs, outputs), images(8, 8, 16)


def mobilevit_unfold():
    """keras.io/examples/vision/mobilevit: patches by reshape and transpose (ops), a
    transformer on them, folded back with reshape."""
    inputs = keras.Input((8, 8, 4))
    x = layers.Conv2D(8, 1)(inputs)
    x = ops.reshape(x, (-1, 16, 4, 8))
    x = ops.transpose(x, (0, 2, 1, 3))
    y = layers.LayerNormalization()(x)
    y = layers.Dense(8, activation="swish")(y)
    x = layers.Add()([x, y])
    x = ops.transpose(x, (0, 2, 1, 3))
    x = ops.reshape(x, (-1, 8, 8, 8))
    outputs = layers.Concatenate(axis=-1)([inputs, x])
    return keras.Model(inputs, outputs), images(8, 8, 4)


# ========================================================================== NLP
def text_cnn():
    """keras.io/examples/nlp/text_classification_from_scratch (Embedding + Conv1D, k7 s3)."""
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(50, 8)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(8, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(8, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    return keras.Model(inputs, predictions), RNG.integers(0, 50, (2, 40))


def bidirectional_lstm():
    """keras.io/examples/nlp/bidirectional_lstm_imdb."""
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(50, 8)(inputs)
    x = layers.Bidirectional(layers.LSTM(8, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(8))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs), RNG.integers(0, 50, (2, 12))


def transformer_block():
    """keras.io/examples/nlp/text_classification_with_transformer: MultiHeadAttention,
    LayerNormalization, the residuals written as x + y (ops)."""
    inputs = keras.Input(shape=(12,))
    x = layers.Embedding(50, 16)(inputs)
    attn = layers.MultiHeadAttention(num_heads=2, key_dim=16)(x, x)
    out1 = layers.LayerNormalization(epsilon=1e-6)(x + layers.Dropout(0.1)(attn))
    ffn = layers.Dense(16)(layers.Dense(32, activation="relu")(out1))
    x = layers.LayerNormalization(epsilon=1e-6)(out1 + layers.Dropout(0.1)(ffn))
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(2, activation="softmax")(layers.Dense(20, activation="relu")(x))
    return keras.Model(inputs, outputs), RNG.integers(0, 50, (2, 12)).astype("float32")


def pretrained_embedding():
    """keras.io/examples/nlp/pretrained_word_embeddings: a frozen Embedding (trainable=False)."""
    matrix = RNG.normal(size=(50, 8)).astype("float32")
    inputs = keras.Input(shape=(None,), dtype="int64")
    embedding = layers.Embedding(50, 8, trainable=False)
    embedding.build((1,))
    embedding.set_weights([matrix])
    x = embedding(inputs)
    x = layers.Conv1D(8, 5, activation="relu")(x)
    x = layers.MaxPooling1D(5)(x)
    x = layers.GlobalMaxPooling1D()(layers.Conv1D(8, 5, activation="relu")(x))
    outputs = layers.Dense(3, activation="softmax")(layers.Dense(8, activation="relu")(x))
    return keras.Model(inputs, outputs), RNG.integers(0, 50, (2, 40))


def gqa_block():
    """A transformer block with GroupQueryAttention (issue 16: the GQA spelling)."""
    inputs = keras.Input((6, 8))
    attn = layers.GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2)(
        inputs, inputs
    )
    outputs = layers.LayerNormalization()(inputs + attn)
    return keras.Model(inputs, outputs), RNG.normal(size=(2, 6, 8)).astype("float32")


# ================================================================== time series
def timeseries_conv1d():
    """keras.io/examples/timeseries/timeseries_classification_from_scratch."""
    input_layer = keras.Input((24, 1))
    x = input_layer
    for _ in range(3):
        x = layers.Conv1D(filters=8, kernel_size=3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    gap = layers.GlobalAveragePooling1D()(x)
    output_layer = layers.Dense(2, activation="softmax")(gap)
    return keras.Model(input_layer, output_layer), RNG.normal(size=(2, 24, 1)).astype("float32")


def lstm_forecaster():
    """keras.io/examples/timeseries/timeseries_weather_forecasting."""
    inputs = keras.Input(shape=(12, 7))
    lstm_out = layers.LSTM(8)(inputs)
    outputs = layers.Dense(1)(lstm_out)
    return keras.Model(inputs, outputs), RNG.normal(size=(2, 12, 7)).astype("float32")


def timeseries_transformer(data_format: str = "channels_last"):
    """keras.io/examples/timeseries/timeseries_classification_transformer: the encoder's
    residuals as x + res (ops), Conv1D feed-forward; the example pools channels_first."""
    inputs = keras.Input((24, 1))
    x = inputs
    for _ in range(2):
        y = layers.MultiHeadAttention(key_dim=8, num_heads=2, dropout=0.1)(x, x)
        y = layers.LayerNormalization(epsilon=1e-6)(layers.Dropout(0.1)(y))
        res = y + x
        y = layers.Conv1D(filters=4, kernel_size=1, activation="relu")(res)
        y = layers.Conv1D(filters=1, kernel_size=1)(layers.Dropout(0.1)(y))
        x = layers.LayerNormalization(epsilon=1e-6)(y) + res
    x = layers.GlobalAveragePooling1D(data_format=data_format)(x)
    outputs = layers.Dense(2, activation="softmax")(layers.Dense(16, activation="relu")(x))
    return keras.Model(inputs, outputs), RNG.normal(size=(2, 24, 1)).astype("float32")


def last_step_slice():
    """keras.io time-series models that read the last step: x[:, -1, :] (get_item)."""
    inputs = keras.Input((10, 3))
    x = layers.GRU(8, return_sequences=True)(inputs)
    last = x[:, -1, :]
    outputs = layers.Dense(1)(ops.expand_dims(last, axis=1))
    return keras.Model(inputs, outputs), RNG.normal(size=(2, 10, 3)).astype("float32")


# ================================================================== structured
def wide_and_deep():
    """keras.io/examples/structured_data/wide_deep_cross_networks: inputs concatenated,
    a wide and a deep part combined with ops."""
    numeric = keras.Input((5,), name="numeric")
    onehot = keras.Input((7,), name="categorical")
    features = layers.concatenate([numeric, onehot])
    wide = layers.BatchNormalization()(features)
    deep = features
    for units in (16, 16):
        deep = layers.Dense(units)(deep)
        deep = layers.BatchNormalization()(deep)
        deep = layers.ReLU()(deep)
        deep = layers.Dropout(0.1)(deep)
    merged = ops.concatenate([wide, deep], axis=1)
    outputs = layers.Dense(3, activation="softmax")(merged)
    x = [RNG.normal(size=(2, 5)).astype("float32"), RNG.normal(size=(2, 7)).astype("float32")]
    return keras.Model([numeric, onehot], outputs), x


def structured_lookups():
    """keras.io/examples/structured_data/structured_data_classification_with_feature_space:
    StringLookup on a string feature (refused: the catalog has no lookup layers yet)."""
    city = keras.Input((1,), dtype="string", name="city")
    ids = layers.StringLookup(vocabulary=["a", "b", "c"], output_mode="one_hot")(city)
    outputs = layers.Dense(1, activation="sigmoid")(ids)
    return keras.Model(city, outputs), None


# ======================================================================== audio
def audio_residual_conv1d():
    """keras.io/examples/audio/speaker_recognition_using_cnn (residual Conv1D blocks)."""
    inputs = keras.Input(shape=(64, 1), name="input")

    def residual_block(x, filters, conv_num=3, activation="relu"):
        s = layers.Conv1D(filters, 1, padding="same")(x)
        for _ in range(conv_num - 1):
            x = layers.Conv1D(filters, 3, padding="same")(x)
            x = layers.Activation(activation)(x)
        x = layers.Conv1D(filters, 3, padding="same")(x)
        x = layers.Add()([x, s])
        x = layers.Activation(activation)(x)
        return layers.MaxPool1D(pool_size=2, strides=2)(x)

    x = residual_block(inputs, 4, 2)
    x = residual_block(x, 8, 2)
    x = layers.AveragePooling1D(pool_size=3, strides=3)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(3, activation="softmax", name="output")(layers.Dense(16)(x))
    return keras.Model(inputs, outputs), RNG.normal(size=(2, 64, 1)).astype("float32")


# =========================================================================== RL
def ddpg_actor():
    """keras.io/examples/rl/ddpg_pendulum get_actor: tanh output * upper_bound (ops)."""
    inputs = layers.Input(shape=(3,))
    out = layers.Dense(16, activation="relu")(inputs)
    out = layers.Dense(16, activation="relu")(out)
    outputs = layers.Dense(1, activation="tanh")(out)
    outputs = outputs * 2.0
    return keras.Model(inputs, outputs), RNG.normal(size=(2, 3)).astype("float32")


def ddpg_critic():
    """keras.io/examples/rl/ddpg_pendulum get_critic: state and action paths concatenated."""
    state_input = layers.Input(shape=(3,))
    state_out = layers.Dense(16, activation="relu")(state_input)
    state_out = layers.Dense(32, activation="relu")(state_out)
    action_input = layers.Input(shape=(1,))
    action_out = layers.Dense(32, activation="relu")(action_input)
    concat = layers.Concatenate()([state_out, action_out])
    out = layers.Dense(16, activation="relu")(concat)
    outputs = layers.Dense(1)(out)
    x = [RNG.normal(size=(2, 3)).astype("float32"), RNG.normal(size=(2, 1)).astype("float32")]
    return keras.Model([state_input, action_input], outputs), x


def deep_q_network():
    """keras.io/examples/rl/deep_q_network_breakout (Atari convnet), small."""
    inputs = layers.Input(shape=(20, 20, 4))
    layer1 = layers.Conv2D(8, 8, strides=4, activation="relu")(inputs)
    layer2 = layers.Conv2D(8, 3, strides=1, activation="relu")(layer1)
    layer4 = layers.Flatten()(layer2)
    layer5 = layers.Dense(16, activation="relu")(layer4)
    action = layers.Dense(4, activation="linear")(layer5)
    return keras.Model(inputs=inputs, outputs=action), images(20, 20, 4)


# ====================================================================== training
class CustomFit(keras.Model):
    """keras.io/guides/custom_train_step_in_tensorflow: only train_step is overridden."""

    def train_step(self, data):
        return super().train_step(data)


def train_step_subclass():
    inputs = keras.Input(shape=(6,))
    outputs = layers.Dense(1)(layers.Dense(8, activation="relu")(inputs))
    return CustomFit(inputs, outputs), RNG.normal(size=(2, 6)).astype("float32")


def timeseries_transformer_as_written():
    """The same, pooling channels_first as the example does (refused: LayerLab layers are
    channels_last; the node's setting is named)."""
    return timeseries_transformer("channels_first")


# ============================================================ refused on purpose
def lambda_model():
    """keras.io examples that wrap code in a Lambda layer (refused: safe mode)."""
    inputs = keras.Input((4,))
    x = layers.Lambda(lambda t: t * 2, name="times_two")(inputs)
    return keras.Model(inputs, layers.Dense(1)(x)), None


class Sampling(layers.Layer):
    """keras.io/examples/generative/vae: the reparameterisation layer, a custom class."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(shape=ops.shape(z_mean))
        return z_mean + ops.exp(0.5 * z_log_var) * eps


def custom_class_model():
    inputs = keras.Input((8,))
    z_mean = layers.Dense(2, name="z_mean")(inputs)
    z_log_var = layers.Dense(2, name="z_log_var")(inputs)
    z = Sampling(name="sampling")([z_mean, z_log_var])
    return keras.Model(inputs, z, name="encoder"), None


def siamese_nested():
    """keras.io/examples/vision/siamese_network: one embedding model used twice (nested)."""
    base = keras.Sequential([keras.Input((8,)), layers.Dense(4)], name="embedding")
    a, b = keras.Input((8,)), keras.Input((8,))
    distance = layers.Subtract()([base(a), base(b)])
    return keras.Model([a, b], layers.Dense(1)(distance)), [
        RNG.normal(size=(2, 8)).astype("float32")
    ] * 2


def seq2seq_states():
    """keras.io/examples/nlp/lstm_seq2seq: encoder states feed the decoder."""
    encoder_inputs = keras.Input(shape=(None, 5))
    _out, state_h, state_c = layers.LSTM(8, return_state=True)(encoder_inputs)
    decoder_inputs = keras.Input(shape=(None, 5))
    decoder_outputs = layers.LSTM(8, return_sequences=True)(
        decoder_inputs, initial_state=[state_h, state_c]
    )
    outputs = layers.Dense(5, activation="softmax")(decoder_outputs)
    x = [RNG.normal(size=(2, 4, 5)).astype("float32")] * 2
    return keras.Model([encoder_inputs, decoder_inputs], outputs), x


# ================================================================== the checks
#: (builder, generated script checked too)
ROUND_TRIPS: list[tuple[Callable, bool]] = [
    (simple_convnet, True),
    (resnet_ish, False),
    (mobilenet_v3_ish, True),
    (gan_generator, False),
    (gan_discriminator, False),
    (conv_autoencoder, False),
    (conv_mixer, False),
    (convnext_block, True),
    (mobilevit_unfold, True),
    (text_cnn, False),
    (bidirectional_lstm, False),
    (transformer_block, True),
    (pretrained_embedding, False),
    (gqa_block, False),
    (timeseries_conv1d, False),
    (lstm_forecaster, False),
    (timeseries_transformer, True),
    (last_step_slice, True),
    (wide_and_deep, True),
    (audio_residual_conv1d, False),
    (ddpg_actor, True),
    (ddpg_critic, False),
    (deep_q_network, False),
    (train_step_subclass, False),
    (seq2seq_states, True),
]

#: (builder, text every refusal must contain)
REFUSALS: list[tuple[Callable, list[str]]] = [
    (
        lambda_model,
        ["'times_two' (Lambda): Lambda layers hold Python code, which is never loaded"],
    ),
    (
        custom_class_model,
        ["'sampling' (Sampling): a custom class (Sampling from", "rewrite it with built-in"],
    ),
    (structured_lookups, ["(StringLookup): the catalog has no layer type 'StringLookup'"]),
    (
        timeseries_transformer_as_written,
        ["(GlobalAveragePooling1D): setting the catalog cannot hold: data_format='channels_first'"],
    ),
    (siamese_nested, ["'embedding' (Sequential) is a nested model called 2 times"]),
]


def test_the_corpus_has_at_least_25_models():
    assert len(ROUND_TRIPS) + len(REFUSALS) >= 25


def _types(model) -> list[str]:
    """Operation and layer classes, by the names the catalog and the op table use."""
    out = []
    for op in getattr(model, "operations", None) or model.layers:  # Sequential: layers
        if type(op).__name__ == "InputLayer":
            continue
        name = type(op).__name__
        name = CLASS_ALIASES.get(name, name)
        if name in OP_ALIASES:
            name = OP_CLASSES[OP_ALIASES[name]][1]
        out.append(name)
    return out


def _config(layer) -> dict:
    config = dict(layer.get_config())
    config.pop("name", None)
    if type(layer).__name__ == "InputLayer":
        # Known gap: an Input node has no dtype, so integer ids arrive as float32 and
        # the Embedding casts them back (exact below 2**24): the same predictions.
        config.pop("dtype", None)
    return _plain(config)


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "name"}
    return value


def _predict(model, x) -> list[np.ndarray]:
    out = model(x, training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def _copy_weights(source, target) -> None:
    for layer in source.layers:
        if layer.get_weights():
            target.get_layer(layer.name).set_weights(layer.get_weights())


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("builder,script", ROUND_TRIPS, ids=[b.__name__ for b, _s in ROUND_TRIPS])
def test_a_keras_io_model_round_trips_exactly(builder, script):
    model, x = builder()
    project, notes = import_model_with_notes(model)
    assert all("approximated" not in n for n in notes), notes
    rebuilt = build_model(project)
    assert _types(rebuilt) == _types(model)
    for layer in model.layers:
        assert _config(rebuilt.get_layer(layer.name)) == _config(layer), layer.name
    totals = ShapeInference(project.graph).totals()  # what validate reports
    assert (totals.total, totals.trainable) == (model.count_params(), _trainable(model))
    assert (rebuilt.count_params(), _trainable(rebuilt)) == totals[:2]
    _copy_weights(model, rebuilt)
    for a, b in zip(_predict(model, x), _predict(rebuilt, x)):
        assert np.abs(a - b).max() <= 1e-5
    if script:
        namespace: dict = {}
        exec("import keras\nfrom keras import layers\n" + model_code(project.graph, "m"), namespace)
        again = namespace["build_model"]()
        assert _types(again) == _types(model)
        assert (again.count_params(), _trainable(again)) == totals[:2]
        _copy_weights(model, again)
        for a, b in zip(_predict(model, x), _predict(again, x)):
            assert np.abs(a - b).max() <= 1e-5
    if isinstance(model, CustomFit):
        assert any("train_step, compile) is not kept" in n for n in notes)


@pytest.mark.parametrize("builder,wanted", REFUSALS, ids=[b.__name__ for b, _w in REFUSALS])
def test_a_keras_io_model_outside_the_catalog_is_refused_by_layer(builder, wanted):
    model, _x = builder()
    with pytest.raises(ModelImportError) as err:
        import_model_with_notes(model)
    text = str(err.value)
    for part in wanted:
        assert part in text
    assert "feeds no layer" not in text


def test_saved_files_of_the_corpus_import_the_same(tmp_path):
    """Three of them through .keras files (ops, a frozen layer, a train_step subclass)."""
    for builder in (mobilenet_v3_ish, pretrained_embedding, train_step_subclass):
        model, x = builder()
        model.save(tmp_path / f"{builder.__name__}.keras")
        project, _notes = import_model_with_notes(tmp_path / f"{builder.__name__}.keras")
        rebuilt = build_model(project)
        assert (rebuilt.count_params(), _trainable(rebuilt)) == (
            model.count_params(),
            _trainable(model),
        )
