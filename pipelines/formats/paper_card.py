"""Dataset card (``README.md``) and Croissant 1.0 (``croissant.json``) of a paper-strip variant.

Pure functions of the variant's manifest (:func:`pipelines.formats.paper.build_manifest`), so they
are byte-identical whenever the shards are. Licence, source, citations and the Croissant context are
the image dataset's (:mod:`pipelines.formats.card`).

Examples
--------
>>> m = {"variant": "clean", "rows": 2, "bytes": 10, "records": {"100": 2}, "distortions": {},
...      "splits": {"test": {"shards": 1, "rows": 2}}, "params": {"seconds": 10, "dpi": 200}, "params_hash": "x"}
>>> front_matter(m)["configs"][0]["data_files"]
[{'split': 'test', 'path': 'data/test-*.parquet'}]
>>> paper_card(m).startswith("---\\nlicense: odc-by")
True
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..core.files import atomic_path, sha256_file
from .card import CITATIONS, CROISSANT_CONTEXT, LICENSE_ID, LICENSE_NAME, LICENSE_URL, SOURCE_URL
from .layout import DATA_DIR, SPLITS
from .paper import INPUT_COLUMNS, MANIFEST_NAME, SCHEMA, paper_features

_SCALAR_TYPES = {"string": "sc:Text", "int64": "sc:Integer", "int32": "sc:Integer", "double": "sc:Float"}


def _splits(manifest: Mapping[str, Any]) -> list[str]:
    return [s for s in SPLITS if s in (manifest.get("splits") or {})]


def _yaml_feature(feature: Mapping[str, Any]) -> dict[str, Any]:
    """A features-JSON entry in the card's YAML form (as ``datasets.Features._to_yaml_list`` writes it).

    >>> _yaml_feature({"feature": {"feature": {"dtype": "float32", "_type": "Value"}, "_type": "List"}, "_type": "List"})
    {'list': {'list': 'float32'}}
    """
    if feature["_type"] == "Image":
        return {"dtype": "image"}
    if feature["_type"] == "List":
        inner = _yaml_feature(feature["feature"])
        return {"list": inner.get("dtype", inner)}
    return {"dtype": feature["dtype"]}


def front_matter(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Hugging Face card metadata: one config (the variant) with a split per patient group."""
    return {
        "license": LICENSE_ID,
        "pretty_name": f"MIT-BIH Arrhythmia ECG printouts ({manifest['variant']})",
        "task_categories": ["image-to-text"],
        "tags": ["ecg", "electrocardiogram", "ecg-digitization", "mit-bih", "physionet", "medical"],
        "configs": [{"config_name": "default", "default": True,
                     "data_files": [{"split": s, "path": f"{DATA_DIR}/{s}-*.parquet"} for s in _splits(manifest)]}],
        "dataset_info": {"features": [{"name": k, **_yaml_feature(v)} for k, v in paper_features().items()],
                         "splits": [{"name": s, "num_examples": int(manifest["splits"][s]["rows"])}
                                    for s in _splits(manifest)]},
    }


