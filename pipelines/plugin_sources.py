"""DVC stage ``plugin_sources``: link each trained variant's plugin code into the project,
so that DVC tracks the code of *installed* plugins, not only this repository's.

params.yaml: ``variants``. Writes ``plugin_sources/<variant>``: a symbolic link to the
top-level package folder (or the one-file module) that defines the variant, wherever its
distribution is installed (:func:`augment.plugins.source_path`). ``train@<v>`` and
``export@<v>`` depend on ``plugin_sources/<v>``; DVC follows the link and hashes the code,
so editing or upgrading a plugin marks them changed in ``dvc status``. The stage re-runs
when ``variants`` changes (a new variant gets its link); a plugin re-installed elsewhere
is caught by the train and export stages (:func:`pipelines._common.check_plugin_source`).
"""

from __future__ import annotations

import logging
import os

from augment.io import atomic_path
from augment.plugins import source_path
from augment.registry import Registry
from pipelines._common import PLUGIN_SOURCES, load_params, run, stage_args, variant_list

log = logging.getLogger("pipelines.plugin_sources")


def main(argv: list[str]) -> None:
    args = stage_args(argv, "pipelines.plugin_sources", __doc__, out=PLUGIN_SOURCES)
    names = variant_list(load_params(args.params))
    registry = Registry.from_plugins()
    sources = {name: source_path(registry.get(name).cls) for name in names}
    with atomic_path(args.out, is_dir=True) as tmp:
        for name, source in sources.items():
            os.symlink(source, tmp / name, target_is_directory=source.is_dir())
    for name, source in sources.items():
        log.info("%s/%s -> %s", args.out, name, source)


if __name__ == "__main__":
    run(main)
