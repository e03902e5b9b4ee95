"""The training loop and its checkpoints: resume, divergence, schedules, previews."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny import CLASSES, SPEC, TINY, outputs, train_tiny

from augment.checkpoint import load_checkpoint, restore_variant
from augment.data.batches import TrainingData
from augment.errors import ConfigError, ModelError, TrainingDiverged
from augment.train import TrainConfig, fit


def test_seed_fixes_the_initial_weights(registry):
    a, b = (registry.create("sngan", {}, SPEC, seed=1) for _ in range(2))
    c = registry.create("sngan", {}, SPEC, seed=2)
    weights = [v.generator.state_dict()["embed.weight"] for v in (a, b, c)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_changed_params_start_afresh(registry, mnist_small, tmp_path):
    train_tiny(registry, mnist_small, tmp_path)
    assert train_tiny(registry, mnist_small, tmp_path, {"lr_g": 1e-3}).resumed_from == 0


def test_a_resumed_run_reports_the_training_time_of_every_step(registry, mnist_small, tmp_path):
    """Not only its own: a finished stage re-run after a code change trains nothing and
    must not report 0 s (timing.json beside the checkpoint keeps the seconds)."""
    first = train_tiny(registry, mnist_small, tmp_path)
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing["step"] == first.steps and 0 < timing["seconds"] <= first.seconds
    again = train_tiny(registry, mnist_small, tmp_path)
    assert again.resumed_from == first.steps and again.seconds >= timing["seconds"]
    more = train_tiny(registry, mnist_small, tmp_path, config=TINY.model_copy(update={"steps": 4}))
    assert more.resumed_from == first.steps and more.seconds > timing["seconds"]


def test_divergence_stops_naming_the_step_and_keeps_the_checkpoint(registry, mnist_small, tmp_path):
    train_tiny(registry, mnist_small, tmp_path)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    config = TINY.model_copy(update={"steps": 4, "divergence_threshold": 1e-9})
    with pytest.raises(TrainingDiverged, match=r"loss is .* at step 3; the last good checkpoint"):
        train_tiny(registry, mnist_small, tmp_path, config=config)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_non_finite_weights_are_never_checkpointed(registry, mnist_small, tmp_path):
    from augment.train import Trainer

    variant = registry.create("cgan", {}, SPEC)
    trainer = Trainer(variant, TrainingData(*mnist_small), TINY, outputs(tmp_path), 0)
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
    from augment.tasks.synthesis import condition_strength

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
    variant.at_step(0, 10)  # (step + 1) / steps = 0.1: unconditional, the label counts not
    assert torch.equal(g(z, a), g(z, b)) and torch.equal(d(image, a).logits, d(image, b).logits)
    variant.at_step(4, 10)  # half way: the label counts
    assert not torch.allclose(g(z, a), g(z, b))
    assert not torch.allclose(d(image, a).logits, d(image, b).logits)
    # lambda is a function of the step, not state: never in a checkpoint or the ONNX inputs
    assert "condition_strength" not in g.state_dict() and "condition_strength" not in d.state_dict()

    config = TrainConfig(steps=4, batch_size=16, checkpoint_every=4, sample_every=4, log_every=1)
    variant = registry.create("sngan", {"transition": [0.25, 0.75]}, SPEC)
    fit(variant, TrainingData(*mnist_small), config, outputs(tmp_path), 0, progress=False)
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
    from augment.previews import class_diversity
    from augment.train import Trainer

    images, labels = mnist_small
    variant = registry.create("cgan", {}, SPEC)
    trainer = Trainer(variant, TrainingData(images, labels), TINY, outputs(tmp_path), 0)
    assert trainer.write_samples(tmp_path / "grid.png").shape == (10, 8, 28, 28, 1)
    # "samples" as varied as the data: real images of each class, the last n of each
    n = min(np.bincount(labels))
    samples = np.stack([images[labels == c][-n:] for c in range(10)])

    def diversity(samples: np.ndarray) -> dict[str, float]:
        return class_diversity(samples, images, labels, CLASSES, 0, 0.5, "cgan")

    healthy = diversity(samples)
    assert set(healthy) == set(CLASSES) and min(healthy.values()) > 0.5
    samples[3] = samples[3][:1]  # every sample of class "3" is the same image
    with caplog.at_level("WARNING"):
        ratios = diversity(samples)
    assert ratios["3"] == 0.0 and ratios["4"] == healthy["4"]
    assert "samples of class 3 (0.00) are far less diverse" in caplog.text
    assert trainer.collapse_remedies() == ["mode_seeking", "diffaugment"]
    caplog.clear()
    with caplog.at_level("WARNING"):  # the hint names only knobs the variant has
        class_diversity(samples, images, labels, CLASSES, 0, 0.5, "cvae", [])
    assert caplog.text.rstrip().endswith("mode collapse? Try more steps")
    cvae = registry.create("cvae", {}, SPEC)
    assert (
        Trainer(cvae, TrainingData(images, labels), TINY, outputs(tmp_path), 0).collapse_remedies()
        == []
    )


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


def test_launcher_builds_the_torchrun_command_of_one_machine_or_several():
    """``train.launcher``: --standalone on one machine; on several, the rendezvous flags
    with this node's rank; settings that cannot start a job are errors naming the key."""
    import sys

    from augment.config import parse
    from augment.distributed import Launcher

    one = Launcher(nproc_per_node=2).command("pipelines.train", ["cgan"], job="j")
    assert one == [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
        *("--nproc_per_node=2", "--max_restarts=0", "-m", "pipelines.train", "cgan"),
    ]
    many = Launcher(nproc_per_node=8, nnodes=2, node_rank=1, rdzv_endpoint="host0:29500")
    command = many.command("pipelines.train", ["sngan"], job="augment-train-sngan")
    assert "--standalone" not in command and many.processes == 16
    for flag in ("--nnodes=2", "--node_rank=1", "--rdzv_endpoint=host0:29500"):
        assert flag in command
    assert "--rdzv_id=augment-train-sngan" in command
    with pytest.raises(ConfigError, match="nnodes 2 needs rdzv_endpoint"):
        parse(TrainConfig, {"launcher": {"nproc_per_node": 1, "nnodes": 2}}, "train")
    with pytest.raises(ConfigError, match="node_rank 2 is not below nnodes 2"):
        parse(
            TrainConfig,
            {
                "launcher": {
                    "nproc_per_node": 1,
                    "nnodes": 2,
                    "node_rank": 2,
                    "rdzv_endpoint": "h:1",
                }
            },
            "train",
        )
    with pytest.raises(ConfigError, match="batch_size 64 does not split"):
        parse(TrainConfig, {"launcher": {"nproc_per_node": 3}}, "train")