def paper_card(manifest: Mapping[str, Any]) -> str:
    """The card's text: front matter, what the strips are, the ground truth, files and loading."""
    p = manifest["params"]
    out = ["---", yaml.safe_dump(front_matter(manifest), sort_keys=False, width=120).rstrip(), "---", "",
           f"# MIT-BIH Arrhythmia ECG printouts: `{manifest['variant']}`", "",
           f"{manifest['rows']:,} strips of {p.get('seconds')} s from {len(manifest['records'])} records of the MIT-BIH "
           f"Arrhythmia Database, every lead stacked, drawn at {p.get('mm_per_s')} mm/s and {p.get('mm_per_mv')} "
           f"mm/mV on 1 mm / 5 mm grid paper at {p.get('dpi')} dpi (PNG, RGB), each with its exact ground truth: "
           "the plotted signal per lead in mV, the pixel of every plotted sample, the page geometry, the "
           "reference beats (symbol, AAMI class) and the rhythm. Built by `python -m pipelines.paper` (the `paper` "
           "stage of this repository's `dvc.yaml`); the schema is `docs/paper.md`.", "",
           "Distortions of this variant (seeded per strip; what each strip got is in its `distortions` column): "
           + (f"`{json.dumps(manifest['distortions'], sort_keys=True)}`." if manifest["distortions"] else "none."), "",
           f"Parameters hash `{manifest['params_hash']}`; every parameter and the SHA-256 of every shard are in "
           "`manifest.json`.", "",
           "## Source, licence and citation", "",
           f"Source: {SOURCE_URL} . Licence: {LICENSE_NAME}, {LICENSE_URL} ; a derived database under the same "
           "licence. Cite:", ""]
    out += [f"- {c}" for c in CITATIONS[:2]]
    out += ["", "## Files", "", "| split | shards | strips |", "|---|---:|---:|"]
    out += [f"| `{s}` | {manifest['splits'][s]['shards']} | {manifest['splits'][s]['rows']:,} |" for s in _splits(manifest)]
    out += ["", "Splits: `train` = DS1, `test` = DS2 (de Chazal et al. 2004), `paced` = 102, 104, 107, 217.", "",
            "## Columns", "", "| column | type |", "|---|---|"]
    out += [f"| `{f.name}` | `{f.type}` |" for f in SCHEMA]
    out += ["", f"A digitiser reads only {', '.join(f'`{c}`' for c in INPUT_COLUMNS)}; the rest is ground truth.", "",
            "## Loading", "", "```python", "import glob, io", "import pandas as pd", "from PIL import Image", "",
            f'root = "datasets/paper/{manifest["variant"]}"',
            'df = pd.read_parquet(sorted(glob.glob(f"{root}/data/*.parquet")), columns=["strip_id", "leads", "signal", "image"])',
            'img = Image.open(io.BytesIO(df["image"].iloc[0]["bytes"]))  # RGB',
            'print(len(df), img.size, df["leads"].iloc[0], len(df["signal"].iloc[0][0]))', "```", "",
            "Verified reading: `pipelines.formats.paper.read_paper(root)` checks every shard's SHA-256 first.", ""]
    return "\n".join(out)


def paper_croissant(manifest: Mapping[str, Any], directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """Croissant 1.0 JSON-LD: one FileSet and RecordSet per split; scalar columns and the image as fields.

    List columns (signal, plotted pixels, beats) are left to Parquet readers: Croissant 1.0 has no
    nested-list field type that ``mlcroissant`` reads.
    """
    variant = manifest["variant"]
    distribution: list[dict[str, Any]] = []
    if directory is not None and (Path(directory) / MANIFEST_NAME).is_file():
        distribution.append({"@type": "cr:FileObject", "@id": "manifest.json", "name": "manifest.json",
                             "contentUrl": "manifest.json", "encodingFormat": "application/json",
                             "sha256": sha256_file(Path(directory) / MANIFEST_NAME)})
    record_sets = []
    for split in _splits(manifest):
        fs_id = f"files-{split}"
        distribution.append({"@type": "cr:FileSet", "@id": fs_id, "name": fs_id,
                             "encodingFormat": "application/x-parquet", "includes": f"{DATA_DIR}/{split}-*.parquet"})
        fields = []
        for f in SCHEMA:
            dtype = "sc:ImageObject" if f.name == "image" else _SCALAR_TYPES.get(str(f.type))
            if dtype is None:
                continue
            source: dict[str, Any] = {"fileSet": {"@id": fs_id}, "extract": {"column": f.name}}
            if f.name == "image":
                source["transform"] = {"jsonPath": "bytes"}
            fields.append({"@type": "cr:Field", "@id": f"{split}/{f.name}", "name": f.name, "dataType": dtype,
                           "source": source})
        record_sets.append({"@type": "cr:RecordSet", "@id": split, "name": split,
                            "description": f"{manifest['splits'][split]['rows']:,} strips of split {split!r}.",
                            "field": fields})
    return {"@context": CROISSANT_CONTEXT, "@type": "sc:Dataset", "name": f"mitdb-ecg-paper-{variant}",
            "description": "ECG printouts of the MIT-BIH Arrhythmia Database with exact ground truth "
                           f"(variant {variant!r}).",
            "conformsTo": "http://mlcommons.org/croissant/1.0", "license": LICENSE_URL, "url": SOURCE_URL,
            "version": "1.0.0", "citeAs": " ".join(CITATIONS[:2]), "isBasedOn": SOURCE_URL,
            "keywords": ["ECG", "digitization", "MIT-BIH", "paper ECG", "images"],
            "distribution": distribution, "recordSet": record_sets}


def write_paper_card(directory: str | os.PathLike, manifest: Mapping[str, Any]) -> None:
    """Write ``README.md`` and ``croissant.json`` into a variant directory (atomically, stable bytes)."""
    directory = Path(directory)
    with atomic_path(directory / "README.md") as tmp:
        tmp.write_text(paper_card(manifest))
    with atomic_path(directory / "croissant.json") as tmp:
        tmp.write_text(json.dumps(paper_croissant(manifest, directory), indent=2, ensure_ascii=False) + "\n")
