"""Output folders a command replaces only when they are provably its own, written in a staging folder.

Each output gets a manifest (``FolderOwner.manifest_file``) listing the SHA-256 of every file the command wrote. With
``--overwrite`` an existing folder is replaced only if it has such a manifest of the same command, holds no file the
manifest does not list and no listed file was changed since; anything else (a user's photos, a dataset, an output
that another command has since written into) is refused with ``FileExistsError`` and nothing is touched. The new
output is written into ``.<name><staging_marker>`` beside the final folder and moved into place at the end, so an
interrupted run leaves the earlier output as it was; the next run removes that staging folder (it carries a marker
saying whose it is). Used by ``plift-synth`` and ``plift-realistic-scene`` (datasets) and ``plift-edit`` (edited runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from plift_nerfstudio.core.staging import fresh_staging_folder, publish_staging_folder

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class FolderOwner:
    """Who writes a kind of output folder, and the names of its manifest and staging marker."""

    generator: str
    """Command name written into the manifest (``plift-synth``)."""
    manifest_file: str
    """File listing what the command wrote, with checksums (``plift_synth_files.json``)."""
    staging_marker: str
    """Suffix of the staging folder and name of the marker file inside it (``.plift-synth-incomplete``)."""
    option: str = "--output"
    """The command's option naming the folder (for messages)."""
    not_ours: str = "your own files"
    """What a folder without a manifest usually is (for messages)."""


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


def write_manifest(root: Path, owner: FolderOwner) -> None:
    """List every file under ``root`` (but the staging marker and the manifest) with its checksum."""
    files, _ = walk_files(root)
    listed = {rel: sha256_of(root / rel) for rel in files if rel not in (owner.staging_marker, owner.manifest_file)}
    manifest = {"generator": owner.generator, "version": MANIFEST_VERSION, "files": listed}
    (root / owner.manifest_file).write_text(json.dumps(manifest, indent=1))


def _examples(names: List[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def check_replaceable(path: Path, owner: FolderOwner, overwrite: bool) -> Dict[str, str]:
    """Raise FileExistsError unless ``path`` may be written: absent, an empty folder, or (with ``overwrite``) an
    output of ``owner`` that nobody changed. Returns the files to delete (empty when there is nothing there)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise FileExistsError(f"{path}: exists and is not a folder; choose another {owner.option}")
    if not path.exists() or not any(path.iterdir()):
        return {}
    if not overwrite:
        raise FileExistsError(f"{path}: exists and is not empty; pass --overwrite to replace an output of "
                              f"{owner.generator}, or choose another {owner.option}")
    manifest_path = path / owner.manifest_file
    refuse = f"{path}: --overwrite replaces only a folder that {owner.generator} wrote and nobody changed since, and"
    nothing = f"Nothing was deleted; remove the folder yourself or choose another {owner.option}."
    if not manifest_path.is_file():
        raise FileExistsError(f"{refuse} this one has no {owner.manifest_file} ({owner.not_ours}, or an output of an "
                              f"older {owner.generator}). {nothing}")
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = dict(manifest["files"]) if manifest.get("version") == MANIFEST_VERSION else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        listed = None
    if listed is None or manifest.get("generator") != owner.generator:
        raise FileExistsError(f"{refuse} its {owner.manifest_file} is not a {owner.generator} manifest (version "
                              f"{MANIFEST_VERSION}). {nothing}")
    files, others = walk_files(path)
    unknown = others + [rel for rel in files if rel not in listed and rel != owner.manifest_file]
    if unknown:
        raise FileExistsError(f"{refuse} it holds {len(unknown)} files {owner.generator} did not write: "
                              f"{_examples(unknown)}. {nothing}")
    changed = [rel for rel in files if rel in listed and sha256_of(path / rel) != listed[rel]]
    if changed:
        raise FileExistsError(f"{refuse} {len(changed)} of its files were changed after {owner.generator} wrote them: "
                              f"{_examples(changed)}. {nothing}")
    return listed


def _remove_listed(path: Path, listed: Dict[str, str], owner: FolderOwner) -> None:
    """Delete the listed files, the manifest, then the folders they leave empty (a folder with anything else in it
    stays)."""
    for rel in list(listed) + [owner.manifest_file]:
        (path / rel).unlink(missing_ok=True)
    for folder, _, _ in sorted(os.walk(path), key=lambda entry: -len(Path(entry[0]).parts)):
        if not any(Path(folder).iterdir()):
            Path(folder).rmdir()


@contextmanager
def staged_output(output: Path, owner: FolderOwner, overwrite: bool) -> Iterator[Path]:
    """A fresh staging folder to write into; on success its manifest is written and it replaces ``output`` (checked
    again first: the folder may have changed meanwhile). On failure the staging folder goes and ``output`` is as it
    was."""
    output = Path(output).absolute()
    staging = fresh_staging_folder(output.parent / f".{output.name}{owner.staging_marker}", owner.staging_marker,
                                   owner.generator)
    try:
        yield staging
        write_manifest(staging, owner)
        listed = check_replaceable(output, owner, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if output.exists():
        _remove_listed(output, listed, owner)
    publish_staging_folder(staging, owner.staging_marker, output)
