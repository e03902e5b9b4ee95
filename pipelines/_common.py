"""What every stage shares: the paths dvc.yaml declares, reading params.yaml sections,
argument parsing, writing metrics, and reporting errors."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import yaml
from pydantic import BaseModel

from augment.config import parse
from augment.errors import AugmentError, ConfigError, ModelError
from augment.io import atomic_path

if TYPE_CHECKING:
    from augment.data.manifest import Manifest
    from augment.runtime import OnnxGenerator

PARAMS = Path("params.yaml")
Section = TypeVar("Section", bound=BaseModel)

# -- every path dvc.yaml declares, named once (the stages' option defaults) -------------
DATA_SOURCE = "data/source"  # prepare: a link to what prepare.source reads
PREPARED = "data/prepared"
PREPARED_MANIFEST = f"{PREPARED}/manifest.csv"
DOMAINS = "data/domains"
DOMAINS_MANIFEST = f"{DOMAINS}/manifest.csv"
AUGMENTED = "data/augmented"
UPSCALED = "data/upscaled"
TRANSLATED = "data/translated"
CLASSIFIER = "models/classifier.pt"
CHECKPOINTS = "models/train"  # <v>/checkpoint.pt
ONNX_MODELS = "models/onnx"  # <v>.onnx
ENCODERS = "models/encoders"  # <v>/encoder.onnx where <v> learns one (bigan, ali)
ENCODER_FILE = "encoder.onnx"
NO_ENCODER_FILE = "no_encoder.txt"  # what models/encoders/<v> holds for a variant without one
EVALUATE_CACHE = "models/evaluate"
REPORTS = "reports"  # <stage>/...
METRICS = "metrics"  # <stage>.json or <stage>/<v>.json
PLOTS = "plots"  # train/<v>/<loss>.csv, figures/<stage>_[<v>_]<file>.png
PLUGIN_SOURCES = "plugin_sources"  # <v>: a link to the code of the plugin defining it
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # also a file name in every stage


def load_params(path: Path = PARAMS) -> dict[str, Any]:
    """The whole params.yaml as a dict (a one-line ConfigError if it is missing or invalid)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run stages from the project root)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({_yaml_problem(exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _yaml_problem(exc: BaseException) -> str:
    """What PyYAML found wrong, and where: ``<problem> at line L, column C``."""
    problem = getattr(exc, "problem", None) or exc.__class__.__name__
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def section(params: dict[str, Any], key: str) -> Any:
    """``params[key]``, or a ConfigError naming the missing key."""
    if key not in params:
        raise ConfigError(f"params.yaml: missing key {key!r}")
    return params[key]


def load_section(params: dict[str, Any], key: str, model: type[Section]) -> Section:
    """``params[key]`` validated as ``model`` (ConfigErrors name ``params.yaml <key>...``)."""
    return parse(model, section(params, key), f"params.yaml {key}")


def write_json(path: Path, value: Any) -> None:
    """``value`` as indented JSON at ``path``, atomically (a stage's metrics)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2) + "\n")


def write_metrics(path: Path, details: Path, value: dict[str, Any], details_only: set[str]) -> None:
    """A stage's metrics in two files: ``details`` (a JSON report file, not a DVC metric)
    with everything, and ``path`` (what ``dvc metrics show`` and ``dvc exp show`` list)
    without the keys of ``details_only``: per-class breakdowns, loss values and
    bookkeeping, which would make a table of hundreds of columns."""
    write_json(details, value)
    write_json(path, {key: v for key, v in value.items() if key not in details_only})


def read_seed(params: dict[str, Any]) -> int:
    """The one ``seed`` of params.yaml (an integer; every stream derives from it)."""
    seed = section(params, "seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"params.yaml seed: expected an integer, got {seed!r}")
    return seed


def check_variant_name(name: str, where: str) -> None:
    """ConfigError unless ``name`` can name a variant's files (letters, digits, '.', '_', '-')."""
    if not VARIANT_NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: invalid variant name {name!r} (letters, digits, '.', '_', '-')"
        )


def variant_list(params: dict[str, Any]) -> list[str]:
    """params.yaml ``variants`` (the ones dvc repro trains), each a valid name."""
    trained = section(params, "variants")
    if not isinstance(trained, list) or not all(isinstance(v, str) for v in trained):
        raise ConfigError("params.yaml variants: expected a list of variant names")
    for name in trained:
        check_variant_name(name, "params.yaml variants")
    return trained


def check_plugin_source(name: str, cls: type, links: Path = Path(PLUGIN_SOURCES)) -> None:
    """ConfigError when ``links/<name>`` (what DVC tracks of the variant's plugin) points
    elsewhere than the code ``cls`` is imported from: a plugin re-installed in another
    place since the ``plugin_sources`` stage ran. No link (a stage run by hand): no check."""
    from augment.plugins import source_path

    link = links / name
    if not link.is_symlink():
        return
    tracked, imported = Path(os.readlink(link)), source_path(cls)
    if tracked.resolve() != imported:
        raise ConfigError(
            f"{link}: DVC tracks {tracked}, but {name!r} is now imported from {imported} "
            f"(re-installed elsewhere?): run `dvc repro -f plugin_sources`, then `dvc repro`"
        )


def trained_variants(params: dict[str, Any], names: list[str], where: str) -> list[str]:
    """``names`` (a stage's list) checked: valid names, each one of params.yaml ``variants``."""
    trained = variant_list(params)
    for name in names:
        check_variant_name(name, where)
        if name not in trained:
            raise ConfigError(
                f"{where}: {name!r} is not in params.yaml variants (the ones dvc repro trains: "
                f"{', '.join(trained) or 'none'})"
            )
    return names


def require_model(models: Path, variant: str, task: str) -> OnnxGenerator:
    """The exported ``<models>/<variant>.onnx`` of ``task``, or a ModelError naming it."""
    from augment.runtime import OnnxGenerator

    path = models / f"{variant}.onnx"
    if not path.is_file():
        raise ModelError(
            f"{path}: no exported model for variant {variant!r} (train and export it first)"
        )
    return OnnxGenerator(path, task=task)


def require_encoder(encoders: Path, variant: str) -> OnnxGenerator:
    """The encoder exported with ``variant`` (``<encoders>/<variant>/encoder.onnx``), or a
    ModelError naming the file and the variants that have one."""
    from augment.runtime import OnnxGenerator

    path = encoders / variant / ENCODER_FILE
    if not path.is_file():
        raise ModelError(
            f"{path}: no encoder for variant {variant!r} (only variants that learn one, "
            "such as bigan and ali, export it)"
        )
    return OnnxGenerator(path, task="encode")


def image_loader(
    channels: int | None = None, progress: bool = True
) -> Callable[[Manifest], tuple[np.ndarray, np.ndarray]]:
    """``load(manifest) -> (u8 N x H x W x C images, class indices)``, converting the images
    to ``channels`` where given (what a model takes)."""
    from augment.data.images import load_images

    def load(part: Manifest) -> tuple[np.ndarray, np.ndarray]:
        loaded = load_images(part, channels=channels, progress=progress)
        return loaded.images, loaded.labels

    return load


def stage_args(
    argv: list[str], module: str, doc: str | None, positional: tuple[str, ...] = (), **paths: str
) -> argparse.Namespace:
    """A stage's argv: ``positional`` names, ``--params`` and one ``--<name>`` per path.

    The path options only relocate inputs and outputs (tests do); their defaults are the
    paths dvc.yaml declares.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc)
    for name in positional:
        parser.add_argument(name)
    parser.add_argument("--params", type=Path, default=PARAMS)
    for name, default in paths.items():
        parser.add_argument(f"--{name}", type=Path, default=Path(default))
    return parser.parse_args(argv)


def model_stage_args(
    argv: list[str], stage: str, doc: str | None, out: str | None, **paths: str
) -> argparse.Namespace:
    """The argv of a stage that applies one exported model to the prepared data.

    ``<variant>`` (checked) and the paths ``--manifest``, ``--models``, ``--classifier``,
    ``--out`` (default ``out``; none where ``out`` is None: a stage that writes only a
    report), ``--reports`` and ``--metrics`` (``reports|metrics/<stage>``),
    and one more ``--<name>`` per entry of ``paths``.
    """
    args = stage_args(
        argv,
        f"pipelines.{stage}",
        doc,
        positional=("variant",),
        manifest=PREPARED_MANIFEST,
        models=ONNX_MODELS,
        classifier=CLASSIFIER,
        **({} if out is None else {"out": out}),
        reports=f"{REPORTS}/{stage}",
        metrics=f"{METRICS}/{stage}",
        **paths,
    )
    check_variant_name(args.variant, f"python -m pipelines.{stage}")
    return args


def run(main: Callable[[list[str]], None]) -> None:
    """Run a stage's ``main(argv)``: AugmentError -> one line on stderr and a non-zero exit."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main(sys.argv[1:])
    except AugmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
