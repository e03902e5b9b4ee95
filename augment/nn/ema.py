"""Exponential moving average of generator weights (Karras et al.; Yazici et al., 2019)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Holds ``shadow``, an averaged copy of a module; buffers (BN statistics) are copied.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so early averages are
    not dominated by the random initialization.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        super().__init__()
        self.decay = decay
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.updates += 1
        n = float(self.updates)
        decay = min(self.decay, (1 + n) / (10 + n))
        for avg, live in zip(self.shadow.parameters(), module.parameters(), strict=True):
            avg.lerp_(live.detach(), 1 - decay)
        for avg, live in zip(self.shadow.buffers(), module.buffers(), strict=True):
            avg.copy_(live)
