"""DVC stage ``data_source``: link the files that ``prepare.source`` reads into the project,
so that DVC notices images added to, changed in or removed from a folder outside it.

params.yaml: ``prepare.source``. Writes ``data/source/prepare``: a symbolic link to the
source's folder or file (:func:`augment.data.sources.watched_paths`: a folder source's
root, a CSV file, an idx folder), a folder of links where a source reads several files,
or a text file naming a dataset that an installed package ships. ``prepare`` depends on
``data/source/prepare``; DVC follows the link and hashes what it points to (once, then
only files whose size or time changed), so ``dvc repro`` re-runs prepare after an edit of
your folder. A path that does not exist is an error naming it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from augment.data.prepare import PrepareConfig
from augment.data.sources import watched_paths
from augment.errors import DataError
from augment.io import atomic_path
from pipelines._common import DATA_SOURCE, load_params, load_section, run, stage_args

log = logging.getLogger("pipelines.data_source")


def main(argv: list[str]) -> None:
    args = stage_args(argv, "pipelines.data_source", __doc__, out=DATA_SOURCE)
    source = load_section(load_params(args.params), "prepare", PrepareConfig).source
    paths = watched_paths(source)
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise DataError(f"params.yaml prepare.source ({source.kind}): {missing[0]}: not found")
    with atomic_path(args.out, is_dir=True) as tmp:
        link = tmp / "prepare"
        if not paths:
            link.write_text(f"{source.kind}: the dataset an installed package ships\n")
        elif len(paths) == 1:
            os.symlink(paths[0], link, target_is_directory=paths[0].is_dir())
        else:  # DVC follows links to files inside a folder it hashes
            link.mkdir()
            for path in paths:
                os.symlink(path, link / path.name)
    log.info("%s -> %s", Path(args.out) / "prepare", ", ".join(map(str, paths)) or source.kind)


if __name__ == "__main__":
    run(main)
