"""Smoke runs of the benchmarks at a tiny budget, so that none can rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run_benchmark(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def test_long_tail_benchmark_smoke_run(tmp_path) -> None:
    out = tmp_path / "long_tail"
    result = run_benchmark(
        "long_tail.py",
        "--smoke",
        "--datasets",
        "mnist-r50",
        "--seeds",
        "1",
        "--workdir",
        str(tmp_path / "work"),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    (run,) = report["runs"]
    assert run["dataset"] == "mnist-r50"
    assert {"baseline", "mixup-drw", "crt", "full", "crt+gan@sngan"} <= set(run["conditions"])
    assert run["targets"]["sngan"]["best_classical"] in run["conditions"]
    table = out.with_suffix(".md").read_text()
    assert "| `oversample+gan:4@sngan` |" in table and "## Targets" in table
