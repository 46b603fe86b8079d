"""Dataset card (``README.md``) and Croissant metadata (``croissant.json``) of an image dataset.

Both are pure functions of the manifest (:func:`pipelines.formats.shards.build_manifest`), so they are
byte-identical whenever the shards are. The card has Hugging Face YAML front matter (licence,
``configs``: ``originals`` (the default) and ``crops``, each with ``data_files`` per split ``train``
(DS1), ``test`` (DS2) and ``paced``; features), the source and licence of the data with
their citations, the schema, counts, and loading snippets for pandas, pyarrow, dask, tf.data,
Hugging Face ``datasets`` and ``mlcroissant`` that run as written from the repository root.
``croissant.json`` is MLCommons Croissant 1.0: one ``FileSet`` and one ``RecordSet`` per (config,
split), e.g. ``originals-train``, whose ``image`` field reads the PNG bytes out of the ``image``
struct column (``transform: jsonPath bytes``), which ``mlcroissant`` turns into PIL images.

Examples
--------
>>> card = dataset_card({"method": "annotations", "rows": 0, "beats": 0, "bytes": 0, "shards": [],
...     "layout": {"data_dir": "data", "configs": {}},
...     "params": {"engine": "raster", "size": 128, "crops": {"materialise": False}}, "params_hash": "x",
...     "input": {"file": "annotations.parquet", "sha256": "0" * 64, "beats": 0},
...     "counts": {"classes": {"aami": {}, "jun8": {}, "symbol": {}}, "crops": {"0": 0}},
...     "records": {}, "exclusions": {}, "classes": {"aami": [], "jun8": []}})
>>> card.startswith("---\\nlicense: odc-by")
True
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import shards
from ..core.files import atomic_path, sha256_file
from .layout import CONFIGS, DEFAULT_CONFIG, SPLITS, data_files
from .manifest import MANIFEST_NAME

#: Licence of MIT-BIH (PhysioNet), inherited by the images.
LICENSE_ID = "odc-by"
LICENSE_NAME = "Open Data Commons Attribution License v1.0 (ODC-By 1.0)"
LICENSE_URL = "https://opendatacommons.org/licenses/by/1-0/"
SOURCE_URL = "https://physionet.org/content/mitdb/1.0.0/"

#: Works to cite: the database (as PhysioNet asks), PhysioNet itself, and the image recipe.
CITATIONS: tuple[str, ...] = (
    "Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng in Med and Biol "
    "20(3):45-50 (May-June 2001). PMID: 11446209.",
    "Goldberger AL, Amaral LAN, Glass L, Hausdorff JM, Ivanov PCh, Mark RG, Mietus JE, Moody GB, Peng C-K, "
    "Stanley HE. PhysioBank, PhysioToolkit, and PhysioNet: Components of a new research resource for complex "
    "physiologic signals. Circulation 101(23):e215-e220 (2000).",
    "Jun TJ, Nguyen HM, Kang D, Kim D, Kim D, Kim Y-H. ECG arrhythmia classification using a 2-D convolutional "
    "neural network. arXiv:1804.06812 (2018).",
)

#: The Croissant 1.0 JSON-LD context (as in the specification).
CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

_FIELD_DOCS: dict[str, tuple[str, str]] = {
    # column: (croissant dataType, description)
    "beat_id": ("sc:Text", "Beat id '<record>-<r_sample>', as in the beats table."),
    "record": ("sc:Text", "MIT-BIH record name, e.g. '100'."),
    "r_sample": ("sc:Integer", "Sample index (360 Hz) of the beat's R-peak in the record."),
    "symbol": ("sc:Text", "MIT-BIH beat annotation symbol (null: a detection with no reference beat)."),
    "aami": ("sc:Text", "AAMI EC57 class: N, S, V, F or Q (null: none)."),
    "jun8": ("sc:Text", "Jun et al. 2018 class: NOR, PVC, PAB, RBB, LBB, APC, VFW or VEB (null: none)."),
    "rr_pre_ms": ("sc:Float", "Rhythm: ms from the previous R-peak of the record's beat sequence (null: first beat)."),
    "rr_post_ms": ("sc:Float", "Rhythm: ms to the next R-peak (null: last beat)."),
    "rr_local_ms": ("sc:Float", "Rhythm: mean of the up to 10 RR intervals before rr_pre_ms (causal; null for the "
                    "first two beats)."),
    "rr_record_ms": ("sc:Float", "Rhythm: median RR interval of the record."),
    "tpl_corr_qrs": ("sc:Float", "Template: correlation of the beat's QRS with its record's median beat's."),
    "tpl_corr": ("sc:Float", "Template: correlation of the beat with its record's median beat (window "
                 "segment.template before_ms..after_ms around R, default -250..400 ms)."),
    "tpl_rms": ("sc:Float", "Template: RMS of beat minus the record's median beat, in units of the median QRS "
                "peak-to-peak."),
    "tpl_rms_qrs": ("sc:Float", "Template: the same RMS over the QRS (segment.template "
                    "qrs_before_ms..qrs_after_ms, default -80..120 ms)."),
    "tpl_ptp": ("sc:Float", "Template: log of the QRS peak-to-peak ratio, beat / record median beat."),
    "tpl_slope": ("sc:Float", "Template: log of the steepest QRS slope ratio, beat / record median beat."),
    "tpl_width": ("sc:Float", "Template: QRS width ratio, beat / record median beat."),
    "tpl_area": ("sc:Float", "Template: QRS absolute area ratio, beat / record median beat."),
    "tpl_max": ("sc:Float", "Template: the beat's QRS maximum, in units of the median QRS peak-to-peak."),
    "tpl_min": ("sc:Float", "Template: the beat's QRS minimum, in units of the median QRS peak-to-peak."),
    "tpl_twave": ("sc:Float", "Template: mean of beat minus the record's median beat after the QRS."),
    **{f"mor_q{i}": ("sc:Float", f"Morphology: the band-passed beat (mV) at QRS sample {i} of 10, evenly spaced over "
                     "segment.template morph_qrs_ms around R (default -50..100 ms).") for i in range(10)},
    **{f"mor_t{i}": ("sc:Float", f"Morphology: the band-passed beat (mV) at T-wave sample {i} of 9, evenly spaced "
                     "over segment.template morph_t_ms after R (default 150..380 ms).") for i in range(9)},
    "mor_qrs_ms": ("sc:Float", "Morphology: QRS width (ms), samples steeper than 20 % of the beat's steepest QRS "
                   "slope."),
    "crop": ("sc:Integer", "0 = the original image; 1..9 = the nine crops (rows {0,16,32} x columns "
             "{0,16,32}, row-major), resized back to the image size."),
    "image": ("sc:ImageObject", "The beat image: PNG, 8-bit grayscale."),
}

DEFAULT_ROOT = "datasets/images/{method}"

_SPLIT_DOCS = {"train": "Split train (DS1 records)", "test": "Split test (DS2 records)",
               "paced": "Split paced (records 102, 104, 107, 217)", "other": "Split other (records of no MIT-BIH split)"}
_CONFIG_DOCS = {"originals": "original images (crop 0)", "crops": "crop images (crop 1..9)"}


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def layout_of(manifest: Mapping[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    """``{config: {split: {"shards", "rows", "beats"}}}`` of the manifest, configs and splits in order."""
    configs = (manifest.get("layout") or {}).get("configs") or {}
    return {c: {s: configs[c][s] for s in SPLITS if s in configs[c]} for c in CONFIGS if configs.get(c)}


def front_matter(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Hugging Face dataset-card YAML metadata: one config per crop kind, one split per patient group.

    ``load_dataset(<dir>)`` loads the default config ``originals`` with its splits ``train`` (DS1),
    ``test`` (DS2) and ``paced``; ``load_dataset(<dir>, "crops")`` the crops.
    """
    features = []
    for field in shards.SCHEMA:
        dtype = "image" if field.type == shards.IMAGE_TYPE else str(field.type)
        features.append({"name": field.name, "dtype": dtype})
    return {
        "license": LICENSE_ID,
        "pretty_name": f"MIT-BIH Arrhythmia beat images ({manifest['method']})",
        "task_categories": ["image-classification"],
        "tags": ["ecg", "electrocardiogram", "arrhythmia", "mit-bih", "physionet", "medical"],
        "size_categories": [_size_category(int(manifest["rows"]))],
        "configs": [
            {"config_name": config, **({"default": True} if config == DEFAULT_CONFIG else {}),
             "data_files": [{"split": split, "path": data_files(config, split)} for split in splits]}
            for config, splits in layout_of(manifest).items()],
        "dataset_info": [
            {"config_name": config, "features": [dict(f) for f in features],
             "splits": [{"name": split, "num_examples": int(n["rows"])} for split, n in splits.items()]}
            for config, splits in layout_of(manifest).items()],
    }


