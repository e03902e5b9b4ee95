"""Labelled images from a synthesize model, in shards that merge into one dataset.

A generation job (model, classes, images per class, seed) is cut into fixed chunks of
:data:`CHUNK` images of one class. Class ``c``'s images are round 0 of its noise stream
(:mod:`augment.samples`: the synthesize stage's seed scheme, so the same model and seed
give the same images here and there); chunk ``(c, k)`` is positions ``k * CHUNK`` on of
that stream (the noise before it is drawn and dropped: cheap next to the generator), so
it is the same images whichever process makes it. Shard ``k/n`` makes every chunk whose
position in the job is ``k-1`` modulo ``n``; :func:`merge_shards` checks that the shards
are the complete, consistent set and writes the dataset byte-identical to an unsharded
run. Images stream chunk by chunk to disk: memory is flat in the number of images.

Output folder: ``images/<class index>/<n>.png``, ``manifest.csv`` (synthetic train rows)
and ``generate.json`` (the job and the shard it holds), written atomically.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from augment.data.manifest import COLUMNS
from augment.errors import ConfigError, DataError
from augment.io import output_folder
from augment.latent_codes import CodeChoice
from augment.runtime import OnnxGenerator
from augment.samples import SampleWriter, round_chunks, round_seed

#: Images per chunk: the unit of sharding (part of the job, so never changes per run).
CHUNK = 256
#: How the noise is drawn (part of the job): each class's synthesize stream, round 0.
NOISE = "class-stream"
JOB_FILE = "generate.json"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"k/n"`` with 1 <= k <= n, else a ConfigError naming the text."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ConfigError(f"--shard {text!r}: expected k/n, e.g. 2/4") from None
        if not 1 <= index <= count:
            raise ConfigError(f"--shard {text!r}: k must be between 1 and n")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Chunk:
    """``count`` images of class ``label`` (model index), numbered from ``start``."""

    label: int
    start: int
    count: int


@dataclass(frozen=True)
class GenerateJob:
    """What a generated dataset is: every shard of it must agree on all of this."""

    variant: str
    model_sha256: str
    labels: tuple[int, ...]
    per_class: int
    seed: int
    chunk: int = CHUNK
    noise: str = NOISE
    codes: str = ""  # the latent codes set by the user (CodeChoice.describe), if any

    def chunks(self) -> list[Chunk]:
        """Every chunk of the job, in dataset order (class by class)."""
        return [
            Chunk(label, start, min(self.chunk, self.per_class - start))
            for label in self.labels
            for start in range(0, self.per_class, self.chunk)
        ]

    def chunks_of(self, shard: Shard) -> list[Chunk]:
        return self.chunks()[shard.index - 1 :: shard.count]


def generate_folder(
    generator: OnnxGenerator,
    out: str | os.PathLike[str],
    labels: Sequence[int],
    per_class: int,
    seed: int,
    shard: Shard = Shard(),
    progress: bool = True,
    force: bool = False,
    batch_size: int = 256,
    codes: CodeChoice | None = None,
) -> int:
    """Write shard ``shard`` of ``per_class`` images of each class index in ``labels``
    to ``out`` (replaced atomically; a folder gan-augment did not write only with
    ``force``); returns the number of images written. ``batch_size`` (the synthesize
    stage's default) is the generator's batch: the same one gives the same bytes.
    ``codes`` fixes or sweeps a model's latent codes (a sweep spans each class's images)."""
    if per_class < 1:
        raise ConfigError(f"--per-class {per_class}: must be at least 1")
    codes = codes or CodeChoice()
    codes.check(generator.codes, str(generator.path))
    job = GenerateJob(
        generator.info.variant,
        generator.sha256,
        tuple(labels),
        per_class,
        seed,
        codes=codes.describe(),
    )
    chunks = job.chunks_of(shard)
    classes = generator.info.classes
    written = 0
    with output_folder(out, force) as tmp:
        with _manifest_writer(tmp) as rows, _bar(chunks, f"generate {shard}", progress) as bar:
            for chunk in chunks:
                name = classes[chunk.label]
                stream = round_seed(seed, job.variant, name, 0)
                folder = Path("images") / str(chunk.label)
                writer = SampleWriter(
                    tmp, folder, name, "", generator, rows, bar, start=chunk.start
                )
                end = chunk.start + chunk.count
                wanted = set(range(chunk.start, end))
                for offset, images in round_chunks(
                    generator, chunk.label, stream, end, batch_size, wanted, codes, per_class
                ):
                    writer.write(images[max(chunk.start - offset, 0) : end - offset], stream)
                written += chunk.count
        write_job(tmp, job, shard, written)
    return written


@contextlib.contextmanager
def _manifest_writer(folder: Path) -> Iterator[csv.DictWriter]:
    """A csv writer of ``folder/manifest.csv`` rows (dicts) with the header written."""
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as stream:
        rows = csv.DictWriter(stream, COLUMNS, lineterminator="\n")
        rows.writeheader()
        yield rows


def _bar(chunks: Sequence[Chunk], desc: str, progress: bool) -> tqdm:
    total = sum(c.count for c in chunks)
    return tqdm(total=total, desc=desc, unit="img", disable=not progress, dynamic_ncols=True)


def image_path(label: int, n: int) -> str:
    return f"images/{label}/{n:06d}.png"


def write_job(folder: Path, job: GenerateJob, shard: Shard, images: int) -> None:
    record = asdict(job) | {"labels": list(job.labels), "shard": str(shard), "images": images}
    (folder / JOB_FILE).write_text(json.dumps(record, indent=2) + "\n")


def read_job(folder: Path) -> tuple[GenerateJob, Shard]:
    """The job and shard of a generated folder; DataError naming it when unreadable."""
    path = folder / JOB_FILE
    try:
        record = json.loads(path.read_text())
        shard = Shard.parse(record.pop("shard"))
        record.pop("images")
        record["labels"] = tuple(record["labels"])
        record.setdefault("noise", "chunk-seeds")  # written before the class streams
        record.setdefault("codes", "")  # written before latent codes
        return GenerateJob(**record), shard
    except FileNotFoundError:
        raise DataError(f"{folder}: not a generated folder (no {JOB_FILE})") from None
    except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
        raise DataError(f"{path}: not a valid generation record ({exc})") from None


def merge_shards(
    shards: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    progress: bool = True,
    force: bool = False,
) -> int:
    """Merge the shard folders of one job into ``out`` (atomically; a folder gan-augment
    did not write only with ``force``): the same bytes an unsharded run writes. Fails
    naming the folder when a shard is missing, repeated, of another job, or does not hold
    exactly its images. Returns the number of images."""
    folders = [Path(s) for s in shards]
    if not folders:
        raise ConfigError("merge: give the shard folders to merge")
    records = [(folder, *read_job(folder)) for folder in folders]
    job, count = records[0][1], records[0][2].count
    by_index: dict[int, Path] = {}
    for folder, other, shard in records:
        if other != job or shard.count != count:
            raise DataError(
                f"{folder}: shard {shard} of another job than {records[0][0]} "
                "(model, classes, per_class, seed and shard count must agree)"
            )
        if shard.index in by_index:
            raise DataError(f"{folder}: shard {shard} given twice (also {by_index[shard.index]})")
        by_index[shard.index] = folder
    missing = [f"{k}/{count}" for k in range(1, count + 1) if k not in by_index]
    if missing:
        raise DataError(f"merge: shards {', '.join(missing)} missing (given: {len(folders)})")
    readers = {k: _shard_rows(folder, job, Shard(k, count)) for k, folder in by_index.items()}
    total = 0
    chunks = job.chunks()
    with output_folder(out, force) as tmp:
        with _manifest_writer(tmp) as rows, _bar(chunks, "merge", progress) as bar:
            for position, chunk in enumerate(chunks):
                index = position % count + 1
                folder = by_index[index]
                for _ in range(chunk.count):
                    row = next(readers[index])
                    target = tmp / row[0]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    _link_or_copy(folder / row[0], target)
                    rows.writerow(dict(zip(COLUMNS, row, strict=True)))
                bar.update(chunk.count)
                total += chunk.count
        write_job(tmp, job, Shard(), total)
    return total


def _shard_rows(folder: Path, job: GenerateJob, shard: Shard) -> Iterator[list[str]]:
    """Check a shard's manifest lists exactly its images (files present), then stream its
    rows (the manifest is read twice so that nothing is held in memory)."""
    manifest = folder / "manifest.csv"
    expected = (
        image_path(chunk.label, n)
        for chunk in job.chunks_of(shard)
        for n in range(chunk.start, chunk.start + chunk.count)
    )
    with manifest.open(encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream)
        if next(reader, None) != list(COLUMNS):
            raise DataError(f"{manifest}: not a generated manifest (unexpected header)")
        line = 1
        for line, path in enumerate(expected, start=2):
            row = next(reader, None)
            if row is None:
                raise DataError(f"{manifest}: shard {shard} incomplete ({path} and on missing)")
            if row[:1] != [path]:
                raise DataError(f"{manifest} row {line}: expected {path}, found {row[:1]}")
            if not (folder / path).is_file():
                raise DataError(f"{manifest} row {line}: image {folder / path} missing")
        if next(reader, None) is not None:
            raise DataError(f"{manifest} row {line + 1}: more rows than shard {shard} holds")
    return _rows(manifest)


def _rows(manifest: Path) -> Iterator[list[str]]:
    with manifest.open(encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream)
        next(reader)
        yield from reader


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows one (no copy), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
