"""A new user's first run on their own folder, timed, and the traps of issue 18 tried on it.

The folder is the one the issue describes: 64-pixel photo patches of 6 classes (a class
per offline photo), 600 down to 20 images a class, in ``root/<class>/`` with no splits of
its own, some grey, some with an alpha channel, some 100x80, one class named ``café``. The
project is the README's "Your own data" snippet and nothing else (every other parameter
at its default): ``dvc repro`` once, timed (the first picture, the first sample grid, the
synthetic images, the verdict, each stage's share), then each trap on the finished
project: an image added to the folder (does DVC notice?), a corrupt image and a params
typo (one line, a non-zero exit, the previous outputs kept?), ``augment generate`` into a
folder of the user's own (refused, their file kept?).

    python benchmarks/first_run.py                  # about 31 min on 2 cores
    python benchmarks/first_run.py --smoke          # a tiny run: does it work?
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _results import add_set_argument, first_written, parse_args, set_dotted, write_results
from PIL import Image

from augment.data.domains import colour_photos
from augment.data.images import convert_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from workspace import new_project, run_dvc  # noqa: E402  (shared with the end-to-end tests)

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {  # class -> the photo its patches come from; train images a class (before splits)
    "astronaut": ("astronaut", 600),
    "chelsea": ("chelsea", 300),
    "café": ("coffee", 150),
    "rocket": ("rocket", 75),
    "hubble": ("hubble_deep_field", 40),
    "retina": ("retina", 20),
}
README_PARAMS = {"long_tail": None, "image_size": 64, "channels": 3}  # beside source.root
PREPARE_OUTPUTS = ("data/prepared", "reports/prepare", "metrics/prepare.json")


def build_folder(root: Path, scale: float, seed: int) -> dict[str, int]:
    """The issue's folder: patches per class, 1 in 40 grey, 1 in 40 RGBA, 1 in 50 100x80."""
    photos = colour_photos()
    rng = np.random.default_rng(seed)
    counts = {}
    for name, (photo_name, count) in CLASSES.items():
        photo = photos[photo_name]
        photo = convert_image(photo, 3)  # every photo as RGB
        counts[name] = n = max(5, round(count * scale))
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            height, width = (80, 100) if i % 50 == 7 else (64, 64)
            y = rng.integers(0, photo.shape[0] - height + 1)
            x = rng.integers(0, photo.shape[1] - width + 1)
            image = Image.fromarray(photo[y : y + height, x : x + width])
            if i % 40 == 3:
                image = image.convert("L")
            elif i % 40 == 5:  # the top quarter transparent
                rgba = np.asarray(image.convert("RGBA")).copy()
                rgba[: height // 4, :, 3] = 0
                image = Image.fromarray(rgba)
            image.save(root / name / f"img_{i:04d}.png")
    return counts


def digest(project: Path, outputs: tuple[str, ...]) -> str:
    """sha256 over the bytes and names of every file of ``outputs``."""
    h = hashlib.sha256()
    for out in outputs:
        path = project / out
        for f in sorted([path] if path.is_file() else path.rglob("*")):
            if f.is_file():
                h.update(str(f.relative_to(project)).encode() + f.read_bytes())
    return h.hexdigest()


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """The line that names what went wrong (the stage's ``error:``, else the last one)."""
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("error:", "augment: error:"))]
    return (errors or lines or [""])[-1]


def refusal(
    trap: str, result: subprocess.CompletedProcess[str], names: str, kept: bool
) -> dict[str, Any]:
    """A trap that must be refused: a non-zero exit, one line naming ``names``, and what
    was there before still there (``kept``)."""
    line = last_line(result)
    ok = result.returncode != 0 and names in line and kept
    return {"trap": trap, "ok": ok, "what": line, "exit": result.returncode, "kept": kept}


