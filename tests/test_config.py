"""training.config: a run's settings come from the validated ``train`` section (K per fold scheme)."""
from __future__ import annotations

import pytest

from pipelines.core.errors import ConfigError
from pipelines.core.params import load_config, load_params
from training.config import run_config


def _train(k):
    train = load_params("params.yaml", "train")
    train["folds"] = {**train["folds"], "k": k}
    train["runs"] = {s: {"model": "small_cnn", "method": "annotations", "folds": s, "labels": "aami"}
                     for s in ("beat", "record", "ds1ds2")}
    return train


def test_default_params_give_the_papers_k_for_beats():
    train = load_params("params.yaml", "train")
    train["runs"]["b"] = {"model": "small_cnn", "method": "annotations", "folds": "beat", "labels": "aami"}
    assert run_config(train, "b").k == 10
    assert run_config(train, "small_cnn-record").k == 5 and run_config(train, "small_cnn-ds1ds2").k == 1


def test_the_typed_section_and_its_dict_give_the_same_run():
    typed = load_config("params.yaml").train
    for run in typed.runs:
        assert run_config(typed, run) == run_config(load_params("params.yaml", "train"), run)


def test_one_integer_applies_to_both_schemes():
    train = _train(3)
    assert [run_config(train, s).k for s in ("beat", "record", "ds1ds2")] == [3, 3, 1]


def test_vgg_keys_reach_the_run_and_other_models_take_the_defaults():
    train = load_params("params.yaml", "train")
    train["runs"]["v"] = {"model": "vgg", "method": "annotations", "folds": "ds1ds2", "labels": "aami"}
    vgg = run_config(train, "v")
    assert (vgg.width, vgg.bn_momentum) == (train["vgg"]["width"], train["vgg"]["bn_momentum"])
    cnn = run_config(train, "small_cnn-ds1ds2")
    assert (cnn.width, cnn.bn_momentum, cnn.learning_rate) == (train["small_cnn"]["width"], 0.99,
                                                               train["small_cnn"]["learning_rate"])
    record = run_config(train, "small_cnn-record")           # per-run overrides of the model section
    assert (record.max_train_images, record.epochs) == (train["runs"]["small_cnn-record"]["max_train_images"],
                                                        train["small_cnn"]["epochs"])
    jun8 = run_config(train, "small_cnn-beat-jun8")
    assert jun8.epochs == train["runs"]["small_cnn-beat-jun8"]["epochs"] != train["small_cnn"]["epochs"]
    assert run_config(train, "small_cnn-beat-jun8").crops == "all" and cnn.crops == train["crops"]
    assert cnn.timed_classes == ("S",) and run_config(train, "small_cnn-ds1ds2-image").timed_classes == ()


def test_timed_classes_need_rhythm_and_a_trained_class_other_than_the_first():
    train = load_params("params.yaml", "train")
    base = {"model": "small_cnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami"}
    train["runs"]["t"] = {**base, "timed_classes": ["S"]}
    with pytest.raises(ConfigError, match="timed_classes: needs rhythm: true"):
        run_config(train, "t")
    train["runs"]["t"] = {**base, "rhythm": True, "timed_classes": ["N"]}
    with pytest.raises(ConfigError, match=r"\['N'\] are not trained classes other than 'N'"):
        run_config(train, "t")


def test_image_dropout_is_a_rhythm_runs_setting_a_run_may_override():
    train = load_params("params.yaml", "train")
    base = {"model": "small_cnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami"}
    train["small_cnn"] = {**train["small_cnn"], "image_dropout": 0.4}
    train["runs"]["r"] = {**base, "rhythm": True}
    train["runs"]["r0"] = {**base, "rhythm": True, "image_dropout": 0.0}
    train["runs"]["i"] = dict(base)
    assert [run_config(train, r).image_dropout for r in ("r", "r0", "i")] == [0.4, 0.0, 0.0]
    train["runs"]["r0"]["batch_size"] = 32                  # any run may set its own batch
    assert (run_config(train, "r0").batch_size, run_config(train, "r").batch_size) == (
        32, train["small_cnn"]["batch_size"])
    train["runs"]["bad"] = {**base, "image_dropout": 0.2}
    with pytest.raises(ConfigError, match="image_dropout: needs rhythm: true"):
        run_config(train, "bad")


@pytest.mark.parametrize("k, match", [
    ({"beat": 10, "records": 5}, r"train.folds.k.records: unknown key \(did you mean 'record'\?\)"),
    ({"beat": 10}, r"train.folds.k.record is missing"),
    ({"beat": 1, "record": 5}, r"train.folds.k.beat: must be >= 2, got 1"),
    (1, r"train.folds.k: must be >= 2, got 1"),
    (2.5, r"train.folds.k: expected an integer, got 2.5"),
])
def test_bad_k_is_a_config_error(k, match):
    with pytest.raises(ConfigError, match=match):
        run_config(_train(k), "record")


