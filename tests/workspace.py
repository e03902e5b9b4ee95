"""A fresh DVC project holding this repository's pipeline, with a params.yaml override.

Used by the end-to-end tests and the benchmarks: they copy the pipeline (augment/,
pipelines/, plugins/, dvc.yaml, params.yaml) into a new git + DVC project, merge their
params over the defaults and run ``dvc`` there with this interpreter's environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIRS = ("augment", "plugins", "pipelines")
PROJECT_FILES = ("dvc.yaml", "params.yaml", ".dvcignore")


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in, recursively for nested mappings."""
    out = dict(base)
    for key, value in override.items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = merge(base[key], value) if nested else value
    return out


def edit_params(project: Path, override: dict[str, Any]) -> None:
    """Merge ``override`` into ``project/params.yaml``."""
    path = project / "params.yaml"
    path.write_text(yaml.safe_dump(merge(yaml.safe_load(path.read_text()), override)))


def run_dvc(
    project: Path, *args: str, capture: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``dvc <args>`` in ``project``, with this interpreter's bin directory first on PATH
    (and ``env`` over the environment: e.g. a PYTHONPATH with a plugin installed)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",  # no analytics daemon (and no temporary files it leaves)
        **(env or {}),
    }
    return subprocess.run(["dvc", *args], cwd=project, env=env, capture_output=capture, text=True)


def new_project(source: Path, dst: Path, override: dict[str, Any] | None = None) -> Path:
    """Copy the pipeline of ``source`` into ``dst`` and merge ``override`` into its params.

    A new ``dst`` gets git and DVC initialised; an existing project keeps its data, models
    and DVC cache and has only its code and params replaced, so ``dvc repro`` resumes.
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    fresh = not (dst / ".dvc").is_dir()
    dst.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_DIRS:
        shutil.rmtree(dst / name, ignore_errors=True)
        shutil.copytree(source / name, dst / name, ignore=ignore)
    for name in PROJECT_FILES:
        shutil.copy(source / name, dst / name)
    if fresh:
        subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
        result = run_dvc(dst, "init", "-q")
        if result.returncode != 0:
            raise RuntimeError(f"dvc init failed in {dst}: {result.stderr.strip()}")
    if override:
        edit_params(dst, override)
    return dst


def guide_blocks() -> dict[str, str]:
    """The plugin package of docs/plugins.md: file name -> the guide's text for it."""
    import re

    guide = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w+)\n(.*?)```", guide, re.S)
    toml = next(b for kind, b in blocks if kind == "toml")
    module, _, test = (b for kind, b in blocks if kind == "python")
    return {"pyproject.toml": toml, "augment_tinygan.py": module, "test_tinygan.py": test}


def install_guide_plugin(tmp: Path) -> tuple[Path, Path]:
    """The plugin of docs/plugins.md, written out as the guide says (pyproject.toml, module
    and test) and pip-installed for real into ``tmp/site`` (put it on PYTHONPATH).

    Returns the source folder and the site folder.
    """
    source = tmp / "augment-tinygan"
    source.mkdir()
    for name, text in guide_blocks().items():
        (source / name).write_text(text)
    site = tmp / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", str(site), str(source)], check=True, capture_output=True)
    return source, site
