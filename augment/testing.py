"""The conformance kit: what a plugin's own test suite calls to show that a variant keeps
the contract of gan-augment (the training loop, checkpoints, the ONNX export and its
runtime), for any installed variant name, with no clone of this repository.

    from augment.testing import check_resume, check_variant

    def test_my_variant_conforms(tmp_path):
        check_variant("my-gan", tmp_path / "contract")
        check_resume("my-gan", tmp_path / "resume")

:func:`check_variant` builds the variant, trains it two steps, round-trips its
checkpoint exactly, exports it with onnxruntime matching torch and checks the exported
file: metadata, value range, seeded determinism and, per task, the dynamic axes
(upscalers, translators, inpainters and mask-to-image models take any height and width;
an inpainter leaves every pixel outside its holes exactly as it was).
:func:`check_resume` trains six steps straight and three + three with a resume between,
and asserts identical weights and loss history. Both raise ``AssertionError`` naming what
broke, as a pytest assert would.

Data defaults to random 28 x 28 images (:func:`task_data` shapes them for each task:
translators get two or more domains, paired ones pairs); pass ``images`` and ``labels``
(u8 ``N x H x W x C`` and int labels) to test on your own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.checkpoint import load_checkpoint, restore_variant
from augment.data.batches import TrainingData
from augment.export import export_encoder, export_onnx
from augment.registry import Registry, VariantEntry
from augment.runtime import OnnxGenerator
from augment.tasks import DOMAIN_TASKS
from augment.train import TrainConfig, TrainOutputs, TrainResult, fit
from augment.variant import DataSpec

#: Two steps, every step checkpointed and previewed: every code path of the loop runs.
TWO_STEPS = TrainConfig(steps=2, batch_size=16, checkpoint_every=1, sample_every=1, log_every=1)
#: The domain names :func:`task_data` gives translators (the first two for two-domain ones).
DOMAINS = ("plain", "inverted", "flipped")


@dataclass(frozen=True)
class Conformance:
    """What :func:`check_variant` measured (for a plugin's own further assertions)."""

    variant: str
    task: str
    final_losses: dict[str, float]
    max_abs_diff: float
    onnx: Path


def outputs(root: Path) -> TrainOutputs:
    """The loop's output paths under ``root``: checkpoint.pt, samples/, losses.csv,
    timing.json."""
    return TrainOutputs(
        root / "checkpoint.pt", root / "samples", root / "losses.csv", root / "timing.json"
    )


def random_digits(n: int = 64, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random u8 ``n x size x size x 1`` images, labelled 0-9 in turn."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8)
    return images, np.arange(n, dtype=np.int64) % 10


def task_data(
    entry: VariantEntry, images: np.ndarray, labels: np.ndarray
) -> tuple[DataSpec, TrainingData]:
    """The spec and :func:`augment.train.fit` data of a variant's task from one labelled
    set: synthesizers, upscalers and inpainters get it as it is; translators get it as
    domain 'plain' and its negative as 'inverted' (and upside down as 'flipped' where more
    domains are allowed), paired ones (and mask-to-image recipes) as (plain, inverted)
    pairs; other domains' labels hidden."""
    classes = tuple(str(c) for c in sorted(set(labels.tolist())))
    index = {int(c): i for i, c in enumerate(sorted(set(labels.tolist())))}
    labels = np.asarray([index[int(c)] for c in labels], np.int64)
    _, size, _, channels = images.shape
    spec = DataSpec(image_size=size, channels=channels, classes=classes)
    if entry.task not in DOMAIN_TASKS:
        return spec, TrainingData(images, labels)
    hidden = -np.ones_like(labels)
    if entry.cls.paired:
        data = TrainingData(images, hidden, np.zeros_like(labels), 255 - images)
        return replace(spec, domains=DOMAINS[:2]), data
    styles = [images, 255 - images, images[:, ::-1]]
    count = 3 if entry.cls.max_domains is None else 2
    data = TrainingData(
        np.concatenate(styles[:count]),
        np.concatenate([labels, *[hidden] * (count - 1)]),
        np.repeat(np.arange(count), len(labels)),
    )
    return replace(spec, domains=DOMAINS[:count]), data


def _setup(
    name: str, images: np.ndarray | None, labels: np.ndarray | None, registry: Registry | None
) -> tuple[Registry, VariantEntry, DataSpec, TrainingData]:
    """The registry (installed plugins by default), the variant's entry, and its task's
    spec and data (random digits by default)."""
    registry = registry or Registry.from_plugins()
    entry = registry.get(name)
    if images is None or labels is None:
        images, labels = random_digits()
    return (registry, entry, *task_data(entry, images, labels))


def check_variant(
    name: str,
    workdir: Path,
    params: dict[str, Any] | None = None,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    registry: Registry | None = None,
) -> Conformance:
    """Train, checkpoint, export and run variant ``name`` (with recipe ``params``) in
    ``workdir``; an ``AssertionError`` says which part of the contract broke."""
    registry, entry, spec, data = _setup(name, images, labels, registry)
    variant = registry.create(name, params or {}, spec, seed=0)
    trained = fit(variant, data, TWO_STEPS, outputs(workdir), seed=0, progress=False)
    assert trained.steps == 2, f"{name}: trained {trained.steps} steps of 2"
    losses = trained.final_losses
    assert losses, f"{name}: its losses log nothing (LossOutput.logs)"
    assert all(math.isfinite(v) for v in losses.values()), f"{name}: losses {losses}"
    assert (workdir / "samples" / "final.png").is_file(), f"{name}: no preview grid"

    state = load_checkpoint(workdir / "checkpoint.pt")
    assert (state["step"], state["variant"]) == (2, name), "checkpoint: wrong step or name"
    restored, generator = restore_variant(state, registry.create)
    original = variant.generator.state_dict()
    for key, tensor in restored.generator.state_dict().items():
        assert torch.equal(original[key].cpu(), tensor.cpu()), f"checkpoint round trip: {key}"

    path = workdir / f"{name}.onnx"
    exported = export_onnx(restored, generator, path, manifest_sha256="conformance")
    assert exported.max_abs_diff <= 1e-4, f"onnxruntime vs torch: {exported.max_abs_diff:.2e}"
    model = OnnxGenerator(path, task=entry.task)
    info = model.info
    assert (info.task, info.variant) == (entry.task, name), f"ONNX metadata: {info}"
    assert (info.classes, info.domains) == (spec.classes, spec.domains), f"ONNX metadata: {info}"
    assert (info.image_size, info.channels) == (spec.image_size, spec.channels), f"{info}"
    assert info.manifest_sha256 == "conformance", f"ONNX metadata: {info}"
    _check_runtime(model, spec)
    encoder = workdir / f"{name}.encoder.onnx"
    if export_encoder(restored, generator, encoder, manifest_sha256="conformance") is not None:
        _check_encoder(OnnxGenerator(encoder, task="encode"), model, spec)
    return Conformance(name, entry.task, losses, exported.max_abs_diff, path)


def _check_encoder(encoder: OnnxGenerator, model: OnnxGenerator, spec: DataSpec) -> None:
    """An encoder's contract: the generator's metadata but the task; image -> its ``z``,
    the same whatever the batch."""
    info, made = encoder.info, model.info
    assert (info.variant, info.classes, info.latent_dim) == (
        made.variant,
        made.classes,
        made.latent_dim,
    ), f"encoder metadata: {info}"
    images = model.generate([0, 1 % len(spec.classes), 0], seed=3)
    codes = encoder.encode(images, [0, 1 % len(spec.classes), 0], batch_size=2)
    assert codes.shape == (3, made.latent_dim), f"encode: shape {codes.shape}"
    assert np.all(np.isfinite(codes)), "encode: non-finite codes"
    alone = encoder.encode(images[2:], [0])
    assert np.allclose(alone, codes[2:], atol=1e-5), "encode: depends on the batch"


def _check_runtime(model: OnnxGenerator, spec: DataSpec) -> None:
    """The exported file's task contract: range, seeded determinism, dynamic axes."""
    size, channels = spec.image_size, spec.channels
    if model.info.task == "synthesize":
        labels = [0, len(spec.classes) - 1, 1 % len(spec.classes)]
        out = model.generate(labels, seed=7, batch_size=2)
        assert out.shape == (3, channels, size, size), f"generate: shape {out.shape}"
        assert out.min() >= -1 and out.max() <= 1, "generate: values outside [-1, 1]"
        same = model.generate(labels, seed=7)
        assert np.array_equal(out, same), "generate: same seed, different images"
        return
    rng = np.random.default_rng(0)
    if model.info.task == "mask2image":
        _check_from_mask(model, rng)
        return
    for h, w in ((size, size), (size // 2 + 3, size // 2 + 5)):  # any height and width
        image = rng.uniform(-1, 1, (3, channels, h, w)).astype(np.float32)
        if model.info.task == "upscale":
            scale = model.info.scale
            out, expected = model.upscale(image), (3, channels, scale * h, scale * w)
        elif model.info.task == "inpaint":
            out, expected = _check_inpaint(model, image, rng), image.shape
        else:
            out, expected = model.translate(image, spec.domains[1], seed=1), image.shape
        assert out.shape == expected, f"{model.info.task} {h}x{w}: shape {out.shape}"
        assert out.min() >= -1 and out.max() <= 1, f"{model.info.task}: values outside [-1, 1]"
        if model.info.task == "translate" and model.multi_domain:  # into the target and back
            back = model.translate(out, spec.domains[0], seed=1)
            assert back.shape == image.shape, f"translate back {h}x{w}: shape {back.shape}"
            assert not np.array_equal(back, out), "translate back: the image came out as it went in"


def _check_inpaint(model: OnnxGenerator, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An inpainter fills the holes of a rectangle per image and leaves every other pixel
    exactly as it was, in the raw graph as through the runtime; returns the filled images."""
    n, _, h, w = image.shape
    mask = np.zeros((n, 1, h, w), np.float32)
    for k in range(n):
        top, left = rng.integers(0, h // 2), rng.integers(0, w // 2)
        mask[k, :, top : top + h // 3 + 1, left : left + w // 3 + 1] = 1
    raw = model.run(image=image, mask=mask)
    known = np.broadcast_to(mask == 0, image.shape)
    assert np.array_equal(raw[known], image[known]), "inpaint graph: known pixels changed"
    out = model.inpaint(image, mask[:, 0], batch_size=2)
    assert np.array_equal(out[known], image[known]), "inpaint: known pixels changed"
    return out


def _check_from_mask(model: OnnxGenerator, rng: np.random.Generator) -> None:
    """A mask-to-image model makes an image of its channels for label masks of any height
    and width, in [-1, 1], the same for the same seed whatever the batch."""
    labels, info = model.mask_labels, model.info
    for h, w in ((info.image_size, info.image_size), (info.image_size // 2 + 3, 11)):
        masks = rng.integers(0, len(labels), (3, h, w))
        out = model.from_mask(masks, seed=1, batch_size=2)
        assert out.shape == (3, info.channels, h, w), f"from_mask {h}x{w}: shape {out.shape}"
        assert out.min() >= -1 and out.max() <= 1, "from_mask: values outside [-1, 1]"
        same = model.from_mask(masks, seed=1)
        assert np.allclose(out, same, atol=1e-5), "from_mask: same seed, different images"


def check_resume(
    name: str,
    workdir: Path,
    params: dict[str, Any] | None = None,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    registry: Registry | None = None,
) -> None:
    """Six steps straight and three + three resumed give the same weights and history
    (deterministic algorithms on): every piece of state the variant keeps between steps
    is in its checkpoint."""
    registry, _, spec, data = _setup(name, images, labels, registry)
    config = TrainConfig(steps=6, batch_size=16, checkpoint_every=3, sample_every=100, log_every=3)

    def train(root: Path, steps: int) -> TrainResult:
        torch.use_deterministic_algorithms(True)
        try:
            variant = registry.create(name, params or {}, spec, seed=3)
            conf = config.model_copy(update={"steps": steps})
            return fit(variant, data, conf, outputs(root), seed=3, progress=False)
        finally:
            torch.use_deterministic_algorithms(False)

    train(workdir / "straight", 6)
    first, second = train(workdir / "resumed", 3), train(workdir / "resumed", 6)
    assert (first.resumed_from, second.resumed_from) == (0, 3), "the second run did not resume"
    a = load_checkpoint(workdir / "straight" / "checkpoint.pt")
    b = load_checkpoint(workdir / "resumed" / "checkpoint.pt")
    for net in ("generator", "discriminator"):
        for key, tensor in (a[net] or {}).items():
            assert torch.equal(tensor, b[net][key]), f"{net}.{key} differs after a resume"
    assert a["history"] == b["history"], "the loss history differs after a resume"
