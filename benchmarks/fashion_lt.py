"""Long-tailed Fashion-MNIST: does GAN augmentation beat oversampling and reweighting?

Runs the whole pipeline (``dvc repro``: prepare -> classifier -> train -> export ->
synthesize -> evaluate) on Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
(``apt-get install dataset-fashion-mnist``; or ``--fashion-dir`` with the four idx files),
with the train split made long-tailed:

* ratio 100: the DeepSMOTE protocol's per-class train counts
  [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40] (published mean per-class accuracy
  with ResNet-18: BAGAN 81.5, GAMO 83.0, DeepSMOTE 83.6);
* ratio 10: an exponential profile from 4000 down to 400.

Each ratio gets its own DVC project under ``--workdir`` (kept, so a re-run resumes and its
reports/ can be read). The results go to ``<out>.json`` and ``<out>.md``: every condition
x variant, mean ± std over seeds, and the fraction of the baseline-to-full gap closed.

Budgets: the default fits a 2-core CPU (about 35 minutes for both ratios); ``--full`` is
the larger budget for a GPU. Individual knobs override either:

    python benchmarks/fashion_lt.py                      # CPU budget, both ratios
    python benchmarks/fashion_lt.py --full               # GPU budget
    python benchmarks/fashion_lt.py --ratios 100 --seeds 1 --gan-steps 500   # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _results import write_results

from augment.data.prepare import long_tail_counts
from augment.data.sources import FASHION_MNIST_CLASSES, fashion_mnist_candidates
from augment.workspace import new_project, run_dvc

ROOT = Path(__file__).resolve().parents[1]
DEEPSMOTE_COUNTS = [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40]
PUBLISHED = {"BAGAN": 81.5, "GAMO": 83.0, "DeepSMOTE": 83.6}  # ResNet-18, ratio 100

BUDGETS: dict[str, dict[str, Any]] = {
    # about 35 minutes on 2 CPU cores for both ratios
    "cpu": {"gan_steps": 2500, "seeds": 3, "epochs": 2.0, "width": 16, "judge_epochs": 10},
    # a GPU: longer GAN training, a wider classifier trained for longer
    "full": {"gan_steps": 20000, "seeds": 5, "epochs": 15.0, "width": 32, "judge_epochs": 30},
}


def counts_for(ratio: int) -> list[int]:
    """Per-class train counts in Fashion-MNIST's class order, head first."""
    if ratio == 100:
        return DEEPSMOTE_COUNTS
    return long_tail_counts(4000, len(FASHION_MNIST_CLASSES), ratio, "exponential")


