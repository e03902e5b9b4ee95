"""DVC stage train@<variant>: train one variant.

Synthesize variants learn the classes of the prepared real train split; upscale variants
learn to restore its images from their low-resolution copies (degraded on the fly);
inpaint variants fill random holes in them; translate variants learn the domains of
data/domains (``domains.source`` and ``domains.target``; every domain for multi-domain
recipes; pairs for paired ones), and mask-to-image variants the target's pairs.

params.yaml: ``seed``, ``train`` (TrainConfig), ``domains`` and ``recipes.<name>`` (optional: the
variant's Params overrides; under its ``train`` key, overrides of ``train`` for this
variant only).
The list ``variants`` is read by dvc.yaml's matrix only.
With ``train.launcher`` (e.g. ``{nproc_per_node: 2}``) the stage starts itself again under
torchrun with those settings; under ``torchrun --nproc_per_node=N -m pipelines.train <v>``
(that launch, or one by hand) the N processes train one model data-parallel
(``train.batch_size`` is the global batch) and rank 0 writes.
Writes models/train/<v>/checkpoint.pt (kept across runs, so a killed run resumes),
reports/train/<v>/ (sample grids and losses.csv, every logged value by step),
plots/train/<v>/<value>.csv (one loss curve a file, the form ``dvc plots show`` draws for
any variant, whatever it logs) and metrics/train/<v>.json.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import replace
from pathlib import Path

import pandas as pd

from augment.config import parse
from augment.data.batches import TrainingData
from augment.data.domains import DomainsConfig
from augment.data.images import load_images
from augment.data.manifest import Manifest
from augment.distributed import is_main_process, under_torchrun
from augment.errors import ConfigError
from augment.io import atomic_path, sha256_file
from augment.registry import Registry
from augment.tasks import DOMAIN_TASKS
from augment.train import TrainConfig, TrainOutputs, fit
from augment.translate import reads_layouts, training_data
from augment.variant import DataSpec
from pipelines._common import (
    CHECKPOINTS,
    DOMAINS_MANIFEST,
    METRICS,
    PLOTS,
    PREPARED_MANIFEST,
    REPORTS,
    check_plugin_source,
    check_variant_name,
    image_loader,
    load_params,
    load_section,
    read_seed,
    run,
    section,
    stage_args,
    write_metrics,
)

log = logging.getLogger("pipelines.train")


def recipe(params: dict, name: str) -> tuple[dict, dict]:
    """``recipes.<name>`` of params.yaml: (the variant's Params overrides, its ``train``
    overrides of the shared ``train`` section); either may be empty."""
    recipes = params.get("recipes") or {}
    if not isinstance(recipes, dict):
        raise ConfigError("params.yaml recipes: expected a mapping of variant name -> params")
    overrides = dict(recipes.get(name) or {})
    train = overrides.pop("train", None) or {}
    if not isinstance(train, dict):
        raise ConfigError(f"params.yaml recipes.{name}.train: expected a mapping of train keys")
    return overrides, train


def main(argv: list[str]) -> None:
    """Run the stage (options only relocate inputs/outputs, e.g. for tests)."""
    args = stage_args(
        argv,
        "pipelines.train",
        __doc__,
        positional=("variant",),
        manifest=PREPARED_MANIFEST,
        domains=DOMAINS_MANIFEST,
        checkpoints=CHECKPOINTS,
        reports=f"{REPORTS}/train",
        plots=f"{PLOTS}/train",
        metrics=f"{METRICS}/train",
    )
    name = args.variant
    check_variant_name(name, "python -m pipelines.train")
    params = load_params(args.params)
    seed = read_seed(params)
    registry = Registry.from_plugins()
    entry = registry.get(name)  # unknown variant: fail before reading any image
    check_plugin_source(name, entry.cls)
    overrides, train_overrides = recipe(params, name)
    shared = section(params, "train")
    config = parse(TrainConfig, shared, "params.yaml train")
    if train_overrides:
        where = f"params.yaml recipes.{name}.train"
        config = parse(TrainConfig, {**(shared or {}), **train_overrides}, where)
    if config.launcher is not None and not under_torchrun():
        registry.validate(name, overrides, where="params.yaml recipes")  # errors: here, once
        # the same stage again, data-parallel: torchrun's exit status is the stage's
        command = config.launcher.command("pipelines.train", argv, job=f"augment-train-{name}")
        log.info("%s: training under torchrun, %d processes", name, config.launcher.processes)
        raise SystemExit(subprocess.run(command).returncode)
    from_domains = entry.task in DOMAIN_TASKS
    data_path = args.domains if from_domains else args.manifest
    manifest = Manifest.read(data_path)
    if from_domains:
        domains = load_section(params, "domains", DomainsConfig)
        recipe_params = registry.validate(name, overrides, where="params.yaml recipes")
        data = training_data(
            manifest, domains, entry.cls, image_loader(), layouts=reads_layouts(recipe_params)
        )
    else:
        train = load_images(manifest.subset(split="train", source="real"))
        data = TrainingData(train.images, train.labels)
    data = replace(data, sha256=sha256_file(data_path))
    _, size, _, channels = data.images.shape
    spec = DataSpec(size, channels, classes=manifest.classes, domains=data.domain_names)
    variant = registry.create(name, overrides, spec, where="params.yaml recipes", seed=seed)
    outputs = TrainOutputs(
        checkpoint=args.checkpoints / name / "checkpoint.pt",
        samples=args.reports / name,
        losses=args.reports / name / "losses.csv",
        timing=args.reports / name / "timing.json",
    )
    result = fit(variant, data, config, outputs, seed)
    if not is_main_process():  # under torchrun, rank 0 reports
        return
    log.info(
        "%s: %d steps (%d in this run) in %.0f s (%.1f s per epoch)",
        name,
        result.steps,
        result.steps - result.resumed_from,
        result.seconds,
        result.seconds_per_epoch,
    )
    metrics = {
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "seconds": round(result.seconds, 2),
        "seconds_per_epoch": round(result.seconds_per_epoch, 3),
        "train_images": int(len(data.images)),
        "final_losses": result.final_losses,
        "diversity_ratio": {c: round(r, 4) for c, r in result.diversity.items()},
    }
    details = args.reports / name / "metrics.json"
    # the headline: steps and seconds; the losses are curves in `dvc plots show`
    details_only = {
        "resumed_from",
        "seconds_per_epoch",
        "train_images",
        "final_losses",
        "diversity_ratio",
    }
    write_metrics(args.metrics / f"{name}.json", details, metrics, details_only)
    write_curves(outputs.losses, args.plots / name)


def write_curves(losses: Path, folder: Path) -> None:
    """``folder/<value>.csv`` (columns step, <value>) for each value logged in ``losses``:
    DVC draws a file's last column against ``x: step``, so every variant gets a curve for
    each of its own losses from one top-level plot definition (written atomically)."""
    table = pd.read_csv(losses)
    with atomic_path(folder, is_dir=True) as tmp:
        for column in table.columns.drop("step"):
            curve = table[["step", column]].dropna()
            curve.to_csv(tmp / f"{column}.csv", index=False, float_format="%.6g")


if __name__ == "__main__":
    run(main)
