"""training.config: K per fold scheme."""
from __future__ import annotations

import pytest

from pipelines.core.errors import ConfigError
from pipelines.core.params import load_params
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
    assert run_config(train, "small_cnn-record").k == 5 and run_config(train, "vgg-ds1ds2").k == 1


def test_one_integer_applies_to_both_schemes():
    train = _train(3)
    assert [run_config(train, s).k for s in ("beat", "record", "ds1ds2")] == [3, 3, 1]


@pytest.mark.parametrize("k, match", [({"beat": 10, "records": 5}, r"unknown key\(s\) \['records'\] in train.folds.k"),
                                      ({"beat": 10}, "train.folds.k.record is missing"),
                                      ({"beat": 1, "record": 5}, "train.folds.k.beat must be an integer >= 2"),
                                      (1, "train.folds.k must be an integer >= 2")])
def test_bad_k_is_a_config_error(k, match):
    with pytest.raises(ConfigError, match=match):
        run_config(_train(k), "record")
