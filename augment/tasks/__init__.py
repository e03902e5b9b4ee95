"""The five tasks a variant can do, and each task's recipe base class.

* ``synthesize``: class-conditional image synthesis, :mod:`augment.tasks.synthesis`;
* ``upscale``: super-resolution, :mod:`augment.tasks.upscale`;
* ``translate``: image-to-image translation between domains, :mod:`augment.tasks.translate`;
* ``inpaint``: filling holes in images, :mod:`augment.tasks.inpaint`;
* ``mask2image``: an image made for a label mask, :mod:`augment.tasks.mask2image`.

This module itself imports no torch: :mod:`augment.runtime` (onnxruntime only) and the
registry both name the tasks from here.
"""

from __future__ import annotations

from typing import Literal

Task = Literal["synthesize", "translate", "upscale", "inpaint", "mask2image"]
TASKS: tuple[Task, ...] = ("synthesize", "translate", "upscale", "inpaint", "mask2image")
#: The tasks that learn from the domains stage's data (data/domains), not the prepared split.
DOMAIN_TASKS: tuple[Task, ...] = ("translate", "mask2image")

__all__ = ["DOMAIN_TASKS", "TASKS", "Task"]
