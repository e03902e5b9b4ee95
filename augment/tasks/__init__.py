"""The four tasks a variant can do, and each task's recipe base class.

* ``synthesize``: class-conditional image synthesis, :mod:`augment.tasks.synthesis`;
* ``upscale``: super-resolution, :mod:`augment.tasks.upscale`;
* ``translate``: image-to-image translation between domains, :mod:`augment.tasks.translate`;
* ``inpaint``: filling holes in images, :mod:`augment.tasks.inpaint`.

This module itself imports no torch: :mod:`augment.runtime` (onnxruntime only) and the
registry both name the tasks from here.
"""

from __future__ import annotations

from typing import Literal

Task = Literal["synthesize", "translate", "upscale", "inpaint"]
TASKS: tuple[Task, ...] = ("synthesize", "translate", "upscale", "inpaint")

__all__ = ["TASKS", "Task"]
