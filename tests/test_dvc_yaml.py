"""dvc.yaml: every stage declares as deps the code that shapes its outputs.

A stage's command runs ``python -m <module>``; every repository module that module imports (directly
or not) must be a dep of the stage, or a dep directory containing it, so that editing it makes
``dvc repro`` rerun the stage. Exempt: modules that cannot change an output's bytes (errors, atomic
writes, progress lines), listed in ``INFRASTRUCTURE``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "training", "evaluation")
INFRASTRUCTURE = {"pipelines/core/errors.py", "pipelines/core/files.py", "pipelines/core/progress.py",
                  "pipelines/core/system.py", "pipelines/core/stage.py", "pipelines/__init__.py",
                  "pipelines/core/__init__.py", "pipelines/records/__init__.py", "pipelines/signal/__init__.py",
                  "pipelines/imaging/__init__.py", "pipelines/formats/__init__.py",
                  "training/__init__.py", "evaluation/__init__.py"}


def _public_api() -> dict[str, str]:
    """``pipelines.PUBLIC_API`` (name -> owning module), read statically."""
    tree = ast.parse((REPO / "pipelines/__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "PUBLIC_API":
            return ast.literal_eval(node.value)
    raise AssertionError("pipelines/__init__.py defines no PUBLIC_API")


def _module_path(name: str) -> Path | None:
    for candidate in (REPO / (name.replace(".", "/") + ".py"), REPO / name.replace(".", "/") / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def import_closure(module: str) -> set[str]:
    """Repository files that ``python -m module`` imports, transitively (static ``import`` statements)."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        path = _module_path(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                target = (base + ("." + node.module if node.module else "")) if node.level else (node.module or "")
                if target == "pipelines":  # the lazy public API: follow each name to its owner
                    todo += [_public_api().get(alias.name, f"pipelines.{alias.name}") for alias in node.names]
                    todo.append(target)
                elif target.split(".")[0] in PACKAGES:
                    todo.append(target)
                    todo += [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.split(".")[0] in PACKAGES]
    return {str(p.relative_to(REPO)) for p in seen.values()}


def _stages():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        yield name, body["cmd"], [str(d) for d in body.get("deps", [])]


@pytest.mark.parametrize("name, cmd, deps", list(_stages()), ids=[s[0] for s in _stages()])
def test_stage_deps_cover_the_code_it_runs(name, cmd, deps):
    module = re.search(r"python -m ([\w.]+)", cmd).group(1)
    needed = import_closure(module) - INFRASTRUCTURE
    assert f"{module.replace('.', '/')}.py" in needed
    missing = sorted(f for f in needed if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))
    assert not missing, f"stage {name}: add {missing} to its deps in dvc.yaml"


def test_import_closure_follows_relative_and_absolute_imports():
    closure = import_closure("pipelines.render")
    assert {"pipelines/render.py", "pipelines/imaging/raster.py", "pipelines/imaging/kernel.py",
            "pipelines/formats/shards.py"} <= closure
    assert "pipelines/signal/labels.py" in import_closure("training.train")


def test_public_api_names_resolve_to_their_owner():
    import importlib

    for name, module in _public_api().items():
        assert hasattr(importlib.import_module(module), name), f"pipelines.{name}: not defined in {module}"
