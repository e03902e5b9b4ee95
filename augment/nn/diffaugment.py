"""DiffAugment (Zhao et al., 2020): differentiable augmentations applied to every image the
discriminator sees, real and generated, so it cannot memorize a small dataset; and ADA's
adaptive probability of applying them (Karras et al., 2020).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POLICIES = ("color", "translation", "cutout")


def _color(x: Tensor) -> Tensor:
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) + 0.5) + mean  # contrast


def _translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ratio*size pixels, filling with zeros."""
    n, _, h, w = x.shape
    dy, dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_y = torch.randint(-dy, dy + 1, (n, 1, 1), device=x.device)
    shift_x = torch.randint(-dx, dx + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + shift_y).expand(n, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + shift_x).expand(n, h, w)
    padded = F.pad(x, [1, 1, 1, 1])  # index 0 and size+1 are the zero border
    rows = (rows + 1).clamp(0, h + 1)
    cols = (cols + 1).clamp(0, w + 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one random square of ratio*size per image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + 1 - ch % 2, (n, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + 1 - cw % 2, (n, 1, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


class DiffAugment(nn.Module):
    """Apply the named policies in order; an empty policy is the identity.

    ``forward(x, p)``: each policy is applied to each image with probability ``p`` (ADA's
    stochastic augmentation); ``p >= 1`` applies every policy to every image.
    """

    def __init__(self, policy: str = "") -> None:
        super().__init__()
        self.policy = self.parse(policy)

    @staticmethod
    def parse(policy: str) -> tuple[str, ...]:
        names = tuple(p.strip() for p in policy.split(",") if p.strip())
        unknown = [p for p in names if p not in _OPS]
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {unknown} (known: {', '.join(POLICIES)})")
        return names

    def forward(self, x: Tensor, p: Tensor | float = 1.0) -> Tensor:
        for name in self.policy:
            if float(p) >= 1:
                x = _OPS[name](x)
            elif float(p) > 0:  # [N,1,1,1] mask: this policy for these images only
                chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p
                x = torch.where(chosen, _OPS[name](x), x)
        return x


class AugmentProbability(nn.Module):
    """ADA's adaptive augmentation probability (Karras et al., NeurIPS 2020, section 3).

    The overfitting heuristic ``r_t = E[sign(D(x_real))]`` is 0 when the discriminator
    cannot tell train images from generated ones and 1 when it is sure of every train
    image (it has memorized them). After each discriminator batch of ``N`` real images,
    ``p <- clip(p + sign(r_t - target) * N / speed, 0, 1)``: ``speed`` images take ``p``
    from 0 to 1 (the paper: target 0.6, 500k images; small runs here need fewer). ``p`` is
    a buffer, so a checkpoint keeps it and a resumed run continues it exactly.
    """

    def __init__(self, target: float = 0.6, speed: int = 20_000) -> None:
        super().__init__()
        self.target, self.speed = target, speed
        self.register_buffer("p", torch.zeros(()))

    @torch.no_grad()
    def update(self, real_logits: Tensor) -> None:
        """Move ``p`` after a batch of the discriminator's logits on real images, f32[N]."""
        r_t = torch.sign(real_logits.detach().float()).mean()
        step = real_logits.numel() / self.speed
        self.p.add_(torch.sign(r_t - self.target) * step).clamp_(0.0, 1.0)
