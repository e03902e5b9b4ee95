"""Exponential moving average of generator weights (Karras et al.; Yazici et al., 2019)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Holds ``shadow``, an averaged copy of a module; buffers (BN statistics) are copied.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so early averages are
    not dominated by the random initialization.

    Per update ``theta_ema <- beta * theta_ema + (1 - beta) * theta`` with ``beta`` that
    effective decay and ``n`` the number of updates so far; the ramp (the warm-up of
    TensorFlow's ``ExponentialMovingAverage(num_updates=...)``) gives ``beta`` = 0.18 at
    n = 1, 0.9 at n = 80, and reaches 0.99 at n = 890 and 0.999 at n = 8990.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        super().__init__()
        self.decay = decay
        # eval mode and no grads: the shadow is only ever sampled from, never trained
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)
        # a buffer, so checkpoints keep n and a resumed run continues the ramp exactly
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.updates += 1
        n = float(self.updates)
        decay = min(self.decay, (1 + n) / (10 + n))
        # parameters() of a deep copy come in the same order, so zip pairs them exactly
        for avg, live in zip(self.shadow.parameters(), module.parameters(), strict=True):
            # lerp: avg + (1 - decay) * (live - avg) = decay * avg + (1 - decay) * live
            avg.lerp_(live.detach(), 1 - decay)
        # buffers (BN running mean/var, WithSnapshot's weights, condition_strength) are not
        # averaged: they follow the live module exactly
        for avg, live in zip(self.shadow.buffers(), module.buffers(), strict=True):
            avg.copy_(live)
