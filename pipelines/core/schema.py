"""The schema of ``params.yaml``: one pydantic model per section (and per nested mapping).

Every model is strict and closed (:class:`Section`): an unknown key is an error, and a value of the
wrong type is an error, never coerced (``"false"`` is not a boolean, ``128.9`` is not an integer,
``true`` is not a number; an integer is accepted where a float is expected). Ranges and choices are
declared on the fields. The names allowed for choices are the pipeline's own (``tests/test_params.py``
checks them against the modules that use them); this module imports nothing of the pipeline so that
every stage can validate the whole file cheaply.

A section is optional in a file (a test may write ``{"train": ...}`` only), but a section that is
present is complete: its required keys must be there. :func:`pipelines.core.params.load_params`
turns :class:`pydantic.ValidationError` into :class:`~pipelines.core.errors.ConfigError`.

Extending: a new knob is a field on its section's model; a new nested mapping is a new
:class:`Section` subclass; a new model ``train.<name>`` is a :class:`ModelParams` subclass, a field
of :class:`TrainParams` named after it, and its name in :data:`MODEL_NAMES`.

Examples
--------
>>> RenderParams.model_validate({"size": 64, "crops": {"size": 48, "offsets": [0, 8, 16]}}).crops.size
48
>>> from pydantic import ValidationError
>>> try:
...     SegmentParams.model_validate({"windw": "jun"})
... except ValidationError as exc:
...     print(exc.errors()[0]["type"], exc.errors()[0]["loc"])
extra_forbidden ('windw',)
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StrictInt, StrictStr, Tag
from pydantic import model_validator

#: ``segment.window`` kinds (``pipelines.signal.windows.WINDOW_KINDS``).
WindowKind = Literal["jun", "midpoint", "fixed"]
#: Segmentation methods (``pipelines.segment.METHODS``); ``train.runs.<run>.method``.
Method = Literal["annotations", "christov"]
#: ``render.engine`` (``pipelines.render.ENGINES``).
Engine = Literal["raster", "matplotlib"]
#: ``render.crops.interpolation`` (``pipelines.imaging.crops.INTERPOLATIONS``).
Interpolation = Literal["linear", "lanczos", "area", "cubic", "nearest"]
#: ``render.compression`` Parquet codecs (``pipelines.render.COMPRESSIONS``).
Compression = Literal["zstd", "snappy", "gzip", "brotli", "lz4", "none"]
#: Label schemes (``pipelines.signal.labels.SCHEMES``).
LabelScheme = Literal["aami", "jun8", "binary"]
#: Fold schemes (``training.folds.FOLD_SCHEMES``).
FoldScheme = Literal["beat", "record", "ds1ds2"]
#: ``train.mixed_precision`` (``training.models.PRECISIONS``).
Precision = Literal["auto", "fp32", "mixed_float16", "mixed_bfloat16"]
#: Model names (``training.models.MODELS``): each has a ``train.<name>`` section.
ModelName = Literal["small_cnn", "vgg", "crnn"]
MODEL_NAMES: tuple[str, ...] = ("small_cnn", "vgg", "crnn")

#: A run name is a DVC stage key (``train@<name>``) and a directory name.
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
Milliseconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]   # any finite quantity >= 0
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _fraction(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{value} is not a fraction in [0, 1] (write 0.9905, not 99.05)")
    return value


Fraction = Annotated[float, AfterValidator(_fraction)]


class KeyProblem(ValueError):
    """A cross-key rule's failure, naming the key (``path``, below the model that checks it)."""

    def __init__(self, *path: str | int, problem: str):
        self.path, self.problem = tuple(path), problem
        super().__init__(problem)