def traps(project: Path, folder: Path) -> list[dict[str, Any]]:
    """Each trap tried on the finished project; ``kept``: the prepare outputs unchanged."""
    found = []
    before = digest(project, PREPARE_OUTPUTS)

    added = folder / "retina" / "added_later.png"
    Image.new("RGB", (64, 64), (200, 60, 40)).save(added)
    status = run_dvc(project, "status", "prepare").stdout
    added.unlink()
    found.append(
        {
            "trap": "an image added to the folder",
            "ok": "modified:           data/source/prepare" in status,
            "what": "dvc status: prepare changed" if "prepare:" in status else status.strip(),
        }
    )

    broken = folder / "retina" / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    result = run_dvc(project, "repro", "prepare")
    broken.unlink()
    kept = digest(project, PREPARE_OUTPUTS) == before
    found.append(refusal("a corrupt image in the folder", result, "broken.png", kept))

    params = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params.replace("  val_fraction:", "  val_fractoin:"))
    result = run_dvc(project, "repro", "prepare")
    (project / "params.yaml").write_text(params)
    kept = digest(project, PREPARE_OUTPUTS) == before
    found.append(refusal("a typo in params.yaml", result, "val_fractoin", kept))

    mine = project.parent / "my-notes"
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    augment = Path(sys.executable).with_name("augment")
    result = subprocess.run(
        [str(augment), "generate", "models/onnx/sngan.onnx", str(mine), "--per-class", "2"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    kept = [p.name for p in mine.iterdir()] == ["notes.txt"]
    found.append(
        refusal("augment generate into a folder of the user's own", result, str(mine), kept)
    )
    again = run_dvc(project, "repro")  # the folder as it was: prepare has nothing to do
    found.append(
        {
            "trap": "dvc repro after the traps, the folder restored",
            "ok": again.returncode == 0 and digest(project, PREPARE_OUTPUTS) == before,
            "what": last_line(run_dvc(project, "status")),
        }
    )
    return found


def first_run(args: argparse.Namespace) -> dict[str, Any]:
    folder, project = args.workdir / "photos", args.workdir / "project"
    for made in (folder, project):  # a fresh folder and project each run (nothing else)
        shutil.rmtree(made, ignore_errors=True)
    counts = build_folder(folder, args.scale, args.seed)
    override: dict[str, Any] = {"prepare": {"source": {"kind": "folder", "root": str(folder)}}}
    override["prepare"] |= README_PARAMS
    for assignment in args.set:
        set_dotted(override, assignment)
    new_project(ROOT, project, override)
    started = time.time()
    result = run_dvc(project, "repro", capture=False)
    seconds = round(time.time() - started, 1)
    if result.returncode != 0:
        sys.exit(f"dvc repro failed (exit {result.returncode}) in {project}")
    grids = sorted((project / "reports/train/sngan").glob("step_*.png"))
    evaluation = json.loads((project / "reports/evaluate/metrics.json").read_text())
    stages = {
        path.relative_to(project / "metrics").with_suffix("").as_posix(): value["seconds"]
        for path in sorted((project / "metrics").rglob("*.json"))
        if isinstance(value := json.loads(path.read_text()), dict)
        and "seconds" in value
        and not path.stem.endswith("_details")  # the same seconds as the stage's metrics
    }
    prepared = json.loads((project / "metrics/prepare.json").read_text())
    return {
        "folder": counts,
        "prepared": {k: prepared[k] for k in ("train", "val", "test", "conversions")},
        "repro_seconds": seconds,
        "first_picture": first_written([project / "reports/prepare/class_counts.png"], started),
        "first_sample_grid": first_written(grids, started),
        "synthetic_images": first_written([project / "metrics/synthesize/sngan.json"], started),
        "verdict_at": first_written([project / "metrics/evaluate.json"], started),
        "stage_seconds": stages,
        "verdict": evaluation["verdict"]["sngan"],
        "warnings": evaluation.get("warnings", []),
        "traps": traps(project, folder),
    }


def minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f} min"


def markdown(run: dict[str, Any], args: argparse.Namespace) -> str:
    v = run["verdict"]
    lines = [
        "# A first run on your own folder, and the traps",
        "",
        f"{sum(run['folder'].values())} images of {len(run['folder'])} classes "
        f"({', '.join(f'{k} {n}' for k, n in run['folder'].items())}) in `root/<class>/`; "
        "the README's params (`long_tail: null`, `image_size: 64`, `channels: 3`), overrides "
        f"{' '.join(args.set) or 'none'}; {platform.machine()}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} cores.",
        "",
        "| | after |",
        "|---|---|",
        f"| the class-count picture | {run['first_picture']} s |",
        f"| the first sample grid | {minutes(run['first_sample_grid'])} |",
        f"| the synthetic images | {minutes(run['synthetic_images'])} |",
        f"| the verdict | {minutes(run['verdict_at'])} |",
        f"| `dvc repro`, all | {minutes(run['repro_seconds'])} |",
        "",
        "Stages: "
        + ", ".join(f"`{k}` {s:.0f} s" for k, s in run["stage_seconds"].items())
        + f". Prepared: train {run['prepared']['train']}, val {run['prepared']['val']}, "
        f"test {run['prepared']['test']}; converted: "
        + ", ".join(f"{kind} {n}" for kind, n in run["prepared"]["conversions"].items())
        + ".",
        "",
        f"Verdict: best GAN `{v['best']}` minus best classical `{v['rival']}` = "
        f"{100 * v['delta']:+.1f} points: {'helps' if v['helps'] else 'does not help'}.",
        "",
        "| trap | as expected | what happens |",
        "|---|---|---|",
    ]
    for trap in run["traps"]:
        what = str(trap["what"]).replace("|", "\\|")
        lines.append(f"| {trap['trap']} | {'yes' if trap['ok'] else '**no**'} | `{what}` |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="images a class, times this")
    add_set_argument(parser, "train.steps=500")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gan-augment-first-run"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/first_run")
    args = parse_args(
        parser,
        smoke={
            "scale": 0.05,
            "set": [
                "variants=[sngan]",
                "translate.variants=[]",
                "upscale.variants=[]",
                "train.steps=4",
                "train.sample_every=2",
                "train.checkpoint_every=2",
                "classifier.epochs=1",
                "evaluate.epochs=1",
                "evaluate.conditions=[baseline, gan+filter]",
            ],
        },
    )
    run = first_run(args)
    write_results(
        args.out, {"args": {k: str(v) for k, v in vars(args).items()}, **run}, markdown(run, args)
    )
    if not all(trap["ok"] for trap in run["traps"]):
        sys.exit("a trap did not behave as it should: see the table")


if __name__ == "__main__":
    main()
