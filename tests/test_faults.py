"""Faults a long run meets: a SIGKILL mid-training, mid-generation or mid-translation, a
full or read-only disk, and two runs of the same seed (byte-identical outputs)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from workspace import edit_params, merge, new_project

from augment.checkpoint import load_checkpoint
from augment.data.batches import TrainingData
from augment.data.images import write_png
from augment.errors import AugmentError
from augment.generate import generate_folder
from augment.runtime import OnnxGenerator

ROOT = Path(__file__).resolve().parents[1]
STEPS = 60
PARAMS = {
    "prepare": {"limit_per_class": 30, "long_tail": {"ratio": 3}},
    "variants": ["cgan"],
    "train": {"steps": STEPS, "batch_size": 16, "checkpoint_every": 1, "sample_every": 30},
    "synthesize": {"variants": ["cgan"], "filter": {"enabled": False}},
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
TEXT = {"capture_output": True, "text": True}
pytestmark = pytest.mark.slow


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def stage(project: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=project, env=ENV, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


def leftovers(folder: Path) -> list[str]:
    """Temporaries a killed writer left (``.<name>.tmp-<pid>-...``)."""
    return sorted(p.name for p in folder.rglob(".*.tmp-*"))


def kill_when(
    command: list[str], cwd: Path, ready, timeout: float = 120, env: dict | None = None
) -> None:
    """Run ``command`` in its own process group and SIGKILL the whole group (a crash, not
    a polite stop) as soon as ``ready()`` holds; fail if it finishes first."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env or ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise AssertionError(f"finished before the kill: {process.stderr.read()[-2000:]!r}")
        assert time.monotonic() < deadline, "timed out waiting to kill"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()


def checkpoint_step(path: Path) -> int:
    try:
        return int(load_checkpoint(path)["step"]) if path.exists() else 0
    except AugmentError:  # being replaced this instant
        return 0


# -- training ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[str, Path]:
    """Two copies of a tiny project, each prepared by its own run of the prepare stage."""
    root = tmp_path_factory.mktemp("faults")
    projects = {}
    for name in ("straight", "killed"):
        projects[name] = new_project(ROOT, root / name, PARAMS)
        stage(projects[name], "pipelines.prepare")
    return projects


TRAIN = [sys.executable, "-m", "pipelines.train", "cgan"]
CHECKPOINT = Path("models/train/cgan/checkpoint.pt")


