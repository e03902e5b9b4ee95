"""Separate batch norms for synthetic images: AdvProp's auxiliary batch norm.

Real and synthetic images come from different distributions; one batch norm over a mixed
batch normalizes real test images with statistics that the synthetic rows moved. The
auxiliary batch norm of AdvProp (Xie et al., "Adversarial Examples Improve Image
Recognition", CVPR 2020), which arXiv 2312.02253 recommends for training on synthetic
data, keeps two: while training, rows marked synthetic are normalized by their own
statistics and affine parameters, the others by the real ones; at inference every row is
normalized as real, so the trained network is an ordinary one.

Any torch classifier can be given them::

    from augment.nn.split_norm import split_batch_norms, synthetic_rows
    model = split_batch_norms(torchvision.models.resnet18(num_classes=10))
    for images, labels, synthetic in loader:  # ManifestDataset(..., with_source=True)
        with synthetic_rows(model, synthetic):
            loss = F.cross_entropy(model(images), labels)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

__all__ = ["SplitBatchNorm2d", "split_batch_norms", "synthetic_rows"]


class SplitBatchNorm2d(nn.Module):
    """A ``real`` and a ``synthetic`` :class:`torch.nn.BatchNorm2d` over x f32[N,C,H,W].

    ``y_i = BN_real(x_i)`` where ``route[i]`` is False (or there is no route),
    ``y_i = BN_synthetic(x_i)`` where it is True; ``route`` (bool[N]) is set by
    :func:`synthetic_rows`. Each part of a batch is normalized with its own batch
    statistics while training, so synthetic rows never reach the real running statistics.
    """

    def __init__(self, channels: int, **batch_norm: object) -> None:
        super().__init__()
        self.real = nn.BatchNorm2d(channels, **batch_norm)  # type: ignore[arg-type]
        self.synthetic = nn.BatchNorm2d(channels, **batch_norm)  # type: ignore[arg-type]
        self.route: Tensor | None = None

    @classmethod
    def from_batch_norm(cls, norm: nn.BatchNorm2d) -> SplitBatchNorm2d:
        """Both halves start as copies of ``norm`` (settings, parameters, statistics, mode)."""
        split = cls(
            norm.num_features,
            eps=norm.eps,
            momentum=norm.momentum,
            affine=norm.affine,
            track_running_stats=norm.track_running_stats,
        )
        split.real.load_state_dict(norm.state_dict())
        split.synthetic.load_state_dict(norm.state_dict())
        split.train(norm.training)
        tensors = [*norm.parameters(), *norm.buffers()]
        return split.to(tensors[0].device) if tensors else split

    def forward(self, x: Tensor) -> Tensor:
        route = None if self.route is None else self.route.to(x.device)
        if route is None or not bool(route.any()):
            return self.real(x)
        if bool(route.all()):
            return self.synthetic(x)
        out = torch.empty_like(x)
        out[~route] = self.real(x[~route])
        out[route] = self.synthetic(x[route])
        return out


def split_batch_norms(module: nn.Module) -> nn.Module:
    """Replace every :class:`torch.nn.BatchNorm2d` inside ``module`` (in place) by a
    :class:`SplitBatchNorm2d` whose halves copy it; returns ``module``."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, SplitBatchNorm2d.from_batch_norm(child))
        else:
            split_batch_norms(child)
    return module


@contextlib.contextmanager
def synthetic_rows(module: nn.Module, synthetic: Tensor | None) -> Iterator[None]:
    """Within the block, the rows of a batch where ``synthetic`` (bool[N]) is set use the
    synthetic batch norms of ``module``; a no-op for ``None`` or a module without any."""
    norms = [m for m in module.modules() if isinstance(m, SplitBatchNorm2d)]
    route = None if synthetic is None else torch.as_tensor(synthetic, dtype=torch.bool)
    for norm in norms:
        norm.route = route
    try:
        yield
    finally:
        for norm in norms:
            norm.route = None
