"""Every registered variant honours the variant API, the training loop and the ONNX contract."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import TINY, outputs, task_data

from augment.checkpoint import load_checkpoint, restore_variant
from augment.export import export_onnx
from augment.registry import Registry
from augment.runtime import OnnxGenerator
from augment.testing import check_resume, check_variant
from augment.train import fit


def variant_names() -> list[str]:
    return Registry.from_plugins().names()


@pytest.mark.parametrize("name", variant_names())
def test_variant_trains_checkpoints_and_exports(name, registry, mnist_small, tmp_path):
    """The kit a plugin's own suite runs (augment.testing), on the small MNIST sample."""
    result = check_variant(name, tmp_path, images=mnist_small[0], labels=mnist_small[1])
    assert (result.variant, result.task) == (name, registry.get(name).task)
    assert (tmp_path / "losses.csv").read_text().startswith("step,")
    if result.task == "upscale":
        assert OnnxGenerator(result.onnx).info.scale == 2


def stochastic_translators() -> list[str]:
    """The translators that take a noise code (unit translates with its codes' means)."""
    registry = Registry.from_plugins()
    entries = (registry.get(n) for n in registry.names())
    return [e.name for e in entries if e.task == "translate" and "noise" not in e.cls.unsupported]


@pytest.mark.parametrize("name", stochastic_translators())
def test_stochastic_translator_takes_a_noise_code(name, registry, mnist_small, tmp_path):
    entry = registry.get(name)
    spec, data = task_data(entry, mnist_small)
    small = {"width": 8} | ({} if "blocks" in entry.cls.unsupported else {"blocks": 1})
    variant = registry.create(name, {"noise": 2, "mode_seeking": 1.0} | small, spec)
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
        ("biggan", {"width": 8}),  # spectral norm's power-iteration vectors in both networks
        ("biggan", {"width": 8, "spectral": 1.0}),  # the real spectrum's moving anchor
        ("began", {"width": 8, "lambda_k": 0.1}),  # the equilibrium's k, a buffer of the critic
        ("sngan", {"diffaugment": "translation", "ada_target": 0.6, "ada_speed": 50}),  # ADA's p
        ("stylegan2", {"width": 8, "ada_speed": 50}),  # noise maps drawn in training, ADA's p
        ("inpaint", {"width": 8, "d_width": 8}),  # holes drawn from torch's generator
        ("spade", {"width": 8, "d_width": 8}),  # style codes drawn in training, the segmenter
        # the translators' layout segmenter (no lr decay: see cyclegan's below)
        ("stargan", {"width": 8, "blocks": 1, "shape": 1.0, "lr_decay": "none"}),
        # the history of fakes and the self-training class-consistency judge are resumed
        # too (no lr decay, pseudo-labels from the start: the 3-step run stands for a
        # killed 6-step one, so no schedule over the run's fraction can match)
        (
            "cyclegan",
            {
                "pool_size": 4,
                "semantic": 1.0,
                "pseudo_labels": 0.1,
                "pseudo_from": 0.0,
                "width": 8,
                "blocks": 1,
                "lr_decay": "none",
            },
        ),
    ],
)
def test_resume_equals_uninterrupted_run(name, params, registry, mnist_small, tmp_path):
    check_resume(name, tmp_path, params, *mnist_small, registry=registry)


def test_the_kit_names_what_broke(registry, tmp_path):
    """A variant that keeps state outside its checkpoint (a step counter in its loss) fails
    check_resume, naming the tensor that differs."""
    from augment.plugins import PluginInfo
    from augment.variant import LossOutput

    class Forgetful(registry.get("cgan").cls):
        name = "forgetful"
        calls = 0

        def generator_loss(self, batch) -> LossOutput:
            out = super().generator_loss(batch)
            self.calls += 1  # not checkpointed: a resumed run counts from 0 again
            return LossOutput(out.loss * (1 + self.calls), out.logs)

    own = Registry()
    own.register(Forgetful, PluginInfo("forgetful", "test-forgetful", "0"))
    with pytest.raises(AssertionError, match=r"generator\.\S+ differs after a resume"):
        check_resume("forgetful", tmp_path, registry=own)


def test_conformance_covers_every_task(registry):
    """An empty or partial registry would shrink the parametrizations above to nothing
    (pytest skips an empty one): every task must have a variant under test."""
    from augment.tasks import TASKS

    assert {registry.get(name).task for name in variant_names()} == set(TASKS)
