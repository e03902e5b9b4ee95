"""Scale: data-parallel training under torchrun, and sharded generation.

Measured side by side in one run on this machine (figures are ratios, the machine is
shared and noisy):

* ``ddp``: the train stage of the default variant (sngan, 28x28 MNIST digits, global
  batch 64) for ``--steps`` steps as 1 process x 1 thread, 1 process x 2 threads and
  ``torchrun --nproc_per_node=2`` x 1 thread each (gloo). steps/s from the stage's own
  timer (start-up excluded), plus wall time including start-up.
* ``generate``: ``augment generate`` of 1x and 10x the images (peak RSS of each fresh
  process: flat in the number of images is the target), and the same job as 2 shards run
  at once and merged (wall time against the unsharded run; bytes checked equal).
* ``ray``: the same 1x and 10x jobs locally and with ``--engine ray`` (1 and 2 workers)
  on a cluster started with ``ray start`` (2 CPUs, 127.0.0.1): steady images/s from the
  difference of the two sizes, start-up cost (the 1x wall time less its images at that
  rate), peak RSS of the driver plus every Ray process, the cluster's own start time, a
  job-local cluster (no ``--address``), and the bytes checked equal to the local run.

    python benchmarks/scale.py                 # ~7 minutes on 2 cores
    python benchmarks/scale.py --parts ddp --steps 100
    python benchmarks/scale.py --smoke --out /tmp/scale   # a tiny run: does it work?

Writes ``benchmarks/results/scale.json`` and ``.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._ray import TOKEN_ENV, ray_head  # noqa: E402
from benchmarks._results import parse_args, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AUGMENT = [sys.executable, "-m", "augment.cli"]
SMOKE = {"steps": 2, "per_class": 5}  # --smoke: every setup (torchrun too), a few steps


def timed(command: list[str], cwd: Path, threads: int) -> tuple[float, int]:
    """(wall seconds, peak RSS MiB of the largest child) of a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return wall, round(usage.ru_maxrss / 1024)


