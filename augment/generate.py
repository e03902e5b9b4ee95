"""Labelled images from a synthesize model: chunks made by an engine, kept on disk as they
complete, written as one dataset or as shards that merge into it.

A generation job (model, classes, images per class, seed) is cut into fixed chunks of
:data:`CHUNK` images of one class. Class ``c``'s images are round 0 of its noise stream
(:mod:`augment.samples`: the synthesize stage's seed scheme, so the same model and seed
give the same images here and there); chunk ``(c, k)`` is positions ``k * CHUNK`` on of
that stream (the noise before it is drawn and dropped: cheap next to the generator), so
it is the same bytes whichever process or machine makes it (:func:`make_chunk`).

An engine makes the chunks: :class:`LocalEngine` in this process, or
:class:`augment.ray_engine.RayEngine` on a Ray cluster. Each chunk made goes into a
:class:`ChunkStore` beside the output folder, so a run killed mid-job resumes with the
chunks still to make; the folder is written from the store atomically at the end. Shard
``k/n`` makes every chunk whose position in the job is ``k-1`` modulo ``n``;
:func:`merge_shards` checks that the shards are the complete, consistent set and writes
the dataset byte-identical to an unsharded run. Memory is flat in the number of images.

Output folder: ``images/<class index>/<n>.png``, ``manifest.csv`` (synthetic train rows)
and ``generate.json`` (the job and the shard it holds).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tqdm.auto import tqdm

from augment.data.images import encode_png
from augment.data.manifest import COLUMNS
from augment.errors import ConfigError, DataError
from augment.io import check_output_folder, output_folder, refused_writes
from augment.latent_codes import CodeChoice
from augment.samples import round_chunks, round_seed, synthetic_row

if TYPE_CHECKING:
    from augment.runtime import OnnxGenerator

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class MadeChunk:
    """One chunk made: its PNGs (path in the output folder, bytes) and manifest rows."""

    chunk: Chunk
    files: tuple[tuple[str, bytes], ...]
    rows: tuple[dict[str, str], ...]


def make_chunk(
    generator: OnnxGenerator,
    job: GenerateJob,
    chunk: Chunk,
    batch_size: int = CHUNK,
    codes: CodeChoice | None = None,
) -> MadeChunk:
    """Chunk ``chunk`` of ``job``: the same bytes in any process with the same model,
    ``batch_size`` and package versions (:func:`augment.ray_engine.environment`)."""
    name = generator.info.classes[chunk.label]
    stream = round_seed(job.seed, job.variant, name, 0)
    end = chunk.start + chunk.count
    wanted = set(range(chunk.start, end))
    files, rows = [], []
    for offset, images in round_chunks(
        generator, chunk.label, stream, end, batch_size, wanted, codes, job.per_class
    ):
        first = max(chunk.start, offset)
        for n, image in enumerate(images[first - offset : end - offset], start=first):
            path = image_path(chunk.label, n)
            files.append((path, encode_png(image)))
            rows.append(synthetic_row(path, name, "", generator, stream))
    return MadeChunk(chunk, tuple(files), tuple(rows))


#: Makes the given chunks, yielding each one made, in any order.
MakeChunks = Callable[[Sequence[Chunk]], Iterator[MadeChunk]]


class Engine(Protocol):
    """Where a job's chunks are made. :meth:`connect` sets up (and checks) what the job
    needs before any output is touched, and yields the function that makes chunks."""

    def connect(
        self, generator: OnnxGenerator, job: GenerateJob, batch_size: int, codes: CodeChoice
    ) -> contextlib.AbstractContextManager[MakeChunks]: ...


class LocalEngine:
    """Every chunk in this process, one after the other."""

    @contextlib.contextmanager
    def connect(
        self, generator: OnnxGenerator, job: GenerateJob, batch_size: int, codes: CodeChoice
    ) -> Iterator[MakeChunks]:
        yield lambda chunks: (make_chunk(generator, job, c, batch_size, codes) for c in chunks)


class ChunkStore:
    """The chunks of one job's shard made so far, kept in ``.<out name>.chunks`` beside
    the output folder: a chunk's PNGs, then its rows file (``rows/<label>-<start>.csv``,
    renamed into place) mark it complete, so a run killed at any point resumes with the
    chunks still to make. A store of another job (model, classes, seed, shard, ...) is
    discarded."""

    def __init__(self, out: Path, job: GenerateJob, shard: Shard) -> None:
        self.root = out.with_name(f".{out.name}.chunks")
        self.out, self.job, self.shard = out, job, shard
        record = _job_text(job, shard)
        job_file = self.root / JOB_FILE
        if not (job_file.is_file() and job_file.read_text() == record):
            with refused_writes(out):
                shutil.rmtree(self.root, ignore_errors=True)
                (self.root / "rows").mkdir(parents=True)
                job_file.write_text(record)

    def _rows_file(self, chunk: Chunk) -> Path:
        return self.root / "rows" / f"{chunk.label}-{chunk.start}.csv"

    def done(self, chunk: Chunk) -> bool:
        return self._rows_file(chunk).is_file()

    def put(self, made: MadeChunk) -> None:
        with refused_writes(self.out):
            self._put(made)

    def _put(self, made: MadeChunk) -> None:
        for path, data in made.files:
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        text = io.StringIO()
        csv.DictWriter(text, COLUMNS, lineterminator="\n").writerows(made.rows)
        rows = self._rows_file(made.chunk)
        partial = rows.with_suffix(".partial")
        partial.write_text(text.getvalue(), encoding="utf-8")
        os.replace(partial, rows)

    def write(self, force: bool) -> int:
        """Write the complete shard to the output folder atomically (images hard-linked
        from the store), then remove the store; returns the number of images."""
        chunks = self.job.chunks_of(self.shard)
        written = 0
        with output_folder(self.out, force) as tmp:
            with _manifest_writer(tmp) as rows:
                for chunk in chunks:
                    for n in range(chunk.start, chunk.start + chunk.count):
                        path = image_path(chunk.label, n)
                        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
                        _link_or_copy(self.root / path, tmp / path)
                    text = self._rows_file(chunk).read_text(encoding="utf-8")
                    rows.writerows(csv.DictReader(io.StringIO(text), COLUMNS))
                    written += chunk.count
            write_job(tmp, self.job, self.shard, written)
        shutil.rmtree(self.root, ignore_errors=True)
        return written


def generate_folder(
    generator: OnnxGenerator,
    out: str | os.PathLike[str],
    labels: Sequence[int],
    per_class: int,
    seed: int,
    shard: Shard = Shard(),
    progress: bool = True,
    force: bool = False,
    batch_size: int = CHUNK,
    codes: CodeChoice | None = None,
    engine: Engine | None = None,
) -> int:
    """Write shard ``shard`` of ``per_class`` images of each class index in ``labels``
    to ``out`` (replaced atomically; a folder gan-augment did not write only with
    ``force``); returns the number of images written. ``batch_size`` (the synthesize
    stage's default) is the generator's batch: the same one gives the same bytes.
    ``codes`` fixes or sweeps a model's latent codes (a sweep spans each class's images).
    ``engine`` makes the chunks (default: :class:`LocalEngine`); a run killed before the
    end resumes from the chunks it completed."""
    if per_class < 1:
        raise ConfigError(f"--per-class {per_class}: must be at least 1")
    codes = codes or CodeChoice()
    codes.check(generator.codes, str(generator.path))
    out = Path(out)
    check_output_folder(out, force)
    job = GenerateJob(
        generator.info.variant,
        generator.sha256,
        tuple(labels),
        per_class,
        seed,
        codes=codes.describe(),
    )
    with (engine or LocalEngine()).connect(generator, job, batch_size, codes) as make:
        store = ChunkStore(out, job, shard)
        chunks = job.chunks_of(shard)
        todo = [chunk for chunk in chunks if not store.done(chunk)]
        if len(todo) < len(chunks):
            log.warning(
                "%s: resuming, %d of %d chunks already made (%s)",
                out,
                len(chunks) - len(todo),
                len(chunks),
                store.root,
            )
        with _bar(chunks, f"generate {shard}", progress) as bar:
            bar.update(sum(c.count for c in chunks) - sum(c.count for c in todo))
            for made in make(todo):
                store.put(made)
                bar.update(made.chunk.count)
    return store.write(force)


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


def _job_text(job: GenerateJob, shard: Shard, **extra: int) -> str:
    record = asdict(job) | {"labels": list(job.labels), "shard": str(shard), **extra}
    return json.dumps(record, indent=2) + "\n"


def write_job(folder: Path, job: GenerateJob, shard: Shard, images: int) -> None:
    (folder / JOB_FILE).write_text(_job_text(job, shard, images=images))


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
