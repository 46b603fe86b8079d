"""The networks: Jun et al.'s VGG at the paper's configuration (built, not trained), small_cnn, crnn, the\nrhythm branch, precision."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require

keras = require("keras")

from pipelines.core.errors import ConfigError  # noqa: E402
from training.models import build_model, compile_model, resolve_precision  # noqa: E402


def _conv_bn(c_in: int, c_out: int) -> int:
    return 9 * c_in * c_out + c_out + 4 * c_out          # conv kernel + bias, BN gamma/beta/mean/var


def vgg_param_count(n_classes: int, size: int = 128, width: float = 1.0) -> int:
    f = [max(1, round(n * width)) for n in (64, 128, 256)]
    dense = max(1, round(2048 * width))
    convs = _conv_bn(1, f[0]) + _conv_bn(f[0], f[0]) + _conv_bn(f[0], f[1]) + _conv_bn(f[1], f[1]) \
        + _conv_bn(f[1], f[2]) + _conv_bn(f[2], f[2])
    flat = (size // 8) ** 2 * f[2]
    return convs + flat * dense + dense + 4 * dense + dense * n_classes + n_classes


def test_vgg_paper_configuration_structure_and_parameter_count():
    model = build_model("vgg", 8, input_size=128, width=1.0)
    assert model.input_shape == (None, 128, 128, 1)
    assert model.output_shape == (None, 8)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    block = ["Conv2D", "ELU", "BatchNormalization"] * 2 + ["MaxPooling2D"]
    assert kinds == block * 3 + ["Flatten", "Dense", "ELU", "BatchNormalization", "Dropout", "Dense", "Activation"]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 64, 128, 128, 256, 256]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    assert all(p.pool_size == (2, 2) for p in model.layers if isinstance(p, keras.layers.MaxPooling2D))
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [2048, 8]
    assert all(isinstance(layer.kernel_initializer, keras.initializers.GlorotUniform) for layer in convs + dense)
    assert model.get_layer("fc_dropout").rate == 0.5
    assert model.get_layer("softmax").get_config()["activation"] == "softmax"
    assert model.count_params() == vgg_param_count(8) == 135_392_200
    assert model.get_layer("flatten").output.shape[-1] == 16 * 16 * 256


@pytest.mark.parametrize("width,size", [(0.25, 128), (0.125, 64), (0.0625, 32)])
def test_vgg_width_multiplier_scales_filters_and_dense(width, size):
    model = build_model("vgg", 5, input_size=size, width=width)
    convs = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == [round(n * width) for n in (64, 64, 128, 128, 256, 256)]
    assert model.get_layer("fc").units == round(2048 * width)
    assert model.count_params() == vgg_param_count(5, size, width)


def test_small_cnn_structure_and_parameter_count():
    model = build_model("small_cnn", 4, input_size=64)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    block = ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D"]
    assert kinds == block * 4 + ["GlobalAveragePooling2D", "Dropout", "Dense", "Activation"]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 128, 256] and all(c.kernel_size == (3, 3) for c in convs)
    filters = [1, 32, 64, 128, 256]
    convs_bn = sum(9 * a * b + 4 * b for a, b in zip(filters, filters[1:]))   # no conv bias; BN 4 per channel
    assert model.count_params() == convs_bn + 256 * 4 + 4 == 390_308
    assert build_model("small_cnn", 4, input_size=128).count_params() == 390_308   # global pooling


def test_crnn_reads_columns_as_a_sequence():
    model = build_model("crnn", 4, input_size=64)
    assert model.get_layer("sequence").output.shape[1:] == (8, 8 * 128)        # 8 time steps of 8 x 128
    lstm1, lstm2 = model.get_layer("lstm1"), model.get_layer("lstm2")
    assert (lstm1.units, lstm1.return_sequences, lstm2.units, lstm2.return_sequences) == (64, True, 64, False)
    filters = [1, 32, 64, 128]
    convs_bn = sum(9 * a * b + 4 * b for a, b in zip(filters, filters[1:]))
    lstms = 4 * 64 * (1024 + 64 + 1) + 4 * 64 * (64 + 64 + 1)
    assert model.count_params() == convs_bn + lstms + 64 * 4 + 4 == 405_412
    with pytest.raises(ConfigError, match="input_size must be >= 8"):
        build_model("crnn", 4, input_size=4)


@pytest.mark.parametrize("name,kw", [("small_cnn", {}), ("crnn", {}), ("vgg", {"width": 0.0625})])
def test_rhythm_branch_is_a_second_input_concatenated_before_the_classifier(name, kw):
    plain = build_model(name, 4, input_size=32, **kw)
    model = build_model(name, 4, input_size=32, rhythm_features=6, **kw)
    assert [i.name for i in model.inputs] == ["image", "rhythm"] and model.inputs[1].shape[1:] == (6,)
    features = plain.get_layer("logits").input.shape[-1]
    assert model.get_layer("logits").input.shape[-1] == features + 16
    assert model.count_params() - plain.count_params() == 6 * 16 + 16 + 16 * 4
    out = model({"image": np.zeros((2, 32, 32, 1), np.float32), "rhythm": np.zeros((2, 6), np.float32)})
    assert tuple(out.shape) == (2, 4)
    with pytest.raises(ConfigError, match="rhythm_features"):
        build_model(name, 4, input_size=32, rhythm_features=-1, **kw)


def test_precision_settings():
    assert resolve_precision("fp32") == "float32"
    assert resolve_precision("auto") in ("float32", "mixed_float16")
    with pytest.raises(ConfigError, match="mixed_precision"):
        resolve_precision("fp8")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_computes_in_16_bit_with_float32_softmax(policy):
    model = compile_model(build_model("small_cnn", 3, input_size=16, dtype=policy), learning_rate=1e-3, dtype=policy)
    assert model.get_layer("block1_conv").compute_dtype == policy.split("_")[1]
    assert model.get_layer("block1_conv").variable_dtype == "float32"
    assert model.get_layer("softmax").compute_dtype == "float32"
    out = model(np.zeros((2, 16, 16, 1), np.float32))
    assert str(out.dtype) in ("float32", "<dtype: 'float32'>")
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.config.dtype_policy().name == "float32"            # no global state changed


def test_tiny_models_train_a_step():
    rng = np.random.default_rng(0)
    x = rng.random((8, 32, 32, 1), np.float32)
    y = rng.integers(0, 3, 8)
    for name in ("small_cnn", "crnn", "vgg"):
        model = compile_model(build_model(name, 3, input_size=32, width=0.0625), learning_rate=1e-3, jit_compile=False)
        hist = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        assert np.isfinite(hist.history["loss"][0])
        probs = model.predict(x, verbose=0)
        np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_vgg_batch_norm_momentum():
    model = build_model("vgg", 5, input_size=32, width=0.0625, bn_momentum=0.9)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 7 and all(b.momentum == 0.9 for b in bns)
    assert build_model("vgg", 5, input_size=32, width=0.0625).get_layer("fc_bn").momentum == 0.99
    with pytest.raises(ConfigError, match="bn_momentum"):
        build_model("vgg", 5, input_size=32, bn_momentum=1.0)


def test_bad_model_params():
    with pytest.raises(ConfigError, match="unknown model 'resnet'"):
        build_model("resnet", 5, input_size=64)
    with pytest.raises(ConfigError, match="width must be > 0"):
        build_model("vgg", 5, input_size=64, width=0)
    with pytest.raises(ConfigError, match="input_size must be >= 8"):
        build_model("vgg", 5, input_size=4)


def test_timed_classes_are_told_from_the_first_class_by_rhythm_alone():
    import keras
    from training.models import tie_matrix

    np.testing.assert_array_equal(tie_matrix(4, (1,)), [[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    model = build_model("small_cnn", 4, input_size=16, width=0.25, rhythm_features=3, timed=(1,))
    logits = keras.Model(model.inputs, model.get_layer("logits").output)
    image = np.random.default_rng(0).random((5, 16, 16, 1), np.float32)
    rhythm = np.zeros((5, 3), np.float32)
    out = logits.predict({"image": image, "rhythm": rhythm}, verbose=0)
    # with the rhythm input fixed, S - N is the same for every image: the morphology expert cannot tell S from N
    np.testing.assert_allclose(out[:, 1] - out[:, 0], np.full(5, out[0, 1] - out[0, 0]), atol=1e-5)
    assert not np.allclose(out[:, 2] - out[:, 0], out[0, 2] - out[0, 0])
    with pytest.raises(ConfigError, match="timed classes"):
        tie_matrix(4, (0,))


def test_the_timed_expert_sees_only_the_leading_rr_features(tmp_path):
    """Template columns (after the RR ones) describe morphology: S is told from N by timing alone."""
    import keras
    from training.models import select_matrix

    model = build_model("small_cnn", 4, input_size=16, width=0.25, rhythm_features=5, timed=(1,), timed_features=2)
    assert model.get_layer("timing").trainable is False
    logits = keras.Model(model.inputs, model.get_layer("logits").output)
    rng = np.random.default_rng(1)
    image = np.repeat(rng.random((1, 16, 16, 1), np.float32), 6, axis=0)
    rhythm = np.repeat(rng.normal(size=(1, 5)).astype(np.float32), 6, axis=0)
    rhythm[:, 2:] = rng.normal(size=(6, 3)) * 3                 # template columns vary, RR columns fixed
    out = logits.predict({"image": image, "rhythm": rhythm}, verbose=0)
    np.testing.assert_allclose(out[:, 1] - out[:, 0], np.full(6, out[0, 1] - out[0, 0]), atol=1e-4)
    assert not np.allclose(out[:, 2] - out[:, 0], out[0, 2] - out[0, 0])   # V: the morphology expert sees them
    rhythm[:, 0] = rng.normal(size=6) * 3                          # the RR columns do move S - N
    out = logits.predict({"image": image, "rhythm": rhythm}, verbose=0)
    assert not np.allclose(out[:, 1] - out[:, 0], out[0, 1] - out[0, 0])
    assert select_matrix(5, 2).shape == (5, 2)
    with pytest.raises(ConfigError, match="timed_features"):
        select_matrix(3, 4)
    # saved and loaded like any model (the selection is a constant, untrainable kernel)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict({"image": image, "rhythm": rhythm}, verbose=0),
                               model.predict({"image": image, "rhythm": rhythm}, verbose=0), atol=1e-6)


def test_width_scales_small_cnn_and_crnn():
    assert build_model("small_cnn", 4, input_size=32, width=0.5).count_params() < \
        build_model("small_cnn", 4, input_size=32).count_params() / 3
    assert build_model("crnn", 4, input_size=32, width=0.5).count_params() < \
        build_model("crnn", 4, input_size=32).count_params() / 2


def test_image_dropout_drops_whole_image_feature_vectors(tmp_path):
    """Modality dropout: in training a beat loses all its image features or none; at inference nothing."""
    import keras

    model = build_model("small_cnn", 4, input_size=16, width=0.25, rhythm_features=3, image_dropout=0.5)
    layer = model.get_layer("image_dropout")
    feats = keras.Model(model.inputs, layer.output)
    x = {"image": np.random.default_rng(2).random((64, 16, 16, 1), np.float32),
         "rhythm": np.ones((64, 3), np.float32)}
    out = np.asarray(feats(x, training=True))
    dropped = (out == 0).all(axis=1)
    assert 10 < dropped.sum() < 54 and (out[~dropped] != 0).any(axis=1).all()
    gap = keras.Model(model.inputs, model.get_layer("gap").output)
    np.testing.assert_array_equal(np.asarray(feats(x, training=False)), np.asarray(gap(x, training=False)))
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert "image_dropout" not in [l.name for l in build_model("small_cnn", 4, input_size=16, width=0.25,
                                                                image_dropout=0.5).layers]     # image-only: none
    with pytest.raises(ConfigError, match="image_dropout"):
        build_model("small_cnn", 4, input_size=16, rhythm_features=3, image_dropout=1.0)


def test_the_rhythm_branch_can_be_wider_and_standardise_its_input(tmp_path):
    """rhythm_units sets the branch's width; rhythm_scale = (mean, sd) standardises the second input inside
    the model (a fixed Normalization layer that is saved with it), so a feature in ms beside one in log
    ratios reaches the dense layer on the same scale."""
    import keras

    from training.data import branch_scale

    rng = np.random.default_rng(4)
    feats = np.stack([rng.normal(80.0, 20.0, 64), rng.normal(0.0, 0.1, 64), np.full(64, 3.0)], 1).astype(np.float32)
    scale = branch_scale(feats)
    np.testing.assert_allclose(scale[0], feats.mean(0), rtol=1e-5)
    assert scale[1][2] == 1.0                                     # a constant column is not divided by 0
    model = build_model("small_cnn", 4, input_size=16, width=0.25, rhythm_features=3, rhythm_units=32,
                        rhythm_scale=scale)
    norm = keras.Model(model.inputs, model.get_layer("rhythm_norm").output)
    x = {"image": rng.random((64, 16, 16, 1), np.float32), "rhythm": feats}
    z = np.asarray(norm(x))
    np.testing.assert_allclose(z[:, :2].mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z[:, :2].std(0), 1.0, atol=1e-3)
    np.testing.assert_allclose(z[:, 2], 0.0, atol=1e-6)
    assert model.get_layer("rhythm_fc").units == 32
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    plain = build_model("small_cnn", 4, input_size=16, width=0.25, rhythm_features=3)
    assert "rhythm_norm" not in [l.name for l in plain.layers] and plain.get_layer("rhythm_fc").units == 16
    with pytest.raises(ConfigError, match="rhythm_scale: need a mean and an sd per rhythm feature"):
        build_model("small_cnn", 4, input_size=16, rhythm_features=2, rhythm_scale=scale)
    with pytest.raises(ConfigError, match="sds finite and > 0"):
        build_model("small_cnn", 4, input_size=16, rhythm_features=3, rhythm_scale=(scale[0], [1.0, 0.0, 1.0]))
    with pytest.raises(ConfigError, match="rhythm_units"):
        build_model("small_cnn", 4, input_size=16, rhythm_features=3, rhythm_units=0)
