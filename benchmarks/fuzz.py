"""Fuzz every loader and parser with bad input: does each one fail with a clear error?

For each family of inputs (idx files, images, CSV manifests, paths escaping the dataset
root, params.yaml, ONNX models, checkpoints) it draws ``--cases`` random cases from the
strategies of tests/fuzzing.py (seeded: same ``--seed``, same cases) and classifies each:

* ``accepted``: the loader returned normally (fine for an input that happens to be valid);
* ``clear error``: an AugmentError of the expected class whose message is one line
  naming the input's file, row or key;
* ``bug``: any other exception, a multi-line or unnamed message, or a refused input
  accepted (a path outside the dataset root, say).

Writes benchmarks/results/fuzz.json ({family: {cases, accepted, clear_error, bug,
examples_of_bugs, ...}}) and fuzz.md; exits 1 if any case is a bug.

    python benchmarks/fuzz.py                  # 2000 cases per family: about 3 minutes
    python benchmarks/fuzz.py --cases 200 --family csv --family onnx --seed 3
    python benchmarks/fuzz.py --smoke --out /tmp/fuzz   # 5 cases per family: does it work?
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # pipelines/ and the shared fuzz cases

import torch  # noqa: E402
from _results import parse_args, write_results  # noqa: E402
from fuzzing import FAMILIES, Case, run_case  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KINDS = ("accepted", "clear_error", "bug")
MAX_EXAMPLES = 10  # bug examples kept per family, one per distinct problem
SMOKE = {"cases": 5}  # --smoke: every family, a few cases each


def fuzz_family(strategy: st.SearchStrategy[Case], cases: int, seed_value: int) -> dict[str, Any]:
    """Run ``cases`` cases drawn from ``strategy``; counts per outcome and bug examples."""
    counts: Counter[str] = Counter()
    examples: dict[str, dict[str, str]] = {}

    @seed(seed_value)
    @settings(
        max_examples=cases,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case: Case) -> None:
        outcome = run_case(case)
        counts[outcome.kind] += 1
        problem = outcome.detail.split(":")[0]
        if outcome.kind == "bug" and problem not in examples and len(examples) < MAX_EXAMPLES:
            examples[problem] = {"case": case.what, "problem": outcome.detail}

    start = time.perf_counter()
    run()
    return {
        "cases": sum(counts.values()),
        **{kind: counts[kind] for kind in KINDS},
        "examples_of_bugs": list(examples.values()),
        "seed": seed_value,
        "seconds": round(time.perf_counter() - start, 1),
    }


def markdown(report: dict[str, dict[str, Any]], total_cases: int) -> str:
    lines = [
        "# Fuzzing the loaders and parsers with bad input",
        "",
        f"`python benchmarks/fuzz.py --cases {total_cases}`: every case must be accepted "
        "(a valid input) or a clear error (the expected AugmentError, one line naming the "
        "file, row or key).",
        "",
        "| family | cases | accepted | clear error | bug | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for family, row in report.items():
        lines.append(
            f"| {family} | {row['cases']} | {row['accepted']} | {row['clear_error']} "
            f"| {row['bug']} | {row['seconds']} |"
        )
    for family, row in report.items():
        for example in row["examples_of_bugs"]:
            lines.append(f"\n- **{family}** bug: {example['problem']} (case: {example['case']})")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="cases per family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fuzz")
    args = parse_args(parser, SMOKE)
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)  # skipped-image warnings of skip_bad cases
    warnings.simplefilter("ignore")  # Pillow's notes on corrupt files (errors still raise)
    report = {}
    for index, family in enumerate(args.family or FAMILIES):
        report[family] = fuzz_family(FAMILIES[family](), args.cases, args.seed * 100 + index)
        row = report[family]
        print(f"{family}: " + ", ".join(f"{k} {row[k]}" for k in ("cases", *KINDS, "seconds")))
    write_results(args.out, report, markdown(report, args.cases))
    if any(row["bug"] for row in report.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
