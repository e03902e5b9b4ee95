"""6. ONNX files: wrong metadata, tasks and inputs; truncated models."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from augment.errors import ModelError
from augment.runtime import OnnxGenerator
from fuzzing.core import Case, mutated

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
