"""DVC stage export@<variant>: export the trained generator (EMA weights) to ONNX.

Reads models/train/<v>/checkpoint.pt; writes models/onnx/<v>.onnx (parity-checked
against torch), models/encoders/<v>/ (encoder.onnx for a variant that learns an encoder,
such as bigan and ali; else no_encoder.txt saying so) and metrics/export/<v>.json.
"""

from __future__ import annotations

import time

from pydantic import Field

from augment.checkpoint import load_checkpoint, restore_variant
from augment.config import StrictModel
from augment.errors import ConfigError
from augment.export import export_encoder, export_onnx, standing_statistics
from augment.io import atomic_path
from augment.registry import Registry
from pipelines._common import (
    CHECKPOINTS,
    ENCODER_FILE,
    ENCODERS,
    METRICS,
    NO_ENCODER_FILE,
    ONNX_MODELS,
    check_plugin_source,
    check_variant_name,
    load_params,
    load_section,
    run,
    stage_args,
    write_json,
)


class ExportSection(StrictModel):
    atol: float = Field(1e-4, gt=0, description="max |onnxruntime - torch| allowed")
    use_ema: bool = True
    truncation: dict[str, float] = Field(
        default_factory=dict,
        description="synthesize variant -> t: its z drawn from the normal truncated to "
        "[-t, t] wherever the model is sampled (BigGAN's truncation trick)",
    )
    standing_statistics: int = Field(
        0,
        ge=0,
        description="batches of 128 prior draws on which a synthesize generator's batch-norm "
        "statistics are measured before export (BigGAN's standing statistics: the EMA "
        "weights' own, not the live generator's); 0 keeps the copied ones",
    )


def main(argv: list[str]) -> None:
    """Run the stage (options only relocate inputs/outputs, e.g. for tests)."""
    args = stage_args(
        argv,
        "pipelines.export",
        __doc__,
        positional=("variant",),
        checkpoints=CHECKPOINTS,
        models=ONNX_MODELS,
        encoders=ENCODERS,
        metrics=f"{METRICS}/export",
    )
    name = args.variant
    check_variant_name(name, "python -m pipelines.export")
    params = load_params(args.params)
    config = load_section(params, "export", ExportSection)
    unknown = sorted(set(config.truncation) - set(params.get("variants") or []))
    if unknown:
        raise ConfigError(
            f"params.yaml export.truncation.{unknown[0]}: not one of variants "
            f"({', '.join(params.get('variants') or [])})"
        )
    state = load_checkpoint(args.checkpoints / name / "checkpoint.pt")
    registry = Registry.from_plugins()
    check_plugin_source(name, registry.get(name).cls)
    variant, generator = restore_variant(state, registry.create, use_ema=config.use_ema)
    started = time.perf_counter()
    path = args.models / f"{name}.onnx"
    truncation = config.truncation.get(name)
    ema = config.use_ema and bool(state["ema"])
    batches = config.standing_statistics if ema else 0  # the live generator's are its own
    exported = standing_statistics(variant, generator, batches, truncation=truncation)
    sha = state["data_sha256"]
    # the encoder's folder is replaced only once the generator is written too
    with atomic_path(args.encoders / name, is_dir=True) as encoders:
        encoder = export_encoder(variant, exported, encoders / ENCODER_FILE, sha, config.atol)
        if encoder is None:  # a note, so that the output is not an empty folder DVC warns of
            (encoders / NO_ENCODER_FILE).write_text(
                f"{name} learns no encoder: variants that learn one (bigan, ali) export "
                f"{ENCODER_FILE} here, for synthesize.interpolate.\n"
            )
        result = export_onnx(variant, exported, path, sha, atol=config.atol, truncation=truncation)
    metrics = {
        "seconds": round(time.perf_counter() - started, 2),
        "bytes": path.stat().st_size,
        "steps": state["step"],
        "task": result.info.task,
        "max_abs_diff": result.max_abs_diff,
        "ema": ema,
        "truncation": truncation,
        "standing_statistics": batches if exported is not generator else 0,
        "encoder_max_abs_diff": None if encoder is None else encoder.max_abs_diff,
    }
    write_json(args.metrics / f"{name}.json", metrics)


if __name__ == "__main__":
    run(main)
