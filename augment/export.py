"""ONNX export of a trained generator, checked against torch before it is written.

The file carries the metadata of :class:`augment.model_contract.ModelInfo`; export fails (and
writes nothing) unless onnxruntime reproduces torch's output on fixed inputs, at batch
sizes other than the one traced, within ``atol``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

import augment
from augment.errors import ExportError
from augment.io import atomic_path
from augment.latent_codes import truncated
from augment.model_contract import ModelInfo
from augment.variant import Variant

log = logging.getLogger(__name__)
OPSET = 17
OUTPUT = "image"


def model_info(
    variant: Variant, manifest_sha256: str, truncation: float | None = None
) -> ModelInfo:
    """The metadata to embed for ``variant`` trained on a manifest with ``manifest_sha256``
    (and, for a synthesize model sampled with the truncation trick, its ``truncation``)."""
    d, extra = variant.data, variant.metadata()
    if truncation is not None:
        if variant.task != "synthesize" or truncation <= 0:
            raise ExportError(
                f"{variant.name}: truncation {truncation:g} applies to a synthesize model's "
                f"z and must be > 0 (this is a {variant.task} model)"
            )
        extra = extra | {"truncation": truncation}
    return ModelInfo(
        task=variant.task,
        variant=variant.name,
        classes=d.classes,
        domains=d.domains,
        image_size=d.image_size,
        channels=d.channels,
        scale=int(extra.get("scale", 1)),
        latent_dim=int(extra.get("latent_dim", 0)),
        normalization="[-1,1]",
        package_version=augment.__version__,
        manifest_sha256=manifest_sha256,
        extra={
            k: json.dumps(v) for k, v in sorted(extra.items()) if k not in ("scale", "latent_dim")
        },
    )


#: The tasks whose models take any height and width (their image-like inputs and output).
ANY_SIZE_TASKS = ("translate", "upscale", "inpaint", "mask2image")


def dynamic_axes(task: str, names: list[str]) -> dict[str, dict[int, str]]:
    """Batch is dynamic everywhere; height and width too for image-to-image tasks."""
    axes: dict[str, dict[int, str]] = {}
    for name in [*names, "output" if OUTPUT in names else OUTPUT]:
        axes[name] = {0: "batch"}
        if task in ANY_SIZE_TASKS and name in ("image", "mask", "output"):
            axes[name] |= {2: "height", 3: "width"}
    return axes


@dataclass(frozen=True)
class ExportResult:
    info: ModelInfo
    max_abs_diff: float  # worst |onnxruntime - torch| seen by the parity check


def export_onnx(
    variant: Variant,
    generator: nn.Module,
    path: str | Path,
    manifest_sha256: str = "",
    atol: float = 1e-4,
    truncation: float | None = None,
) -> ExportResult:
    """Export ``generator`` through ``variant.export_module`` to ``path`` (atomically);
    ``truncation`` t records that the model's ``z`` is to be drawn from the normal
    truncated to [-t, t] (BigGAN's truncation trick), wherever it is sampled."""
    info = model_info(variant, manifest_sha256, truncation)
    module = baked(variant.export_module(generator).cpu().eval())
    return write_onnx(module, variant.example_inputs, info, path, atol)


def export_encoder(
    variant: Variant,
    generator: nn.Module,
    path: str | Path,
    manifest_sha256: str = "",
    atol: float = 1e-4,
) -> ExportResult | None:
    """Export the encoder of a variant that learns one (``encoder_module``: BiGAN, ALI) to
    ``path`` as an ``encode`` model with the generator's metadata, parity-checked like the
    generator; None (nothing written) for a variant without one."""
    encoder = getattr(variant, "encoder_module", lambda _: None)(generator)
    if encoder is None:
        return None
    info = dataclasses.replace(model_info(variant, manifest_sha256), task="encode")
    return write_onnx(baked(encoder.cpu().eval()), variant.encoder_inputs, info, path, atol)


def running_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of ``module`` that keep running statistics."""
    return [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


@torch.no_grad()
def standing_statistics(
    variant: Variant,
    generator: nn.Module,
    batches: int,
    batch_size: int = 128,
    truncation: float | None = None,
) -> nn.Module:
    """A copy of a synthesize ``generator`` (in eval mode) whose batch-norm running
    statistics are measured on its own samples: BigGAN's "standing statistics" (Brock et
    al., 2019, appendix C). ``generator`` itself is untouched.

    Why: the EMA generator's weights are an average over the last ~1/(1 - decay) steps, but
    its BN buffers are copies of the live generator's (:class:`augment.nn.ema.EMA`), whose
    activations they were accumulated on. Here every BN layer forgets them and, in train
    mode with ``momentum=None`` (a cumulative average), takes the mean and variance of
    ``batches`` batches of ``batch_size`` prior draws (``variant.example_inputs``: z ~ N(0,
    I), mapped onto the truncated normal when the model is sampled with ``truncation``;
    classes in equal shares); every other module stays in eval mode, so spectral norm's
    power iteration does not run and no weight moves. BN layers the samples do not pass
    through (an encoder trained beside the generator) keep theirs. A generator without BN
    running statistics, or ``batches`` 0, is returned as it is.
    """
    if variant.task != "synthesize" or batches <= 0 or not running_norms(generator):
        return generator
    copied = copy.deepcopy(generator).eval()
    norms = running_norms(copied)
    momenta = [m.momentum for m in norms]
    copied_stats = [copy.deepcopy(m.state_dict()) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # running = the average over every batch seen, equally weighted
        m.train()
    module = variant.export_module(copied)
    device = next(copied.parameters()).device
    for i in range(batches):
        inputs = variant.example_inputs(batch_size, seed=1_000_003 + i)  # not the parity draws
        if truncation is not None:
            inputs["z"] = torch.from_numpy(truncated(inputs["z"].numpy(), truncation)).float()
        module(*(v.to(device) for v in inputs.values()))
    for m, momentum, stats in zip(norms, momenta, copied_stats, strict=True):
        m.momentum = momentum
        m.eval()
        if int(m.num_batches_tracked) == 0:  # not on the sampling path (BiGAN's encoder)
            m.load_state_dict(stats)
    return copied


def baked(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (in eval mode) whose weight parametrizations, such as spectral
    norm's ``W / sigma(W)``, are computed once into plain weights: the ONNX graph holds the
    weights the module uses, not the power iteration (which has no ONNX operator).

    ``module`` itself is untouched: ``parametrize.remove_parametrizations`` would delete the
    weight property from the parametrized class, which a deep copy shares with the original.
    """
    if not any(parametrize.is_parametrized(m) for m in module.modules()):
        return module
    copied = copy.deepcopy(module).eval()
    for m in [m for m in copied.modules() if parametrize.is_parametrized(m)]:
        with torch.no_grad():
            values = {name: getattr(m, name).clone() for name in m.parametrizations}
        m.__class__ = m.__class__.__bases__[0]  # the class torch's parametrized one extends
        del m._modules["parametrizations"]
        for name, value in values.items():
            m.register_parameter(name, nn.Parameter(value, requires_grad=False))
    return copied


