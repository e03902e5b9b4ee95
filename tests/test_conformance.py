"""Every registered variant honours the variant API, the training loop and the ONNX contract."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from augment.errors import ConfigError, ModelError, TrainingDiverged
from augment.export import export_onnx
from augment.registry import Registry
from augment.runtime import Generator
from augment.train import TrainConfig, TrainOutputs, fit, load_checkpoint, restore_variant
from augment.variant import DataSpec

CLASSES = tuple("0123456789")
DOMAINS = ("plain", "inverted")
SPEC = DataSpec(image_size=28, channels=1, classes=CLASSES)
TINY = TrainConfig(steps=2, batch_size=16, checkpoint_every=1, sample_every=1, log_every=1)


def outputs(root: Path) -> TrainOutputs:
    return TrainOutputs(root / "checkpoint.pt", root / "samples", root / "losses.csv")


def train_tiny(registry, mnist_small, root: Path, params: dict | None = None, config=TINY):
    """A cgan trained on the small MNIST sample with ``config`` into ``root``."""
    images, labels = mnist_small
    variant = registry.create("cgan", params or {}, SPEC)
    return fit(variant, images, labels, config, outputs(root), 0, progress=False)


def variant_names() -> list[str]:
    return Registry.from_plugins().names()


def task_data(entry, mnist_small) -> tuple[DataSpec, dict]:
    """The spec and ``fit`` data of a variant's task: translators get the digits as domain
    'plain' and their negatives as 'inverted' (and 'flipped' where more are allowed), the
    paired ones as (plain, inverted) pairs; the other domains' labels are hidden."""
    images, labels = mnist_small
    if entry.task != "translate":
        return SPEC, {"images": images, "labels": labels}
    if entry.cls.paired:
        data = {"images": images, "labels": -np.ones_like(labels), "targets": 255 - images}
        return replace(SPEC, domains=DOMAINS), data | {"domains": np.zeros_like(labels)}
    styles = [images, 255 - images, images[:, ::-1]]
    count = 3 if entry.cls.max_domains is None else 2
    hidden = -np.ones_like(labels)
    data = {
        "images": np.concatenate(styles[:count]),
        "labels": np.concatenate([labels, *[hidden] * (count - 1)]),
        "domains": np.repeat(np.arange(count), len(labels)),
    }
    return replace(SPEC, domains=(*DOMAINS, "flipped")[:count]), data


@pytest.mark.parametrize("name", variant_names())
def test_variant_trains_checkpoints_and_exports(name, registry, mnist_small, tmp_path):
    spec, data = task_data(registry.get(name), mnist_small)
    variant = registry.create(name, {}, spec)
    result = fit(variant, **data, config=TINY, outputs=outputs(tmp_path), seed=0, progress=False)

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
    model = Generator(path, task=variant.task)
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
    fit(variant, **data, config=TINY, outputs=outputs(tmp_path), seed=0, progress=False)
    restored, generator = restore_variant(
        load_checkpoint(tmp_path / "checkpoint.pt"), registry.create
    )
    export_onnx(restored, generator, tmp_path / "noisy.onnx")
    model = Generator(tmp_path / "noisy.onnx", task="translate")
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
            return fit(variant, **data, config=conf, outputs=outputs(root), seed=3, progress=False)
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


def test_seed_fixes_the_initial_weights(registry):
    a, b = (registry.create("sngan", {}, SPEC, seed=1) for _ in range(2))
    c = registry.create("sngan", {}, SPEC, seed=2)
    weights = [v.generator.state_dict()["embed.weight"] for v in (a, b, c)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_changed_params_start_afresh(registry, mnist_small, tmp_path):
    train_tiny(registry, mnist_small, tmp_path)
    assert train_tiny(registry, mnist_small, tmp_path, {"lr_g": 1e-3}).resumed_from == 0


def test_divergence_stops_naming_the_step_and_keeps_the_checkpoint(registry, mnist_small, tmp_path):
    train_tiny(registry, mnist_small, tmp_path)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    config = TINY.model_copy(update={"steps": 4, "divergence_threshold": 1e-9})
    with pytest.raises(TrainingDiverged, match=r"loss is .* at step 3; the last good checkpoint"):
        train_tiny(registry, mnist_small, tmp_path, config=config)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_non_finite_weights_are_never_checkpointed(registry, mnist_small, tmp_path):
    from augment.train import Trainer

    images, labels = mnist_small
    variant = registry.create("cgan", {}, SPEC)
    trainer = Trainer(variant, images, labels, TINY, outputs(tmp_path), 0, "")
    with torch.no_grad():
        variant.discriminator.adversarial.weight[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="weight adversarial.weight is NaN/inf at step 0"):
        trainer.save()
    assert not (tmp_path / "checkpoint.pt").exists()


def test_foreign_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ModelError, match="not a gan-augment checkpoint"):
        load_checkpoint(path)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ModelError, match=str(path)):
        load_checkpoint(path)


