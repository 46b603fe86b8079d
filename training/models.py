"""The networks, chosen by ``train.runs.<run>.model``: ``vgg`` (Jun et al. 2018), ``small_cnn`` and ``crnn``.

Every model takes ``(input_size, input_size, 1)`` images in [0, 1] (input ``image``) and, with
``rhythm_features=F > 0``, a second input ``rhythm`` of F float32 rhythm features (RR-interval
ratios, :func:`pipelines.rhythm_features`) that pass through a small dense layer and are
concatenated with the image features before the classifier. Every model ends in a float32 softmax
(also under mixed precision). Layers get the dtype policy explicitly, so building a model never
changes Keras' global state.

Examples
--------
>>> build_model("small_cnn", 4, input_size=64).count_params()
390308
>>> build_model("small_cnn", 4, input_size=64, rhythm_features=6).count_params()
390484
>>> build_model("crnn", 4, input_size=64).count_params()
405412
>>> vgg = build_model("vgg", 8, input_size=128, width=1.0)    # the paper's network
>>> round(vgg.count_params() / 1e6, 1)
135.4
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from pipelines import ConfigError

#: Model names, by ``train.runs.<run>.model``.
MODELS: tuple[str, ...] = ("vgg", "small_cnn", "crnn")

#: Precision settings of ``train.mixed_precision``.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "mixed_float16", "mixed_bfloat16")

#: Units of the dense layer the rhythm features pass through before the concatenation.
RHYTHM_UNITS = 16


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


#: Names of a model's inputs, in order: the image, and (rhythm runs) the RR and template features.
INPUT_NAMES: tuple[str, str] = ("image", "rhythm")


def _inputs(input_size: int, data_format: str, rhythm_features: int) -> list[Any]:
    """The model's inputs: ``image``, and ``rhythm`` when ``rhythm_features > 0``."""
    import keras

    inputs = [keras.Input(_input_shape(input_size, data_format), name=INPUT_NAMES[0])]
    if rhythm_features:
        inputs.append(keras.Input((rhythm_features,), name=INPUT_NAMES[1]))
    return inputs


def _with_rhythm(features: Any, inputs: list[Any], dtype: str, timed: tuple[int, ...] = (),
                 image_dropout: float = 0.0, rhythm_units: int = RHYTHM_UNITS,
                 rhythm_scale: tuple[Sequence[float], Sequence[float]] | None = None) -> Any:
    """Concatenate the image features with the rhythm branch (dense ``rhythm_units``, ReLU), if any.

    ``rhythm_scale`` = (mean, sd) per feature standardises the second input first (a fixed
    ``keras.layers.Normalization``, saved with the model): features in ms or mV beside log ratios
    otherwise reach the dense layer on scales a hundred times apart.
    ``image_dropout`` > 0 drops a training beat's whole image feature vector with that probability
    (modality dropout), so that the network also learns to classify from the rhythm and template features
    alone instead of leaning on the image, which fits the training patients' own morphology.
    (With ``timed`` classes, :func:`_head` adds a second, separate rhythm expert.)
    """
    from keras import layers

    if len(inputs) < 2:
        return features
    r = inputs[1]
    if rhythm_scale is not None:
        mean, sd = (np.asarray(v, np.float64) for v in rhythm_scale)
        r = layers.Normalization(mean=mean.tolist(), variance=(sd ** 2).tolist(), dtype=dtype,
                                 name="rhythm_norm")(r)
    r = layers.Dense(rhythm_units, activation="relu", dtype=dtype, name="rhythm_fc")(r)
    if image_dropout:  # a whole beat's image features at once (noise_shape): the features must carry it alone
        features = layers.Dropout(image_dropout, noise_shape=(None, 1), dtype=dtype, name="image_dropout")(features)
    return layers.Concatenate(dtype=dtype, name="with_rhythm")([features, r])