def test_unknown_run_and_bad_train_classes_are_named():
    train = _train(3)
    with pytest.raises(ConfigError, match=r"no run 'nope' under train.runs \(have \['beat', 'ds1ds2', 'record'\]\)"):
        run_config(train, "nope")
    train["runs"]["record"]["train_classes"] = ["N", "X"]
    with pytest.raises(ConfigError, match=r"train.runs.record.train_classes: \['X'\] are not classes of labels"):
        run_config(train, "record")
    train["runs"]["record"]["train_classes"] = ["N", "V"]
    assert run_config(train, "record").train_classes == ("N", "V")

def test_a_rhythm_run_may_name_its_own_template_features():
    train = load_params("params.yaml", "train")
    base = {"model": "small_cnn", "method": "annotations", "folds": "beat", "labels": "jun8"}
    train["template_features"] = ["tpl_corr"]
    train["runs"]["m"] = {**base, "rhythm": True, "template_features": ["tpl_corr", "mor_q3", "mor_qrs_ms"]}
    train["runs"]["d"] = {**base, "rhythm": True}
    train["runs"]["none"] = {**base, "rhythm": True, "template_features": []}
    assert run_config(train, "m").template_features == ("tpl_corr", "mor_q3", "mor_qrs_ms")
    assert run_config(train, "m").branch_features[-3:] == ("tpl_corr", "mor_q3", "mor_qrs_ms")
    assert run_config(train, "d").template_features == ("tpl_corr",)
    assert run_config(train, "none").template_features == ()
    for spec, match in (({"template_features": ["mor_q3"]}, "template_features: needs rhythm: true"),
                        ({"rhythm": True, "template_features": ["mor_q3", "mor_q3"]},
                         r"template_features: lists a column twice"),
                        ({"rhythm": True, "template_features": ["mor_q10"]}, r"train.runs.bad.template_features.0")):
        train["runs"]["bad"] = {**base, **spec}
        with pytest.raises(ConfigError, match=match):
            run_config(train, "bad")


def test_the_rhythm_branch_settings_come_from_the_model_and_a_rhythm_run_may_override_them():
    train = load_params("params.yaml", "train")
    base = {"model": "small_cnn", "method": "annotations", "folds": "beat", "labels": "jun8"}
    train["small_cnn"] = {**train["small_cnn"], "rhythm_units": 24, "rhythm_standardize": False}
    train["runs"]["d"] = {**base, "rhythm": True}
    train["runs"]["o"] = {**base, "rhythm": True, "rhythm_units": 128, "rhythm_standardize": True}
    train["runs"]["i"] = dict(base)
    assert (run_config(train, "d").rhythm_units, run_config(train, "d").rhythm_standardize) == (24, False)
    assert (run_config(train, "o").rhythm_units, run_config(train, "o").rhythm_standardize) == (128, True)
    train["small_cnn"]["rhythm_standardize"] = True
    assert run_config(train, "i").rhythm_standardize is False          # image-only: no second input to scale
    jun8 = run_config(load_params("params.yaml", "train"), "small_cnn-beat-jun8")
    assert jun8.rhythm_standardize and jun8.rhythm_units > 16
    for key, value in (("rhythm_units", 32), ("rhythm_standardize", True)):
        train["runs"]["bad"] = {**base, key: value}
        with pytest.raises(ConfigError, match=f"{key}: needs rhythm: true"):
            run_config(train, "bad")
    train["runs"]["bad"] = {**base, "rhythm": True, "rhythm_units": 0}
    with pytest.raises(ConfigError, match="train.runs.bad.rhythm_units"):
        run_config(train, "bad")


def test_the_feature_lists_name_each_column_once():
    for key, names in (("template_features", ["tpl_corr", "tpl_corr"]),
                       ("rhythm_features", ["log_pre_local", "log_pre_local"])):
        train = load_params("params.yaml", "train")
        train[key] = names
        with pytest.raises(ConfigError, match=f"train.{key}: lists a column twice"):
            run_config(train, "small_cnn-ds1ds2")


def test_a_run_may_set_its_own_class_weight():
    train = load_params("params.yaml", "train")
    base = {"model": "small_cnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami"}
    train["class_weight"] = "balanced"
    train["runs"]["w"] = {**base, "class_weight": "none"}
    train["runs"]["d"] = dict(base)
    assert (run_config(train, "w").class_weight, run_config(train, "d").class_weight) == ("none", "balanced")
    train["runs"]["bad"] = {**base, "class_weight": "inverse"}
    with pytest.raises(ConfigError, match="class_weight"):
        run_config(train, "bad")
