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
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augment.errors import ConfigError, DataError, ModelError, first_line
from augment.io import is_file, sha256_file
from augment.latent_codes import CodeChoice, CodeLayout, LatentStream
from augment.tasks import TASKS

NORMALIZATION = "[-1,1]"
#: Upper bounds of the metadata numbers: a file claiming more lies (or would exhaust memory).
LIMITS = {"image_size": 8192, "scale": 16, "latent_dim": 65536}

#: Tasks of exported models: the variants' tasks, and ``encode``, the encoder a BiGAN/ALI
#: exports beside its generator (real image + class -> the generator's ``z``).
MODEL_TASKS = (*TASKS, "encode")

#: Graph inputs of each task's ONNX contract: (required, optional) names.
CONTRACT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "synthesize": (("z", "label"), ("code",)),  # code: InfoGAN's latent codes
    "translate": (("image",), ("domain", "noise")),
    "upscale": (("image",), ()),
    "inpaint": (("image", "mask"), ()),  # mask: 1 in a hole, 0 on a known pixel
    "mask2image": (("mask",), ("noise",)),  # mask: one-hot over variant.mask_labels
    "encode": (("image", "label"), ()),
}

EXTRA_PREFIX = "variant."  # metadata props of a variant's own (ModelInfo.extra)
Dims = tuple[int | None, ...] | None  # a graph tensor's static dims (None: dynamic/unknown)

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
    #: A variant's own metadata (``Variant.metadata()`` beyond ``scale``/``latent_dim``),
    #: kept as the JSON text of each value, stored under ``variant.<key>`` in the file.
    extra: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        """ValueError unless the values are consistent: a known task, 1 or 3 channels,
        sizes within :data:`LIMITS`, the ``[-1,1]`` normalization, distinct names."""
        if self.task not in MODEL_TASKS:
            raise ValueError(f"task {self.task!r} is not one of {', '.join(MODEL_TASKS)}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels {self.channels} is not 1 or 3")
        for key, low in (("image_size", 1), ("scale", 1), ("latent_dim", 0)):
            value = getattr(self, key)
            if not low <= value <= LIMITS[key]:
                raise ValueError(f"{key} {value} is outside {low}..{LIMITS[key]}")
        if self.normalization != NORMALIZATION:
            raise ValueError(f"normalization {self.normalization!r} is not {NORMALIZATION!r}")
        for key in ("classes", "domains"):
            names = getattr(self, key)
            if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
                raise ValueError(f"{key} must be distinct strings, got {list(names)!r:.60}")

    @classmethod
    def from_props(cls, props: dict[str, str], path: Path) -> ModelInfo:
        """The metadata of the model at ``path``; a ModelError naming it when a key is
        missing, unparsable (``classes`` not a JSON list, ``image_size`` not an integer)
        or inconsistent (see :meth:`__post_init__`)."""
        missing = [k for k in METADATA_KEYS if k not in props]
        if missing:
            raise ModelError(
                f"{path}: not a gan-augment model (metadata lacks {', '.join(missing)})"
            )
        try:
            return cls(
                task=props["task"],
                variant=props["variant"],
                classes=_json_names(props, "classes"),
                domains=_json_names(props, "domains"),
                image_size=_integer(props, "image_size"),
                channels=_integer(props, "channels"),
                scale=_integer(props, "scale"),
                latent_dim=_integer(props, "latent_dim"),
                normalization=props["normalization"],
                package_version=props["package_version"],
                manifest_sha256=props["manifest_sha256"],
                extra={
                    k.removeprefix(EXTRA_PREFIX): v
                    for k, v in sorted(props.items())
                    if k.startswith(EXTRA_PREFIX)
                },
            )
        except ValueError as exc:
            raise ModelError(f"{path}: inconsistent metadata ({exc})") from None

    def to_props(self) -> dict[str, str]:
        props = {k: getattr(self, k) for k in METADATA_KEYS}
        props["classes"], props["domains"] = json.dumps(self.classes), json.dumps(self.domains)
        props |= {EXTRA_PREFIX + k: v for k, v in self.extra.items()}
        return {k: str(v) for k, v in props.items()}


def _json_names(props: dict[str, str], key: str) -> tuple[str, ...]:
    """``props[key]`` parsed as a JSON list of strings."""
    try:
        names = json.loads(props[key])
    except (ValueError, RecursionError):
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{key} {props[key]!r:.60} is not a JSON list of strings")
    return tuple(names)


def _integer(props: dict[str, str], key: str) -> int:
    """``props[key]`` parsed as a decimal integer."""
    text = props[key].strip()
    if not re.fullmatch(r"-?[0-9]{1,30}", text):
        raise ValueError(f"{key} {props[key]!r:.60} is not an integer")
    return int(text)


