"""The settings of one training run, resolved and checked from the ``train`` section of params.yaml.

Examples
--------
>>> train = {"seed": 1, "folds": {"k": 2, "validation_fraction": 0.1}, "crops": "originals",
...          "class_weight": "balanced", "mixed_precision": "fp32", "shuffle_buffer": 64,
...          "runs": {"r": {"model": "small_cnn", "method": "annotations", "folds": "record", "labels": "aami"}},
...          "small_cnn": {"input_size": 32, "batch_size": 8, "epochs": 1, "learning_rate": 0.001,
...                        "patience": 1, "max_train_images": 0}}
>>> cfg = run_config(train, "r")
>>> cfg.model, cfg.k, cfg.input_size, cfg.width
('small_cnn', 2, 32, 1.0)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines import SCHEMES, ConfigError, params_hash

from .folds import FOLD_SCHEMES
from .models import MODELS, PRECISIONS

#: Hyperparameter keys of ``train.<model>`` (optional ``width`` and ``bn_momentum`` for vgg only).
MODEL_KEYS = {"input_size", "batch_size", "epochs", "learning_rate", "patience", "max_train_images"}


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's results (its hash keys the resume cache)."""

    run: str
    model: str
    method: str
    folds: str
    labels: str
    k: int
    seed: int
    validation_fraction: float
    crops: str
    class_weight: str
    mixed_precision: str
    shuffle_buffer: int
    input_size: int
    batch_size: int
    epochs: int
    learning_rate: float
    patience: int
    max_train_images: int
    width: float = 1.0
    bn_momentum: float = 0.99
    class_weight_max_ratio: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def params_hash(self) -> str:
        return params_hash(self.as_dict())


def _get(section: dict, key: str, where: str) -> Any:
    if not isinstance(section, dict) or key not in section:
        raise ConfigError(f"params.yaml: {where}.{key} is missing")
    return section[key]


def _int(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"params.yaml: {where} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _choice(value: Any, where: str, choices) -> str:
    if value not in choices:
        raise ConfigError(f"params.yaml: {where} must be one of {list(choices)}, got {value!r}")
    return str(value)


def _fold_k(folds: dict[str, Any], scheme: str) -> int:
    """K of ``scheme``: ``train.folds.k`` as one integer for every scheme, or per scheme as
    ``{beat: 10, record: 5}``; ``ds1ds2`` is always one fold (train DS1, test DS2).

    >>> _fold_k({"k": {"beat": 10, "record": 5}}, "beat"), _fold_k({"k": 3}, "record"), _fold_k({"k": 3}, "ds1ds2")
    (10, 3, 1)
    """
    value = _get(folds, "k", "train.folds")
    if isinstance(value, dict):
        unknown = set(value) - {"beat", "record"}
        if unknown:
            raise ConfigError(f"params.yaml: unknown key(s) {sorted(unknown)} in train.folds.k (beat, record)")
        ks = {s: _int(v, f"train.folds.k.{s}", 2) for s, v in value.items()}
        if scheme == "ds1ds2":
            return 1
        if scheme not in ks:
            raise ConfigError(f"params.yaml: train.folds.k.{scheme} is missing")
        return ks[scheme]
    k = _int(value, "train.folds.k", 2)
    return 1 if scheme == "ds1ds2" else k


def run_config(train: dict[str, Any], run: str) -> RunConfig:
    """Resolve run ``run`` of the ``train`` params section; raise :class:`ConfigError` naming bad keys."""
    runs = _get(train, "runs", "train")
    if run not in (runs or {}):
        raise ConfigError(f"params.yaml: no run {run!r} under train.runs (have {sorted(runs or {})})")
    spec = runs[run]
    where = f"train.runs.{run}"
    model = _choice(_get(spec, "model", where), f"{where}.model", MODELS)
    hyper = _get(train, model, "train")
    unknown = set(hyper) - MODEL_KEYS - ({"width", "bn_momentum"} if model == "vgg" else set())
    if unknown:
        raise ConfigError(f"params.yaml: unknown key(s) {sorted(unknown)} in train.{model}")
    folds = _get(train, "folds", "train")
    fraction = _get(folds, "validation_fraction", "train.folds")
    if not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise ConfigError(f"params.yaml: train.folds.validation_fraction must be in [0, 1), got {fraction!r}")
    lr = _get(hyper, "learning_rate", f"train.{model}")
    if not isinstance(lr, (int, float)) or lr <= 0:
        raise ConfigError(f"params.yaml: train.{model}.learning_rate must be > 0, got {lr!r}")
    width = hyper.get("width", 1.0) if model == "vgg" else 1.0
    if not isinstance(width, (int, float)) or width <= 0:
        raise ConfigError(f"params.yaml: train.vgg.width must be > 0, got {width!r}")
    momentum = hyper.get("bn_momentum", 0.99) if model == "vgg" else 0.99
    if not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
        raise ConfigError(f"params.yaml: train.vgg.bn_momentum must be in [0, 1), got {momentum!r}")
    max_ratio = train.get("class_weight_max_ratio", 0)
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, (int, float)) or not (max_ratio == 0 or max_ratio >= 1):
        raise ConfigError(f"params.yaml: train.class_weight_max_ratio must be 0 (no cap) or >= 1, got {max_ratio!r}")
    scheme = _choice(_get(spec, "folds", where), f"{where}.folds", FOLD_SCHEMES)
    return RunConfig(
        run=run, model=model, method=str(_get(spec, "method", where)),
        folds=scheme,
        labels=_choice(_get(spec, "labels", where), f"{where}.labels", SCHEMES),
        k=_fold_k(folds, scheme),
        seed=_int(_get(train, "seed", "train"), "train.seed", 0),
        validation_fraction=float(fraction),
        crops=_choice(_get(train, "crops", "train"), "train.crops", ("originals", "all")),
        class_weight=_choice(_get(train, "class_weight", "train"), "train.class_weight", ("balanced", "none")),
        mixed_precision=_choice(_get(train, "mixed_precision", "train"), "train.mixed_precision", PRECISIONS),
        shuffle_buffer=_int(_get(train, "shuffle_buffer", "train"), "train.shuffle_buffer", 1),
        input_size=_int(_get(hyper, "input_size", f"train.{model}"), f"train.{model}.input_size", 8),
        batch_size=_int(_get(hyper, "batch_size", f"train.{model}"), f"train.{model}.batch_size", 1),
        epochs=_int(_get(hyper, "epochs", f"train.{model}"), f"train.{model}.epochs", 1),
        learning_rate=float(lr),
        patience=_int(_get(hyper, "patience", f"train.{model}"), f"train.{model}.patience", 0),
        max_train_images=_int(_get(hyper, "max_train_images", f"train.{model}"), f"train.{model}.max_train_images", 0),
        width=float(width),
        bn_momentum=float(momentum),
        class_weight_max_ratio=float(max_ratio),
    )
