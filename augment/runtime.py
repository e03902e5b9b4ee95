"""Run exported generators with onnxruntime alone (no torch needed downstream).

``Generator(path)`` reads the metadata the exporter wrote, checks it, and creates its
onnxruntime session lazily on first use. It pickles without its session, so it can be
handed to DataLoader workers, each of which opens its own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augment.errors import ModelError
from augment.io import sha256_file

METADATA_KEYS = (
    "task",
    "variant",
    "classes",
    "domains",
    "image_size",
    "channels",
    "scale",
    "latent_dim",
    "normalization",
    "package_version",
    "manifest_sha256",
)


@dataclass(frozen=True)
class ModelInfo:
    """The metadata every exported generator carries."""

    task: str
    variant: str
    classes: tuple[str, ...]
    domains: tuple[str, ...]
    image_size: int
    channels: int
    scale: int
    latent_dim: int
    normalization: str
    package_version: str
    manifest_sha256: str

    @classmethod
    def from_props(cls, props: dict[str, str], path: Path) -> ModelInfo:
        missing = [k for k in METADATA_KEYS if k not in props]
        if missing:
            raise ModelError(
                f"{path}: not a gan-augment model (metadata lacks {', '.join(missing)})"
            )
        try:
            return cls(
                task=props["task"],
                variant=props["variant"],
                classes=tuple(json.loads(props["classes"])),
                domains=tuple(json.loads(props["domains"])),
                image_size=int(props["image_size"]),
                channels=int(props["channels"]),
                scale=int(props["scale"]),
                latent_dim=int(props["latent_dim"]),
                normalization=props["normalization"],
                package_version=props["package_version"],
                manifest_sha256=props["manifest_sha256"],
            )
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{path}: inconsistent metadata ({exc})") from None

    def to_props(self) -> dict[str, str]:
        props = {k: getattr(self, k) for k in METADATA_KEYS}
        props["classes"], props["domains"] = json.dumps(self.classes), json.dumps(self.domains)
        return {k: str(v) for k, v in props.items()}


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


class Generator:
    """An exported generator: lazy onnxruntime session, metadata, batched inference."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        task: str | None = None,
        device: str = "auto",
        threads: int = 0,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        self.device, self.threads = device, threads
        self.info = ModelInfo.from_props(_read_props(self.path), self.path)
        if task is not None and self.info.task != task:
            raise ModelError(
                f"{self.path}: is a {self.info.task!r} model ({self.info.variant}), "
                f"but a {task!r} model is needed"
            )
        self._session: Any = None
        self._sha256: str | None = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    @property
    def session(self) -> Any:
        if self._session is None:
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
                raise ModelError(f"{self.path}: onnxruntime cannot load it ({exc})") from None
        return self._session

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None  # sessions do not pickle; each process opens its own
        return state

    def run(self, **inputs: np.ndarray) -> np.ndarray:
        """One forward pass of the raw ONNX graph on named inputs."""
        return self.session.run(None, inputs)[0]

    def class_index(self, label: str | int) -> int:
        """Index of a class given by name or index; ModelError naming the known classes."""
        classes = self.info.classes
        if isinstance(label, (int, np.integer)) and 0 <= int(label) < len(classes):
            return int(label)
        if isinstance(label, str) and label in classes:
            return classes.index(label)
        raise ModelError(f"{self.path}: unknown class {label!r} (classes: {', '.join(classes)})")

    def generate(self, labels: Any, seed: int, batch_size: int = 256) -> np.ndarray:
        """Images f32[N,C,H,W] in [-1,1] for class indices ``labels``; same seed, same output."""
        if self.info.task != "synthesize":
            raise ModelError(
                f"{self.path}: generate() needs a synthesize model, not {self.info.task}"
            )
        labels = np.asarray(
            [self.class_index(int(x)) for x in np.asarray(labels).ravel()], np.int64
        )
        z = np.random.default_rng(seed).standard_normal((len(labels), self.info.latent_dim))
        z = z.astype(np.float32)
        size, channels = self.info.image_size, self.info.channels
        out = np.empty((len(labels), channels, size, size), np.float32)
        for start in range(0, len(labels), batch_size):
            stop = start + batch_size
            out[start:stop] = self.run(z=z[start:stop], label=labels[start:stop])
        return out


def _read_props(path: Path) -> dict[str, str]:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"{path}: not a readable ONNX file ({exc.__class__.__name__})") from None
    return {p.key: p.value for p in model.metadata_props}


def to_uint8(images: np.ndarray) -> np.ndarray:
    """f32[N,C,H,W] in [-1,1] -> u8[N,H,W,C] (rounded, clipped)."""
    scaled = np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(scaled.transpose(0, 2, 3, 1))
