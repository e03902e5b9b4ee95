"""``augment generate --engine ray`` on a real local Ray cluster (a head bound to 127.0.0.1
with 2 CPUs, started with ``ray start`` as a user would): byte-identical to a local run,
complete and identical after a worker is killed mid-job, a cluster of the job's own
without ``--address`` (beside the user's), one-line errors for a cluster that cannot be
reached, cannot hold the workers, or runs another version. Each test stops only the
clusters it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from augment.generate import generate_folder
from augment.ray_engine import _check_reachable
from augment.runtime import OnnxGenerator
from benchmarks._ray import TOKEN_ENV, free_port, ray_head

pytest.importorskip("ray.data", reason="the gan-augment[ray] extra is not installed")

#: The cluster binds to 127.0.0.1 and checks a token, which the driver sends (TOKEN_ENV).
ENV = {**os.environ, **TOKEN_ENV}


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def augment(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "augment.cli", *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=300, env=ENV, cwd=cwd
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    # Ray's socket paths must stay short: a temp dir of its own under /tmp.
    with ray_head(Path(f"/tmp/gan-augment-ray-{os.getpid()}"), ENV) as (address, _):
        yield address


def test_a_ray_run_is_byte_identical_to_a_local_run(cluster, tiny_models, tmp_path):
    model = tiny_models["synthesize"]
    generate_folder(OnnxGenerator(model), tmp_path / "local", range(5), 300, 7, progress=False)
    result = augment(
        "generate", model, tmp_path / "ray", "--per-class", 300, "--seed", 7,
        "--engine", "ray", "--address", cluster, "--workers", 2,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "ray") == tree(tmp_path / "local")
    assert not list(tmp_path.glob(".ray.*")), "the chunk store is removed at the end"


def test_without_an_address_the_job_gets_a_cluster_of_its_own(cluster, tiny_models, tmp_path):
    """Not the cluster RAY_ADDRESS names (Ray would join it, and refuse `num_cpus`), and
    that cluster keeps running after the job's own one stops."""
    model = tiny_models["synthesize"]
    generate_folder(OnnxGenerator(model), tmp_path / "local", range(5), 30, 7, progress=False)
    command = [sys.executable, "-m", "augment.cli", "generate", model, tmp_path / "ray",
               "--per-class", "30", "--seed", "7", "--engine", "ray", "--workers", "1"]  # fmt: skip
    result = subprocess.run(
        list(map(str, command)), capture_output=True, text=True, timeout=300,
        env={**ENV, "RAY_ADDRESS": cluster},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "ray") == tree(tmp_path / "local")
    _check_reachable(cluster)  # ConfigError if the user's cluster stopped with the job's


def test_a_worker_killed_mid_job_still_gives_the_complete_identical_output(
    cluster, sngan_28, tmp_path
):
    per_class = 1024  # 40 chunks of 256: a few seconds of work for 2 workers
    generate_folder(OnnxGenerator(sngan_28), tmp_path / "local", range(10), per_class, 0,
                    progress=False)  # fmt: skip
    out = tmp_path / "ray"
    job = subprocess.Popen(
        [sys.executable, "-m", "augment.cli", "generate", sngan_28, out,
         "--per-class", str(per_class), "--engine", "ray", "--address", cluster],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    rows = tmp_path / ".ray.chunks" / "rows"
    deadline = time.monotonic() + 120
    while not (rows.is_dir() and len(list(rows.glob("*.csv"))) >= 3):
        assert job.poll() is None, job.stderr.read()
        assert time.monotonic() < deadline, "no chunk was made"
        time.sleep(0.02)
    actors = subprocess.run(
        ["pgrep", "-f", r"MapBatches\(ChunkMaker\)"], capture_output=True, text=True
    ).stdout.split()
    assert actors, "no ChunkMaker actor process found"
    os.kill(int(actors[0]), signal.SIGKILL)
    made_at_kill = len(list(rows.glob("*.csv")))
    assert not out.exists() and made_at_kill < 40, "the kill came after the job"
    _, stderr = job.communicate(timeout=300)
    assert job.returncode == 0, stderr
    assert tree(out) == tree(tmp_path / "local")


def test_an_address_that_cannot_be_reached_is_one_line(tiny_models, tmp_path):
    started = time.monotonic()
    result = augment(
        "generate", tiny_models["synthesize"], tmp_path / "out", "--engine", "ray",
        "--address", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    assert result.returncode != 0
    assert "cannot be reached" in result.stderr and len(result.stderr.splitlines()) == 1
    assert time.monotonic() - started < 60
    assert not (tmp_path / "out").exists()


def test_more_workers_than_the_cluster_holds_is_one_line(cluster, tiny_models, tmp_path):
    result = augment(
        "generate", tiny_models["synthesize"], tmp_path / "out", "--engine", "ray",
        "--address", cluster, "--workers", 3,
    )  # fmt: skip
    assert result.returncode != 0
    assert "has 2 CPUs, 3 workers need 3" in result.stderr.splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_a_cluster_that_refuses_the_token_is_one_line_with_the_remedy(
    cluster, tiny_models, tmp_path
):
    """The cluster checks a token; a driver with token authentication off is refused."""
    command = [sys.executable, "-m", "augment.cli", "generate", tiny_models["synthesize"],
               tmp_path / "out", "--engine", "ray", "--address", cluster]  # fmt: skip
    result = subprocess.run(
        list(map(str, command)), capture_output=True, text=True, timeout=300,
        env={**ENV, "RAY_AUTH_MODE": "disabled"},
    )  # fmt: skip
    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert "cannot connect (the cluster uses token authentication" in last, result.stderr
    assert not (tmp_path / "out").exists()


def test_address_needs_the_ray_engine(tiny_models, tmp_path):
    result = augment("generate", tiny_models["synthesize"], tmp_path / "o", "--address", "x:1")
    assert result.returncode != 0 and "--address needs --engine ray" in result.stderr


def test_a_worker_running_another_version_is_named(cluster, tiny_models, tmp_path):
    """A second cluster whose node sees gan-augment 9.9.9 (a dist-info first on its
    PYTHONPATH: what a stale install on a worker machine looks like to Python)."""
    fake = tmp_path / "stale"
    info = fake / "gan_augment-9.9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gan-augment\nVersion: 9.9.9\n")
    temp = Path(f"/tmp/gan-augment-ray-{os.getpid()}-stale")
    with ray_head(temp, {**ENV, "PYTHONPATH": str(fake)}) as (address, _):
        result = augment(
            "generate", tiny_models["synthesize"], tmp_path / "out", "--engine", "ray",
            "--address", address, cwd=tmp_path,  # not the checkout: its egg-info is 0.1.0
        )  # fmt: skip
    _check_reachable(cluster)  # the other cluster (the module's) still runs
    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert "ray worker 127.0.0.1" in last and "gan-augment 9.9.9 there" in last, result.stderr
    assert not (tmp_path / "out").exists()
