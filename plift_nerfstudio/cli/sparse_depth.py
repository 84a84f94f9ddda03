"""``plift-sparse-depth``: triangulate feature points of a posed dataset's training images with COLMAP, the poses
held fixed, and write ``sparse_depth/points.npz`` for the sparse depth loss.

    plift-sparse-depth --data data/kitchen
    ns-train panoptic-lifting-cpu --data data/kitchen   # the preset reads data/kitchen/sparse_depth/points.npz

Where the poses came from COLMAP (ns-process-data), this re-triangulates with the poses transforms.json holds,
so the points are in the dataset's frame whatever ns-process-data did to the model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Literal

import numpy as np
from rich.console import Console

from plift_nerfstudio.cli.runner import run_cli
from plift_nerfstudio.labels.dataset_labels import check_transforms, frames_for_images, transforms_path_of
from plift_nerfstudio.sparse_depth.accuracy import read_true_depths, relative_depth_errors, summarise_errors
from plift_nerfstudio.sparse_depth.colmap_triangulation import PosedImage, triangulate_known_poses
from plift_nerfstudio.sparse_depth.points import SPARSE_DEPTH_FILE, save_sparse_depth

CONSOLE = Console()
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2")


@dataclass
class SparseDepthOptions:
    data: Path
    """Dataset folder (or its transforms.json) with poses, as ns-process-data or plift-synth write it."""
    matcher: Literal["auto", "exhaustive", "sequential"] = "auto"
    """COLMAP matcher: every pair of images, or neighbours in file order (long captures). auto: exhaustive up to
    150 training images."""
    max_reprojection_error: float = 1.0
    """Points whose mean reprojection error (pixels) is larger are left out."""
    min_track_length: int = 3
    """Points seen by fewer training images are left out (two-view points are often wrong matches)."""
    use_gpu: bool = False
    """Let COLMAP's SIFT use the GPU (needs a CUDA build of COLMAP)."""
    overwrite: bool = False
    """Replace an existing sparse_depth/points.npz (without it, an existing one is refused)."""


def training_images(data: Path) -> tuple[List[PosedImage], list, Path]:
    """The dataset's training images as the presets split them (nerfstudio's dataparser), with poses and
    intrinsics from transforms.json; also transforms.json's frames and the dataset folder."""
    from plift_nerfstudio.method_config import dataparser_config

    meta = check_transforms(data)
    transforms = transforms_path_of(data)
    data_dir = transforms.parent
    model = meta.get("camera_model", "OPENCV")
    if model not in ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE"):
        raise ValueError(f"{transforms}: camera_model {model!r} is not supported here (OPENCV or PINHOLE)")
    parser = dataparser_config(data).setup()
    outputs = parser.get_dataparser_outputs(split="train")
    training_frames, _ = frames_for_images(data, outputs.image_filenames,
                                           lambda file_path: parser._get_fname(file_path, data_dir))  # type: ignore[attr-defined]
    images = []
    for frame in training_frames:
        values = {**meta, **frame}
        missing = [k for k in ("fl_x", "fl_y", "cx", "cy", "w", "h") if k not in values]
        if missing:
            raise ValueError(f"{transforms}: frame {frame['file_path']} lacks {missing}")
        full_resolution = data_dir / frame["file_path"]  # COLMAP works on the full images transforms.json describes
        if not full_resolution.is_file():
            raise FileNotFoundError(f"{transforms}: frame image {full_resolution} does not exist")
        images.append(PosedImage(
            path=full_resolution, name=frame["file_path"], camera_to_world=np.asarray(frame["transform_matrix"], float),
            width=int(values["w"]), height=int(values["h"]),
            intrinsics=tuple(float(values.get(k, 0.0)) for k in INTRINSIC_KEYS),
        ))
    return images, meta["frames"], data_dir


def main(options: SparseDepthOptions) -> None:
    images, frames, data_dir = training_images(options.data)
    output = data_dir / SPARSE_DEPTH_FILE
    if output.exists() and not options.overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    matcher = options.matcher if options.matcher != "auto" else ("exhaustive" if len(images) <= 150 else "sequential")
    CONSOLE.print(f"{len(images)} training images of {data_dir}; COLMAP matcher: {matcher}")
    # COLMAP's workspace is removed once the points are read, and kept when a step fails: its log is the diagnosis
    work = Path(tempfile.mkdtemp(prefix="plift-sparse-depth-"))
    with CONSOLE.status("COLMAP") as status:
        points = triangulate_known_poses(images, work, matcher=matcher, use_gpu=options.use_gpu,
                                         on_stage=lambda stage: status.update(f"COLMAP: {stage}"))
    shutil.rmtree(work)
    kept = points.filtered(options.max_reprojection_error, options.min_track_length)
    if kept.num_points == 0:
        raise ValueError(f"{data_dir}: COLMAP triangulated {points.num_points} points, none with error <= "
                         f"{options.max_reprojection_error} px seen by >= {options.min_track_length} images")
    settings = {"matcher": matcher, "max_reprojection_error": options.max_reprojection_error,
                "min_track_length": options.min_track_length, "triangulated_points": points.num_points}
    partial = output.with_name("points.partial.npz")  # beside the file, so the replace is atomic
    save_sparse_depth(partial, kept, settings)
    os.replace(partial, output)
    per_frame = np.array(list(kept.observations_per_frame().values()))
    CONSOLE.print(f"Wrote {output}: {kept.num_points} points (of {points.num_points} triangulated), "
                  f"{kept.num_observations} observations; per training image median {np.median(per_frame):.0f}, "
                  f"fewest {per_frame.min()}; mean reprojection error {kept.point_error.mean():.2f} px")
    true_depths = read_true_depths(data_dir, frames)
    if true_depths:
        origins = {f["file_path"]: np.asarray(f["transform_matrix"], float)[:3, 3] for f in frames}
        summary = summarise_errors(relative_depth_errors(kept, origins, true_depths))
        if summary:
            CONSOLE.print("Against the dataset's true depth: " + json.dumps({k: round(v, 4) for k, v in summary.items()}))


def entrypoint() -> None:
    run_cli(main, SparseDepthOptions, description=__doc__ or "", prog="plift-sparse-depth")


if __name__ == "__main__":
    entrypoint()
