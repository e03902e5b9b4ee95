"""DiffAugment (Zhao et al., 2020): differentiable augmentations applied to every image the
discriminator sees, real and generated, so it cannot memorize a small dataset; and ADA's
adaptive probability of applying them (Karras et al., 2020).

With an augmentation ``T`` the losses become ``L_D = f(D(T(x))) + h(D(T(G(z))))`` and
``L_G = g(D(T(G(z))))``: because every ``T`` here is differentiable w.r.t. its input, the
generator's gradient flows back through the augmentation. Each op draws its random
parameters per image and works on f32[N, C, H, W] images in [-1, 1], keeping the shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POLICIES = ("color", "translation", "cutout")


def _color(x: Tensor) -> Tensor:
    """Random brightness, saturation and contrast per image (DiffAugment's ``color``)."""
    n = x.shape[0]
    # x + b, b ~ U[-0.5, 0.5) per image: [N, 1, 1, 1] broadcast over C, H, W
    x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5)  # brightness
    # per-pixel mean over channels [N, 1, H, W]; scale the chroma by s ~ U[0, 2)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) * 2) + mean  # saturation
    # per-image mean over C, H, W [N, 1, 1, 1]; scale deviations by c ~ U[0.5, 1.5)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) + 0.5) + mean  # contrast


def _translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ratio*size pixels, filling with zeros."""
    n, _, h, w = x.shape
    # maximum shift in pixels (1/8 of the size, rounded): 4 px for a 28 or 32 px image
    dy, dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # integer shifts ~ U{-d, ..., d} per image: [N, 1, 1]
    shift_y = torch.randint(-dy, dy + 1, (n, 1, 1), device=x.device)
    shift_x = torch.randint(-dx, dx + 1, (n, 1, 1), device=x.device)
    # source row/column of every output pixel, out[i, j] = x[i + shift_y, j + shift_x]: [N, H, W]
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + shift_y).expand(n, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + shift_x).expand(n, h, w)
    padded = F.pad(x, [1, 1, 1, 1])  # index 0 and size+1 are the zero border
    # indices outside the image clamp onto the zero border, so shifted-in pixels are 0
    rows = (rows + 1).clamp(0, h + 1)
    cols = (cols + 1).clamp(0, w + 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # gather: [N, C, H+2, W+2] -> [N, H+2, W+2, C] -> [N, H, W, C] -> [N, C, H, W]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one random square of ratio*size per image."""
    n, _, h, w = x.shape
    # side of the square, half the image (rounded): 14 px for 28, 16 px for 32
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # top-left corner per image [N, 1, 1]: the centre is uniform over rows 0..H (columns
    # likewise; 0..H-1 for an odd side), so the square may hang over the border and only
    # its part inside the image is zeroed
    top = torch.randint(0, h + 1 - ch % 2, (n, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + 1 - cw % 2, (n, 1, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    # bool mask of the square [N, H, W]
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    # [N, 1, H, W] keep-mask broadcast over channels; 0 is mid-grey for [-1, 1] images
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


class DiffAugment(nn.Module):
    """Apply the named policies in order; an empty policy is the identity.

    ``forward(x, p)``: each policy is applied to each image with probability ``p`` (ADA's
    stochastic augmentation); ``p >= 1`` applies every policy to every image.
    ``x`` is f32[N, C, H, W] and the result has the same shape; ``p <= 0`` is the identity.
    """

    def __init__(self, policy: str = "") -> None:
        super().__init__()
        self.policy = self.parse(policy)

    @staticmethod
    def parse(policy: str) -> tuple[str, ...]:
        """``"color,translation"`` -> ``("color", "translation")``; unknown names raise."""
        names = tuple(p.strip() for p in policy.split(",") if p.strip())
        unknown = [p for p in names if p not in _OPS]
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {unknown} (known: {', '.join(POLICIES)})")
        return names

    def forward(self, x: Tensor, p: Tensor | float = 1.0) -> Tensor:
        for name in self.policy:
            # float(p) of a device tensor (ADA's buffer) syncs with the host once per policy
            if float(p) >= 1:
                x = _OPS[name](x)
            elif float(p) > 0:  # [N,1,1,1] mask: this policy for these images only
                # Bernoulli(p) per image; the op runs on the whole batch and the mask picks
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
        # p starts at 0 (no augmentation) and only rises once D starts to overfit
        self.register_buffer("p", torch.zeros(()))

    @torch.no_grad()
    def update(self, real_logits: Tensor) -> None:
        """Move ``p`` after a batch of the discriminator's logits on real images, f32[N]."""
        # r_t over this one batch (the paper averages it over 4 minibatches between updates)
        r_t = torch.sign(real_logits.detach().float()).mean()
        # step of N / speed: p can cross [0, 1] in ``speed`` real images
        step = real_logits.numel() / self.speed
        # p <- clip(p + sign(r_t - target) * step, 0, 1), in place on the buffer
        self.p.add_(torch.sign(r_t - self.target) * step).clamp_(0.0, 1.0)
