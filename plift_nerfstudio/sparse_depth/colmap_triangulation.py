"""Triangulate feature points with COLMAP, holding the dataset's poses fixed (COLMAP's ``point_triangulator``,
the "reconstruct sparse model from known camera poses" recipe): SIFT features, matching, then points.

Only the training images take part, so no test view's appearance leaks into training. The points come out in
the frame of the poses given, the dataset's (transforms.json).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from jaxtyping import Float
from nerfstudio.data.utils.colmap_parsing_utils import read_model, rotmat2qvec

from plift_nerfstudio.sparse_depth.points import SparseDepthPoints

# nerfstudio/OpenGL camera axes (x right, y up, looking down -z) to COLMAP/OpenCV ones (x right, y down, +z)
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


class ColmapError(ValueError):
    """COLMAP is missing or one of its steps failed; the message says which and how to fix it."""


@dataclass(frozen=True)
class PosedImage:
    """One training image for COLMAP: its file, transforms.json's name for it, its pose and intrinsics."""

    path: Path
    name: str  # the frame's file_path in transforms.json
    camera_to_world: Float[np.ndarray, "4 4"]  # transforms.json convention (OpenGL axes)
    width: int
    height: int
    intrinsics: Tuple[float, ...]  # fx, fy, cx, cy, k1, k2, p1, p2 (COLMAP's OPENCV model)


def world_to_camera_opencv(camera_to_world: Float[np.ndarray, "4 4"]) -> Float[np.ndarray, "4 4"]:
    """COLMAP's pose (world to camera, OpenCV axes) of a transforms.json camera-to-world matrix."""
    return np.linalg.inv(np.asarray(camera_to_world, dtype=np.float64) @ OPENGL_TO_OPENCV)


def colmap_executable() -> str:
    found = shutil.which("colmap")
    if found is None:
        raise ColmapError("colmap is not on PATH: install it (Debian/Ubuntu: apt-get install colmap; or "
                          "bash scripts/setup_capture.sh) and run again")
    return found


def _run(step: str, arguments: Sequence[str], log: Path) -> None:
    # Debian's COLMAP is a Qt build: without a display it needs Qt's offscreen platform
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    result = subprocess.run([colmap_executable(), step, *arguments], capture_output=True, text=True, env=env)
    with log.open("a") as stream:
        stream.write(f"$ colmap {step} {' '.join(arguments)}\n{result.stdout}\n{result.stderr}\n")
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).strip().splitlines()
                 if not line.lstrip().startswith("@") and "stack trace" not in line]  # glog's stack: no help here
        tail = "\n".join(lines[-5:])
        raise ColmapError(f"colmap {step} failed (exit {result.returncode}; full log: {log}):\n{tail}")


