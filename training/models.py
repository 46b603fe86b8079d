"""The CNNs, chosen by ``train.runs.<run>.model``: ``vgg`` (Jun et al. 2018) and ``small_cnn``.

Both take ``(input_size, input_size, 1)`` images in [0, 1] and end in a float32 softmax (also under
mixed precision). Layers get the dtype policy explicitly, so building a model never changes Keras'
global state.

Examples
--------
>>> m = build_model("small_cnn", 5, input_size=64)
>>> m.count_params()
9262685
>>> vgg = build_model("vgg", 8, input_size=128, width=1.0)    # the paper's network
>>> round(vgg.count_params() / 1e6, 1)
135.4
"""
from __future__ import annotations

from typing import Any

from pipelines import ConfigError

#: Model names, by ``train.runs.<run>.model``.
MODELS: tuple[str, ...] = ("vgg", "small_cnn")

#: Precision settings of ``train.mixed_precision``.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "mixed_float16", "mixed_bfloat16")


def resolve_precision(setting: str) -> str:
    """Keras dtype policy name for ``train.mixed_precision``.

    ``auto`` is ``mixed_float16`` when TensorFlow sees a GPU, else ``float32`` (CPUs without AMX gain
    nothing from 16-bit floats); ``fp32`` is ``float32``.

    >>> resolve_precision("fp32"), resolve_precision("mixed_bfloat16")
    ('float32', 'mixed_bfloat16')
    """
    if setting not in PRECISIONS:
        raise ConfigError(f"train.mixed_precision must be one of {list(PRECISIONS)}, got {setting!r}")
    if setting == "auto":
        import tensorflow as tf

        return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"
    return "float32" if setting == "fp32" else setting


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _input_shape(input_size: int, data_format: str) -> tuple[int, int, int]:
    if data_format not in ("channels_last", "channels_first"):
        raise ConfigError(f"data_format must be channels_last or channels_first, got {data_format!r}")
    return (input_size, input_size, 1) if data_format == "channels_last" else (1, input_size, input_size)


def vgg(n_classes: int, *, input_size: int = 128, width: float = 1.0, dtype: str = "float32",
        data_format: str = "channels_last", bn_momentum: float = 0.99) -> Any:
    """The VGG-like network of Jun et al. 2018 (arXiv:1804.06812).

    Three blocks of two 3x3 convolutions (64, 128, 256 filters times ``width``), each convolution
    followed by ELU and batch normalisation, 2x2 max-pooling after each block; then dense 2048 x
    ``width``, ELU, batch normalisation, dropout 0.5, and a softmax. Glorot-uniform initialisation.
    At ``width=1.0`` and 128x128 input: 135 M parameters, most of them in the first dense layer.
    ``data_format="channels_first"`` takes ``(1, size, size)`` input (benchmarks only).
    ``bn_momentum`` is the batch normalisation layers' moving-average momentum (Keras' default 0.99
    needs a few hundred steps before the inference statistics settle: short CPU runs want ~0.9).
    """
    import keras
    from keras import layers

    init = "glorot_uniform"
    fmt, axis = data_format, (-1 if data_format == "channels_last" else 1)
    inputs = keras.Input(_input_shape(input_size, data_format), name="image")
    x = inputs
    for block, filters in enumerate((64, 128, 256), start=1):
        for i in (1, 2):
            x = layers.Conv2D(_scaled(filters, width), 3, padding="same", kernel_initializer=init,
                              data_format=fmt, dtype=dtype, name=f"block{block}_conv{i}")(x)
            x = layers.ELU(dtype=dtype, name=f"block{block}_elu{i}")(x)
            x = layers.BatchNormalization(axis=axis, momentum=bn_momentum, dtype=dtype, name=f"block{block}_bn{i}")(x)
        x = layers.MaxPooling2D(2, data_format=fmt, dtype=dtype, name=f"block{block}_pool")(x)
    x = layers.Flatten(dtype=dtype, name="flatten")(x)
    x = layers.Dense(_scaled(2048, width), kernel_initializer=init, dtype=dtype, name="fc")(x)
    x = layers.ELU(dtype=dtype, name="fc_elu")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, dtype=dtype, name="fc_bn")(x)
    x = layers.Dropout(0.5, dtype=dtype, name="fc_dropout")(x)
    x = layers.Dense(n_classes, kernel_initializer=init, dtype=dtype, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name="vgg_jun2018")


def small_cnn(n_classes: int, *, input_size: int = 64, dtype: str = "float32",
              data_format: str = "channels_last") -> Any:
    """A small CNN: conv 3x3 32 ReLU, 2x2 max-pooling, flatten, dense 300, 100, 60 ReLU, softmax.

    9.3 M parameters at 64x64 input (valid padding), most of them in the first dense layer.
    """
    import keras
    from keras import layers

    inputs = keras.Input(_input_shape(input_size, data_format), name="image")
    x = layers.Conv2D(32, 3, activation="relu", data_format=data_format, dtype=dtype, name="conv")(inputs)
    x = layers.MaxPooling2D(2, data_format=data_format, dtype=dtype, name="pool")(x)
    x = layers.Flatten(dtype=dtype, name="flatten")(x)
    for units in (300, 100, 60):
        x = layers.Dense(units, activation="relu", dtype=dtype, name=f"fc{units}")(x)
    x = layers.Dense(n_classes, dtype=dtype, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def build_model(name: str, n_classes: int, *, input_size: int, width: float = 1.0, dtype: str = "float32",
                data_format: str = "channels_last", bn_momentum: float = 0.99) -> Any:
    """Build (not compile) model ``name`` for ``n_classes`` classes under dtype policy ``dtype``."""
    if name == "vgg":
        if not width > 0:
            raise ConfigError(f"train.vgg.width must be > 0, got {width}")
        if input_size < 8:
            raise ConfigError(f"train.vgg.input_size must be >= 8 (three 2x2 poolings), got {input_size}")
        if not 0 <= bn_momentum < 1:
            raise ConfigError(f"train.vgg.bn_momentum must be in [0, 1), got {bn_momentum}")
        return vgg(n_classes, input_size=input_size, width=width, dtype=dtype, data_format=data_format,
                   bn_momentum=bn_momentum)
    if name == "small_cnn":
        if input_size < 4:
            raise ConfigError(f"train.small_cnn.input_size must be >= 4, got {input_size}")
        return small_cnn(n_classes, input_size=input_size, dtype=dtype, data_format=data_format)
    raise ConfigError(f"train.runs.<run>.model: unknown model {name!r}; expected one of {list(MODELS)}")


def compile_model(model: Any, *, learning_rate: float, dtype: str = "float32", jit_compile: bool | str = "auto") -> Any:
    """Compile with Adam, sparse categorical cross-entropy and accuracy; loss scaling under float16."""
    import keras

    # fixed names: Keras numbers auto-named objects per process ("adam_1"), which would change the saved file
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, name="adam")
    if dtype == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale_optimizer")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=jit_compile)
    return model
