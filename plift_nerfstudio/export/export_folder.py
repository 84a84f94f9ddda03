"""The export folder: written whole into a temporary sibling and moved into place at the end, so a failed export
leaves nothing half-written; an existing folder is replaced only with ``--overwrite`` and only when it is an earlier
export (its manifest.json says so): a folder of the user's own is never emptied."""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

MANIFEST_NAME = "manifest.json"
GENERATOR = "plift-export"
EXPORT_ENTRIES = (MANIFEST_NAME, "scene.ply", "scene.glb", "things", "stuff")
"""What an export writes; with --overwrite these (and nothing else) of the earlier export are replaced."""


def is_export_folder(folder: Path) -> bool:
    try:
        return json.loads((folder / MANIFEST_NAME).read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def check_export_folder(folder: Path, overwrite: bool) -> None:
    """Refuse an output folder that would lose something: a file, or a non-empty folder without --overwrite, or
    a non-empty folder that is not an earlier export even with it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder}: exists and is not a folder; give --output-dir a new or empty folder")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f"{folder}: folder exists and is not empty; nothing was written (pass --overwrite to "
                              "replace an earlier export there, or choose another --output-dir)")
    if not is_export_folder(folder):
        raise FileExistsError(f"{folder}: not an earlier plift-export folder (no {MANIFEST_NAME} of plift-export); "
                              "--overwrite replaces only exports, so nothing was written: choose another --output-dir")


@contextmanager
def staged_export(folder: Path, overwrite: bool) -> Iterator[Path]:
    """A temporary folder to write the export into; on success its entries replace the earlier export's in
    ``folder`` (other files there stay); on failure it is removed and ``folder`` is untouched."""
    folder = Path(folder)
    check_export_folder(folder, overwrite)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        yield staging
        folder.mkdir(exist_ok=True)
        for name in EXPORT_ENTRIES:
            old = folder / name
            if old.is_dir():
                shutil.rmtree(old)
            elif old.exists():
                old.unlink()
        for entry in staging.iterdir():
            entry.rename(folder / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
