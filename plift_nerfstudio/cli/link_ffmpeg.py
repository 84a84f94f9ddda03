"""``plift-link-ffmpeg``: give nerfstudio's video writer an ffmpeg program on machines that have none.

``ns-render`` looks for a program called ``ffmpeg`` on PATH (and mediapy calls it). The ``imageio-ffmpeg``
package (a dependency) ships a static ffmpeg build; this command links it into the virtual environment's ``bin``
folder as ``ffmpeg`` when the machine has no ffmpeg of its own. ``scripts/setup.sh`` runs it.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from plift_nerfstudio.cli.runner import run_cli


def link_bundled_ffmpeg(bin_dir: Path) -> Path:
    """Return the ffmpeg that PATH finds, linking imageio-ffmpeg's binary into ``bin_dir`` if there is none."""
    existing = shutil.which("ffmpeg")
    if existing is not None:
        return Path(existing)
    import imageio_ffmpeg

    target = Path(imageio_ffmpeg.get_ffmpeg_exe())
    link = bin_dir / "ffmpeg"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
    os.chmod(target, 0o755)
    return link


@dataclass
class LinkOptions:
    """Link imageio-ffmpeg's ffmpeg into this Python's bin folder unless PATH already finds an ffmpeg."""


def main(_opts: LinkOptions) -> Path:
    path = link_bundled_ffmpeg(Path(sys.executable).parent)
    print(f"ffmpeg: {path}")
    return path


def entrypoint() -> None:
    run_cli(main, LinkOptions, __doc__ or "", "plift-link-ffmpeg")


if __name__ == "__main__":
    entrypoint()
