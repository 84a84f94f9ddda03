"""plift-synth's output folder (and plift-realistic-scene's): written in a staging folder, published complete, replaced
only when provably its own (``plift_nerfstudio/core/owned_folder.py``).

Every output gets ``plift_synth_files.json``, a manifest with the SHA-256 of each file plift-synth wrote. With
``--overwrite`` an existing folder is deleted only if it has such a manifest, holds no file the manifest does not
list and no listed file was changed since; a user's photos, an ``ns-process-data`` dataset, or a plift-synth
output that another command has since written into (``transforms.json.orig`` of plift-import-labels, a trained run)
are refused, and nothing is touched.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator

from plift_nerfstudio.core import owned_folder

SYNTH_OUTPUT = owned_folder.FolderOwner(
    generator="plift-synth",
    manifest_file="plift_synth_files.json",
    staging_marker=".plift-synth-incomplete",
    option="--output",
    not_ours="your own files, an ns-process-data dataset",
)
MANIFEST_FILE = SYNTH_OUTPUT.manifest_file


def check_replaceable(path: Path, overwrite: bool) -> Dict[str, str]:
    """Raise FileExistsError unless ``path`` may be written: absent, an empty folder, or (with ``overwrite``) a
    plift-synth output that nobody changed. Returns the files to delete."""
    return owned_folder.check_replaceable(path, SYNTH_OUTPUT, overwrite)


@contextmanager
def staged_output(output: Path, overwrite: bool) -> Iterator[Path]:
    """A fresh staging folder to write into; on success its manifest is written and it replaces ``output``."""
    with owned_folder.staged_output(output, SYNTH_OUTPUT, overwrite) as staging:
        yield staging
