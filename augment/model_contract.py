"""What an exported model file promises: the ONNX contract of each task and its metadata.

Every file ``augment export`` writes carries :class:`ModelInfo` as string metadata props
(:data:`METADATA_KEYS`, a variant's own under ``variant.``) and a graph whose inputs and
output follow its task's :data:`CONTRACT`. :func:`read_model` reads both without opening
an onnxruntime session and :func:`contract_problem` says what keeps a graph from serving
its metadata's task. Torch-free: the runtime and the exporter share it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augment.errors import ModelError
from augment.latent_codes import CodeLayout
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
    labels = mask_labels(info)
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


def mask_labels(info: ModelInfo) -> tuple[str, ...]:
    """The names of a mask2image model's mask labels (``variant.mask_labels``; () when
    absent or not a JSON list of distinct strings)."""
    try:
        names = _json_names(info.extra, "mask_labels") if "mask_labels" in info.extra else ()
    except ValueError:
        return ()
    return names if len(set(names)) == len(names) else ()


def _dims(dims: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in dims) + "]"


def read_model(path: Path) -> tuple[dict[str, str], dict[str, Dims], Dims]:
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