def tie_matrix(n_classes: int, timed: tuple[int, ...], reference: int = 0) -> "Any":
    """0/1 matrix mapping the image logits of the untimed classes to all classes: a timed class takes
    the ``reference`` class's image logit.

    >>> tie_matrix(4, (1,)).tolist()        # N S V F, S timed: image logits of N V F -> N N V F
    [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    """
    if reference in timed or not all(0 <= c < n_classes for c in timed):
        raise ConfigError(f"timed classes {list(timed)}: must be class indices other than the reference {reference}")
    untimed = [c for c in range(n_classes) if c not in timed]
    m = np.zeros((len(untimed), n_classes), np.float32)
    for c in range(n_classes):
        m[untimed.index(reference if c in timed else c), c] = 1.0
    return m


def select_matrix(n_features: int, first: int) -> "Any":
    """0/1 matrix (n_features, first) keeping the ``first`` leading columns of a feature vector.

    >>> select_matrix(3, 2).tolist()
    [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    """
    if not 0 < first <= n_features:
        raise ConfigError(f"timed_features must be in [1, {n_features}], got {first}")
    return np.eye(n_features, first, dtype=np.float32)


def _head(x: Any, inputs: list[Any], n_classes: int, dtype: str, name: str, init: str = "glorot_uniform",
          timed: tuple[int, ...] = (), timed_features: int = 0) -> Any:
    """Softmax classifier. With ``timed`` classes (and a rhythm input) the logits are the sum of a
    morphology expert (image features joined with the rhythm branch), whose logit of a timed class is the
    reference (first) class's, and a rhythm expert: a timed class (AAMI S: normal morphology, premature
    timing) is told from the reference class by the rhythm expert alone, and from the other classes by both.
    ``timed_features`` > 0: the rhythm expert sees only that many leading columns of the rhythm input (the
    RR features; the template columns after them describe morphology and stay with the morphology expert).
    """
    import keras
    from keras import layers

    if timed and len(inputs) > 1:
        image = layers.Dense(n_classes - len(timed), kernel_initializer=init, dtype=dtype, name="image_logits")(x)
        tie = tie_matrix(n_classes, timed)
        image = layers.Dense(n_classes, use_bias=False, trainable=False, dtype=dtype, name="tied_logits",
                             kernel_initializer=keras.initializers.Constant(tie))(image)
        timing = inputs[1]
        n_features = int(inputs[1].shape[-1])
        if timed_features and timed_features != n_features:
            timing = layers.Dense(timed_features, use_bias=False, trainable=False, dtype=dtype, name="timing",
                                  kernel_initializer=keras.initializers.Constant(
                                      select_matrix(n_features, timed_features)))(inputs[1])
        r = layers.Dense(RHYTHM_UNITS, activation="relu", dtype=dtype, name="rhythm_expert_fc")(timing)
        r = layers.Dense(n_classes, dtype=dtype, name="rhythm_logits")(r)
        x = layers.Add(dtype=dtype, name="logits")([image, r])
    else:
        x = layers.Dense(n_classes, kernel_initializer=init, dtype=dtype, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=name)


def vgg(n_classes: int, *, input_size: int = 128, width: float = 1.0, dtype: str = "float32",
        data_format: str = "channels_last", bn_momentum: float = 0.99, rhythm_features: int = 0,
        timed: tuple[int, ...] = (), timed_features: int = 0, image_dropout: float = 0.0,
        **branch: Any) -> Any:
    """The VGG-like network of Jun et al. 2018 (arXiv:1804.06812).

    Three blocks of two 3x3 convolutions (64, 128, 256 filters times ``width``), each convolution
    followed by ELU and batch normalisation, 2x2 max-pooling after each block; then dense 2048 x
    ``width``, ELU, batch normalisation, dropout 0.5, [rhythm branch], and a softmax. Glorot-uniform
    initialisation. At ``width=1.0`` and 128x128 input: 135 M parameters, most of them in the first
    dense layer. ``data_format="channels_first"`` takes ``(1, size, size)`` input (benchmarks only).
    ``bn_momentum`` is the batch normalisation layers' moving-average momentum (Keras' default 0.99
    needs a few hundred steps before the inference statistics settle: short CPU runs want ~0.9).
    """
    from keras import layers

    init = "glorot_uniform"
    fmt, axis = data_format, (-1 if data_format == "channels_last" else 1)
    inputs = _inputs(input_size, data_format, rhythm_features)
    x = inputs[0]
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
    return _head(_with_rhythm(x, inputs, dtype, timed, image_dropout, **branch), inputs, n_classes, dtype, "vgg_jun2018",
                 init, timed, timed_features)