def _table(header: list[str], rows: list[list[Any]], numeric: bool = True) -> str:
    """A Markdown table; with ``numeric`` every column but the first is right-aligned."""
    align = ["---" if i == 0 or not numeric else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _class_table(counts: Mapping[str, Mapping[str, int]], order: list[str]) -> str:
    labels = [c for c in order if c in counts] + sorted(c for c in counts if c not in order)
    rows = []
    for label in labels:
        row = counts[label]
        crops = sum(n for k, n in row.items() if k not in ("0", "total"))
        rows.append([f"`{label}`", f"{row.get('0', 0):,}", f"{crops:,}", f"{row['total']:,}"])
    tot = [sum(counts[c].get("0", 0) for c in labels), sum(counts[c]["total"] - counts[c].get("0", 0) for c in labels)]
    rows.append(["**all**", f"{tot[0]:,}", f"{tot[1]:,}", f"{tot[0] + tot[1]:,}"])
    return _table(["class", "originals (crop 0)", "crops 1-9", "rows"], rows)


def snippets(root: str) -> dict[str, str]:
    """Loading snippets (Python source), keyed by library; each runs as written from the repo root."""
    r = f'root = "{root}"'
    return {
        "pandas": f"""import glob, io
import pandas as pd
from PIL import Image

{r}
train = sorted(glob.glob(f"{{root}}/data/originals/train-*.parquet"))  # or pd.read_parquet(f"{{root}}/data/originals")
df = pd.read_parquet(train, columns=["beat_id", "record", "aami", "crop", "image"])
img = Image.open(io.BytesIO(df["image"].iloc[0]["bytes"]))  # PIL image, mode "L"
print(len(df), img.size, img.mode, df["aami"].value_counts().to_dict())""",
        "pyarrow": f"""import glob
import pyarrow.dataset as ds

{r}
dataset = ds.dataset(sorted(glob.glob(f"{{root}}/data/originals/test-*.parquet")), format="parquet")
originals = dataset.to_table(columns=["beat_id", "aami", "image"], filter=ds.field("aami") == "V")
print(originals.num_rows, dataset.schema.field("image").type)""",
        "dask": f"""import dask.dataframe as dd

{r}
ddf = dd.read_parquet(f"{{root}}/data/*/*.parquet", columns=["record", "aami", "crop"])
print(ddf.groupby(["aami", "crop"]).size().compute().head())""",
        "huggingface": f"""from datasets import load_dataset

{r}
splits = load_dataset(root)               # this card's default config: originals, splits train/test/paced
ds = splits["train"]                      # DS1; splits["test"] is DS2; load_dataset(root, "crops") the crops
example = ds[0]
print(ds.features["image"], example["image"].size, example["image"].mode, example["aami"], example["crop"])""",
        "tf.data": f"""import glob
import pyarrow.parquet as pq
import tensorflow as tf

{r}
classes = ["N", "S", "V", "F", "Q"]  # manifest.json "classes"["aami"]

def rows():
    for path in sorted(glob.glob(f"{{root}}/data/originals/train-*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024, columns=["aami", "crop", "image"]):
            aami, crop = batch.column("aami").to_pylist(), batch.column("crop").to_pylist()
            png = batch.column("image").field("bytes").to_pylist()
            for label, c, data in zip(aami, crop, png):
                if c == 0 and label is not None:
                    yield data, classes.index(label)

ds = tf.data.Dataset.from_generator(
    rows, output_signature=(tf.TensorSpec((), tf.string), tf.TensorSpec((), tf.int32)))
ds = ds.map(lambda png, y: (tf.io.decode_png(png, channels=1), y)).batch(256)
images, labels = next(iter(ds))
print(images.shape, images.dtype, labels[:8].numpy())""",
        "croissant": f"""import mlcroissant as mlc

{r}
dataset = mlc.Dataset(jsonld=f"{{root}}/croissant.json")
record = next(iter(dataset.records("originals-train")))
print(record["originals-train/beat_id"], record["originals-train/aami"], record["originals-train/image"].size)""",
    }


def dataset_card(manifest: Mapping[str, Any], root: str | None = None) -> str:
    """The dataset card (``README.md``): YAML front matter and Markdown, from the manifest."""
    method = manifest["method"]
    root = root or DEFAULT_ROOT.format(method=method)
    params = manifest["params"]
    crops = params.get("crops", {})
    size = params.get("size", 128)
    classes = manifest.get("classes", {})
    counts = manifest["counts"]["classes"]
    out = ["---", yaml.safe_dump(front_matter(manifest), sort_keys=False, width=120).rstrip(), "---", ""]
    out += [f"# MIT-BIH Arrhythmia beat images ({method})", ""]
    out += [
        f"{manifest['rows']:,} grayscale {size} x {size} images of {manifest['beats']:,} heartbeats of "
        f"{len(manifest['records'])} records of the MIT-BIH Arrhythmia Database, one beat per image, labelled with the cardiologists' "
        "beat annotations mapped to AAMI EC57 classes and to the eight classes of Jun et al. (2018). "
        "Built by `python -m pipelines.render` (the `render` stage of this repository's `dvc.yaml`) from "
        f"the beats table `{manifest['input']['file']}` (beats found with the `{method}` method).",
        "",
        f"- Drawing engine: `{params.get('engine')}`"
        + (f" (margin {params.get('margin')}, line width {params.get('line_width')} px)"
           if params.get("engine") == "raster" else " (the published matplotlib recipe)") + ".",
    ]
    if crops.get("materialise"):
        out.append(
            f"- Augmentation: beats whose symbol is not in {crops.get('skip_symbols')} (and not null) also have "
            f"nine {crops.get('size')} x {crops.get('size')} crops at offsets {crops.get('offsets')} x "
            f"{crops.get('offsets')}, resized back to {size} x {size} (`{crops.get('interpolation')}`), "
            "as rows with `crop` 1..9. Keep `crop == 0` for the originals only; never let a beat's crops "
            "and its original fall on both sides of a train/test split (split by `beat_id` or `record`).")
    else:
        out.append("- Augmentation: none materialised (originals only, `crop` is always 0).")
    out += [
        f"- Parameters hash `{manifest['params_hash']}`; input SHA-256 `{manifest['input']['sha256']}`; "
        "every parameter, count and shard checksum is in `manifest.json`.",
        "",
        "## Source, licence and citation",
        "",
        f"Source: the MIT-BIH Arrhythmia Database v1.0.0 on PhysioNet, {SOURCE_URL} . "
        f"Licence: {LICENSE_NAME}, {LICENSE_URL} ; these images are a derived database under the same "
        "licence. If you use them, cite:",
        "",
    ]
    out += [f"- {c}" for c in CITATIONS[:2]]
    out += ["", "and, for the beat-image recipe:", "", f"- {CITATIONS[2]}", ""]
    layout = layout_of(manifest)
    out += ["## Files", "",
            f"- `data/<config>/<split>-00000-of-0000N.parquet`: {len(manifest['shards'])} Parquet shard(s), "
            f"{manifest['bytes'] / 1e6:,.1f} MB, rows sorted by (record, r_sample, crop) within each shard; the "
            f"rows of one beat are in one shard. Row groups of {params.get('row_group_rows')} rows, "
            f"`{params.get('compression')}` compression. Configs: `originals` (crop 0, the default) and `crops` "
            "(crops 1..9); splits: the inter-patient split of de Chazal et al. (2004), `train` = DS1, "
            "`test` = DS2, and `paced` = records 102, 104, 107, 217 (left out of both by AAMI EC57).", "",
            _table(["config", "split", "shards", "images", "beats"],
                   [[f"`{c}`", f"`{s}`", n["shards"], f"{n['rows']:,}", f"{n['beats']:,}"]
                    for c, splits in layout.items() for s, n in splits.items()]), "",
            "- `manifest.json`: params, input provenance, counts per class x crop and per record, exclusions, "
            "schema, SHA-256 of every shard.",
            "- `croissant.json`: MLCommons Croissant 1.0 metadata.", "",
            "## Schema", ""]
    out.append(_table(["column", "type", "meaning"],
                      [[f"`{f.name}`", f"`{'Image (struct<bytes: binary, path: string>)' if f.name == 'image' else f.type}`",
                        _FIELD_DOCS[f.name][1]] for f in shards.SCHEMA], numeric=False))
    out += ["",
            "The `image` column is stored the way Hugging Face `datasets` stores its `Image` feature (PNG bytes, "
            "null path) and the Parquet schema metadata key `huggingface` holds the features, so "
            "`datasets` returns PIL images. Labels are plain strings (`Value(\"string\")`), returned unchanged; "
            "the class lists, in model-output order, are in `manifest.json` (`classes`) and in the schema "
            "metadata key `ecg_images`:", ""]
    for scheme in ("aami", "jun8"):
        if scheme in classes:
            out.append(f"- `{scheme}`: {', '.join(classes[scheme])}")
    out += ["", "## Counts", "", "AAMI EC57 classes (`aami`):", "",
            _class_table(counts.get("aami", {}), list(classes.get("aami", []))), "",
            "Jun et al. 2018 classes (`jun8`):", "",
            _class_table(counts.get("jun8", {}), list(classes.get("jun8", []))), "",
            "Beats excluded (cannot be drawn):", ""]
    excl = manifest.get("exclusions", {})
    out.append(_table(["reason", "beats"], [[f"`{k}`", v["count"]] for k, v in excl.items()]) if excl else "none")
    out += ["", "<details><summary>Per record</summary>", "",
            _table(["record", "beats", "images", "excluded"],
                   [[rec, f"{e['beats']:,}", f"{e['rows']:,}", e.get("excluded", 0)]
                    for rec, e in manifest["records"].items()]),
            "", "</details>", "", "## Loading", "",
            f"Every snippet runs as written from the repository root (set `root` to wherever the "
            f"directory is). Shards are plain Parquet under `data/`; point readers at `data/<config>` or its "
            "files, not at the directory itself, which also holds this card and the JSON files.", ""]
    titles = {"pandas": "pandas", "pyarrow": "pyarrow", "dask": "dask", "huggingface": "Hugging Face `datasets`",
              "tf.data": "TensorFlow `tf.data`", "croissant": "Croissant (`mlcroissant`)"}
    for key, code in snippets(root).items():
        out += [f"### {titles[key]}", "", "```python", code, "```", ""]
    out += ["Croissant note: `mlcroissant` reads each shard whole with pandas before yielding records; it is fine "
            "for inspection, use the readers above for training.", ""]
    return "\n".join(out)


def croissant(manifest: Mapping[str, Any], shard_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Croissant 1.0 JSON-LD of the dataset (``croissant.json``).

    Parameters
    ----------
    manifest : mapping
        The dataset manifest.
    shard_dir : path, optional
        Directory holding ``manifest.json``; when given, its SHA-256 is listed in the distribution.
    """
    method = manifest["method"]
    name = f"mitdb-beat-images-{method}"
    distribution: list[dict[str, Any]] = []
    if shard_dir is not None and (Path(shard_dir) / MANIFEST_NAME).is_file():
        distribution.append({
            "@type": "cr:FileObject", "@id": "manifest.json", "name": "manifest.json",
            "description": "Params, counts, exclusions and the SHA-256 of every shard.",
            "contentUrl": "manifest.json", "encodingFormat": "application/json",
            "sha256": sha256_file(Path(shard_dir) / MANIFEST_NAME),
        })
    record_sets = []
    for config, splits in layout_of(manifest).items():
        for split, n in splits.items():
            name = f"{config}-{split}"
            distribution.append({
                "@type": "cr:FileSet", "@id": f"files-{name}", "name": f"files-{name}",
                "description": f"The {config} image shards of split {split!r} (SHA-256 of each in manifest.json).",
                "encodingFormat": "application/x-parquet", "includes": data_files(config, split),
            })
            fields = []
            for f in shards.SCHEMA:
                dtype, doc = _FIELD_DOCS[f.name]
                source: dict[str, Any] = {"fileSet": {"@id": f"files-{name}"}, "extract": {"column": f.name}}
                if f.name == "image":
                    source["transform"] = {"jsonPath": "bytes"}
                fields.append({"@type": "cr:Field", "@id": f"{name}/{f.name}", "name": f.name,
                               "description": doc, "dataType": dtype, "source": source})
            record_sets.append({
                "@type": "cr:RecordSet", "@id": name, "name": name,
                "description": f"{_SPLIT_DOCS[split]}: {n['rows']:,} {_CONFIG_DOCS[config]} of {n['beats']:,} beats, "
                               "sorted by (record, r_sample, crop) within each shard.",
                "field": fields,
            })
    return {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "name": name,
        "description": (f"Grayscale beat images ({manifest['params'].get('size')} px PNG) of the MIT-BIH "
                        f"Arrhythmia Database, beats found with the '{method}' method, with AAMI EC57 and "
                        "Jun et al. 2018 labels and the nine-crop augmentation as extra rows."),
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "license": LICENSE_URL,
        "url": SOURCE_URL,
        "version": f"{manifest['format_version']}.0.0",
        "citeAs": " ".join(CITATIONS),
        "isBasedOn": SOURCE_URL,
        "keywords": ["ECG", "arrhythmia", "MIT-BIH", "beat classification", "images"],
        "distribution": distribution,
        "recordSet": record_sets,
    }


def write_card(directory: str | os.PathLike, manifest: Mapping[str, Any], root: str | None = None) -> None:
    """Write ``README.md`` and ``croissant.json`` into ``directory`` (atomically, stable bytes)."""
    directory = Path(directory)
    with atomic_path(directory / "README.md") as tmp:
        tmp.write_text(dataset_card(manifest, root))
    with atomic_path(directory / "croissant.json") as tmp:
        tmp.write_text(json.dumps(croissant(manifest, directory), indent=2, ensure_ascii=False) + "\n")
