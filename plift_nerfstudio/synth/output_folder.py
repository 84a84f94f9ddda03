"""plift-synth's output folder: written in a staging folder, published complete, replaced only when provably its own.

Every output gets ``plift_synth_files.json``, a manifest with the SHA-256 of each file plift-synth wrote. With
``--overwrite`` an existing folder is deleted only if it has such a manifest, holds no file the manifest does not
list and no listed file was changed since; a user's photos, an ``ns-process-data`` dataset, or a plift-synth
output that another command has since written into (``transforms.json.orig`` of plift-import-labels, a trained run)
are refused, and nothing is touched. The scene is rendered into ``.<name>.plift-synth-incomplete`` beside the
output and moved into place at the end, so an interrupted run leaves the earlier output as it was; the next run
removes that staging folder (it carries a marker saying it is plift-synth's).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from plift_nerfstudio.staging import fresh_staging_folder, publish_staging_folder

MANIFEST_FILE = "plift_synth_files.json"
MANIFEST_VERSION = 1
STAGING_MARKER = ".plift-synth-incomplete"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def walk_files(root: Path) -> Tuple[List[str], List[str]]:
    """Relative (posix) paths of the regular files under ``root``, and of the links and other non-files found."""
    files, others = [], []
    for folder, dirs, names in os.walk(root, followlinks=False):
        for name in dirs + names:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                others.append(rel)
            elif path.is_file():
                files.append(rel)
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
    return sorted(files), sorted(others)


def write_manifest(root: Path) -> None:
    """List every file under ``root`` (but the staging marker) with its checksum."""
    files, _ = walk_files(root)
    listed = {rel: sha256_of(root / rel) for rel in files if rel not in (STAGING_MARKER, MANIFEST_FILE)}
    manifest = {"generator": "plift-synth", "version": MANIFEST_VERSION, "files": listed}
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))


def _examples(names: List[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def check_replaceable(path: Path, overwrite: bool) -> Dict[str, str]:
    """Raise FileExistsError unless ``path`` may be written: absent, an empty folder, or (with ``overwrite``) a
    plift-synth output that nobody changed. Returns the files to delete (empty when there is nothing there)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise FileExistsError(f"{path}: exists and is not a folder; choose another --output")
    if not path.exists() or not any(path.iterdir()):
        return {}
    if not overwrite:
        raise FileExistsError(f"{path}: exists and is not empty; pass --overwrite to replace a plift-synth output")
    manifest_path = path / MANIFEST_FILE
    refuse = f"{path}: --overwrite replaces only a folder that plift-synth wrote and nobody changed since, and"
    nothing = "Nothing was deleted; remove the folder yourself or choose another --output."
    if not manifest_path.is_file():
        raise FileExistsError(f"{refuse} this one has no {MANIFEST_FILE} (your own files, an ns-process-data "
                              f"dataset, or an output of an older plift-synth). {nothing}")
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = dict(manifest["files"]) if manifest.get("version") == MANIFEST_VERSION else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        listed = None
    if listed is None or manifest.get("generator") != "plift-synth":
        raise FileExistsError(f"{refuse} its {MANIFEST_FILE} is not a plift-synth manifest (version "
                              f"{MANIFEST_VERSION}). {nothing}")
    files, others = walk_files(path)
    unknown = others + [rel for rel in files if rel not in listed and rel != MANIFEST_FILE]
    if unknown:
        raise FileExistsError(f"{refuse} it holds {len(unknown)} files plift-synth did not write: {_examples(unknown)}. "
                              f"{nothing}")
    changed = [rel for rel in files if rel in listed and sha256_of(path / rel) != listed[rel]]
    if changed:
        raise FileExistsError(f"{refuse} {len(changed)} of its files were changed after plift-synth wrote them: "
                              f"{_examples(changed)}. {nothing}")
    return listed


def _remove_output(path: Path, listed: Dict[str, str]) -> None:
    """Delete the listed files, the manifest, then the folders they leave empty (a folder with anything else in it
    stays)."""
    for rel in list(listed) + [MANIFEST_FILE]:
        (path / rel).unlink(missing_ok=True)
    for folder, _, _ in sorted(os.walk(path), key=lambda entry: -len(Path(entry[0]).parts)):
        if not any(Path(folder).iterdir()):
            Path(folder).rmdir()


@contextmanager
def staged_output(output: Path, overwrite: bool) -> Iterator[Path]:
    """A fresh staging folder to write into; on success its manifest is written and it replaces ``output``."""
    output = Path(output).absolute()
    staging = fresh_staging_folder(output.parent / f".{output.name}{STAGING_MARKER}", STAGING_MARKER, "plift-synth")
    try:
        yield staging
        write_manifest(staging)
        listed = check_replaceable(output, overwrite)  # again: the folder may have changed while we rendered
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if output.exists():
        _remove_output(output, listed)
    publish_staging_folder(staging, STAGING_MARKER, output)
