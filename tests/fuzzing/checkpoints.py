"""7. checkpoints: foreign pickles, wrong formats, missing keys."""

from __future__ import annotations

import functools
import gzip
import io
import pickle
import zipfile

import torch
import yaml
from hypothesis import strategies as st

from augment.errors import ModelError
from fuzzing.core import Case, mutated

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
