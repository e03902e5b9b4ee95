"""Sharded generation: any sharding merges into the bytes of an unsharded run, and the
merge refuses a shard set that is incomplete, repeated or mixed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from augment.data.manifest import Manifest
from augment.errors import ConfigError, DataError
from augment.generate import CHUNK, Shard, generate_folder, merge_shards
from augment.runtime import OnnxGenerator

PER_CLASS = CHUNK + 44  # two chunks per class: shards cut inside a class


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def runs(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """One unsharded run and its 3 shards (5 classes x 2 chunks = 10 chunks: 4 + 3 + 3)."""
    root = tmp_path_factory.mktemp("generate")
    generator = OnnxGenerator(tiny_models["synthesize"])
    labels = range(len(generator.info.classes))
    runs = {"whole": root / "whole"}
    generate_folder(generator, runs["whole"], labels, PER_CLASS, 7, progress=False)
    for k in (1, 2, 3):
        runs[k] = root / f"shard{k}"
        generate_folder(generator, runs[k], labels, PER_CLASS, 7, Shard(k, 3), progress=False)
    return runs


def test_shards_merge_into_the_bytes_of_an_unsharded_run(runs, tmp_path):
    whole = tree(runs["whole"])
    assert len(whole) == 5 * PER_CLASS + 3  # images, manifest.csv, generate.json, marker
    sizes = [len(Manifest.read(runs[k] / "manifest.csv")) for k in (1, 2, 3)]
    # chunks alternate 256, 44 (class 0), 256, 44 (class 1), ...; shard k takes every third
    assert sizes == [2 * CHUNK + 2 * 44, CHUNK + 2 * 44, 2 * CHUNK + 44]
    assert (
        merge_shards([runs[3], runs[1], runs[2]], tmp_path / "merged", progress=False)
        == len(whole) - 3
    )
    assert tree(tmp_path / "merged") == whole
    manifest = Manifest.read(tmp_path / "merged" / "manifest.csv")
    assert manifest.counts("train", "synthetic").tolist() == [PER_CLASS] * 5
    manifest.check_files()


def test_the_seed_changes_every_chunk(tiny_models, runs, tmp_path):
    generator = OnnxGenerator(tiny_models["synthesize"])
    generate_folder(generator, tmp_path / "other", [4], PER_CLASS, 8, Shard(2, 2), progress=False)
    a = (runs["whole"] / "images/4/000290.png").read_bytes()
    assert (tmp_path / "other/images/4/000290.png").read_bytes() != a


def copy_shards(runs: dict, tmp_path: Path) -> list[Path]:
    copies = [tmp_path / f"s{k}" for k in (1, 2, 3)]
    for k, copy in zip((1, 2, 3), copies, strict=True):
        shutil.copytree(runs[k], copy)
    return copies


def drop_last_rows(folder: Path) -> None:
    lines = (folder / "manifest.csv").read_text().splitlines()
    (folder / "manifest.csv").write_text("\n".join(lines[:-5]) + "\n")


def change_seed(folder: Path) -> None:
    record = folder / "generate.json"
    record.write_text(record.read_text().replace('"seed": 7', '"seed": 9'))


DAMAGE = {  # name: (what is done to the shard folders s1, s2, s3, the error it must give)
    "missing": (lambda s: s[:2], r"shards 3/3 missing"),
    "twice": (lambda s: [s[0], s[1], s[1]], r"s2: shard 2/3 given twice"),
    "image-gone": (
        lambda s: (s[2] / "images/1/000100.png").unlink() or s,
        r"image .*000100.png missing",
    ),
    "truncated": (lambda s: drop_last_rows(s[1]) or s, r"s2/manifest.csv: shard 2/3 incomplete"),
    "other-seed": (lambda s: change_seed(s[0]) or s, r"s2: shard 2/3 of another job than .*s1"),
    "not-generated": (lambda s: (s[0] / "generate.json").unlink() or s, r"s1: not a generated"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_merge_refuses_a_bad_shard_set(runs, tmp_path, case):
    damage, message = DAMAGE[case]
    shards = damage(copy_shards(runs, tmp_path))
    with pytest.raises(DataError, match=message):
        merge_shards(shards, tmp_path / "merged", progress=False)
    assert not (tmp_path / "merged").exists()
    assert not list(tmp_path.glob(".merged*"))


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/2/3", "-1/2"])
def test_bad_shard_names_it(text):
    with pytest.raises(ConfigError, match=f"--shard '{text}'"):
        Shard.parse(text)


def test_cli_shards_and_merge(tiny_models, tmp_path):
    def augment(*args: object) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "augment.cli", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True)

    model = tiny_models["synthesize"]
    for k in (1, 2):
        result = augment(
            "generate", model, tmp_path / f"s{k}", "--per-class", 3, "--shard", f"{k}/2"
        )
        assert result.returncode == 0, result.stderr
    assert augment("merge", tmp_path / "m", tmp_path / "s1", tmp_path / "s2").returncode == 0
    assert augment("generate", model, tmp_path / "w", "--per-class", 3).returncode == 0
    assert tree(tmp_path / "m") == tree(tmp_path / "w")
    bad = augment("merge", tmp_path / "m2", tmp_path / "s1")
    assert bad.returncode == 2 and not (tmp_path / "m2").exists()
    assert bad.stderr.strip() == "augment: error: merge: shards 2/2 missing (given: 1)"


def test_generate_and_the_synthesize_stage_make_the_same_images(tiny_models, runs, tmp_path):
    """One seed scheme (augment.samples): ``augment generate`` writes, class by class, the
    images the synthesize stage (unfiltered) would add for the same model and seed."""
    import numpy as np

    from augment.data.images import read_image, write_png
    from augment.synthesize import SynthesisConfig, synthesize_arrays

    generator = OnnxGenerator(tiny_models["synthesize"])
    classes = generator.info.classes
    rows = []
    for name in classes:  # one real 8x8 image a class: what synthesize checks the model by
        write_png(tmp_path / f"{name}.png", np.zeros((8, 8, 1), np.uint8))
        rows.append({"path": f"{name}.png", "label": name, "split": "train"})
    real = Manifest.from_rows(rows, tmp_path)
    config = SynthesisConfig().with_filter(False)
    quotas = dict.fromkeys(classes, PER_CLASS)
    arrays = synthesize_arrays(generator, real, config, 7, quotas=quotas, progress=False)
    frame = Manifest.read(runs["whole"] / "manifest.csv").frame
    for index, name in enumerate(classes):
        paths = frame.loc[frame["label"] == name, "path"].tolist()
        assert paths[0] == f"images/{index}/000000.png" and len(paths) == PER_CLASS
        files = np.stack([read_image(runs["whole"] / path) for path in paths])
        np.testing.assert_array_equal(files, arrays[name])


def test_a_run_killed_mid_job_resumes_from_the_chunks_it_made(sngan_28, tmp_path):
    """SIGKILL part way, then the same command: the chunks already made are kept (the
    same files, not made again) and the folder equals an uninterrupted run's."""
    per_class = 512  # 20 chunks
    generate_folder(OnnxGenerator(sngan_28), tmp_path / "whole", range(10), per_class, 0,
                    progress=False)  # fmt: skip
    out = tmp_path / "out"
    command = [sys.executable, "-m", "augment.cli", "generate", str(sngan_28), str(out),
               "--per-class", str(per_class)]  # fmt: skip
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = tmp_path / ".out.chunks" / "rows"
    while not (rows.is_dir() and len(list(rows.glob("*.csv"))) >= 3):
        assert job.poll() is None, "the job ended before the kill"
        time.sleep(0.01)
    job.kill()
    job.wait()
    made = sorted(rows.glob("*.csv"))
    assert not out.exists() and 3 <= len(made) < 20
    first = tmp_path / ".out.chunks" / "images" / "0" / "000000.png"
    stamp = first.stat().st_ino, first.stat().st_mtime_ns
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"resuming, {len(made)} of 20 chunks already made" in result.stderr
    kept = out / "images" / "0" / "000000.png"  # hard-linked from the store: the same file
    assert (kept.stat().st_ino, kept.stat().st_mtime_ns) == stamp
    assert tree(out) == tree(tmp_path / "whole")
    assert not (tmp_path / ".out.chunks").exists()
