"""Settings of the web app: paths and the ``webapp`` section of ``params.yaml`` (with ``segment`` and ``render``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    """Where the app reads models, image sets and reports, and its limits (``webapp`` params)."""

    root: Path = ROOT
    models_dir: Path = ROOT / "models"
    images_dir: Path = ROOT / "datasets" / "images"
    reports_dir: Path = ROOT / "reports"
    webapp: dict[str, Any] = field(default_factory=dict)
    segment: dict[str, Any] = field(default_factory=dict)
    render: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params_path: str | Path = ROOT / "params.yaml", root: str | Path | None = None,
                    **paths: Path) -> "Settings":
        """Read the ``webapp``, ``segment`` and ``render`` sections (validated; defaults when a section is absent)."""
        from pipelines import load_params
        from pipelines.core.schema import WebappParams

        params = load_params(params_path)
        root = Path(root) if root is not None else Path(params_path).resolve().parent
        defaults = {"models_dir": root / "models", "images_dir": root / "datasets" / "images",
                    "reports_dir": root / "reports"}
        webapp = params.get("webapp") or WebappParams().model_dump()
        return cls(root=root, **{**defaults, **paths}, webapp=webapp, segment=params.get("segment") or {},
                   render=params.get("render") or {})

    def limit(self, key: str) -> int:
        """``max_image_mb`` / ``max_record_mb`` in bytes."""
        return int(float(self.webapp[key]) * 1_000_000)
