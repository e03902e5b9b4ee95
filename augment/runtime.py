"""Run exported generators with onnxruntime alone (no torch needed downstream).

``OnnxGenerator(path)`` reads the metadata the exporter wrote, checks it, and creates its
onnxruntime session lazily on first use. It pickles without its session, and a process
forked after the session was opened opens its own, so it can be handed to DataLoader
workers (fork or spawn) safely.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from augment.errors import DataError, ModelError, first_line
from augment.io import is_file, sha256_file
from augment.latent_codes import CodeChoice, CodeLayout, LatentStream
from augment.model_contract import ModelInfo, contract_problem, mask_labels, read_model
from augment.tiling import check_tiling, upscale_tiled


def providers(device: str = "auto") -> list[str]:
    """onnxruntime providers: CUDA first when asked for or available, CPU always last."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available and (device == "cuda" or _cuda_device_present()):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _cuda_device_present() -> bool:
    return any(Path("/dev").glob("nvidia[0-9]*")) or bool(os.environ.get("AUGMENT_FORCE_CUDA"))


class OnnxGenerator:
    """An exported generator: lazy onnxruntime session, metadata, batched inference."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        task: str | None = None,
        device: str = "auto",
        threads: int = 0,
    ) -> None:
        self.path = Path(path)
        if not is_file(self.path):
            raise ModelError(f"{self.path}: model file not found")
        self.device, self.threads = device, threads
        props, self._inputs, self._output = read_model(self.path)
        self.input_names = tuple(self._inputs)
        self.info = ModelInfo.from_props(props, self.path)
        self._checked = False
        if task is not None:
            if self.info.task != task:
                raise ModelError(
                    f"{self.path}: is a {self.info.task!r} model ({self.info.variant}), "
                    f"but a {task!r} model is needed"
                )
            self._require(task)
        self._session: Any = None
        self._session_pid = 0
        self._sha256: str | None = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    @property
    def session(self) -> Any:
        """The onnxruntime session of this process (opened on first use)."""
        if self._session is None or self._session_pid != os.getpid():
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            if self.threads:
                options.intra_op_num_threads = self.threads
            try:
                self._session = ort.InferenceSession(
                    str(self.path), options, providers=providers(self.device)
                )
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise ModelError(
                    f"{self.path}: onnxruntime cannot load it ({first_line(exc)})"
                ) from None
            self._session_pid = os.getpid()
        return self._session

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None  # sessions do not pickle; each process opens its own
        return state

    def run(self, **inputs: np.ndarray) -> np.ndarray:
        """One forward pass of the raw ONNX graph on named inputs; a ModelError naming the
        file when onnxruntime refuses them."""
        session = self.session
        try:
            return session.run(None, inputs)[0]
        except Exception as exc:  # onnxruntime's untyped errors: a shape or type mismatch
            shapes = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in inputs.items())
            raise ModelError(f"{self.path}: cannot run on {shapes} ({first_line(exc)})") from None

    def class_index(self, label: str | int) -> int:
        """Index of a class given by name or index; ModelError naming the known classes."""
        return self._index(label, self.info.classes, "class", "classes")

    @property
    def multi_domain(self) -> bool:
        """Whether the model takes a target ``domain`` input (StarGAN-style translators)."""
        return "domain" in self.input_names

    def domain_index(self, domain: str | int) -> int:
        """Index of a domain given by name or index; ModelError naming the known domains."""
        return self._index(domain, self.info.domains, "domain", "domains")

    def _index(self, key: str | int, names: tuple[str, ...], what: str, plural: str) -> int:
        if isinstance(key, (int, np.integer)) and 0 <= int(key) < len(names):
            return int(key)
        if isinstance(key, str) and key in names:
            return names.index(key)
        known = ", ".join(names) or "none"
        raise ModelError(f"{self.path}: unknown {what} {key!r} ({plural}: {known})")

    @functools.cached_property
    def codes(self) -> CodeLayout | None:
        """The layout of the model's latent codes (InfoGAN's ``code`` input), or None
        (parsed once; the contract check has vetted it)."""
        self._require("synthesize")
        return CodeLayout.from_metadata(self.info.extra.get("codes"))

    def latent_stream(self, seed: int, count: int, codes: CodeChoice | None = None) -> LatentStream:
        """The latent inputs of ``count`` images drawn from ``seed`` (``z``, and the codes of
        a model with codes, ``codes`` applied), batch after batch."""
        return LatentStream(self.info.latent_dim, self.codes, seed, count, codes, self.truncation)

    @functools.cached_property
    def truncation(self) -> float | None:
        """The truncation trick's threshold t the model was exported with (None: plain z),
        read as the contract check reads it."""
        self._require("synthesize")
        return json.loads(self.info.extra.get("truncation", "null"))

    def generate(
        self, labels: Any, seed: int, batch_size: int = 256, codes: CodeChoice | None = None
    ) -> np.ndarray:
        """Images f32[N,C,H,W] in [-1,1] for class indices ``labels``; same seed, same output.

        A model with latent codes (infogan) draws them from the seed too; ``codes`` fixes
        or sweeps some (the sweep runs over the ``N`` images in order)."""
        self._require("synthesize")
        (codes or CodeChoice()).check(self.codes, str(self.path))
        labels = np.asarray(
            [self.class_index(int(x)) for x in np.asarray(labels).ravel()], np.int64
        )
        latent = self.latent_stream(seed, len(labels), codes).next(len(labels))
        size, channels = self.info.image_size, self.info.channels
        out = np.empty((len(labels), channels, size, size), np.float32)
        for start in range(0, len(labels), batch_size):
            stop = start + batch_size
            batch = {k: v[start:stop] for k, v in latent.items()}
            images = self.run(**batch, label=labels[start:stop])
            if images.shape != out[start:stop].shape:
                raise ModelError(
                    f"{self.path}: generated images of shape {images.shape}, the metadata "
                    f"implies {out[start:stop].shape}"
                )
            out[start:stop] = images
        return out

    def encode(self, images: np.ndarray, labels: Any, batch_size: int = 256) -> np.ndarray:
        """The codes f32[N, latent_dim] an encoder (task ``encode``: a BiGAN's or ALI's)
        gives images f32[N,C,S,S] in [-1,1] of classes ``labels`` (names or indices): the
        ``z`` its generator turns back into images like them."""
        self._require("encode")
        info = self.info
        images = np.asarray(images, np.float32)
        want = (info.channels, info.image_size, info.image_size)
        if images.ndim != 4 or images.shape[1:] != want:
            raise ModelError(
                f"{self.path}: encodes images of shape N x {' x '.join(map(str, want))}, "
                f"got {tuple(images.shape)}"
            )
        labels = np.asarray(
            [self.class_index(x) for x in np.asarray(labels).ravel().tolist()], np.int64
        )
        if len(labels) != len(images):
            raise ModelError(f"{self.path}: {len(images)} images but {len(labels)} labels")
        out = np.empty((len(images), info.latent_dim), np.float32)
        for start in range(0, len(images), batch_size):
            stop = start + batch_size
            out[start:stop] = self.run(image=images[start:stop], label=labels[start:stop])
        return out

    def translate(
        self,
        images: np.ndarray,
        domain: str | int | None = None,
        batch_size: int = 64,
        seed: int = 0,
    ) -> np.ndarray:
        """Images f32[N,C,H,W] in [-1,1] translated into ``domain`` (same shape).

        Multi-domain models need ``domain``; a one-direction model translates into the
        last of its ``domains`` (its target), and ``domain``, if given, must name it.
        A stochastic model (a ``noise`` input of ``latent_dim`` numbers) draws its noise from
        ``seed``: same seed, same output.
        """
        self._require("translate")
        extra: dict[str, np.ndarray] = {}
        if self.multi_domain:
            if domain is None:
                raise ModelError(
                    f"{self.path}: a target domain is needed (domains: "
                    f"{', '.join(self.info.domains)})"
                )
            extra["domain"] = np.array([self.domain_index(domain)], np.int64)
        elif domain is not None and self.domain_index(domain) != len(self.info.domains) - 1:
            raise ModelError(
                f"{self.path}: translates {' -> '.join(self.info.domains)} only, "
                f"not into {domain!r}"
            )
        return self._image_to_image(images, batch_size, extra, seed)

    def upscale(
        self, images: np.ndarray, batch_size: int = 16, tile: int | None = 256, overlap: int = 16
    ) -> np.ndarray:
        """Images f32[N,C,h,w] in [-1,1] upscaled to f32[N,C,h*scale,w*scale].

        Images larger than ``tile`` (low-resolution pixels) are upscaled in overlapping
        tiles, so memory is bounded whatever the image size. Each tile's outer ``overlap``
        pixels are discarded: with ``overlap`` at least the model's receptive radius the
        result equals the untiled one. ``tile=None`` never tiles.
        """
        self._require("upscale")
        images = np.asarray(images, np.float32)
        check_tiling(tile, overlap)
        if tile is None or images.ndim != 4 or max(images.shape[2:]) <= tile:
            return self._image_to_image(images, batch_size, {})
        run = functools.partial(self._image_to_image, batch_size=batch_size, extra={})
        return upscale_tiled(run, images, self.info.scale, tile, overlap)

    def inpaint(self, images: np.ndarray, masks: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Images f32[N,C,H,W] in [-1,1] with the holes of ``masks`` filled (same shape).

        ``masks``: N x H x W or N x 1 x H x W, nonzero in a hole. Outside the holes the
        result is ``images`` exactly. A DataError when a mask's size differs from its
        image's, or a mask has no hole or nothing but holes (nothing to fill from).
        """
        self._require("inpaint")
        images = np.asarray(images, np.float32)
        holes = np.asarray(masks)
        if holes.ndim == 4 and holes.shape[1:2] == (1,):
            holes = holes[:, 0]
        if images.ndim != 4 or holes.shape != (len(images), *images.shape[2:]):
            raise DataError(
                f"{self.path}: masks of shape {tuple(np.shape(masks))} do not match images "
                f"of shape {tuple(images.shape)} (N x H x W or N x 1 x H x W)"
            )
        holes = holes != 0
        covered = holes.reshape(len(holes), -1).mean(axis=1) if len(holes) else holes
        for what, bad in (("no hole", covered == 0), ("nothing but holes", covered == 1)):
            if np.any(bad):
                raise DataError(f"{self.path}: the mask of image {int(np.argmax(bad))} has {what}")
        mask = holes[:, None].astype(np.float32)
        filled = self._image_to_image(images, batch_size, {}, batched={"mask": mask})
        return np.where(holes[:, None], filled, images)  # known pixels: the input, exactly

    @property
    def mask_labels(self) -> tuple[str, ...]:
        """A mask2image model's mask labels: the names of the label values 0, 1, ..."""
        self._require("mask2image")
        return mask_labels(self.info)

    def from_mask(self, masks: np.ndarray, seed: int = 0, batch_size: int = 64) -> np.ndarray:
        """Images f32[N,C,H,W] in [-1,1] made for label masks (integers N x H x W, each
        value one of :attr:`mask_labels`' indices); a stochastic model draws its style
        codes from ``seed``: same seed, same images. A DataError names a label the model
        does not know (or a mask that is not N x H x W integers)."""
        labels = self.mask_labels
        masks = np.asarray(masks)
        if masks.ndim != 3 or not np.issubdtype(masks.dtype, np.integer):
            raise DataError(
                f"{self.path}: masks must be integer label maps N x H x W, got "
                f"{masks.dtype} {tuple(masks.shape)}"
            )
        unknown = np.setdiff1d(np.unique(masks), np.arange(len(labels)))
        if unknown.size:
            known = ", ".join(f"{k} {name}" for k, name in enumerate(labels))
            raise DataError(
                f"{self.path}: the masks hold label {int(unknown[0])}, which the model does "
                f"not know (labels: {known})"
            )
        if not len(masks):
            return np.zeros((0, self.info.channels, *masks.shape[1:]), np.float32)
        one_hot = np.eye(len(labels), dtype=np.float32)[masks].transpose(0, 3, 1, 2)
        return self._run_batches({"mask": np.ascontiguousarray(one_hot)}, batch_size, {}, seed)

    def _require(self, task: str) -> None:
        """ModelError unless this is a ``task`` model whose graph follows the contract."""
        if self.info.task != task:
            raise ModelError(f"{self.path}: is a {self.info.task!r} model, not {task!r}")
        if not self._checked:
            problem = contract_problem(self.info, self._inputs, self._output)
            if problem is not None:
                raise ModelError(f"{self.path}: {problem}")
            self._checked = True

    def _image_to_image(
        self,
        images: np.ndarray,
        batch_size: int,
        extra: dict[str, np.ndarray],
        seed: int = 0,
        batched: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Run the model over ``images`` (checked) and the ``batched`` inputs that go with
        them (one row per image) in batches (:meth:`_run_batches`)."""
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1] != self.info.channels:
            raise ModelError(
                f"{self.path}: takes images of {self.info.channels} channel(s) "
                f"(N x {self.info.channels} x H x W), got shape {tuple(images.shape)}"
            )
        if not len(images):
            return images.copy()
        return self._run_batches({"image": images, **(batched or {})}, batch_size, extra, seed)

    def _run_batches(
        self,
        rows: dict[str, np.ndarray],
        batch_size: int,
        extra: dict[str, np.ndarray],
        seed: int,
    ) -> np.ndarray:
        """The model over the inputs ``rows`` (one row per image, at least one image) in
        batches: ``extra`` inputs repeated per image, and a ``noise`` input, if the model
        has one, drawn from ``seed`` batch after batch."""
        count = len(next(iter(rows.values())))
        noise = np.random.default_rng(seed) if "noise" in self.input_names else None
        outputs = []
        for start in range(0, count, batch_size):
            inputs = {k: v[start : start + batch_size] for k, v in rows.items()}
            size = min(batch_size, count - start)
            inputs |= {k: np.repeat(v, size, axis=0) for k, v in extra.items()}
            if noise is not None:
                shape = (size, self.info.latent_dim)
                inputs["noise"] = noise.standard_normal(shape, dtype=np.float32)
            outputs.append(self.run(**inputs))
        return np.concatenate(outputs)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """f32[N,C,H,W] in [-1,1] -> u8[N,H,W,C] (rounded, clipped)."""
    scaled = np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(scaled.transpose(0, 2, 3, 1))


def from_uint8(images: np.ndarray) -> np.ndarray:
    """u8[N,H,W,C] -> f32[N,C,H,W] in [-1,1] (the inverse of :func:`to_uint8`)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32) / 127.5 - 1.0


def __getattr__(name: str) -> Any:
    """``Generator``: the earlier name of :class:`OnnxGenerator`, kept for one release."""
    if name == "Generator":
        warnings.warn(
            "augment.runtime.Generator is now augment.runtime.OnnxGenerator",
            DeprecationWarning,
            stacklevel=2,
        )
        return OnnxGenerator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