class Section(BaseModel):
    """Base of every params model: strict types, unknown keys refused, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# ----------------------------------------------------------------------------------------------- ingest

def _all_only(value: str) -> str:
    if value != "all":
        raise ValueError(f"expected 'all' or a list of record names, got {value!r}")
    return value


def _records_kind(value: Any) -> str:
    return "all" if isinstance(value, str) else "names"


class IngestParams(Section):
    database: NonEmptyStr
    version: NonEmptyStr
    records: Annotated[Union[Annotated[StrictStr, AfterValidator(_all_only), Tag("all")],
                             Annotated[list[Union[StrictStr, StrictInt]], Field(min_length=1), Tag("names")]],
                       Discriminator(_records_kind)]
    annotator: NonEmptyStr
    fs: Optional[Annotated[Union[StrictInt, float], Field(gt=0)]] = None
    checksums: Optional[NonEmptyStr]

    @model_validator(mode="after")
    def _unique_records(self) -> "IngestParams":
        if isinstance(self.records, list):
            names = [str(r) for r in self.records]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise KeyProblem("records", problem=f"lists {', '.join(twice)} twice")
        return self


# ---------------------------------------------------------------------------------------------- segment

class ChristovSection(Section):
    refine_ms: Milliseconds = 50.0


class QualitySection(Section):
    """``segment.quality``: the beat screen (``pipelines.signal.quality.QualitySpec``)."""

    flat_mv: Milliseconds = 0.05          # millivolts, >= 0 and finite like the milliseconds
    max_mv: Milliseconds = 15.0
    saturated_ms: Optional[Milliseconds] = None

    @model_validator(mode="after")
    def _ordered(self) -> "QualitySection":
        if self.max_mv <= self.flat_mv:
            raise KeyProblem("max_mv", problem=f"{self.max_mv} must exceed flat_mv ({self.flat_mv})")
        return self


def _low_high(pair: list[float]) -> list[float]:
    if not pair[0] < pair[1]:
        raise ValueError(f"expected [low, high] with low < high, got {pair}")
    return pair


LowHigh = Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=2, max_length=2),
                    AfterValidator(_low_high)]


class TemplateSection(Section):
    """``segment.template``: beat morphology, record-relative and absolute
    (``pipelines.signal.template.TemplateSpec``)."""

    before_ms: Milliseconds = 250.0
    after_ms: Milliseconds = 400.0
    qrs_before_ms: Milliseconds = 80.0
    qrs_after_ms: Milliseconds = 120.0
    band_hz: LowHigh = [0.5, 40.0]
    morph_qrs_ms: LowHigh = [-50.0, 100.0]     # absolute morphology: QRS samples, ms around R (may start before R)
    morph_t_ms: LowHigh = [150.0, 380.0]       # T-wave samples, ms after R

    @model_validator(mode="after")
    def _qrs_inside(self) -> "TemplateSection":
        if not (0 < self.qrs_before_ms <= self.before_ms - 50.0 and 0 < self.qrs_after_ms < self.after_ms):
            raise KeyProblem("qrs_before_ms", problem=(
                f"the QRS part (-{self.qrs_before_ms}..{self.qrs_after_ms} ms) must lie inside the window "
                f"(-{self.before_ms}..{self.after_ms} ms), 50 ms clear of its start (the baseline)"))
        if self.band_hz[0] <= 0:
            raise KeyProblem("band_hz", problem=f"the low edge must be > 0 Hz, got {self.band_hz[0]}")
        for key in ("morph_qrs_ms", "morph_t_ms"):
            start, end = getattr(self, key)
            if not (-(self.before_ms - 50.0) <= start and end < self.after_ms):
                raise KeyProblem(key, problem=(
                    f"[{start}, {end}] ms must lie inside the window (-{self.before_ms}..{self.after_ms} ms), "
                    f"50 ms clear of its start (the baseline)"))
        return self


class SegmentParams(Section):
    lead: NonEmptyStr = "MLII"
    window: WindowKind = "jun"
    jun_gap_ms: Milliseconds = 55.6
    fixed_before_ms: Milliseconds = 250.0
    fixed_after_ms: Milliseconds = 400.0
    match_tolerance_ms: Milliseconds = 150.0
    extra_symbols: list[NonEmptyStr] = []
    christov: ChristovSection = ChristovSection()
    quality: QualitySection = QualitySection()
    template: TemplateSection = TemplateSection()
    scheduler: Optional[NonEmptyStr] = None          # execution only: where records run, not what is written
    workers: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _fixed_holds_r(self) -> "SegmentParams":
        if self.window == "fixed" and self.fixed_after_ms <= 0:
            raise KeyProblem("fixed_after_ms", problem="must be > 0 so that a fixed window holds its R-peak")
        return self


# ----------------------------------------------------------------------------------------------- render

class CropsSection(Section):
    materialise: bool = True
    size: Annotated[int, Field(gt=0)] = 96
    offsets: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=3, max_length=3)] = [0, 16, 32]
    interpolation: Interpolation = "linear"
    skip_symbols: list[NonEmptyStr] = ["N"]


class ScaleSection(Section):
    """``render.scale``: how time and amplitude map to pixels (:class:`pipelines.imaging.scale.ImageScale`)."""

    time: Literal["stretch", "fixed"] = "stretch"
    ms_per_px: PositiveFloat = 12.0
    r_column: Annotated[float, Field(ge=0, le=1)] = 0.5
    amplitude: Literal["beat", "fixed", "record"] = "beat"
    mv_range: LowHigh = [-1.5, 2.5]
    rel_range: LowHigh = [-1.0, 1.5]
    center: bool = True


class RenderParams(Section):
    engine: Engine = "raster"
    size: Annotated[int, Field(ge=8, le=4096)] = 128
    margin: Annotated[float, Field(ge=0, lt=0.5)] = 0.05
    line_width: PositiveFloat = 1.5
    scale: ScaleSection = ScaleSection()
    crops: CropsSection = CropsSection()
    shard_mb: PositiveFloat = 100.0
    row_group_rows: Annotated[int, Field(ge=1)] = 4096
    compression: Compression = "zstd"
    png_level: Annotated[int, Field(ge=0, le=9)] = 2
    scheduler: Optional[NonEmptyStr] = None
    workers: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _crops_fit(self) -> "RenderParams":
        if self.engine == "matplotlib" and (self.scale.time, self.scale.amplitude) != ("stretch", "beat"):
            raise KeyProblem("scale", problem="the matplotlib engine draws the recipe's scales only "
                             "(time: stretch, amplitude: beat); use engine: raster")
        crop, size = self.crops.size, self.size
        if crop > size:
            raise KeyProblem("crops", "size", problem=f"{crop} is larger than render.size={size}")
        if any(o + crop > size for o in self.crops.offsets):
            raise KeyProblem("crops", "offsets", problem=f"{self.crops.offsets} put a {crop}-pixel crop outside the "
                             f"{size}-pixel image")
        return self


# ---------------------------------------------------------------------------------------------- gallery

class GalleryParams(Section):
    per_class: Annotated[int, Field(ge=1)] = 6


# ------------------------------------------------------------------------------------------------ paper

HexColour = Annotated[StrictStr, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
#: ``paper.baseline`` (``pipelines.printout.strip.BASELINES``).
PaperBaseline = Literal["median", "none"]
#: A paper variant name: a directory name, never ``clean`` (the undistorted strips).
VARIANT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class GridColourDistortion(Section):
    colours: Annotated[list[HexColour], Field(min_length=1)]


class RotateDistortion(Section):
    max_degrees: Annotated[float, Field(gt=0, le=45)]


class CreaseDistortion(Section):
    darkness: Annotated[float, Field(gt=0, le=1)]
    width_mm: PositiveFloat


class LightingDistortion(Section):
    strength: Annotated[float, Field(gt=0, lt=1)]


class BlurDistortion(Section):
    sigma_px: PositiveFloat


class NoiseDistortion(Section):
    sigma: PositiveFloat


class JpegDistortion(Section):
    quality: Annotated[int, Field(ge=1, le=100)]


class DistortionSet(Section):
    """One ``paper.variants.<name>``: the distortions applied (``pipelines.printout.distort.DISTORTIONS``)."""

    grid_colour: Optional[GridColourDistortion] = None
    rotate: Optional[RotateDistortion] = None
    crease: Optional[CreaseDistortion] = None
    lighting: Optional[LightingDistortion] = None
    blur: Optional[BlurDistortion] = None
    noise: Optional[NoiseDistortion] = None
    jpeg: Optional[JpegDistortion] = None

    @model_validator(mode="after")
    def _some(self) -> "DistortionSet":
        if not any(getattr(self, name) is not None for name in type(self).model_fields):
            raise ValueError("give at least one distortion")
        return self


class PaperParams(Section):
    """``paper``: ECG printouts of every record (``pipelines.paper``, ``docs/paper.md``)."""

    seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    mm_per_s: PositiveFloat = 25.0
    mm_per_mv: PositiveFloat = 10.0
    dpi: Annotated[float, Field(ge=50, le=600)] = 200.0
    lead_mm: Annotated[float, Field(ge=10)] = 30.0
    grid_colour: HexColour = "#f08080"
    line_px: Annotated[int, Field(ge=1, le=8)] = 2
    baseline: PaperBaseline = "median"
    leads: Optional[Annotated[list[NonEmptyStr], Field(min_length=1)]] = None
    strips_per_record: Annotated[int, Field(ge=0)] = 0
    seed: Annotated[int, Field(ge=0)] = 0
    variants: dict[str, DistortionSet] = {}
    shard_mb: PositiveFloat = 100.0
    row_group_rows: Annotated[int, Field(ge=1)] = 16
    compression: Compression = "zstd"
    png_level: Annotated[int, Field(ge=0, le=9)] = 1
    gallery_strips: Annotated[int, Field(ge=1)] = 1
    scheduler: Optional[NonEmptyStr] = None
    workers: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _variant_names(self) -> "PaperParams":
        for name in self.variants:
            if name == "clean" or not VARIANT_NAME.match(name):
                raise KeyProblem("variants", name, problem="a variant name is [a-z][a-z0-9_]* and not 'clean' "
                                                           "(the undistorted strips)")
        return self


# ------------------------------------------------------------------------------------------------ train

class PerSchemeK(Section):
    """``train.folds.k`` per fold scheme (``ds1ds2`` is always one fold)."""

    beat: Annotated[int, Field(ge=2)]
    record: Annotated[int, Field(ge=2)]


def _k_kind(value: Any) -> str:
    return "per scheme" if isinstance(value, (dict, PerSchemeK)) else "one K"


class FoldsSection(Section):
    k: Annotated[Union[Annotated[Annotated[int, Field(ge=2)], Tag("one K")],
                       Annotated[PerSchemeK, Tag("per scheme")]], Discriminator(_k_kind)]
    validation_fraction: Annotated[float, Field(ge=0, lt=1)]

    def k_for(self, scheme: str) -> int:
        """K of ``scheme`` (1 for ``ds1ds2``).

        >>> FoldsSection(k={"beat": 10, "record": 5}, validation_fraction=0.1).k_for("record")
        5
        """
        if scheme == "ds1ds2":
            return 1
        return self.k if isinstance(self.k, int) else getattr(self.k, scheme)


#: ``pipelines.signal.rhythm.RHYTHM_FEATURES`` (tests/test_params.py checks that they agree).
RhythmFeature = Literal["log_pre_local", "log_post_local", "log_pre_record", "log_post_record", "log_local_record",
                        "rr_missing"]

#: The features that transfer between patients (the record-relative ones fit DS1's patients, not DS2's).
DEFAULT_RHYTHM_FEATURES = ("log_pre_local", "log_post_local", "rr_missing")

#: ``pipelines.signal.template.TEMPLATE_COLUMNS`` (tests/test_params.py checks that they agree).
TemplateFeature = Literal["tpl_corr_qrs", "tpl_corr", "tpl_rms", "tpl_rms_qrs", "tpl_ptp", "tpl_slope", "tpl_width",
                          "tpl_area", "tpl_max", "tpl_min", "tpl_twave",
                          "mor_q0", "mor_q1", "mor_q2", "mor_q3", "mor_q4", "mor_q5", "mor_q6", "mor_q7", "mor_q8",
                          "mor_q9", "mor_t0", "mor_t1", "mor_t2", "mor_t3", "mor_t4", "mor_t5", "mor_t6", "mor_t7",
                          "mor_t8", "mor_qrs_ms"]


class RunSection(Section):
    """One training run (``train.runs.<name>``): one DVC stage ``train@<name>``."""

    model: ModelName
    method: Method
    folds: FoldScheme
    labels: LabelScheme
    rhythm: bool = False                               # second input: RR and template features of the shards
    train_classes: Optional[Annotated[list[NonEmptyStr], Field(min_length=2)]] = None   # default: all but AAMI Q
    timed_classes: list[NonEmptyStr] = []             # rhythm runs: classes told from the first by rhythm alone
    crops: Optional[Literal["originals", "all"]] = None          # overrides train.crops for this run
    class_weight: Optional[Literal["balanced", "none"]] = None    # overrides train.class_weight for this run
    epochs: Optional[Annotated[int, Field(ge=1)]] = None         # overrides train.<model>.epochs
    learning_rate: Optional[PositiveFloat] = None                  # overrides train.<model>.learning_rate
    batch_size: Optional[Annotated[int, Field(ge=1)]] = None       # overrides train.<model>.batch_size
    max_train_images: Optional[Annotated[int, Field(ge=0)]] = None   # overrides train.<model>.max_train_images
    image_dropout: Optional[Annotated[float, Field(ge=0, lt=1)]] = None   # overrides train.<model>.image_dropout
    template_features: Optional[list[TemplateFeature]] = None   # overrides train.template_features (rhythm runs)
    rhythm_units: Optional[Annotated[int, Field(ge=1)]] = None   # overrides train.<model>.rhythm_units (rhythm runs)
    rhythm_standardize: Optional[bool] = None                     # overrides train.<model>.rhythm_standardize
    ensemble: Annotated[int, Field(ge=1)] = 1       # members per fold, each from its own seed; probabilities averaged

    @model_validator(mode="after")
    def _distinct_classes(self) -> "RunSection":
        if self.train_classes is not None and len(set(self.train_classes)) != len(self.train_classes):
            raise KeyProblem("train_classes", problem=f"lists a class twice: {self.train_classes}")
        if self.image_dropout is not None and not self.rhythm:
            raise KeyProblem("image_dropout", problem="needs rhythm: true (it drops the image features so that "
                                                      "the second input must carry the decision)")
        for key in ("template_features", "rhythm_units", "rhythm_standardize"):
            if getattr(self, key) is not None and not self.rhythm:
                raise KeyProblem(key, problem="needs rhythm: true (it concerns the second input)")
        if self.template_features and len(set(self.template_features)) != len(self.template_features):
            raise KeyProblem("template_features", problem=f"lists a column twice: {self.template_features}")
        return self


class ModelParams(Section):
    """Hyperparameters of ``train.<model>`` shared by every model."""

    input_size: Annotated[int, Field(ge=8)]
    width: PositiveFloat = 1.0                       # filter/unit multiplier
    batch_size: Annotated[int, Field(ge=1)]
    epochs: Annotated[int, Field(ge=1)]
    learning_rate: PositiveFloat
    lr_schedule: Literal["constant", "cosine"] = "constant"   # cosine: decays to 0 over the run's epochs
    image_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0  # rhythm runs: drop a beat's image features (modality)
    rhythm_units: Annotated[int, Field(ge=1)] = 16            # rhythm runs: units of the branch's dense layer
    rhythm_standardize: bool = False                          # rhythm runs: standardise the second input (training side)
    patience: Annotated[int, Field(ge=0)]
    max_train_images: Annotated[int, Field(ge=0)]


class VggParams(ModelParams):
    bn_momentum: Annotated[float, Field(ge=0, lt=1)] = 0.99


def _max_ratio(value: float) -> float:
    if not (value == 0 or value >= 1):
        raise ValueError(f"must be 0 (no cap) or >= 1, got {value}")
    return value


class TrainParams(Section):
    seed: Annotated[int, Field(ge=0)]
    folds: FoldsSection
    crops: Literal["originals", "all"]
    class_weight: Literal["balanced", "none"]
    class_weight_max_ratio: Annotated[float, AfterValidator(_max_ratio)] = 0.0
    decision_prior: Union[Literal["auto"], Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]] = "auto"
    selection_min_beats: Annotated[int, Field(ge=1)] = 50
    decision_floor: Literal["majority", "none"] = "none"   # auto tau: never below "always the majority" on validation
    rhythm_features: Annotated[list[RhythmFeature], Field(min_length=1)] = list(DEFAULT_RHYTHM_FEATURES)
    template_features: list[TemplateFeature] = []     # rhythm runs' second input also gets these; not the baseline
    runs: Annotated[dict[str, RunSection], Field(min_length=1)]
    small_cnn: Optional[ModelParams] = None
    vgg: Optional[VggParams] = None
    crnn: Optional[ModelParams] = None
    mixed_precision: Precision
    shuffle_buffer: Annotated[int, Field(ge=1)]
    image_cache_mb: Annotated[int, Field(ge=0)] = 1024   # per side; 0 = re-read every epoch

    @model_validator(mode="after")
    def _runs_resolve(self) -> "TrainParams":
        for key in ("rhythm_features", "template_features"):
            names = getattr(self, key)
            if len(set(names)) != len(names):
                raise KeyProblem(key, problem=f"lists a column twice: {names}")
        for name, run in self.runs.items():
            if not RUN_NAME.match(name):
                raise KeyProblem("runs", name, problem="a run name is letters, digits, '_', '.', '-' (a DVC stage key)")
            if getattr(self, run.model) is None:
                raise KeyProblem("runs", name, "model", problem=f"{run.model!r} needs a train.{run.model} section")
        return self

    def model_params(self, model: str) -> ModelParams:
        """The ``train.<model>`` section."""
        return getattr(self, model)


# --------------------------------------------------------------------------------------------- evaluate

class Figures(Section):
    """Figures given for a class, or overall, as fractions in [0, 1]."""

    sensitivity: Optional[Fraction] = None
    specificity: Optional[Fraction] = None
    ppv: Optional[Fraction] = None
    f1: Optional[Fraction] = None
    auc: Optional[Fraction] = None


class ClassFigures(Figures):
    @model_validator(mode="after")
    def _some(self) -> "ClassFigures":
        if not self.model_fields_set:
            raise ValueError("give at least one of sensitivity, specificity, ppv, f1, auc")
        return self


class PublishedEntry(Figures):
    """One published result (``evaluate.published[i]``), figures as fractions."""

    source: NonEmptyStr                       # the citation
    name: Optional[NonEmptyStr] = None        # short label in the tables (default: source)
    checked: Optional[NonEmptyStr] = None     # how the figures were checked (the evaluate stage requires it)
    labels: Optional[LabelScheme] = None
    folds: Optional[FoldScheme] = None
    accuracy: Optional[Fraction] = None
    classes: dict[str, ClassFigures] = {}
    note: Optional[StrictStr] = None


class EvaluateParams(Section):
    published: list[PublishedEntry] = []


# ----------------------------------------------------------------------------------------------- webapp

RunName = Annotated[StrictStr, Field(pattern=RUN_NAME.pattern)]


class WebappParams(Section):
    """The web app (``webapp/``, docs/webapp.md): which trained runs of ``models/`` it serves, where, limits."""

    beat_run: RunName = "small_cnn-ds1ds2-image"        # image-only run: one uploaded beat image
    record_run: RunName = "small_cnn-ds1ds2"            # rhythm-aware run: a whole uploaded record
    host: NonEmptyStr = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    max_image_mb: Annotated[float, Field(gt=0, le=100)] = 5.0
    max_record_mb: Annotated[float, Field(gt=0, le=2000)] = 100.0
    max_image_pixels: Annotated[int, Field(ge=1024)] = 16_000_000
    min_fs: PositiveFloat = 50.0
    max_fs: PositiveFloat = 5000.0


class DigitizeParams(Section):
    """``digitize``: the classical digitiser and its scoring (``pipelines.digitize``, ``docs/digitize.md``)."""

    variants: Annotated[list[NonEmptyStr], Field(min_length=1)] = ["clean"]
    baseline: Literal["pulse", "median"] = "pulse"
    max_skew_degrees: Annotated[float, Field(gt=0, le=45)] = 5.0
    max_gap_ms: Annotated[float, Field(ge=0)] = 40.0
    min_recovered: Annotated[float, Field(ge=0, le=1)] = 0.9
    supersede_px: Annotated[float, Field(ge=0)] = 2.0
    snr_max_shift_s: Annotated[float, Field(ge=0)] = 0.5
    snr_max_offset_mv: Annotated[float, Field(ge=0)] = 1.0
    rpeak_tolerance_ms: Annotated[float, Field(gt=0)] = 150.0
    batch_strips: Annotated[int, Field(ge=1)] = 16
    scheduler: Optional[NonEmptyStr] = None
    workers: Annotated[int, Field(ge=0)] = 0


# ------------------------------------------------------------------------------------------------- file

class Params(Section):
    """The whole ``params.yaml``; each section optional, complete when present."""

    ingest: Optional[IngestParams] = None
    segment: Optional[SegmentParams] = None
    render: Optional[RenderParams] = None
    gallery: Optional[GalleryParams] = None
    paper: Optional[PaperParams] = None
    digitize: Optional[DigitizeParams] = None
    train: Optional[TrainParams] = None
    evaluate: Optional[EvaluateParams] = None
    webapp: Optional[WebappParams] = None


#: Section name -> its model (the top-level keys of params.yaml).
SECTIONS: dict[str, type[Section]] = {
    "ingest": IngestParams, "segment": SegmentParams, "render": RenderParams,
    "gallery": GalleryParams, "paper": PaperParams, "digitize": DigitizeParams, "train": TrainParams, "evaluate": EvaluateParams,
    "webapp": WebappParams,
}
