"""DVC stage export@<variant>: export the trained generator (EMA weights) to ONNX.

Reads models/train/<v>/checkpoint.pt; writes models/onnx/<v>.onnx (parity-checked
against torch) and metrics/export/<v>.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import Field

from augment.config import StrictModel, parse
from augment.errors import ConfigError
from augment.export import export_onnx
from augment.io import atomic_path
from augment.registry import Registry
from augment.train import load_checkpoint, restore_variant
from pipelines._common import load_params, run, section
from pipelines.train import outputs


class ExportSection(StrictModel):
    atol: float = Field(1e-4, gt=0, description="max |onnxruntime - torch| allowed")
    use_ema: bool = True


def onnx_path(variant: str) -> Path:
    return Path("models/onnx") / f"{variant}.onnx"


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise ConfigError("usage: python -m pipelines.export <variant>")
    name = argv[0]
    config = parse(ExportSection, section(load_params(), "export"), "params.yaml export")
    state = load_checkpoint(outputs(name).checkpoint)
    registry = Registry.from_plugins()
    variant, generator = restore_variant(state, registry.create, use_ema=config.use_ema)
    started = time.perf_counter()
    path = onnx_path(name)
    result = export_onnx(variant, generator, path, state["data_sha256"], atol=config.atol)
    metrics = {
        "seconds": round(time.perf_counter() - started, 2),
        "bytes": path.stat().st_size,
        "steps": state["step"],
        "task": result.info.task,
        "max_abs_diff": result.max_abs_diff,
        "ema": config.use_ema and bool(state["ema"]),
    }
    with atomic_path(Path("metrics/export") / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")


if __name__ == "__main__":
    run(main)
