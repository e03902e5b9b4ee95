"""albumentations transforms backed by exported generators (onnxruntime; no torch needed).

    import albumentations as A
    from augment.transforms import GANSynthesize

    compose = A.Compose([GANSynthesize("models/onnx/sngan.onnx", p=0.5), A.HorizontalFlip()])
    out = compose(image=image, class_label=3)   # the class reaches the GAN under `class_label`

* :class:`GANSynthesize` replaces the image with a synthetic sample of the same class.
* :class:`GANTranslate` translates the image into a target domain.
* :class:`GANUpscale` upscales the image and scales masks, bounding boxes and keypoints.
* :class:`GANInpaint` cuts holes like ``A.CoarseDropout`` and fills them with an
  ``inpaint`` model; masks keep their labels.
* :class:`GANFromMask` replaces the image with one a ``mask2image`` model makes for the
  call's segmentation mask, which is kept: a new image for the same labels.

All five keep the input's dtype (uint8, or float in [0, 1]) and layout (HxW or HxWxC),
serialize with ``A.to_dict`` / ``A.save`` (the model's path and sha256 are recorded; a
changed file is an error when loading), draw their randomness from albumentations' own
generators (so ``Compose(seed=...)`` reproduces outputs), and are safe in DataLoader
workers: each process opens its own onnxruntime session on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from albumentations.augmentations.dropout.coarse_dropout import CoarseDropout
from albumentations.augmentations.geometric import functional as fgeometric
from albumentations.core.transforms_interface import (
    BaseTransformInitSchema,
    DualTransform,
    ImageOnlyTransform,
)
from pydantic import Field

from augment.errors import DataError, ModelError
from augment.latent_codes import CodeChoice
from augment.runtime import OnnxGenerator, from_uint8, to_uint8
from augment.tiling import check_tiling

Device = Literal["auto", "cpu", "cuda"]
#: The keyword under which the class label reaches :class:`GANSynthesize`.
LABEL_KEY = "class_label"


def balancing_probabilities(counts: Mapping[str, int]) -> dict[str, float]:
    """Per-class replacement probabilities ``1 - n_c / n_max`` (for ``GANSynthesize.class_p``).

    Used with a class-balanced sampler, every real image is then seen about as often as
    an image of the largest class, and synthetic samples fill the rest of each class.
    """
    largest = max(counts.values(), default=0)
    if largest <= 0:
        raise DataError("balancing_probabilities: no class has any image")
    return {name: 1.0 - n / largest for name, n in counts.items()}


class ModelSchema(BaseTransformInitSchema):
    """Init arguments shared by the generator-backed transforms."""

    model: Path
    sha256: str | None = None
    threads: int = Field(1, ge=0)
    device: Device = "auto"


class GeneratorTransform:
    """What the generator-backed transforms share: the model, its checks, and image conversion."""

    generator: OnnxGenerator

    def _attach(
        self, model: Path, task: str, sha256: str | None, threads: int, device: Device
    ) -> None:
        """Open the ``task`` model at ``model``, checked against the recorded ``sha256``."""
        self.generator = OnnxGenerator(model, task=task, device=device, threads=threads)
        if sha256 is not None and self.generator.sha256 != sha256:
            raise ModelError(
                f"{model}: sha256 {self.generator.sha256[:12]}... differs from the "
                f"{sha256[:12]}... {type(self).__name__} was created with (the model file changed)"
            )
        self.model, self.sha256 = str(model), self.generator.sha256
        self.threads, self.device = threads, device

    def _model_input(self, image: np.ndarray) -> np.ndarray:
        """``image`` (HxW or HxWxC; uint8 or float in [0,1]) as f32[1,C,H,W] in [-1,1]."""
        channels = 1 if image.ndim == 2 else image.shape[2]
        if channels != self.generator.info.channels:
            raise DataError(
                f"{type(self).__name__}: image has {channels} channel(s), but "
                f"{self.model} takes {self.generator.info.channels}"
            )
        hwc = image.reshape(*image.shape[:2], channels)
        if image.dtype == np.uint8:
            return from_uint8(hwc[None])
        return np.ascontiguousarray(hwc.transpose(2, 0, 1)[None], np.float32) * 2.0 - 1.0

    @staticmethod
    def _like(output: np.ndarray, image: np.ndarray) -> np.ndarray:
        """Model output f32[1,C,H,W] in [-1,1] in the dtype and layout of ``image``."""
        if image.dtype == np.uint8:
            out = to_uint8(output)[0]
        else:
            out = np.clip((output[0].transpose(1, 2, 0) + 1.0) / 2.0, 0.0, 1.0)
            out = out.astype(image.dtype)
        return out[..., 0] if image.ndim == 2 else out


@dataclass
class SampleBank:
    """Pre-generated samples of one class, each handed out ``reuse`` times in turn."""

    images: np.ndarray  # u8[n, H, W, C]
    left: int  # draws before a refill

    def draw(self, reuse: int) -> np.ndarray:
        n = len(self.images)
        index = (n * reuse - self.left) % n
        self.left -= 1
        return self.images[index]


class GANSynthesize(GeneratorTransform, ImageOnlyTransform):
    """Replace the image with a synthetic sample of its class (the class comes with the call).

    Args:
        model: a ``synthesize`` ONNX file exported by gan-augment.
        class_p: per-class probability (class name or index -> p) of replacing an image,
            applied after ``p``; classes not listed are never replaced. ``None``: every
            class with probability ``p``. See :func:`balancing_probabilities`.
        label_key: the keyword the class label (index or name) is passed under.
        buffer_size: samples generated per class in one onnxruntime call.
        reuse: how many times each generated sample is handed out (more: cheaper, less
            diverse; the transforms after this one still vary each use). The default 2
            keeps the transform within twice the cost of a flip + brightness/contrast
            Compose on 28x28 images (benchmarks/inference.py); 1 for fresh samples only.
        sha256: the model file's expected sha256 (recorded by ``to_dict``; None: any).
        threads: onnxruntime threads per process (1 suits DataLoader workers; 0: all).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        codes: latent codes to fix in an infogan model (``{"c0": 0.5, "k0": 3}``: a
            continuous code's value in [-1, 1], a categorical code's index); codes not
            named are drawn. ``None``: all drawn.

    The sample takes the input's size, channel count (gray <-> RGB) and dtype.
    """

    class InitSchema(ModelSchema):
        codes: dict[str, float] | None = None
        class_p: dict[str | int, float] | None = None
        label_key: str = LABEL_KEY
        buffer_size: int = Field(64, ge=1)
        reuse: int = Field(2, ge=1)

    def __init__(
        self,
        model: str | os.PathLike[str],
        class_p: Mapping[str | int, float] | None = None,
        label_key: str = LABEL_KEY,
        buffer_size: int = 64,
        reuse: int = 2,
        sha256: str | None = None,
        threads: int = 1,
        device: Device = "auto",
        codes: Mapping[str, float] | None = None,
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        self._attach(Path(model), "synthesize", sha256, threads, device)
        self.codes = None if codes is None else dict(codes)
        self._choice = CodeChoice(self.codes or {})
        self._choice.check(self.generator.codes, f"GANSynthesize({self.generator.path})")
        self.label_key, self.buffer_size, self.reuse = label_key, buffer_size, reuse
        self.class_p = None if class_p is None else self._class_probabilities(class_p)
        self._banks: dict[int, SampleBank] = {}

    def _class_probabilities(self, class_p: Mapping[str | int, float]) -> dict[str, float]:
        classes = self.generator.info.classes
        named: dict[str, float] = {}
        for label, prob in class_p.items():
            key = int(label) if isinstance(label, str) and label.isdigit() else label
            name = label if label in classes else classes[self.generator.class_index(key)]
            if not 0.0 <= float(prob) <= 1.0:
                raise DataError(f"GANSynthesize: class_p[{label!r}] = {prob} is not in [0, 1]")
            named[str(name)] = float(prob)
        return named

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return (
            "model",
            "class_p",
            "label_key",
            "buffer_size",
            "reuse",
            "sha256",
            "threads",
            "device",
            "codes",
        )

    def set_random_seed(self, seed: int | None) -> None:
        super().set_random_seed(seed)
        self._banks = {}  # a reseeded transform starts from fresh samples

    def set_random_state(self, random_generator: Any, py_random: Any) -> None:
        super().set_random_state(random_generator, py_random)
        self._banks = {}

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        if self.label_key not in data:
            raise DataError(
                f"GANSynthesize needs the class label: call it as "
                f"transform(image=..., {self.label_key}=<class index or name>)"
            )
        label = self._class_of(data[self.label_key])
        if self.class_p is not None:
            name = self.generator.info.classes[label]
            if not self.random_generator.random() < self.class_p.get(name, 0.0):
                return {"sample": None}
        return {"sample": self._draw(label)}

    def _class_of(self, label: Any) -> int:
        if isinstance(label, np.ndarray) and label.size == 1:
            label = label.item()
        if not isinstance(label, (str, int, np.integer)) or isinstance(label, bool):
            raise DataError(f"GANSynthesize: class label {label!r} is not an index or a name")
        return self.generator.class_index(label if isinstance(label, str) else int(label))

    def _draw(self, label: int) -> np.ndarray:
        bank = self._banks.get(label)
        if bank is None or bank.left == 0:
            seed = int(self.random_generator.integers(2**63 - 1))
            labels = np.full(self.buffer_size, label, np.int64)
            images = self.generator.generate(labels, seed, self.buffer_size, self._choice)
            images = to_uint8(images)
            bank = self._banks[label] = SampleBank(images, self.buffer_size * self.reuse)
        return bank.draw(self.reuse)

    def apply(self, img: np.ndarray, sample: np.ndarray | None = None, **params: Any) -> np.ndarray:
        if sample is None:
            return img
        return match_image(sample, img)


class GANTranslate(GeneratorTransform, ImageOnlyTransform):
    """Translate the image into ``domain`` with a ``translate`` model.

    A multi-domain model (StarGAN-style) needs ``domain`` (a name or index of its
    domains); a one-direction model translates into its target domain. A stochastic model
    (noise inputs) draws fresh noise per call from the transform's random state. The image
    keeps its size, dtype and layout; its channel count must be the model's.
    """

    class InitSchema(ModelSchema):
        domain: str | int | None = None

    def __init__(
        self,
        model: str | os.PathLike[str],
        domain: str | int | None = None,
        sha256: str | None = None,
        threads: int = 1,
        device: Device = "auto",
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        self._attach(Path(model), "translate", sha256, threads, device)
        if self.generator.multi_domain and domain is None:
            raise ModelError(
                f"{model}: GANTranslate needs domain= (domains: "
                f"{', '.join(self.generator.info.domains)})"
            )
        if domain is not None:
            self.generator.domain_index(domain)  # an unknown domain fails here, not later
        self.domain = domain

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("model", "domain", "sha256", "threads", "device")

    def get_params(self) -> dict[str, Any]:
        return {"seed": int(self.random_generator.integers(2**63 - 1))}  # for noise models

    def apply(self, img: np.ndarray, seed: int = 0, **params: Any) -> np.ndarray:
        output = self.generator.translate(self._model_input(img), self.domain, 1, seed)
        return self._like(output, img)


class GANUpscale(GeneratorTransform, DualTransform):
    """Upscale the image by the model's scale; masks, boxes and keypoints follow.

    Images larger than ``tile`` pixels are upscaled in tiles overlapping by ``overlap``
    (memory stays bounded; no seams while ``overlap`` covers the model's receptive
    radius). Masks are resized with ``mask_interpolation`` (nearest by default, which keeps
    class ids); bounding boxes are scale-invariant in albumentations' normalized
    coordinates; keypoints (and their scale) are multiplied by the factor.
    """

    class InitSchema(ModelSchema):
        mask_interpolation: int = 0  # cv2.INTER_NEAREST
        tile: int | None = Field(256, ge=2)
        overlap: int = Field(16, ge=0)

    def __init__(
        self,
        model: str | os.PathLike[str],
        mask_interpolation: int = 0,
        tile: int | None = 256,
        overlap: int = 16,
        sha256: str | None = None,
        threads: int = 1,
        device: Device = "auto",
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self._attach(Path(model), "upscale", sha256, threads, device)
        check_tiling(tile, overlap)  # fail here, not at the first large image
        self.mask_interpolation, self.tile, self.overlap = mask_interpolation, tile, overlap
        self.scale = self.generator.info.scale

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("model", "mask_interpolation", "tile", "overlap", "sha256", "threads", "device")

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        upscaled = self.generator.upscale(self._model_input(img), 1, self.tile, self.overlap)
        return self._like(upscaled, img)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        height, width = mask.shape[:2]
        shape = (height * self.scale, width * self.scale)
        return fgeometric.resize(mask, shape, interpolation=self.mask_interpolation)

    def apply_to_bboxes(self, bboxes: np.ndarray, **params: Any) -> np.ndarray:
        return bboxes  # normalized coordinates do not change under uniform scaling

    def apply_to_keypoints(self, keypoints: np.ndarray, **params: Any) -> np.ndarray:
        return fgeometric.keypoints_scale(keypoints, self.scale, self.scale)


class GANInpaint(GeneratorTransform, CoarseDropout):
    """Cut rectangular holes, as ``A.CoarseDropout`` does, and fill them with an
    ``inpaint`` model instead of a constant: an occlusion augmentation whose images stay
    plausible.

    The holes are drawn by ``CoarseDropout`` itself (``num_holes_range``,
    ``hole_height_range``, ``hole_width_range``: fractions of the side, or pixels when
    the upper bound is >= 1), so everything it does with them holds: masks are kept (or
    filled with ``fill_mask``), bounding boxes and keypoints the holes cover are dropped
    as its processors say. Pixels outside the holes are returned exactly as they came.
    The model fills holes best near the sizes it was trained on (its metadata's
    ``hole_range``, the defaults here).
    """

    class InitSchema(ModelSchema):  # the hole ranges: validated by CoarseDropout's own
        num_holes_range: tuple[int, int] = (1, 1)
        hole_height_range: tuple[float, float] | tuple[int, int] = (0.25, 0.5)
        hole_width_range: tuple[float, float] | tuple[int, int] = (0.25, 0.5)
        fill_mask: tuple[float, ...] | float | None = None

    def __init__(
        self,
        model: str | os.PathLike[str],
        num_holes_range: tuple[int, int] = (1, 1),
        hole_height_range: tuple[float, float] | tuple[int, int] = (0.25, 0.5),
        hole_width_range: tuple[float, float] | tuple[int, int] = (0.25, 0.5),
        fill_mask: tuple[float, ...] | float | None = None,
        sha256: str | None = None,
        threads: int = 1,
        device: Device = "auto",
        p: float = 0.5,
    ) -> None:
        super().__init__(
            num_holes_range=num_holes_range,
            hole_height_range=hole_height_range,
            hole_width_range=hole_width_range,
            fill=0,
            fill_mask=fill_mask,
            p=p,
        )
        self._attach(Path(model), "inpaint", sha256, threads, device)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return (
            "model",
            "num_holes_range",
            "hole_height_range",
            "hole_width_range",
            "fill_mask",
            "sha256",
            "threads",
            "device",
        )

    def apply(self, img: np.ndarray, holes: np.ndarray, seed: int = 0, **params: Any) -> np.ndarray:
        mask = np.zeros(img.shape[:2], bool)
        for x_min, y_min, x_max, y_max in np.asarray(holes, int).reshape(-1, 4):
            mask[y_min:y_max, x_min:x_max] = True
        if not mask.any():  # zero-area holes (a fraction of a small side): nothing to fill
            return img
        if mask.all():
            raise DataError(
                f"GANInpaint: the holes cover the whole {img.shape[1]}x{img.shape[0]} "
                "image (nothing to fill from): lower hole_height_range/hole_width_range"
            )
        filled = self.generator.inpaint(self._model_input(img), mask[None], 1)
        out = self._like(filled, img)
        return np.where(mask.reshape(*mask.shape, *([1] * (img.ndim - 2))), out, img)


class GANFromMask(GeneratorTransform, ImageOnlyTransform):
    """Replace the image with a new one that a ``mask2image`` model (SPADE) makes for the
    segmentation mask of the call, ``compose(image=img, mask=mask)``; the mask is kept.

    The mask's values are the model's label indices (``OnnxGenerator.mask_labels``), or
    ``labels`` maps them (``{0: 0, 255: 1}``: a 0/255 mask onto background/foreground).
    Each call draws a fresh style code from the transform's random state
    (``Compose(seed=...)`` reproduces them). The new image has the mask's size and the
    input's channels and dtype.
    """

    class InitSchema(ModelSchema):
        labels: dict[int, int] | None = None

    def __init__(
        self,
        model: str | os.PathLike[str],
        labels: Mapping[int, int] | None = None,
        sha256: str | None = None,
        threads: int = 1,
        device: Device = "auto",
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        self._attach(Path(model), "mask2image", sha256, threads, device)
        known = len(self.generator.mask_labels)
        self.labels = None if labels is None else {int(k): int(v) for k, v in labels.items()}
        bad = [v for v in (self.labels or {}).values() if not 0 <= v < known]
        if bad:
            raise DataError(
                f"GANFromMask: labels maps onto {bad[0]}, but {model} knows labels 0..{known - 1}"
            )

    @property
    def targets_as_params(self) -> list[str]:
        return ["mask"]

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("model", "labels", "sha256", "threads", "device")

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        mask = np.asarray(data["mask"])  # (albumentations refuses a call without one)
        mask = mask[..., 0] if mask.ndim == 3 and mask.shape[2] == 1 else mask
        if mask.ndim != 2:
            raise DataError(f"GANFromMask: the mask must be H x W labels, got {mask.shape}")
        if self.labels is not None:
            mapped = np.full(mask.shape, -1, np.int64)
            for value, label in self.labels.items():
                mapped[mask == value] = label
            if (mapped < 0).any():
                value = int(mask[mapped < 0][0])
                raise DataError(f"GANFromMask: mask value {value} is not in labels {self.labels}")
            mask = mapped
        seed = int(self.random_generator.integers(2**63 - 1))
        made = self.generator.from_mask(mask[None].astype(np.int64), seed, 1)
        return {"made": to_uint8(made)[0]}

    def apply(self, img: np.ndarray, made: np.ndarray | None = None, **params: Any) -> np.ndarray:
        return img if made is None else match_image(made, img)


def match_image(sample: np.ndarray, like: np.ndarray) -> np.ndarray:
    """u8[H,W,C] ``sample`` resized and converted to the size, channels and dtype of ``like``."""
    import cv2

    channels = 1 if like.ndim == 2 else like.shape[2]
    if channels not in (1, 3):
        raise DataError(f"image has {channels} channels; a generated image has 1 or 3")
    height, width = like.shape[:2]
    out = sample
    if out.shape[:2] != (height, width):
        shrink = height < out.shape[0] or width < out.shape[1]
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        out = cv2.resize(out, (width, height), interpolation=interpolation)
        out = out.reshape(height, width, -1)
    if out.shape[2] != channels:
        if channels == 3:
            out = np.repeat(out, 3, axis=2)
        else:
            out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[..., None]
    if like.dtype != np.uint8:
        out = (out / 255.0).astype(like.dtype)
    return out[..., 0] if like.ndim == 2 else out
