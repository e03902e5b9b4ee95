"""1. idx files: lying headers, truncated payloads, gzip damage."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from hypothesis import strategies as st

from augment.data.sources import IdxSource, load_idx_source, read_idx, read_idx_pair
from fuzzing.core import Case, maybe_gzipped, mutated

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
