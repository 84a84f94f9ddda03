"""Staging folders: write something complete beside its final place, then move it there in one rename.

A staging folder carries a marker file naming who was writing it, so a later run can tell a folder an interrupted
run left (removed and started afresh) from one of the user's (refused, untouched). Used by plift-synth's outputs
and by the label sets of the labelling commands.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def fresh_staging_folder(staging: Path, marker: str, writer: str) -> Path:
    """An empty ``staging`` folder holding only ``marker``; one left by an interrupted run (it holds ``marker``) is
    removed first, anything else at that path is refused with FileExistsError."""
    if staging.exists():
        if not (staging / marker).is_file():
            raise FileExistsError(f"{staging}: exists and is not a staging folder {writer} was writing; move it away "
                                  "or choose another output")
        shutil.rmtree(staging)  # left by an interrupted run
    staging.mkdir(parents=True)
    (staging / marker).write_text(f"{writer} is writing here; an interrupted run leaves this folder\n")
    return staging


def publish_staging_folder(staging: Path, marker: str, final: Path) -> None:
    """Drop the marker and move the complete staging folder to ``final`` (which must not exist, or be empty)."""
    (staging / marker).unlink()
    os.rename(staging, final)