def test_knobs_added_later_leave_older_fingerprints_alone(registry) -> None:
    """A checkpoint written before ``spectral`` existed still resumes: the knob is in the
    fingerprint only when it is on."""
    from augment.checkpoint import LATER_KNOBS, fingerprint

    default = registry.create("biggan", {"width": 8}, SPEC)
    written = json.loads(fingerprint(default, "data", {}, 0))
    assert not set(LATER_KNOBS) & set(written["params"])
    older = default.params.model_dump(mode="json")  # what an older version dumped
    for knob in LATER_KNOBS:
        older.pop(knob, None)
    assert written["params"] == older
    on = registry.create("biggan", {"width": 8, "spectral": 1.0}, SPEC)
    assert json.loads(fingerprint(on, "data", {}, 0))["params"]["spectral"] == 1.0


def test_the_data_is_known_by_its_pixels_not_by_its_manifest(registry, mnist_small, tmp_path):
    """A moved source folder changes the manifest's hash (its origin paths), not the data:
    the run resumes, as does a checkpoint fingerprinted with the manifest's hash (written
    before the digest). Other pixels behind the same manifest (``prepare.fit`` crop -> pad
    rewrites the images at the same paths) start afresh instead of resuming a model of
    other images."""
    import dataclasses

    from augment.checkpoint import fingerprint

    def run(data: TrainingData, steps: int) -> int:
        variant = registry.create("cgan", {}, SPEC)
        config = TINY.model_copy(update={"steps": steps})
        return fit(variant, data, config, outputs(tmp_path), 0, progress=False).resumed_from

    images, labels = mnist_small
    here = TrainingData(images, labels, sha256="manifest read from /data/here")
    moved = dataclasses.replace(here, sha256="manifest read from /data/moved")
    assert run(here, steps=2) == 0
    assert run(moved, steps=3) == 2
    # a checkpoint as versions before the digest wrote it (the manifest's hash) resumes
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    variant = registry.create("cgan", {}, SPEC)
    keys = TINY.model_copy(update={"steps": 4}).resume_keys()
    state["fingerprint"] = fingerprint(variant, moved.sha256, keys, 0)
    torch.save(state, path)
    assert run(moved, steps=4) == 3
    padded = dataclasses.replace(
        moved, images=np.pad(images[:, 2:-2, 2:-2], [(0, 0), (2, 2), (2, 2), (0, 0)])
    )
    assert padded.digest() != moved.digest()
    assert run(padded, steps=5) == 0
