"""params.yaml contract (docs/params.md): strict schema, readable errors, profiles that plan their runs."""
from __future__ import annotations

import copy
import typing
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipelines.core import schema
from pipelines.core.errors import ConfigError
from pipelines.core.params import load_config, load_params, validate_params, validate_section
from pipelines.core.profiles import apply_profile, overlay_file, overlay_text
from pipelines.signal.labels import DS1, DS2, PACED_RECORDS, SCHEMES, class_names
from training.config import run_config
from training.folds import check_plan, make_folds


REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"
PROFILES = sorted((REPO / "profiles").glob("*.yaml"))
BASE = yaml.safe_load(PARAMS.read_text())


def _with(path: str, value, base=BASE) -> dict:
    """``base`` with the dotted key ``path`` set to ``value``."""
    out = copy.deepcopy(base)
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return out


def _refused(params: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_params(params)
    return str(info.value)


# ------------------------------------------------------------------------------------------- schema

def test_committed_params_validate_and_load_as_dicts():
    cfg = load_config(PARAMS)
    assert cfg.render.crops.materialise is True and cfg.train.folds.k_for("record") == 5
    params = load_params(PARAMS)
    assert set(params) == set(BASE) and {"ingest", "segment", "render", "gallery", "train", "evaluate"} <= set(params)
    assert params["render"]["crops"]["offsets"] == [0, 16, 32] and load_params(PARAMS, "gallery") == {"per_class": 6}


@pytest.mark.parametrize("path", ["render.sise", "render.crops.matrialise", "segment.windw", "ingest.recrods",
                                  "train.sede", "rendr", "train.vgg.widht", "evaluate.publishd"])
def test_a_misspelt_key_is_refused_by_its_dotted_path(path):
    message = _refused(_with(path, 1))
    assert message == f"params.yaml: {path}: unknown key" + message.split("unknown key", 1)[1]
    assert "did you mean" in message and "pydantic" not in message and "http" not in message


@pytest.mark.parametrize("path, value, problem", [
    ("render.crops.materialise", "false", "expected a boolean (true/false, unquoted), got 'false'"),
    ("train.small_cnn.learning_rate", True, "expected a number, got True"),
    ("render.size", 128.9, "expected an integer, got 128.9"),
    ("render.size", 4, "must be >= 8, got 4"),
    ("train.vgg.learning_rate", 0, "must be > 0, got 0"),
    ("train.folds.validation_fraction", 1.0, "must be < 1, got 1.0"),
    ("render.engine", "svg", "expected 'raster' or 'matplotlib', got 'svg'"),
    ("segment.window", "centre", "expected 'jun', 'midpoint' or 'fixed', got 'centre'"),
    ("train.runs.small_cnn-record.folds", "patient", "expected 'beat', 'record' or 'ds1ds2', got 'patient'"),
    ("ingest.version", 1.0, "expected a string (quote it), got 1.0"),
    ("render.crops.size", 200, "200 is larger than render.size=128"),
    ("train.class_weight_max_ratio", 0.5, "must be 0 (no cap) or >= 1, got 0.5"),
    ("segment.match_tolerance_ms", float("inf"), "must be a finite number"),
    ("ingest.fs", "fast", "expected an integer or a number, got 'fast'"),
    ("ingest.records", "some", "expected 'all' or a list of record names, got 'some'"),
    ("ingest.records", [], "must hold at least 1 item(s), got 0"),
    ("render.crops.offsets", [0, 16], "must hold at least 3 item(s), got 2"),
])
def test_a_wrong_type_or_range_names_the_key_and_the_problem(path, value, problem):
    assert _refused(_with(path, value)).startswith(f"params.yaml: {path}: {problem}")


def test_every_problem_is_one_line():
    bad = _with("render.sise", 1, _with("train.seed", -1, _with("evaluate.published", [{"source": "X", "accuracy": 99.05}])))
    lines = _refused(bad).splitlines()
    assert lines == ["params.yaml: render.sise: unknown key (did you mean 'size'?)",
                     "params.yaml: train.seed: must be >= 0, got -1",
                     "params.yaml: evaluate.published[0].accuracy: 99.05 is not a fraction in [0, 1] "
                     "(write 0.9905, not 99.05)"]


def test_cross_key_rules():
    assert "train.runs.crnn-ds1ds2.model: 'crnn' needs a train.crnn section" in _refused(
        {**BASE, "train": {k: v for k, v in BASE["train"].items() if k != "crnn"}})
    assert "train.folds.k.record is missing" in _refused(_with("train.folds.k", {"beat": 10}))
    assert "ingest.records: lists 100 twice" in _refused(_with("ingest.records", ["100", 100]))
    assert "segment.fixed_after_ms: must be > 0" in _refused(_with("segment.fixed_after_ms", 0.0,
                                                                  _with("segment.window", "fixed")))
    assert "train.runs.a b: a run name is" in _refused(_with("train.runs", {"a b": BASE["train"]["runs"]["crnn-ds1ds2"]}))


def test_a_section_may_be_absent_but_a_present_one_is_complete(tmp_path):
    assert validate_params({"gallery": {"per_class": 3}}).train is None
    assert "params.yaml: train.seed is missing" in _refused(
        {"train": {k: v for k, v in BASE["train"].items() if k != "seed"}})
    assert validate_section("render", {"size": 64, "crops": {"size": 32}}).crops.offsets == [0, 16, 32]
    only_gallery = _write(tmp_path / "p.yaml", {"gallery": {}})
    assert load_params(only_gallery) == {"gallery": {"per_class": 6}}
    with pytest.raises(ConfigError, match=r"p.yaml: no section 'train'"):
        load_params(only_gallery, "train")


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_choices_are_those_of_the_modules_that_use_them():
    from pipelines.imaging.crops import INTERPOLATIONS
    from pipelines.imaging.draw import COMPRESSIONS, ENGINES
    from pipelines.signal.beats import METHODS
    from pipelines.signal.windows import WINDOW_KINDS
    from training.folds import FOLD_SCHEMES
    from training.models import MODELS, PRECISIONS
    from pipelines import RHYTHM_FEATURES, TEMPLATE_COLUMNS

    assert set(schema.DEFAULT_RHYTHM_FEATURES) <= set(RHYTHM_FEATURES)
    pairs = [(schema.RhythmFeature, RHYTHM_FEATURES), (schema.TemplateFeature, TEMPLATE_COLUMNS), (schema.WindowKind, WINDOW_KINDS), (schema.Method, METHODS), (schema.Engine, ENGINES),
             (schema.Interpolation, INTERPOLATIONS), (schema.Compression, COMPRESSIONS),
             (schema.LabelScheme, SCHEMES), (schema.FoldScheme, FOLD_SCHEMES), (schema.Precision, PRECISIONS),
             (schema.ModelName, MODELS)]
    for literal, names in pairs:
        assert set(typing.get_args(literal)) == set(names), literal
    assert set(schema.MODEL_NAMES) == set(MODELS) <= set(schema.TrainParams.model_fields)


# ------------------------------------------------------------------------------------------ profiles

#: MIT-BIH beats per record and class (reference annotations, '!' marks counted as jun8 VFW).
MITDB_AAMI = {
    "100": {"N": 2239, "S": 33, "V": 1}, "101": {"N": 1860, "Q": 2, "S": 3}, "102": {"N": 99, "Q": 2084, "V": 4},
    "103": {"N": 2082, "S": 2}, "104": {"N": 163, "Q": 2064, "V": 2}, "105": {"N": 2526, "Q": 5, "V": 41},
    "106": {"N": 1507, "V": 520}, "107": {"Q": 2078, "V": 59}, "108": {"F": 2, "N": 1740, "S": 4, "V": 17},
    "109": {"F": 2, "N": 2492, "V": 38}, "111": {"N": 2123, "V": 1}, "112": {"N": 2537, "S": 2},
    "113": {"N": 1789, "S": 6}, "114": {"F": 4, "N": 1820, "S": 12, "V": 43}, "115": {"N": 1953},
    "116": {"N": 2302, "S": 1, "V": 109}, "117": {"N": 1534, "S": 1}, "118": {"N": 2166, "S": 96, "V": 16},
    "119": {"N": 1543, "V": 444}, "121": {"N": 1861, "S": 1, "V": 1}, "122": {"N": 2476}, "123": {"N": 1515, "V": 3},
    "124": {"F": 5, "N": 1536, "S": 31, "V": 47}, "200": {"F": 2, "N": 1743, "S": 30, "V": 826},
    "201": {"F": 2, "N": 1635, "S": 128, "V": 198}, "202": {"F": 1, "N": 2061, "S": 55, "V": 19},
    "203": {"F": 1, "N": 2529, "Q": 4, "S": 2, "V": 444}, "205": {"F": 11, "N": 2571, "S": 3, "V": 71},
    "207": {"N": 1543, "S": 107, "V": 210}, "208": {"F": 373, "N": 1586, "Q": 2, "S": 2, "V": 992},
    "209": {"N": 2621, "S": 383, "V": 1}, "210": {"F": 10, "N": 2423, "S": 22, "V": 195}, "212": {"N": 2748},
    "213": {"F": 362, "N": 2641, "S": 28, "V": 220}, "214": {"F": 1, "N": 2003, "Q": 2, "V": 256},
    "215": {"F": 1, "N": 3195, "S": 3, "V": 164}, "217": {"N": 244, "Q": 1802, "V": 162},
    "219": {"F": 1, "N": 2082, "S": 7, "V": 64}, "220": {"N": 1954, "S": 94}, "221": {"N": 2031, "V": 396},
    "222": {"N": 2274, "S": 209}, "223": {"F": 14, "N": 2045, "S": 73, "V": 473}, "228": {"N": 1688, "S": 3, "V": 362},
    "230": {"N": 2255, "V": 1}, "231": {"N": 1568, "S": 1, "V": 2}, "232": {"N": 398, "S": 1382},
    "233": {"F": 11, "N": 2230, "S": 7, "V": 831}, "234": {"N": 2700, "S": 50, "V": 3},
}
MITDB_JUN8 = {
    "100": {"APC": 33, "NOR": 2239, "PVC": 1}, "101": {"APC": 3, "NOR": 1860}, "102": {"NOR": 99, "PAB": 2028, "PVC": 4},
    "103": {"APC": 2, "NOR": 2082}, "104": {"NOR": 163, "PAB": 1380, "PVC": 2}, "105": {"NOR": 2526, "PVC": 41},
    "106": {"NOR": 1507, "PVC": 520}, "107": {"PAB": 2078, "PVC": 59}, "108": {"APC": 4, "NOR": 1739, "PVC": 17},
    "109": {"LBB": 2492, "PVC": 38}, "111": {"LBB": 2123, "PVC": 1}, "112": {"APC": 2, "NOR": 2537},
    "113": {"NOR": 1789}, "114": {"APC": 10, "NOR": 1820, "PVC": 43}, "115": {"NOR": 1953},
    "116": {"APC": 1, "NOR": 2302, "PVC": 109}, "117": {"APC": 1, "NOR": 1534}, "118": {"APC": 96, "PVC": 16, "RBB": 2166},
    "119": {"NOR": 1543, "PVC": 444}, "121": {"APC": 1, "NOR": 1861, "PVC": 1}, "122": {"NOR": 2476},
    "123": {"NOR": 1515, "PVC": 3}, "124": {"APC": 2, "PVC": 47, "RBB": 1531}, "200": {"APC": 30, "NOR": 1743, "PVC": 826},
    "201": {"APC": 30, "NOR": 1625, "PVC": 198}, "202": {"APC": 36, "NOR": 2061, "PVC": 19}, "203": {"NOR": 2529, "PVC": 444},
    "205": {"APC": 3, "NOR": 2571, "PVC": 71},
    "207": {"APC": 107, "LBB": 1457, "PVC": 105, "RBB": 86, "VEB": 105, "VFW": 472},
    "208": {"NOR": 1586, "PVC": 992}, "209": {"APC": 383, "NOR": 2621, "PVC": 1},
    "210": {"NOR": 2423, "PVC": 194, "VEB": 1}, "212": {"NOR": 923, "RBB": 1825}, "213": {"APC": 25, "NOR": 2641, "PVC": 220},
    "214": {"LBB": 2003, "PVC": 256}, "215": {"APC": 3, "NOR": 3195, "PVC": 164}, "217": {"NOR": 244, "PAB": 1542, "PVC": 162},
    "219": {"APC": 7, "NOR": 2082, "PVC": 64}, "220": {"APC": 94, "NOR": 1954}, "221": {"NOR": 2031, "PVC": 396},
    "222": {"APC": 208, "NOR": 2062}, "223": {"APC": 72, "NOR": 2029, "PVC": 473}, "228": {"APC": 3, "NOR": 1688, "PVC": 362},
    "230": {"NOR": 2255, "PVC": 1}, "231": {"APC": 1, "NOR": 314, "PVC": 2, "RBB": 1254}, "232": {"APC": 1382, "RBB": 397},
    "233": {"APC": 7, "NOR": 2230, "PVC": 831}, "234": {"NOR": 2700, "PVC": 3},
}
#: Beats of one class in one record are capped here (the structure, not the bulk, decides the folds).
CAP = 150


def mitdb_like_beats(params: dict, labels: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beats-like table (beat_id, record, class index) with MIT-BIH's classes per record, for ``params``.

    The records are ``ingest.records``; ``aami`` leaves out the paced records (as ``training.meta``
    does); VFW exists only when ``segment.extra_symbols`` keeps ``!``; binary is AAMI N vs the rest.
    """
    names = class_names(labels)
    records = sorted(MITDB_AAMI) if params["ingest"]["records"] == "all" else sorted(params["ingest"]["records"])
    ids, recs, ys = [], [], []
    for rec in records:
        if labels == "jun8":
            counts = {c: n for c, n in MITDB_JUN8[rec].items()
                      if c != "VFW" or "!" in params["segment"]["extra_symbols"]}
        else:
            if rec in PACED_RECORDS:
                continue
            counts = MITDB_AAMI[rec]
            if labels == "binary":
                counts = {"normal": counts.get("N", 0), "abnormal": sum(n for c, n in counts.items() if c != "N")}
        for c, n in counts.items():
            n = min(n, CAP)
            ids += [f"{rec}-{c}-{i}" for i in range(n)]
            recs += [rec] * n
            ys += [names.index(c)] * n
    return np.array(ids, dtype=object), np.array(recs, dtype=object), np.array(ys, dtype=np.int64)


def _profiled(profile: Path) -> dict:
    return apply_profile(BASE, yaml.safe_load(profile.read_text()) or {}, where=str(profile))


@pytest.mark.parametrize("profile", [None, *PROFILES], ids=lambda p: p.name if p else "params.yaml")
def test_every_run_of_every_profile_plans_its_folds(profile):
    params = BASE if profile is None else _profiled(profile)
    train = validate_params(params).train
    for run in train.runs:
        cfg = run_config(train, run)
        ids, recs, y = mitdb_like_beats(params, cfg.labels)
        classes = class_names(cfg.labels)
        assert set(np.unique(y)) == set(range(len(classes))) or cfg.labels == "aami", (run, "a class has no beats")
        trained = tuple(classes.index(c) for c in cfg.train_classes)
        plan = make_folds(ids, recs, y, scheme=cfg.folds, k=cfg.k, seed=cfg.seed,
                          validation_fraction=cfg.validation_fraction, classes=classes, trained=trained)
        assert plan.k == cfg.k and len(plan.folds) == cfg.k
        check_plan(plan, ids, recs, y, classes=classes)
        if cfg.folds == "ds1ds2":
            assert set(recs[plan.folds[0].test]) <= set(DS2) and set(recs[plan.folds[0].train]) <= set(DS1)


def test_gpu_paper_profile_runs_only_its_run_with_the_papers_k():
    params = _profiled(REPO / "profiles" / "gpu-paper.yaml")
    assert list(params["train"]["runs"]) == ["vgg-jun8-beat"]
    assert params["train"]["folds"]["k"] == {"beat": 10, "record": 5}
    assert params["segment"]["extra_symbols"] == ["!"] and params["train"]["vgg"]["width"] == 1.0


def test_quick_profile_keeps_the_default_runs():
    params = _profiled(REPO / "profiles" / "quick.yaml")
    assert list(params["train"]["runs"]) == list(BASE["train"]["runs"])
    assert params["train"]["folds"]["k"] == {"beat": 2, "record": 2} and len(params["ingest"]["records"]) == 10


def test_a_profile_must_say_when_it_drops_structure():
    with pytest.raises(ConfigError, match=r"profile: train.folds.k: replaces a mapping by a scalar; list 'train.folds.k'"):
        apply_profile(BASE, {"train": {"folds": {"k": 10}}})
    merged = apply_profile(BASE, {"replace": ["train.folds.k"], "train": {"folds": {"k": 10}}})
    assert merged["train"]["folds"] == {**BASE["train"]["folds"], "k": 10}
    with pytest.raises(ConfigError, match=r"replace: train.runs is not set by the profile"):
        apply_profile(BASE, {"replace": ["train.runs"]})
    assert BASE == yaml.safe_load(PARAMS.read_text()), "inputs are not changed"


def test_overlay_keeps_comments_and_order_and_writes_a_valid_file(tmp_path):
    out = tmp_path / "params.yaml"
    overlay_file(PARAMS, REPO / "profiles" / "gpu-paper.yaml", out)
    text = out.read_text()
    base_comments = [line.split("#", 1)[1] for line in PARAMS.read_text().splitlines()
                     if line.lstrip().startswith("#")]
    assert all(c in text for c in base_comments)
    assert "  engine: raster             # raster (fast, default) | matplotlib (the published recipe)" in text
    assert "  extra_symbols: [\"!\"]       # non-beat symbols kept as beats" in text
    assert list(yaml.safe_load(text)) == list(BASE) and yaml.safe_load(text) == _profiled(REPO / "profiles" / "gpu-paper.yaml")
    load_config(out)
    empty = _write(tmp_path / "empty.yaml", {})
    assert overlay_text(PARAMS, empty) == PARAMS.read_text(), "an empty profile changes no byte"


def test_an_overlay_that_breaks_the_schema_writes_nothing(tmp_path):
    bad = _write(tmp_path / "bad.yaml", {"render": {"sise": 64}})
    out = tmp_path / "out.yaml"
    with pytest.raises(ConfigError, match=r"render.sise: unknown key"):
        overlay_file(PARAMS, bad, out)
    assert not out.exists()
