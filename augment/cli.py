"""The ``augment`` command: the person-facing side of the library.

augment plugins list [--json]          every installed variant, its task and plugin
augment inspect MODEL.onnx [--json]    an exported generator's metadata
augment generate MODEL.onnx OUT_DIR    class-conditional samples as PNGs + manifest.csv
                  [--shard k/n]         ... or the k-th of n shards of them
                  [--engine ray]        ... made on a Ray cluster (gan-augment[ray])
augment merge OUT_DIR SHARD...         the shards as one folder, checked for completeness
augment upscale MODEL.onnx INPUT OUT    upscale an image or a folder of images (PNGs)
augment translate MODEL.onnx INPUT OUT  translate an image or a folder of images (PNGs)
augment inpaint MODEL.onnx INPUT MASKS OUT   fill the holes MASKS marks (nonzero) in INPUT
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from augment import __version__
from augment.errors import AugmentError, ConfigError, DataError


def _plugins_new(args: argparse.Namespace) -> None:
    from augment.plugin_template import write_plugin

    folder = write_plugin(args.name, Path(args.dir))
    print(f"wrote {folder}: pip install -e {folder} && pytest {folder}")


def _plugins_list(args: argparse.Namespace) -> None:
    from augment.registry import Registry

    rows = [
        {
            "variant": e.name,
            "task": e.task,
            "plugin": e.plugin.name,
            "distribution": e.plugin.distribution,
            "version": e.plugin.version,
            "description": e.description,
        }
        for e in Registry.from_plugins().entries()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no variants installed (pip install a plugin such as plugins/dcgan)")
        return
    columns = ["variant", "task", "distribution", "version", "description"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns[:-1]}
    print("  ".join(c.upper().ljust(widths.get(c, 0)) for c in columns).rstrip())
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths.get(c, 0)) for c in columns).rstrip())


def _inspect(args: argparse.Namespace) -> None:
    from augment.runtime import OnnxGenerator

    generator = OnnxGenerator(args.model)
    info = vars(generator.info) | {"path": str(generator.path), "sha256": generator.sha256}
    if args.json:
        print(json.dumps(info, indent=2, default=list))
        return
    extra = info.pop("extra")
    for key, value in info.items():
        print(f"{key:16} {', '.join(value) if isinstance(value, tuple) else value}")
    for key, value in extra.items():  # the variant's own metadata
        print(f"{'variant.' + key:16} {value}")


def _generate(args: argparse.Namespace) -> None:
    from augment.generate import Shard, generate_folder
    from augment.latent_codes import CodeChoice
    from augment.runtime import OnnxGenerator

    generator = OnnxGenerator(args.model, task="synthesize", device=args.device)
    classes = args.classes.split(",") if args.classes else list(generator.info.classes)
    labels = [generator.class_index(c) for c in classes]  # unknown class: clear error first
    shard = Shard.parse(args.shard)
    codes = CodeChoice.parse(args.code, args.sweep)
    engine = None
    if args.engine == "ray":
        from augment.ray_engine import RayEngine

        engine = RayEngine(args.address, args.workers, args.device)
    elif args.address is not None:
        raise ConfigError("--address needs --engine ray")
    count = generate_folder(
        generator,
        args.out_dir,
        labels,
        args.per_class,
        args.seed,
        shard,
        force=args.force,
        codes=codes,
        engine=engine,
    )
    print(f"wrote {count} images of {len(labels)} classes (shard {shard}) to {args.out_dir}")


def _merge(args: argparse.Namespace) -> None:
    from augment.generate import merge_shards

    count = merge_shards(args.shards, args.out_dir, force=args.force)
    print(f"merged {len(args.shards)} shards: {count} images in {args.out_dir}")


def _input_images(source: Path) -> list[tuple[Path, Path]]:
    """(file, path relative to ``source``) of an image file or every image under a folder."""
    from augment.data.sources import IMAGE_SUFFIXES

    if source.is_file():
        return [(source, Path(source.name))]
    if not source.is_dir():
        raise DataError(f"{source}: no such file or folder")
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return [(p, p.relative_to(source)) for p in files]


def _mask_of(masks: Path, relative: Path, single: bool) -> np.ndarray:
    """The hole mask (bool H x W, nonzero pixels) of the input image at ``relative``: the
    file ``masks`` itself for a single image, else the image of the same path (any image
    suffix) under the folder ``masks``."""
    from augment.data.images import read_image
    from augment.data.sources import IMAGE_SUFFIXES

    if single:
        path = masks
    else:
        found = [masks / relative.with_suffix(s) for s in IMAGE_SUFFIXES]
        path = next((p for p in found if p.is_file()), found[0])
    if not path.is_file():
        raise DataError(f"{path}: no mask for the input image {relative}")
    return read_image(path, channels=1)[..., 0] != 0


def _image_to_image(args: argparse.Namespace, task: str) -> None:
    """``augment upscale|translate|inpaint``: each input image through the model, one PNG
    each.

    The output folder mirrors the input's layout and is written atomically: a bad image
    fails the whole run and leaves no partial output (and a folder gan-augment did not
    write is replaced only with ``--force``).
    """
    from tqdm import tqdm

    from augment.data.images import read_image, write_png
    from augment.io import output_folder
    from augment.runtime import OnnxGenerator, from_uint8, to_uint8
    from augment.seeding import derive_seed

    generator = OnnxGenerator(args.model, task=task, device=args.device)
    if task == "upscale":
        if args.scale is not None and args.scale != generator.info.scale:
            raise ConfigError(f"{args.model}: upscales x{generator.info.scale}, not x{args.scale}")

        def apply(image: np.ndarray, relative: Path) -> np.ndarray:
            return generator.upscale(image, 1, args.tile, args.overlap)
    elif task == "inpaint":
        masks, single = Path(args.masks), Path(args.input).is_file()

        def apply(image: np.ndarray, relative: Path) -> np.ndarray:
            return generator.inpaint(image, _mask_of(masks, relative, single)[None])
    else:
        domain = args.domain
        if domain is not None:
            generator.domain_index(domain)  # an unknown domain fails before any work

        def apply(image: np.ndarray, relative: Path) -> np.ndarray:
            seed = derive_seed(args.seed, "translate", relative.as_posix())  # noise models
            return generator.translate(image, domain, 1, seed)

    images = _input_images(Path(args.input))
    out = Path(args.out_dir)
    with output_folder(out, args.force) as tmp:
        for path, relative in tqdm(images, desc=task, unit="img", disable=None):
            image = read_image(path, channels=generator.info.channels)
            result = to_uint8(apply(from_uint8(image[None]), relative))[0]
            target = tmp / relative.with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_png(target, result, atomic=False)
    done = {"upscale": "upscaled", "translate": "translated", "inpaint": "inpainted"}[task]
    print(f"wrote {len(images)} {done} image(s) to {out}")


OUT_HELP = "output folder, written atomically; one it did not write is replaced only with --force"
FORCE_HELP = "replace OUT_DIR even if gan-augment did not write it (its contents are deleted)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="augment", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gan-augment {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    plugins = commands.add_parser("plugins", help="installed GAN plugins")
    plugin_commands = plugins.add_subparsers(dest="plugins_command", required=True)
    listing = plugin_commands.add_parser("list", help="list every registered variant")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=_plugins_list)
    new = plugin_commands.add_parser(
        "new", help="write a new plugin package (pyproject, variant, conformance test)"
    )
    new.add_argument("name", help="the variant's name, e.g. tiny-gan")
    new.add_argument("--dir", default=".", help="where augment-<name>/ is written")
    new.set_defaults(run=_plugins_new)

    inspect = commands.add_parser("inspect", help="show an exported model's metadata")
    inspect.add_argument("model", help="an .onnx file exported by gan-augment")
    inspect.add_argument("--json", action="store_true")
    inspect.set_defaults(run=_inspect)

    generate = commands.add_parser("generate", help="synthesize labelled images with a model")
    generate.add_argument("model", help="an .onnx synthesize model")
    generate.add_argument("out_dir", help=OUT_HELP)
    generate.add_argument("--per-class", type=int, default=100, help="images per class")
    generate.add_argument("--classes", help="comma-separated class names (default: all)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    generate.add_argument(
        "--shard", default="1/1", help="k/n: make the k-th of n shards (merge them with merge)"
    )
    generate.add_argument(
        "--code",
        action="append",
        metavar="NAME=VALUE",
        help="fix a latent code of an infogan model: c0=0.5 (continuous, in [-1, 1]) or "
        "k0=3 (categorical); repeatable; codes not set are drawn",
    )
    generate.add_argument(
        "--sweep",
        metavar="NAME",
        help="run a continuous code (e.g. c0) evenly from -1 to 1 over each class's images",
    )
    generate.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="where the chunks are made: this process, or a Ray cluster (gan-augment[ray])",
    )
    generate.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="--engine ray: the cluster's head (or auto, or ray://host:port); "
        "default: a local cluster for this job",
    )
    generate.add_argument(
        "--workers", type=int, default=2, help="--engine ray: actors, one CPU (or GPU) each"
    )
    generate.set_defaults(run=_generate)

    merge = commands.add_parser("merge", help="merge the shards of a generate run, checked")
    merge.add_argument("out_dir", help=OUT_HELP)
    merge.add_argument("shards", nargs="+", help="the shard folders (every k of n once)")
    merge.set_defaults(run=_merge)

    upscale = commands.add_parser("upscale", help="upscale images with a model")
    translate = commands.add_parser("translate", help="translate images with a model")
    inpaint = commands.add_parser("inpaint", help="fill holes in images with a model")
    for command in (upscale, translate, inpaint):
        command.add_argument("model", help=f"an .onnx {command.prog.split()[-1]} model")
        command.add_argument("input", help="an image, or a folder of images (searched deeply)")
        if command is inpaint:
            command.add_argument(
                "masks",
                help="the holes (nonzero pixels): an image for an image, or a folder with "
                "a mask at each input image's relative path",
            )
        command.add_argument("out_dir", help=OUT_HELP)
        command.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    upscale.add_argument("--scale", type=int, help="expected factor (checked against the model)")
    upscale.add_argument("--tile", type=int, default=256, help="tile side in input pixels")
    upscale.add_argument("--overlap", type=int, default=16, help="tile overlap in input pixels")
    upscale.set_defaults(run=lambda args: _image_to_image(args, "upscale"))
    translate.add_argument("--domain", help="target domain (multi-domain models)")
    translate.add_argument("--seed", type=int, default=0, help="noise of stochastic models")
    translate.set_defaults(run=lambda args: _image_to_image(args, "translate"))
    inpaint.set_defaults(run=lambda args: _image_to_image(args, "inpaint"))
    for command in (generate, merge, upscale, translate, inpaint):
        command.add_argument("--force", action="store_true", help=FORCE_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``augment`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        args.run(args)
    except AugmentError as exc:
        print(f"augment: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
