"""Make sure nerfstudio's video writer (mediapy, which calls an ffmpeg program) has an encoder.

A machine without a system ffmpeg gets the static ffmpeg binary that the ``imageio-ffmpeg`` package ships
(a declared dependency), so ``ns-render`` writes MP4 on a fresh install.
"""

from __future__ import annotations

import shutil


def ensure_video_encoder() -> str:
    """Point mediapy at an ffmpeg program and return its path; raise if there is none at all."""
    import mediapy

    system = shutil.which("ffmpeg")
    if system is not None:
        return system
    try:
        import imageio_ffmpeg
    except ImportError as err:  # a broken install: the package is a dependency
        raise RuntimeError("no ffmpeg program found and imageio-ffmpeg is not installed: reinstall plift-nerfstudio") from err
    path = imageio_ffmpeg.get_ffmpeg_exe()
    mediapy.set_ffmpeg(path)
    return path