def write_onnx(
    module: nn.Module,
    example_inputs: Callable[[int, int], dict[str, Tensor]],
    info: ModelInfo,
    path: str | Path,
    atol: float = 1e-4,
) -> ExportResult:
    """Trace ``module`` to ONNX at ``path`` with ``info`` as metadata, checked against torch.

    ``example_inputs(batch_size, seed)`` gives the named inputs of the task's contract.
    Nothing is written unless onnxruntime reproduces torch within ``atol``.
    """
    inputs = example_inputs(4, 0)
    names = list(inputs)
    # ONNX names must be unique: image-to-image models read `image` and write `output`.
    output_names = ["output" if OUTPUT in names else OUTPUT]
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
            try:
                torch.onnx.export(
                    module,
                    tuple(inputs.values()),
                    str(tmp),
                    input_names=names,
                    output_names=output_names,
                    dynamic_axes=dynamic_axes(info.task, names),
                    opset_version=OPSET,
                    dynamo=False,
                )
            except Exception as exc:
                raise ExportError(f"{info.variant}: ONNX export failed ({exc})") from exc
        model = onnx.load(str(tmp))
        del model.metadata_props[:]
        for key, value in info.to_props().items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(tmp))
        worst = check_parity(info.variant, module, example_inputs, tmp, atol)
    log.info("exported %s to %s (parity %.2g)", info.variant, path, worst)
    return ExportResult(info, worst)


def check_parity(
    name: str,
    module: nn.Module,
    example_inputs: Callable[[int, int], dict[str, Tensor]],
    path: Path,
    atol: float,
) -> float:
    """Max |onnxruntime - torch| over fixed inputs at batch 1 and 5; ExportError above atol."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in (1, 5):
        inputs = example_inputs(batch, batch)
        with torch.no_grad():
            expected = module(*inputs.values()).numpy()
        actual = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
        if actual.shape != expected.shape:
            raise ExportError(
                f"{name}: onnxruntime output shape {actual.shape} != torch {expected.shape}"
            )
        worst = max(worst, float(np.abs(actual - expected).max()))
    if not worst <= atol:
        raise ExportError(
            f"{name}: onnxruntime differs from torch by {worst:.3g} (> atol {atol:g})"
        )
    return worst
