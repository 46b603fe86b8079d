"""The settings of one training run, resolved from the validated ``train`` section of params.yaml.

The keys, types and ranges are the schema's (:mod:`pipelines.core.schema`, docs/params.md).

Examples
--------
>>> train = {"seed": 1, "folds": {"k": 2, "validation_fraction": 0.1}, "crops": "originals",
...          "class_weight": "balanced", "mixed_precision": "fp32", "shuffle_buffer": 64,
...          "runs": {"r": {"model": "small_cnn", "method": "annotations", "folds": "record", "labels": "aami"}},
...          "small_cnn": {"input_size": 32, "batch_size": 8, "epochs": 1, "learning_rate": 0.001,
...                        "patience": 1, "max_train_images": 0}}
>>> cfg = run_config(train, "r")
>>> cfg.model, cfg.k, cfg.input_size, cfg.width, cfg.train_classes, cfg.rhythm
('small_cnn', 2, 32, 1.0, ('N', 'S', 'V', 'F'), False)
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pipelines import ConfigError, class_names, params_hash, validate_section

#: Classes no run trains unless ``train.runs.<run>.train_classes`` names them, per label scheme: AAMI Q
#: (paced, fusion of paced, unclassifiable beats) counts only toward detection in EC57.
UNTRAINED_BY_DEFAULT: dict[str, tuple[str, ...]] = {"aami": ("Q",)}


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
    lr_schedule: str = "constant"
    class_weight_max_ratio: float = 0.0
    rhythm: bool = False
    train_classes: tuple[str, ...] = ()
    decision_prior: float | str = "auto"
    selection_min_beats: int = 50
    decision_floor: str = "none"
    rhythm_features: tuple[str, ...] = ()
    template_features: tuple[str, ...] = ()
    #: a fold side (training, validation, test) is decoded once, before training, and held in memory when
    #: it fits this many MB (speed only: the batches are the same either way; make_dataset's ``cache``)
    image_cache_mb: int = 1024
    image_dropout: float = 0.0
    timed_classes: tuple[str, ...] = ()
    rhythm_units: int = 16
    rhythm_standardize: bool = False
    #: members per fold, each trained from its own seed; the fold's model averages their probabilities
    ensemble: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def branch_features(self) -> tuple[str, ...]:
        """The second input of a rhythm run: ``rhythm_features`` then ``template_features`` (the rhythm-only
        baseline gets ``rhythm_features`` alone)."""
        return self.rhythm_features + self.template_features

    @property
    def params_hash(self) -> str:
        return params_hash(self.as_dict())


def _train_classes(chosen: list[str] | None, labels: str, where: str) -> tuple[str, ...]:
    """The classes a run trains, in the label scheme's order (the schema checked the list's shape).

    >>> _train_classes(None, "aami", "r"), _train_classes(["V", "N"], "aami", "r")
    (('N', 'S', 'V', 'F'), ('N', 'V'))
    """
    every = class_names(labels)
    if chosen is None:
        return tuple(c for c in every if c not in UNTRAINED_BY_DEFAULT.get(labels, ()))
    if not set(chosen) <= set(every):
        raise ConfigError(f"params.yaml: {where}.train_classes: {sorted(set(chosen) - set(every))} are not "
                          f"classes of labels {labels!r} {list(every)}")
    return tuple(c for c in every if c in chosen)


def _timed(spec: Any, run: str) -> tuple[str, ...]:
    """``timed_classes`` of a run, checked: rhythm runs only, trained classes other than the first."""
    timed = tuple(spec.timed_classes)
    if not timed:
        return ()
    where = f"params.yaml: train.runs.{run}.timed_classes"
    if not spec.rhythm:
        raise ConfigError(f"{where}: needs rhythm: true (a timed class is told apart by its rhythm)")
    trained = _train_classes(spec.train_classes, spec.labels, f"train.runs.{run}")
    bad = [c for c in timed if c not in trained[1:]]
    if bad:
        raise ConfigError(f"{where}: {bad} are not trained classes other than {trained[0]!r} {list(trained)}")
    return timed


def run_config(train: Mapping[str, Any] | Any, run: str) -> RunConfig:
    """Resolve run ``run`` of the ``train`` params section.

    ``train`` is the section as a mapping (validated here with :func:`pipelines.validate_section`)
    or the already validated section (``pipelines.load_config(path).train``).

    Raises
    ------
    ConfigError
        A key of the section is unknown, ill-typed or out of range (named by its dotted path), or
        there is no run ``run``.
    """
    if isinstance(train, Mapping):
        train = validate_section("train", train)
    if run not in train.runs:
        raise ConfigError(f"params.yaml: no run {run!r} under train.runs (have {sorted(train.runs)})")
    spec = train.runs[run]
    hyper = train.model_params(spec.model)
    return RunConfig(
        run=run, model=spec.model, method=spec.method, folds=spec.folds, labels=spec.labels,
        k=train.folds.k_for(spec.folds),
        seed=train.seed,
        validation_fraction=float(train.folds.validation_fraction),
        crops=spec.crops or train.crops,
        class_weight=spec.class_weight or train.class_weight,
        mixed_precision=train.mixed_precision,
        shuffle_buffer=train.shuffle_buffer,
        image_cache_mb=train.image_cache_mb,
        input_size=hyper.input_size,
        batch_size=spec.batch_size or hyper.batch_size,
        epochs=spec.epochs or hyper.epochs,
        learning_rate=float(hyper.learning_rate if spec.learning_rate is None else spec.learning_rate),
        lr_schedule=hyper.lr_schedule,
        patience=hyper.patience,
        max_train_images=hyper.max_train_images if spec.max_train_images is None else spec.max_train_images,
        width=float(getattr(hyper, "width", 1.0)),
        bn_momentum=float(getattr(hyper, "bn_momentum", 0.99)),
        class_weight_max_ratio=float(train.class_weight_max_ratio),
        rhythm=spec.rhythm,
        train_classes=_train_classes(spec.train_classes, spec.labels, f"train.runs.{run}"),
        decision_prior=train.decision_prior if train.decision_prior == "auto" else float(train.decision_prior),
        selection_min_beats=train.selection_min_beats,
        decision_floor=train.decision_floor,
        rhythm_features=tuple(train.rhythm_features),   # the rhythm branch's, and the rhythm-only baseline's
        template_features=tuple(train.template_features if spec.template_features is None
                                else spec.template_features),   # the rhythm branch's, and the RR + template baseline's
        image_dropout=(float(hyper.image_dropout if spec.image_dropout is None else spec.image_dropout)
                       if spec.rhythm else 0.0),      # image-only runs: no second input to lean on
        timed_classes=_timed(spec, run),
        rhythm_units=int(hyper.rhythm_units if spec.rhythm_units is None else spec.rhythm_units),
        rhythm_standardize=bool(spec.rhythm and (hyper.rhythm_standardize if spec.rhythm_standardize is None
                                                 else spec.rhythm_standardize)),
        ensemble=spec.ensemble,
    )