def triangulate_known_poses(
    images: Sequence[PosedImage],
    workspace: Path,
    matcher: str = "exhaustive",
    use_gpu: bool = False,
    on_stage: Optional[Callable[[str], None]] = None,
) -> SparseDepthPoints:
    """Features, matches and points of ``images`` with their poses fixed; COLMAP's files stay in ``workspace``.

    ``matcher``: "exhaustive" (every pair) or "sequential" (neighbours in file order, for long captures).
    """
    if len(images) < 2:
        raise ColmapError(f"triangulation needs at least 2 training images, got {len(images)}")
    announce = on_stage or (lambda stage: None)
    workspace.mkdir(parents=True, exist_ok=True)
    image_dir, database, log = workspace / "images", workspace / "database.db", workspace / "colmap.log"
    known, triangulated = workspace / "known_poses", workspace / "sparse"
    for folder in (image_dir, known, triangulated):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    database.unlink(missing_ok=True)
    log.write_text("")

    # flat names COLMAP can use whatever the dataset's folders; one COLMAP camera per distinct intrinsics
    colmap_names = [f"{i:06d}{image.path.suffix.lower()}" for i, image in enumerate(images)]
    for image, name in zip(images, colmap_names):
        shutil.copyfile(image.path, image_dir / name)
    cameras: Dict[Tuple, int] = {}
    for image in images:
        cameras.setdefault((image.width, image.height, image.intrinsics), len(cameras) + 1)

    gpu = "1" if use_gpu else "0"
    announce("extracting SIFT features")
    for (width, height, intrinsics), _ in cameras.items():
        members = [n for image, n in zip(images, colmap_names) if (image.width, image.height, image.intrinsics) == (width, height, intrinsics)]
        listing = workspace / "image_list.txt"
        listing.write_text("\n".join(members) + "\n")
        _run("feature_extractor", [
            "--database_path", str(database), "--image_path", str(image_dir), "--image_list_path", str(listing),
            "--ImageReader.camera_model", "OPENCV", "--ImageReader.single_camera", "1",
            "--ImageReader.camera_params", ",".join(f"{v:.10g}" for v in intrinsics),
            "--SiftExtraction.use_gpu", gpu,
        ], log)
    announce(f"matching features ({matcher})")
    if matcher not in ("exhaustive", "sequential"):
        raise ColmapError(f"unknown matcher {matcher!r} (exhaustive or sequential)")
    _run(f"{matcher}_matcher", ["--database_path", str(database), "--SiftMatching.use_gpu", gpu], log)

    # the known poses as a COLMAP text model, with the database's image and camera ids
    with sqlite3.connect(database) as connection:
        image_ids = {name: image_id for image_id, name in connection.execute("SELECT image_id, name FROM images")}
        image_camera = {name: camera for name, camera in connection.execute("SELECT name, camera_id FROM images")}
        camera_rows = list(connection.execute("SELECT camera_id, width, height, params FROM cameras"))
    missing = [n for n in colmap_names if n not in image_ids]
    if missing:
        raise ColmapError(f"COLMAP could not read {len(missing)} images (log: {log})")
    camera_lines = []
    for camera_id, width, height, params in camera_rows:
        values = np.frombuffer(params, dtype=np.float64)
        camera_lines.append(f"{camera_id} OPENCV {width} {height} " + " ".join(f"{v:.12g}" for v in values))
    (known / "cameras.txt").write_text("\n".join(camera_lines) + "\n")
    image_lines = []
    for image, name in zip(images, colmap_names):
        pose = world_to_camera_opencv(image.camera_to_world)
        qw, qx, qy, qz = rotmat2qvec(pose[:3, :3])
        tx, ty, tz = pose[:3, 3]
        image_lines.append(f"{image_ids[name]} {qw:.12g} {qx:.12g} {qy:.12g} {qz:.12g} {tx:.12g} {ty:.12g} {tz:.12g} "
                           f"{image_camera[name]} {name}\n")
    (known / "images.txt").write_text("\n".join(image_lines) + "\n")
    (known / "points3D.txt").write_text("")

    pairs, inliers = verified_matches(database)
    sizes = ", ".join(f"{w}x{h}" for w, h in sorted({(image.width, image.height) for image in images}))
    few_features = (f"{len(images)} training images ({sizes} pixels) gave {keypoint_count(database)} SIFT features "
                    f"and {pairs} image pairs with verified matches ({inliers} matches in all): images this small, "
                    f"blurred or textureless give too few features to triangulate; use full-resolution frames")
    if pairs == 0:
        raise ColmapError(f"COLMAP found nothing to triangulate: {few_features} (log: {log})")
    announce(f"triangulating points with the poses fixed ({pairs} matched image pairs, {inliers} matches)")
    try:
        _run("point_triangulator", [
            "--database_path", str(database), "--image_path", str(image_dir), "--input_path", str(known),
            "--output_path", str(triangulated),
            "--Mapper.ba_refine_focal_length", "0", "--Mapper.ba_refine_principal_point", "0",
            "--Mapper.ba_refine_extra_params", "0",
        ], log)
    except ColmapError as error:
        if pairs >= len(images):  # plenty of matches: COLMAP's own failure, as it said
            raise
        raise ColmapError(f"{error}\nLikely cause: {few_features}") from error
    return _observations(triangulated, {name: image.name for image, name in zip(images, colmap_names)})


def verified_matches(database: Path) -> Tuple[int, int]:
    """Image pairs of COLMAP's database with geometrically verified matches, and those matches in all."""
    with sqlite3.connect(database) as connection:
        pairs, matches = connection.execute("SELECT COUNT(*), COALESCE(SUM(rows), 0) FROM two_view_geometries "
                                            "WHERE rows > 0").fetchone()
    return int(pairs), int(matches)


def keypoint_count(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT COALESCE(SUM(rows), 0) FROM keypoints").fetchone()[0])


def _observations(model_dir: Path, frame_name_of: Dict[str, str]) -> SparseDepthPoints:
    """The triangulated model as points and per-image observations (nerfstudio's COLMAP readers)."""
    _, colmap_images, colmap_points = read_model(str(model_dir), ext=".bin")
    point_ids = sorted(colmap_points)
    row_of = {point_id: row for row, point_id in enumerate(point_ids)}
    frame_names: List[str] = sorted(set(frame_name_of.values()))
    frame_row = {name: row for row, name in enumerate(frame_names)}
    frames, uvs, points = [], [], []
    for image in colmap_images.values():
        seen = image.point3D_ids >= 0
        if not seen.any():
            continue
        frames.append(np.full(int(seen.sum()), frame_row[frame_name_of[image.name]]))
        uvs.append(image.xys[seen])
        points.append([row_of[int(p)] for p in image.point3D_ids[seen]])
    xyz = np.array([colmap_points[p].xyz for p in point_ids], dtype=np.float64).reshape(-1, 3)
    return SparseDepthPoints(
        frame_names=frame_names,
        points_xyz=xyz,
        point_error=np.array([colmap_points[p].error for p in point_ids], dtype=np.float32),
        track_length=np.array([len(colmap_points[p].image_ids) for p in point_ids], dtype=np.int32),
        observation_frame=np.concatenate(frames).astype(np.int32) if frames else np.zeros(0, np.int32),
        observation_uv=np.concatenate(uvs).astype(np.float32) if uvs else np.zeros((0, 2), np.float32),
        observation_point=np.concatenate(points).astype(np.int32) if points else np.zeros(0, np.int32),
    )