def test_learning_rate_decay(registry, mnist_small, tmp_path):
    from augment.train import lr_factor

    assert [lr_factor("linear", 0.5, t) for t in (0.0, 0.5, 0.75, 1.0)] == [1, 1, 0.5, 0]
    assert lr_factor("cosine", 0.0, 0.5) == pytest.approx(0.5)
    assert lr_factor("none", 0.0, 0.9) == 1.0
    config = TrainConfig(steps=4, batch_size=16, checkpoint_every=4, sample_every=4, log_every=1)
    train_tiny(registry, mnist_small, tmp_path, {"lr_decay": "linear", "lr_d": 1e-3}, config)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    # the last step (index 3 of 4) ran at 1 - 3/4 of the base rates
    assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4 * 0.25)
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.25)


def test_transitional_conditioning_fades_the_class_in(registry, mnist_small, tmp_path):
    from augment.variant import condition_strength

    # lambda_t: 0 until start, linear to 1 at end; (0, 0) is a plain conditional GAN
    ramp = [condition_strength((0.25, 0.75), t) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert ramp == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert condition_strength((0.0, 0.0), 0.0) == 1.0
    with pytest.raises(ConfigError, match=r"sngan: transition \[0.8, 0.2\]: needs 0 <= start"):
        registry.create("sngan", {"transition": [0.8, 0.2]}, SPEC)

    variant = registry.create("sngan", {"transition": [0.25, 0.75]}, SPEC, seed=0)
    g, d = variant.generator.eval(), variant.discriminator.eval()
    z, image = torch.randn(4, variant.params.latent_dim), torch.rand(4, 1, 28, 28) * 2 - 1
    a, b = torch.zeros(4, dtype=torch.long), torch.full((4,), 7)
    variant.at_progress(0.1)  # unconditional: the label changes nothing
    assert torch.equal(g(z, a), g(z, b)) and torch.equal(d(image, a).logits, d(image, b).logits)
    variant.at_progress(0.5)  # half way: the label counts
    assert not torch.allclose(g(z, a), g(z, b))
    assert not torch.allclose(d(image, a).logits, d(image, b).logits)
    # lambda is a function of the step, not state: never in a checkpoint or the ONNX inputs
    assert "condition_strength" not in g.state_dict() and "condition_strength" not in d.state_dict()

    config = TrainConfig(steps=4, batch_size=16, checkpoint_every=4, sample_every=4, log_every=1)
    variant = registry.create("sngan", {"transition": [0.25, 0.75]}, SPEC)
    fit(variant, *mnist_small, config, outputs(tmp_path), 0, progress=False)
    # the trainer drove it: the last step ends the run (progress 1.0), fully conditional
    assert float(variant.generator.condition_strength) == 1.0
    assert float(variant.discriminator.condition_strength) == 1.0


def test_bf16_autocast_trains(registry, mnist_small, tmp_path):
    config = TINY.model_copy(update={"steps": 3, "precision": "bf16"})
    result = train_tiny(registry, mnist_small, tmp_path, config=config)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert all(torch.isfinite(w).all() for w in state["generator"].values())
    assert all(torch.isfinite(torch.tensor(v)) for v in result.final_losses.values())
    assert train_tiny(registry, mnist_small, tmp_path).resumed_from == 0  # fp32: other weights


def test_a_collapsed_class_is_warned_about(registry, mnist_small, tmp_path, caplog):
    from augment.train import Trainer

    images, labels = mnist_small
    variant = registry.create("cgan", {}, SPEC)
    trainer = Trainer(variant, images, labels, TINY, outputs(tmp_path), 0, "")
    assert trainer.write_samples(tmp_path / "grid.png").shape == (10, 8, 28, 28, 1)
    # "samples" as varied as the data: real images of each class, the last n of each
    n = min(np.bincount(labels))
    samples = np.stack([images[labels == c][-n:] for c in range(10)])
    healthy = trainer.class_diversity(samples)
    assert set(healthy) == set(CLASSES) and min(healthy.values()) > 0.5
    samples[3] = samples[3][:1]  # every sample of class "3" is the same image
    with caplog.at_level("WARNING"):
        ratios = trainer.class_diversity(samples)
    assert ratios["3"] == 0.0 and ratios["4"] == healthy["4"]
    assert "samples of class 3 (0.00) are far less diverse" in caplog.text


def test_a_checkpoint_that_is_not_ours_or_not_this_variants(registry, mnist_small, tmp_path):
    path = tmp_path / "partial.pt"
    torch.save({"format": 1, "step": 3}, path)
    with pytest.raises(ModelError, match=r"partial.pt: not a gan-augment checkpoint \(lacks fin"):
        load_checkpoint(path)
    torch.save({"format": 7}, path)
    with pytest.raises(ModelError, match=r"\(format 7, expected 1\)"):
        load_checkpoint(path)
    train_tiny(registry, mnist_small, tmp_path)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    state["params"] = {"width": 8}  # the weights no longer fit the networks
    with pytest.raises(
        ModelError, match=r"checkpoint.pt: checkpoint does not match variant 'cgan'"
    ):
        restore_variant(state, registry.create)
