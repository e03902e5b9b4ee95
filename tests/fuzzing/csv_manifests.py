"""3. CSV manifests: broken encodings, rows and columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from augment.data.manifest import Manifest, read_csv_frame
from augment.data.sources import load_csv, parse_source
from augment.errors import ConfigError, DataError
from fuzzing.core import Case, mutated
from fuzzing.images import image_bytes

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