def _conv_blocks(x: Any, filters: tuple[int, ...], dtype: str, data_format: str) -> Any:
    """Blocks of conv 3x3 (same, no bias), batch normalisation, ReLU, 2x2 max-pooling."""
    from keras import layers

    axis = -1 if data_format == "channels_last" else 1
    for block, n in enumerate(filters, start=1):
        x = layers.Conv2D(n, 3, padding="same", use_bias=False, data_format=data_format, dtype=dtype,
                          name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(axis=axis, momentum=0.9, dtype=dtype, name=f"block{block}_bn")(x)
        x = layers.ReLU(dtype=dtype, name=f"block{block}_relu")(x)
        x = layers.MaxPooling2D(2, data_format=data_format, dtype=dtype, name=f"block{block}_pool")(x)
    return x


def small_cnn(n_classes: int, *, input_size: int = 64, width: float = 1.0, dtype: str = "float32",
              data_format: str = "channels_last", rhythm_features: int = 0, timed: tuple[int, ...] = (),
              timed_features: int = 0, image_dropout: float = 0.0, **branch: Any) -> Any:
    """A small CNN: four blocks (32, 64, 128, 256 filters, times ``width``) of conv 3x3, batch norm, ReLU, 2x2 max-pooling;
    global average pooling, [rhythm branch], dropout 0.3, dense softmax.

    0.39 M parameters whatever the input size (global pooling): 390,308 for 4 classes.
    """
    from keras import layers

    inputs = _inputs(input_size, data_format, rhythm_features)
    x = _conv_blocks(inputs[0], tuple(_scaled(f, width) for f in (32, 64, 128, 256)), dtype, data_format)
    x = layers.GlobalAveragePooling2D(data_format=data_format, dtype=dtype, name="gap")(x)
    x = _with_rhythm(x, inputs, dtype, timed, image_dropout, **branch)
    x = layers.Dropout(0.3, dtype=dtype, name="dropout")(x)
    return _head(x, inputs, n_classes, dtype, "small_cnn", timed=timed, timed_features=timed_features)


def crnn(n_classes: int, *, input_size: int = 64, width: float = 1.0, dtype: str = "float32",
         data_format: str = "channels_last", rhythm_features: int = 0, timed: tuple[int, ...] = (),
         timed_features: int = 0, image_dropout: float = 0.0, **branch: Any) -> Any:
    """A convolutional-recurrent network: the image's columns are time.

    Three blocks (32, 64, 128 filters, times ``width``) of conv 3x3, batch norm, ReLU, 2x2 max-pooling;
    the feature map is read column by column (time = image width / 8 steps of height / 8 x channels
    features) by two LSTM layers of 64 x ``width`` units (the second returns its last state); [rhythm branch], dropout 0.3, dense softmax.
    405,412 parameters at 64 px and 4 classes (the first LSTM's input grows with the input size).
    """
    from keras import layers

    if data_format != "channels_last":
        raise ConfigError("crnn: only data_format='channels_last' is supported")
    inputs = _inputs(input_size, data_format, rhythm_features)
    x = _conv_blocks(inputs[0], tuple(_scaled(f, width) for f in (32, 64, 128)), dtype, data_format)
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    x = layers.Permute((2, 1, 3), dtype=dtype, name="columns")(x)          # (width, height, channels)
    x = layers.Reshape((w, h * c), dtype=dtype, name="sequence")(x)
    units = _scaled(64, width)
    x = layers.LSTM(units, return_sequences=True, dtype=dtype, name="lstm1")(x)
    x = layers.LSTM(units, dtype=dtype, name="lstm2")(x)
    x = _with_rhythm(x, inputs, dtype, timed, image_dropout, **branch)
    x = layers.Dropout(0.3, dtype=dtype, name="dropout")(x)
    return _head(x, inputs, n_classes, dtype, "crnn", timed=timed, timed_features=timed_features)


def build_model(name: str, n_classes: int, *, input_size: int, width: float = 1.0, dtype: str = "float32",
                data_format: str = "channels_last", bn_momentum: float = 0.99, rhythm_features: int = 0,
                timed: tuple[int, ...] = (), timed_features: int = 0, image_dropout: float = 0.0,
                rhythm_units: int = RHYTHM_UNITS,
                rhythm_scale: tuple[Sequence[float], Sequence[float]] | None = None) -> Any:
    """Build (not compile) model ``name`` for ``n_classes`` classes under dtype policy ``dtype``.

    ``rhythm_features`` > 0 adds the second input ``rhythm`` of that many features; ``timed`` class
    indices are then told from class 0 by the rhythm expert alone (:func:`_head`), which sees the first
    ``timed_features`` of them (0: all). ``image_dropout`` (rhythm input only): modality dropout of the image
    features; ``rhythm_units``: width of the branch's dense layer; ``rhythm_scale``: (mean, sd) per feature,
    standardising the second input inside the model (:func:`_with_rhythm`).
    """
    if not 0 <= image_dropout < 1:
        raise ConfigError(f"image_dropout must be in [0, 1), got {image_dropout}")
    if isinstance(rhythm_features, bool) or not isinstance(rhythm_features, int) or rhythm_features < 0:
        raise ConfigError(f"rhythm_features must be an integer >= 0, got {rhythm_features!r}")
    if isinstance(rhythm_units, bool) or not isinstance(rhythm_units, int) or rhythm_units < 1:
        raise ConfigError(f"rhythm_units must be an integer >= 1, got {rhythm_units!r}")
    if rhythm_scale is not None:
        mean, sd = (np.asarray(v, np.float64) for v in rhythm_scale)
        if mean.shape != (rhythm_features,) or sd.shape != (rhythm_features,):
            raise ConfigError(f"rhythm_scale: need a mean and an sd per rhythm feature ({rhythm_features}), got "
                              f"shapes {mean.shape} and {sd.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(sd).all() and (sd > 0).all()):
            raise ConfigError("rhythm_scale: the means must be finite and the sds finite and > 0")
    common = {"input_size": input_size, "dtype": dtype, "data_format": data_format,
              "rhythm_features": rhythm_features, "timed": tuple(timed) if rhythm_features else (),
              "timed_features": int(timed_features) if rhythm_features and timed else 0,
              "image_dropout": float(image_dropout) if rhythm_features else 0.0,
              "rhythm_units": rhythm_units, "rhythm_scale": rhythm_scale if rhythm_features else None}
    if name == "vgg":
        if not width > 0:
            raise ConfigError(f"train.vgg.width must be > 0, got {width}")
        if input_size < 8:
            raise ConfigError(f"train.vgg.input_size must be >= 8 (three 2x2 poolings), got {input_size}")
        if not 0 <= bn_momentum < 1:
            raise ConfigError(f"train.vgg.bn_momentum must be in [0, 1), got {bn_momentum}")
        return vgg(n_classes, width=width, bn_momentum=bn_momentum, **common)
    if name in ("small_cnn", "crnn"):
        smallest = 16 if name == "small_cnn" else 8
        if input_size < smallest:
            raise ConfigError(f"train.{name}.input_size must be >= {smallest} (its 2x2 poolings), got {input_size}")
        if not width > 0:
            raise ConfigError(f"train.{name}.width must be > 0, got {width}")
        return (small_cnn if name == "small_cnn" else crnn)(n_classes, width=width, **common)
    raise ConfigError(f"train.runs.<run>.model: unknown model {name!r}; expected one of {list(MODELS)}")


def compile_model(model: Any, *, learning_rate: Any, dtype: str = "float32", jit_compile: bool | str = "auto") -> Any:
    """Compile with Adam (``learning_rate``: a float or a Keras schedule), sparse categorical cross-entropy and
    accuracy; loss scaling under float16."""
    import keras

    # fixed names: Keras numbers auto-named objects per process ("adam_1"), which would change the saved file
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, name="adam")
    if dtype == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale_optimizer")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=jit_compile)
    return model