def test_sigkill_during_training_resumes_to_the_same_bytes(projects):
    """Kill at a random step, rerun: the same checkpoint, model and dataset as one straight
    run; then every stage's outputs are byte-identical (DVC's caches stay valid)."""
    straight, killed = projects["straight"], projects["killed"]
    stage(straight, "pipelines.train", "cgan")
    kill_at = random.randint(5, STEPS - 15)
    kill_when(TRAIN, killed, lambda: checkpoint_step(killed / CHECKPOINT) >= kill_at)
    stopped = checkpoint_step(killed / CHECKPOINT)
    assert 0 < stopped < STEPS, f"killed at step {stopped}"
    stage(killed, "pipelines.train", "cgan")
    a, b = (load_checkpoint(p / CHECKPOINT) for p in (straight, killed))
    for key in ("generator", "discriminator", "ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name}: killed at step {stopped}"
    assert a["history"] == b["history"]
    assert not leftovers(killed / "models")
    for project in (straight, killed):
        stage(project, "pipelines.export", "cgan")
        stage(project, "pipelines.synthesize", "cgan")
    for output in ("data/prepared", "models/train", "models/onnx", "data/augmented"):
        assert tree(straight / output) == tree(killed / output), f"{output} differs"


def test_dvc_repro_trains_under_the_launcher_of_params_and_resumes(projects, tmp_path):
    """Data-parallel training killed and resumed: ``train.launcher: {nproc_per_node: 2}``
    makes ``dvc repro`` run the train stage under torchrun (2 CPU processes, gloo; rank 0
    checkpoints); SIGKILLed mid-run and repeated, it resumes and ends with the weights of
    the same 2-process job started by hand with torchrun and never killed. A launcher the
    global batch does not split over is a one-line error before anything starts."""
    launcher = {"train": {"launcher": {"nproc_per_node": 2}}}
    by_hand = new_project(ROOT, tmp_path / "by-hand", PARAMS)
    piped = new_project(ROOT, tmp_path / "dvc", merge(PARAMS, launcher))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command = [*torchrun, "--nproc_per_node=2", "-m", "pipelines.train", "cgan"]
    shutil.copytree(projects["straight"] / "data/prepared", by_hand / "data/prepared")
    subprocess.run(command, cwd=by_hand, env=ENV, check=True, capture_output=True)
    repro = ["dvc", "repro", "train@cgan"]
    env = {**ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    kill_when(repro, piped, lambda: checkpoint_step(piped / CHECKPOINT) >= 20, env=env)
    assert checkpoint_step(piped / CHECKPOINT) < STEPS
    result = subprocess.run(repro, cwd=piped, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed cgan from step" in result.stderr
    a, b = (load_checkpoint(p / CHECKPOINT) for p in (by_hand, piped))
    assert len(b["rng_ranks"]) == 2
    for key in ("generator", "discriminator", "ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs from torchrun's"
    edit_params(piped, {"train": {"batch_size": 3}})
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "cgan"], cwd=piped, env=env, **TEXT
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: params.yaml train: batch_size 3 does not split into equal shares of at least "
        "2 images over the launcher's 2 processes"
    ]


# -- generation and translation ----------------------------------------------------------------


def count_pngs(folder: Path, name: str) -> int:
    return sum(len(list(t.rglob("*.png"))) for t in folder.glob(f".{name}.tmp-*"))


@pytest.mark.parametrize("command", ["generate", "translate"])
def test_sigkill_mid_output_leaves_the_previous_output_and_reruns_cleanly(
    tiny_models, tmp_path, command
):
    augment = [sys.executable, "-m", "augment.cli", command]
    if command == "generate":
        model, extra = tiny_models["synthesize"], ["--per-class", "600"]
        args = lambda out, seed: [*augment, str(model), str(out), *extra, "--seed", str(seed)]  # noqa: E731
    else:
        model, inputs = tiny_models["noisy"], tmp_path / "inputs"
        rng = np.random.default_rng(0)
        for i in range(2000):
            write_png(
                inputs / f"{i // 100}" / f"{i:05d}.png", rng.integers(0, 256, (8, 8, 1), np.uint8)
            )
        args = lambda out, seed: [*augment, str(model), str(inputs), str(out), "--seed", str(seed)]  # noqa: E731
    out, clean = tmp_path / "out", tmp_path / "clean"
    subprocess.run(args(out, 1), env=ENV, check=True, capture_output=True)  # an earlier output
    before = tree(out)
    kill_when(args(out, 0), tmp_path, lambda: count_pngs(tmp_path, "out") >= 200)
    assert tree(out) == before  # the earlier output, whole; nothing half-written in it
    assert leftovers(tmp_path)  # the killed writer's temporary is hidden beside it
    subprocess.run(args(out, 0), env=ENV, check=True, capture_output=True)
    subprocess.run(args(clean, 0), env=ENV, check=True, capture_output=True)
    assert tree(out) == tree(clean) != before
    assert not leftovers(tmp_path)  # the rerun swept the dead writer's temporary


# -- a file system that refuses the write -------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 16 MiB tmpfs (needs root's mount; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def cli(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "augment.cli", *map(str, args)]
    return subprocess.run(command, env=ENV, capture_output=True, text=True)


def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_output(tiny_models, small_disk):
    model, out = tiny_models["synthesize"], small_disk / "out"
    assert cli("generate", model, out, "--per-class", 20).returncode == 0
    before = tree(out)
    result = cli("generate", model, out, "--per-class", 20000, "--seed", 1)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]  # after the progress bar
    assert last == f"augment: error: {out}: cannot write output (No space left on device)"
    assert tree(out) == before and not leftovers(small_disk)


def test_a_full_disk_keeps_the_last_checkpoint(registry, mnist_small, small_disk):
    from augment.train import TrainConfig, TrainOutputs, fit
    from augment.variant import DataSpec

    images, labels = mnist_small
    spec = DataSpec(28, 1, tuple(str(i) for i in range(10)))
    outputs = TrainOutputs(small_disk / "ck.pt", small_disk / "grids", small_disk / "losses.csv")
    config = TrainConfig(steps=2, batch_size=16, checkpoint_every=2, sample_every=100)

    def train(steps: int) -> None:
        variant = registry.create("cgan", {}, spec, seed=0)
        conf = config.model_copy(update={"steps": steps})
        fit(variant, TrainingData(images, labels), conf, outputs, 0, progress=False)

    train(2)
    before = outputs.checkpoint.read_bytes()
    free = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 64 * 1024))
    with pytest.raises(AugmentError, match=r"ck\.pt: cannot write output \(No space left"):
        train(4)
    assert outputs.checkpoint.read_bytes() == before and not leftovers(small_disk)


def test_a_read_only_output_folder_is_a_clear_error(tiny_models, small_disk):
    model, out = tiny_models["synthesize"], small_disk / "out"
    generate_folder(OnnxGenerator(model), out, [0], 3, 0, progress=False)
    before = tree(out)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = cli("generate", model, out, "--per-class", 3, "--seed", 1)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"augment: error: {out}: cannot write output (Read-only file system)"
    )
    assert tree(out) == before
