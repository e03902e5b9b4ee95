"""Every registered variant honours the variant API, the training loop and the ONNX contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import CLASSES, TINY, outputs, task_data

from augment.checkpoint import load_checkpoint, restore_variant
from augment.export import export_onnx
from augment.registry import Registry
from augment.runtime import OnnxGenerator
from augment.train import TrainConfig, fit


def variant_names() -> list[str]:
    return Registry.from_plugins().names()


@pytest.mark.parametrize("name", variant_names())
def test_variant_trains_checkpoints_and_exports(name, registry, mnist_small, tmp_path):
    spec, data = task_data(registry.get(name), mnist_small)
    variant = registry.create(name, {}, spec)
    result = fit(variant, data, TINY, outputs(tmp_path), seed=0, progress=False)

    assert result.steps == 2
    assert result.final_losses and all(math.isfinite(v) for v in result.final_losses.values())
    assert (tmp_path / "samples" / "final.png").is_file()
    assert (tmp_path / "losses.csv").read_text().startswith("step,")

    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 2 and state["variant"] == name
    restored, generator = restore_variant(state, registry.create)
    for key, tensor in variant.generator.state_dict().items():  # the round trip is exact
        assert torch.equal(tensor.cpu(), restored.generator.state_dict()[key]), key

    path = tmp_path / f"{name}.onnx"
    result = export_onnx(restored, generator, path, manifest_sha256="abc")
    assert result.max_abs_diff <= 1e-4
    model = OnnxGenerator(path, task=variant.task)
    info = model.info
    assert (info.task, info.variant, info.classes) == (variant.task, name, CLASSES)
    assert info.domains == spec.domains
    assert (info.image_size, info.channels, info.manifest_sha256) == (28, 1, "abc")
    if variant.task == "synthesize":
        out = model.generate([0, 3, 9, 9, 1], seed=7, batch_size=2)
        assert out.shape == (5, 1, 28, 28) and out.min() >= -1 and out.max() <= 1
        np.testing.assert_array_equal(out, model.generate([0, 3, 9, 9, 1], seed=7))
    if variant.task == "upscale":
        assert info.scale == 2
        for h, w in ((14, 14), (10, 12)):  # height and width are dynamic
            image = np.random.default_rng(h).uniform(-1, 1, (3, 1, h, w)).astype(np.float32)
            out = model.upscale(image)
            assert out.shape == (3, 1, 2 * h, 2 * w) and out.min() >= -1 and out.max() <= 1
    if variant.task == "translate":
        for h, w in ((28, 28), (21, 34)):  # height and width are dynamic, odd sizes too
            image = np.random.default_rng(h).uniform(-1, 1, (3, 1, h, w)).astype(np.float32)
            there = model.translate(image, "inverted")
            assert there.shape == image.shape and there.min() >= -1 and there.max() <= 1
            if model.multi_domain:  # the cycle: into the target and back
                back = model.translate(there, "plain")
                assert back.shape == image.shape and not np.array_equal(back, there)


def translate_names() -> list[str]:
    registry = Registry.from_plugins()
    return [n for n in registry.names() if registry.get(n).task == "translate"]


@pytest.mark.parametrize("name", translate_names())
def test_stochastic_translator_takes_a_noise_code(name, registry, mnist_small, tmp_path):
    spec, data = task_data(registry.get(name), mnist_small)
    variant = registry.create(
        name, {"noise": 2, "mode_seeking": 1.0, "width": 8, "blocks": 1}, spec
    )
    fit(variant, data, TINY, outputs(tmp_path), seed=0, progress=False)
    restored, generator = restore_variant(
        load_checkpoint(tmp_path / "checkpoint.pt"), registry.create
    )
    export_onnx(restored, generator, tmp_path / "noisy.onnx")
    model = OnnxGenerator(tmp_path / "noisy.onnx", task="translate")
    assert "noise" in model.input_names and model.info.latent_dim == 2
    image = np.random.default_rng(0).uniform(-1, 1, (3, 1, 21, 34)).astype(np.float32)
    first = model.translate(image, "inverted", seed=1)
    assert first.shape == image.shape  # any height and width
    np.testing.assert_array_equal(first, model.translate(image, "inverted", seed=1))
    assert not np.array_equal(first, model.translate(image, "inverted", seed=2))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("wgan-gp", {"d_steps": 2}),
        ("sngan", {"lecam": 0.3}),  # LeCam's moving anchors are resumed with the critic
        ("sngan", {"diffaugment": "translation", "ada_target": 0.6, "ada_speed": 50}),  # ADA's p
        # the history of fakes and the class-consistency judge are resumed too
        # (no lr decay: the 3-step run stands for a killed 6-step one)
        (
            "cyclegan",
            {"pool_size": 4, "semantic": 1.0, "width": 8, "blocks": 1, "lr_decay": "none"},
        ),
    ],
)
def test_resume_equals_uninterrupted_run(name, params, registry, mnist_small, tmp_path):
    spec, data = task_data(registry.get(name), mnist_small)
    config = TrainConfig(steps=6, batch_size=16, checkpoint_every=3, sample_every=100, log_every=3)

    def train(root: Path, steps: int):
        torch.use_deterministic_algorithms(True)
        try:
            variant = registry.create(name, params, spec, seed=3)
            conf = config.model_copy(update={"steps": steps})
            return fit(variant, data, conf, outputs(root), seed=3, progress=False)
        finally:
            torch.use_deterministic_algorithms(False)

    train(tmp_path / "straight", 6)
    first = train(tmp_path / "resumed", 3)
    second = train(tmp_path / "resumed", 6)
    assert (first.resumed_from, second.resumed_from) == (0, 3)

    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    for key in ("generator", "discriminator"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"
    assert a["history"] == b["history"]


def test_conformance_covers_every_task(registry):
    """An empty or partial registry would shrink the parametrizations above to nothing
    (pytest skips an empty one): every task must have a variant under test."""
    from augment.tasks import TASKS

    assert {registry.get(name).task for name in variant_names()} == set(TASKS)