def bench_ddp(workdir: Path, steps: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))  # the project copier of the end-to-end tests
    from workspace import new_project

    params = {
        "variants": ["sngan"],
        "train": {"steps": steps, "checkpoint_every": steps, "sample_every": steps},
    }
    project = new_project(ROOT, workdir / "project", params)
    subprocess.run([sys.executable, "-m", "pipelines.prepare"], cwd=project, check=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    setups = {
        "1 process x 1 thread": ([sys.executable], 1, 1),
        "1 process x 2 threads": ([sys.executable], 2, 1),
        "2 processes x 1 thread (torchrun, gloo)": ([*torchrun, "--nproc_per_node=2"], 1, 2),
    }
    rows = {}
    for name, (launcher, threads, processes) in setups.items():
        checkpoint = project / "models/train/sngan/checkpoint.pt"
        checkpoint.unlink(missing_ok=True)
        wall, _ = timed([*launcher, "-m", "pipelines.train", "sngan"], project, threads)
        metrics = json.loads((project / "metrics/train/sngan.json").read_text())
        rows[name] = {
            "processes": processes,
            "threads_per_process": threads,
            "steps": steps,
            "train_seconds": metrics["seconds"],
            "steps_per_s": round(steps / metrics["seconds"], 2),
            "wall_seconds": round(wall, 1),
        }
        print(name, rows[name], flush=True)
    base = rows["1 process x 1 thread"]["steps_per_s"]
    for row in rows.values():
        row["speedup_vs_1x1"] = round(row["steps_per_s"] / base, 2)
    return rows


def export_model(path: Path) -> Path:
    """An sngan generator at 28x28x1, 10 classes, random weights (speed and memory do not
    depend on the weights)."""
    from augment.export import export_onnx
    from augment.registry import Registry
    from augment.variant import DataSpec

    spec = DataSpec(28, 1, tuple(str(i) for i in range(10)))
    variant = Registry.from_plugins().create("sngan", {}, spec, seed=0)
    export_onnx(variant, variant.generator.eval(), path)
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def bench_generate(workdir: Path, per_class: int) -> dict[str, Any]:
    model = export_model(workdir / "sngan.onnx")
    runs: dict[str, Any] = {}
    for factor in (1, 10):
        n = per_class * factor
        command = [*AUGMENT, "generate", str(model), str(workdir / f"g{n}"), "--per-class", str(n)]
        wall, rss = timed(command, workdir, 1)
        runs[f"{10 * n} images"] = {
            "wall_seconds": round(wall, 1),
            "images_per_s": round(10 * n / wall, 1),
            "peak_rss_mib": rss,
        }
        print(runs[f"{10 * n} images"], flush=True)
    n = per_class * 10
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    shards = [
        subprocess.Popen(
            [*AUGMENT, "generate", str(model), str(workdir / f"s{k}"), "--per-class", str(n)]
            + ["--shard", f"{k}/2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for k in (1, 2)
    ]
    assert all(p.wait() == 0 for p in shards)
    shard_wall = time.perf_counter() - started
    merge_wall, _ = timed(
        [*AUGMENT, "merge", str(workdir / "merged"), str(workdir / "s1"), str(workdir / "s2")],
        workdir,
        1,
    )
    unsharded = runs[f"{10 * n} images"]["wall_seconds"]
    runs["2 shards at once + merge"] = {
        "images": 10 * n,
        "shards_wall_seconds": round(shard_wall, 1),
        "merge_wall_seconds": round(merge_wall, 1),
        "speedup_vs_unsharded": round(unsharded / (shard_wall + merge_wall), 2),
        "bytes_equal_to_unsharded": tree(workdir / "merged") == tree(workdir / f"g{n}"),
    }
    print(runs["2 shards at once + merge"], flush=True)
    return runs


#: A cluster on 127.0.0.1 with token authentication, as in the tests.
RAY_ENV = {**os.environ, **TOKEN_ENV}


def sampled(
    command: list[str], cwd: Path, with_ray: bool = True, env: dict[str, str] | None = None
) -> tuple[float, int]:
    """(wall seconds, peak summed RSS MiB of the process, its children and, ``with_ray``,
    every Ray process on the machine) of a fresh process (``env`` added to
    :data:`RAY_ENV`), sampled every 50 ms."""
    import psutil

    def ray_processes() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["name", "cmdline"]):
            text = " ".join(process.info["cmdline"] or [process.info["name"] or ""])
            if "ray::" in text or "raylet" in text or "gcs_server" in text or "/ray/" in text:
                found.append(process)
        return found

    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=RAY_ENV | (env or {}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            group = {p.pid: p for p in [driver, *driver.children(recursive=True)]}
            if with_ray:
                group |= {p.pid: p for p in ray_processes()}
            total = 0
            for member in group.values():
                with contextlib.suppress(psutil.Error):
                    total += member.memory_info().rss
            peak = max(peak, total)
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return wall, round(peak / 2**20)


def bench_ray(workdir: Path, per_class: int) -> dict[str, Any]:
    model = export_model(workdir / "sngan-ray.onnx")
    # Ray's socket paths must stay short (108 bytes): its own folder under /tmp
    temp = tempfile.mkdtemp(prefix="scale-ray-", dir="/tmp" if Path("/tmp").is_dir() else None)
    rows: dict[str, Any] = {}
    try:
        with ray_head(Path(temp), RAY_ENV) as (address, cluster_start):
            rows["cluster start (ray start), s"] = round(cluster_start, 1)
            on_cluster = ["--engine", "ray", "--address", address]
            setups = {
                "local": [],
                "ray, 1 worker": [*on_cluster, "--workers", "1"],
                "ray, 2 workers": [*on_cluster, "--workers", "2"],
            }
            _, idle = sampled([sys.executable, "-c", "pass"], workdir)
            rows["cluster idle RSS, MiB"] = idle
            for name, extra in setups.items():
                walls, peaks = {}, {}
                for n in (per_class, 10 * per_class):
                    out = workdir / f"{name.replace(' ', '').replace(',', '-')}-{n}"
                    command = [*AUGMENT, "generate", str(model), str(out), "--per-class", str(n)]
                    walls[n], peaks[n] = sampled(command + extra, workdir, with_ray=bool(extra))
                small, large = per_class, 10 * per_class
                extra_seconds = walls[large] - walls[small]  # <= 0 only in a tiny, noisy run
                rate = 10 * (large - small) / extra_seconds if extra_seconds > 0 else None
                rows[name] = {
                    "images": 10 * large,
                    "wall_seconds": round(walls[large], 1),
                    "steady_images_per_s": round(rate) if rate else None,
                    "startup_seconds": round(walls[small] - 10 * small / rate, 1) if rate else None,
                    "peak_rss_mib": max(peaks.values()),
                }
                print(name, rows[name], flush=True)
        local = tree(workdir / f"local-{10 * per_class}")
        rows["ray, 2 workers"]["bytes_equal_to_local"] = (
            tree(workdir / f"ray-2workers-{10 * per_class}") == local
        )
        out = workdir / "job-local"  # a cluster of its own, in the short temp folder
        command = [*AUGMENT, "generate", str(model), str(out), "--per-class", str(10 * per_class)]
        with_temp = {"TMPDIR": temp}
        wall, peak = sampled(
            command + ["--engine", "ray", "--workers", "2"], workdir, env=with_temp
        )
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    rows["ray, 2 workers, job-local cluster"] = {
        "images": 100 * per_class,
        "wall_seconds": round(wall, 1),
        "peak_rss_mib": peak,
        "bytes_equal_to_local": tree(out) == local,
    }
    base = rows["local"]["steady_images_per_s"]
    for row in rows.values():
        if isinstance(row, dict) and "steady_images_per_s" in row:
            rate = row["steady_images_per_s"]
            row["rate_vs_local"] = round(rate / base, 2) if rate and base else None
    print(rows, flush=True)
    return rows


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Scale (benchmarks/scale.py)", ""]
    if "ddp" in report:
        lines += [
            "## Data-parallel training (sngan, global batch 64)",
            "",
            "| setup | steps/s | speedup | train s | wall s |",
            "|---|---|---|---|---|",
        ]
        for name, row in report["ddp"].items():
            lines.append(
                f"| {name} | {row['steps_per_s']} | {row['speedup_vs_1x1']}x | "
                f"{row['train_seconds']} | {row['wall_seconds']} |"
            )
        lines.append("")
    if "generate" in report:
        lines += ["## Generation (augment generate, sngan 28x28)", ""]
        for name, row in report["generate"].items():
            lines.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
        lines.append("")
    if "ray" in report:
        lines += [
            "## Generation on Ray Data (augment generate --engine ray, sngan 28x28)",
            "",
            "| setup | images | wall s | steady images/s | vs local | start-up s | "
            "peak RSS MiB | bytes = local |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in report["ray"].items():
            if not isinstance(row, dict):
                continue
            lines.append(
                f"| {name} | {row['images']} | {row['wall_seconds']} | "
                + " | ".join(
                    str(row.get(key) if row.get(key) is not None else "")
                    for key in ("steady_images_per_s", "rate_vs_local", "startup_seconds")
                )
                + f" | {row['peak_rss_mib']} | {row.get('bytes_equal_to_local', '')} |"
            )
        extras = {k: v for k, v in report["ray"].items() if not isinstance(v, dict)}
        lines += ["", ", ".join(f"{k}: {v}" for k, v in extras.items()), ""]
    lines.append(f"machine: {report['machine']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["ddp", "generate", "ray"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--per-class", type=int, default=200, help="images per class (1x)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scale.json")
    args = parse_args(parser, SMOKE)
    report: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    with tempfile.TemporaryDirectory() as tmp:
        if "ddp" in args.parts:
            report["ddp"] = bench_ddp(Path(tmp), args.steps)
        if "generate" in args.parts:
            report["generate"] = bench_generate(Path(tmp), args.per_class)
        if "ray" in args.parts:
            report["ray"] = bench_ray(Path(tmp), args.per_class)
    write_results(args.out, report, markdown(report))


if __name__ == "__main__":
    main()
