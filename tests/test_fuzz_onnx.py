"""Bad ONNX files: wrong metadata, tasks, inputs; each a clear error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fuzzing import edit_model, tiny_onnx_models
from fuzzing.core import starts

from augment.errors import ModelError
from augment.runtime import OnnxGenerator

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt files


def model_with(tmp_path: Path, task: str, props: dict[str, str]) -> Path:
    """The tiny ``task`` model with metadata ``props`` replaced (a value "DROP": removed)."""

    def edit(model: Any) -> None:
        kept = [(p.key, props.get(p.key, p.value)) for p in model.metadata_props]
        del model.metadata_props[:]
        for key, value in kept:
            if value != "DROP":
                model.metadata_props.add(key=key, value=value)

    path = tmp_path / f"{task}.onnx"
    path.write_bytes(edit_model(tiny_onnx_models()[task], edit))
    return path


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"classes": "not json"}, r"inconsistent metadata \(classes 'not json' is not a JSON list"),
        ({"classes": '"abc"'}, r"classes '\"abc\"' is not a JSON list of strings"),
        ({"classes": '["a", "a"]'}, r"classes must be distinct strings"),
        ({"image_size": "abc"}, r"image_size 'abc' is not an integer"),
        ({"image_size": "0"}, r"image_size 0 is outside 1\.\.8192"),
        ({"latent_dim": "-1"}, r"latent_dim -1 is outside 0\.\.65536"),
        ({"task": "nonsense"}, r"task 'nonsense' is not one of synthesize, translate, upscale"),
        ({"channels": "2"}, r"channels 2 is not 1 or 3"),
        ({"scale": "0"}, r"scale 0 is outside 1\.\.16"),
        ({"normalization": "[0,1]"}, r"normalization '\[0,1\]' is not '\[-1,1\]'"),
        ({"latent_dim": "DROP"}, r"not a gan-augment model \(metadata lacks latent_dim\)"),
    ],
)
def test_onnx_metadata_that_is_wrong(tmp_path: Path, props: dict[str, str], message: str) -> None:
    path = model_with(tmp_path, "synthesize", props)
    with pytest.raises(ModelError, match=starts(path, message)):
        OnnxGenerator(path)


@pytest.mark.parametrize(
    ("task", "props", "use", "message", "at_open"),
    [
        ("synthesize", {"classes": "[]"}, "synthesize", r"needs classes, the metadata lists", 1),
        ("synthesize", {"latent_dim": "5"}, "synthesize", r"input 'z' has shape \[N, 4\], the", 1),
        ("translate", {"channels": "1"}, "translate", r"'image' has shape \[N, 3, N, N\], the", 1),
        ("upscale", {"channels": "3"}, "upscale", r"metadata implies \[N, 3, N, N\]", 1),
        ("translate", {"domains": '["a"]'}, "translate", r"needs two or more domains", 1),
        ("upscale", {"task": "synthesize"}, "synthesize", r"takes z, label, the graph has no", 1),
        ("synthesize", {}, "translate", r"is a 'synthesize' model, not 'translate'", 0),
        ("translate", {}, "upscale", r"is a 'translate' model, not 'upscale'", 0),
        ("upscale", {}, "synthesize", r"is a 'upscale' model, not 'synthesize'", 0),
        (
            "synthesize",
            {"image_size": "16"},
            "synthesize",
            r"generated images of shape \(2, 1, 8",
            0,
        ),
    ],
)
def test_onnx_model_that_cannot_serve(
    tmp_path: Path, task: str, props: dict[str, str], use: str, message: str, at_open: int
) -> None:
    path = model_with(tmp_path, task, props)
    model = OnnxGenerator(path)
    images = np.zeros((2, model.info.channels, 8, 8), np.float32)
    calls: dict[str, Callable[[], object]] = {
        "synthesize": lambda: model.generate([0, 1], seed=0),
        "translate": lambda: model.translate(images, domain="b"),
        "upscale": lambda: model.upscale(images),
    }
    with pytest.raises(ModelError, match=starts(path, message)):
        calls[use]()
    if at_open:  # a model opened for its task is checked at once
        with pytest.raises(ModelError, match=starts(path, message)):
            OnnxGenerator(path, task=use)


def test_onnx_prefixes_and_wrong_inputs(tmp_path: Path) -> None:
    data = tiny_onnx_models()["upscale"]
    path = tmp_path / "upscale.onnx"
    for length in np.linspace(0, len(data) - 1, 40).astype(int):
        path.write_bytes(data[:length])
        with pytest.raises(ModelError, match=starts(path, "")):
            OnnxGenerator(path, task="upscale").upscale(np.zeros((1, 1, 4, 4), np.float32))
    path.write_bytes(data)
    with pytest.raises(ModelError, match=starts(path, "takes images of 1 channel")):
        OnnxGenerator(path).upscale(np.zeros((1, 3, 4, 4), np.float32))