def params_for(ratio: int, budget: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The params.yaml override of one ratio's project."""
    source: dict[str, Any] = {"kind": "fashion-mnist"}
    if args.fashion_dir:
        source["dir"] = str(args.fashion_dir)
    return {
        "seed": args.seed,
        "prepare": {"source": source, "long_tail": {"counts": counts_for(ratio)}},
        "classifier": {"epochs": budget["judge_epochs"]},
        "variants": args.variants,
        "train": {"steps": budget["gan_steps"], "sample_every": 500},
        "evaluate": {
            "seeds": budget["seeds"],
            "epochs": budget["epochs"],
            "model": {"width": budget["width"]},
        },
    }


def run_ratio(ratio: int, budget: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    project = args.workdir / f"fashion-lt-r{ratio}"
    override = params_for(ratio, budget, args)
    new_project(ROOT, project, override)  # an existing project resumes
    print(f"== ratio {ratio}: dvc repro in {project}", flush=True)
    started = time.perf_counter()
    result = run_dvc(project, "repro", capture=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"dvc repro failed for ratio {ratio} (exit {result.returncode}) in {project}")
    metrics = json.loads((project / "metrics/evaluate.json").read_text())
    # metrics' own "seconds" is the evaluate stage's; repro_seconds the whole dvc repro
    return {
        **metrics,
        "ratio": ratio,
        "counts": counts_for(ratio),
        "repro_seconds": round(seconds, 1),
    }


# -- the table -------------------------------------------------------------------------------


def pm(entry: dict[str, float]) -> str:
    return f"{100 * entry['mean']:.1f} ± {100 * entry['std']:.1f}"


def targets(run: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets on one ratio, measured (None when a condition did not run)."""
    conditions = run["conditions"]
    full = conditions.get("full", {}).get("balanced_accuracy", {}).get("mean")
    out: dict[str, Any] = {}
    for variant, quality in run.get("quality", {}).items():
        gans = [
            conditions[k] for k in (f"gan@{variant}", f"gan+filter@{variant}") if k in conditions
        ]
        best = max((g["balanced_accuracy"]["mean"] for g in gans), default=None)
        rivals = {
            c: conditions[c]["balanced_accuracy"]["mean"]
            for c in ("oversample", "reweight")
            if c in conditions
        }
        cas = (
            conditions.get(f"synthetic-only@{variant}", {}).get("balanced_accuracy", {}).get("mean")
        )
        out[variant] = {
            "gan_minus_best_classic": None
            if best is None or not rivals
            else best - max(rivals.values()),
            "cas_over_full": None if cas is None or not full else cas / full,
            "fd_over_floor": quality.get("fd_over_floor"),
        }
    return out


def markdown(runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Long-tailed Fashion-MNIST: balanced accuracy on the balanced test split (%)",
        "",
        f"Budget `{meta['budget_name']}`: {json.dumps(meta['budget'])}; variants "
        f"{', '.join(meta['variants'])}; seed {meta['seed']}; wall time "
        f"{meta['seconds'] / 60:.1f} min on {meta['machine']}.",
        "Mean ± std over seeds; *gap* = fraction of the baseline-to-full gap closed.",
        "",
    ]
    keys = list(runs[0]["conditions"])
    header = (
        ["condition"]
        + [f"ratio {r['ratio']}" for r in runs]
        + [f"gap (r{r['ratio']})" for r in runs]
    )
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in keys:
        cells = [f"`{key}`"]
        cells += [
            pm(r["conditions"][key]["balanced_accuracy"]) if key in r["conditions"] else "–"
            for r in runs
        ]
        for r in runs:
            gap = r["conditions"].get(key, {}).get("gap_closed")
            cells.append("–" if gap is None else f"{100 * gap:.0f}%")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Targets", ""]
    for r in runs:
        for variant, t in targets(r).items():
            g, c, f = t["gan_minus_best_classic"], t["cas_over_full"], t["fd_over_floor"]
            lines.append(
                f"- ratio {r['ratio']}, {variant}: best GAN condition minus best of oversample/"
                f"reweight = {'–' if g is None else f'{100 * g:+.1f} points'} (target > 0); "
                f"CAS / full = {'–' if c is None else f'{c:.3f}'} (target >= 0.85); "
                f"FD / real-vs-real floor = {'–' if f is None else f'{f:.2f}'} (target <= 3)."
            )
    lines += [
        "",
        "Published (ResNet-18, ratio 100, mean per-class accuracy): "
        + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items())
        + ". Our classifier is a 3-block CNN trained for a fixed small budget, so compare "
        "conditions within this table, not with the papers.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratios", type=int, nargs="+", default=[100, 10])
    parser.add_argument("--variants", nargs="+", default=["sngan"])
    parser.add_argument("--full", action="store_true", help="the larger (GPU) budget")
    parser.add_argument("--seeds", type=int, help="downstream runs per condition")
    parser.add_argument("--gan-steps", type=int, help="generator steps per variant")
    parser.add_argument("--epochs", type=float, help="downstream passes over a balanced set")
    parser.add_argument("--width", type=int, help="downstream classifier width")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fashion-dir", type=Path, help="folder with the idx(.gz) files")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gan-augment-bench"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fashion_lt")
    args = parser.parse_args()
    if args.fashion_dir is None and not fashion_mnist_candidates():
        sys.exit(
            "Fashion-MNIST not found: apt-get install dataset-fashion-mnist, "
            "or pass --fashion-dir with the idx files"
        )
    name = "full" if args.full else "cpu"
    budget = dict(BUDGETS[name])
    for key in ("seeds", "gan_steps", "epochs", "width"):
        if getattr(args, key) is not None:
            budget[key] = getattr(args, key)
    args.workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    runs = [run_ratio(ratio, budget, args) for ratio in args.ratios]
    meta = {
        "budget_name": name,
        "budget": budget,
        "variants": args.variants,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
        f"{'CUDA' if torch.cuda.is_available() else 'CPU'}",
    }
    report = {"meta": meta, "targets": {r["ratio"]: targets(r) for r in runs}, "runs": runs}
    write_results(args.out, report, markdown(runs, meta))


if __name__ == "__main__":
    main()