def contract_problem(info: ModelInfo, inputs: dict[str, Dims], output: Dims) -> str | None:
    """What keeps a graph from serving ``info``'s task (None: nothing).

    ``inputs`` maps the graph's input names to their static dims and ``output`` gives the
    first output's; they must follow the task's ONNX contract with the metadata's channels,
    latent size and (synthesis, encoding) image size. A synthesis model and an encoder need
    classes, a translator at least two domains.
    """
    required, optional = CONTRACT[info.task]
    for name in required:
        if name not in inputs:
            return f"a {info.task} model takes {', '.join(required)}, the graph has no {name!r}"
    for name in inputs:
        if name not in required + optional:
            allowed = ", ".join(required + optional)
            return f"graph input {name!r} is not part of the {info.task} contract ({allowed})"
    size = info.image_size if info.task in ("synthesize", "encode") else None
    try:
        layout = CodeLayout.from_metadata(info.extra.get("codes"))
    except (ValueError, KeyError, TypeError):
        return f"metadata variant.codes {info.extra.get('codes')!r:.60} is not a code layout"
    truncation = info.extra.get("truncation", "null")
    try:
        value = json.loads(truncation)
        if value is not None and not (isinstance(value, int | float) and value > 0):
            raise ValueError
    except ValueError:
        return f"metadata variant.truncation {truncation!r:.60} is not a positive number"
    if ("code" in inputs) != (layout is not None and layout.dim > 0):
        return "graph input 'code' and metadata variant.codes must come together"
    labels = _mask_labels(info)
    if info.task == "mask2image" and not labels:
        return "a mask2image model needs metadata variant.mask_labels (a JSON list of names)"
    expected: dict[str, tuple[int | None, ...]] = {
        "z": (None, info.latent_dim),
        "label": (None,),
        "domain": (None,),
        "noise": (None, info.latent_dim),
        "code": (None, layout.dim if layout else 0),
        "image": (None, info.channels, size, size),
        "mask": (None, len(labels) if info.task == "mask2image" else 1, size, size),
    }
    shapes = [(f"input {n!r}", dims, expected[n]) for n, dims in inputs.items()]
    made = (None, info.latent_dim) if info.task == "encode" else (None, info.channels, size, size)
    shapes.append(("output", output, made))
    for what, dims, want in shapes:
        if dims is not None and (
            len(dims) != len(want)
            or any(
                d is not None and w is not None and d != w for d, w in zip(dims, want, strict=True)
            )
        ):
            return f"graph {what} has shape {_dims(dims)}, the metadata implies {_dims(want)}"
    if info.task in ("synthesize", "encode") and not info.classes:
        return f"a {info.task} model needs classes, the metadata lists none"
    if info.task == "translate" and len(info.domains) < 2:
        return f"a translate model needs two or more domains, the metadata lists {info.domains}"
    return None


def _mask_labels(info: ModelInfo) -> tuple[str, ...]:
    """The names of a mask2image model's mask labels (``variant.mask_labels``; () when
    absent or not a JSON list of distinct strings)."""
    try:
        names = _json_names(info.extra, "mask_labels") if "mask_labels" in info.extra else ()
    except ValueError:
        return ()
    return names if len(set(names)) == len(names) else ()


def _dims(dims: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in dims) + "]"


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
        props, self._inputs, self._output = _read_model(self.path)
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
        n, c, h, w = images.shape
        s = self.info.scale
        out = np.empty((n, c, h * s, w * s), np.float32)
        for y_core, y_window in tile_spans(h, tile, overlap):
            for x_core, x_window in tile_spans(w, tile, overlap):
                window = self._image_to_image(images[:, :, y_window, x_window], batch_size, {})
                inside = _scaled(y_core, s, y_window.start), _scaled(x_core, s, x_window.start)
                out[:, :, _scaled(y_core, s), _scaled(x_core, s)] = window[(..., *inside)]
        return out

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
        return _mask_labels(self.info)

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


def _read_model(path: Path) -> tuple[dict[str, str], dict[str, Dims], Dims]:
    """The metadata props of an ONNX file, its graph inputs' static dims by name and its
    first output's static dims (None when it has no output)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"{path}: not a readable ONNX file ({exc.__class__.__name__})") from None
    props = {p.key: p.value for p in model.metadata_props}
    weights = {t.name for t in model.graph.initializer}  # listed as inputs before IR 4
    inputs = {i.name: _static_dims(i) for i in model.graph.input if i.name not in weights}
    output = _static_dims(model.graph.output[0]) if model.graph.output else None
    return props, inputs, output


def _static_dims(value: Any) -> Dims:
    """A graph value's dims (None for a dynamic one), or None when its rank is unknown."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """f32[N,C,H,W] in [-1,1] -> u8[N,H,W,C] (rounded, clipped)."""
    scaled = np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(scaled.transpose(0, 2, 3, 1))


def from_uint8(images: np.ndarray) -> np.ndarray:
    """u8[N,H,W,C] -> f32[N,C,H,W] in [-1,1] (the inverse of :func:`to_uint8`)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32) / 127.5 - 1.0


def check_tiling(tile: int | None, overlap: int) -> None:
    """ConfigError unless ``tile`` (None: no tiling) leaves room inside twice ``overlap``."""
    if tile is not None and (overlap < 0 or tile <= 2 * overlap):
        raise ConfigError(f"tile ({tile}) must be larger than twice the overlap ({overlap})")


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[slice, slice]]:
    """``(core, window)`` slices along one axis of length ``length``.

    The cores partition ``[0, length)``; each window is its core widened by ``overlap``
    on both sides (clipped to the image), at most ``tile`` long.
    """
    step = tile - 2 * overlap
    spans = []
    for start in range(0, length, step):
        stop = min(start + step, length)
        window = slice(max(0, start - overlap), min(length, stop + overlap))
        spans.append((slice(start, stop), window))
    return spans


def _scaled(span: slice, scale: int, origin: int = 0) -> slice:
    """``span`` moved to start at ``origin`` and multiplied by ``scale``."""
    return slice((span.start - origin) * scale, (span.stop - origin) * scale)


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
