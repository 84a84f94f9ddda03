"""``plift-export``: take the segmented scene out of a trained run, in the dataset's frame (transforms.json).

    plift-export pointcloud --load-config outputs/.../config.yml --output-dir exports/points
    plift-export mesh --load-config outputs/.../config.yml --output-dir exports/meshes
    plift-export pointcloud ... --instances chair-3 7            # only these thing instances
    plift-export mesh ... --crop-min 0 0 0 --crop-max 2 2 1.5   # only what lies in this box (dataset frame)

Each writes scene.ply (and scene.glb for meshes), one file per thing instance (things/<class>-<id>.*) and per
stuff class (stuff/<class>.*), and manifest.json (ids, classes, sizes, centroids, axis-aligned and oriented boxes,
files). docs/export.md says how to open them.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple, Union

import tyro
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from typing_extensions import Annotated

from plift_nerfstudio.cli.runner import run_cli

CONSOLE = Console()


@dataclass
class _Common:
    load_config: Path
    """config.yml of a training run (outputs/.../config.yml), or of a run plift-edit wrote (the edits apply)."""
    output_dir: Path
    """Folder the export is written to; an existing non-empty one only with --overwrite."""
    crop_min: Optional[Tuple[float, float, float]] = None
    """Lower corner of a crop box (x y z in the dataset's frame); with --crop-max."""
    crop_max: Optional[Tuple[float, float, float]] = None
    """Upper corner of the crop box (dataset frame)."""
    instances: Optional[Tuple[str, ...]] = None
    """Export only these thing instances, and no stuff: chair-3 (class and id, as the renders, plift-edit and the
    exported file names show them), or 3 (every instance with id 3: two classes may share an id)."""
    overwrite: bool = False
    """Replace an earlier export in --output-dir (only a folder whose manifest.json plift-export wrote)."""


@dataclass
class PointCloudOptions(_Common):
    """Labelled point cloud: points where the training views see a surface (rendered depth where accumulation is high),
    with colour, class, instance and their probabilities."""

    num_points: int = 300_000
    """Points in the exported cloud (at most; fewer when the views see less, or with a crop box)."""
    min_accumulation: float = 0.9
    """Rays whose accumulated opacity is below this give no point (fog, sky, edges)."""
    outlier_std_ratio: float = 2.0
    """Statistical outlier removal: points whose mean distance to their 20 nearest exceeds the average by this many
    standard deviations go."""
    min_instance_points: int = 30
    """Thing instances with fewer points (once stray specks are removed) get no file; the manifest lists them."""


@dataclass
class MeshOptions(_Common):
    """Meshes: marching cubes on the density, cut into one mesh per thing instance and per stuff class by the
    class and instance the training views render on the surface (faces no view saw are left out); vertex colours
    from the colour field."""

    resolution: int = 256
    """Voxels along the longest side of the scene box (or of the crop box)."""
    density_level: Optional[float] = None
    """Density at which the surface is drawn (marching cubes' level); default: the median density the field has at
    the surface points the training views render (what the scene's surfaces hold after training)."""
    min_faces: int = 20
    """Objects with fewer faces (once stray specks are removed) get no file; the manifest lists them."""


ExportCommand = Union[
    Annotated[PointCloudOptions, tyro.conf.subcommand("pointcloud", prefix_name=False)],
    Annotated[MeshOptions, tyro.conf.subcommand("mesh", prefix_name=False)],
]


@contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar per stage; the callback takes (stage, done, total)."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    with Progress(*columns, console=CONSOLE, transient=False) as progress:
        tasks = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                for other in tasks.values():  # an earlier stage is over
                    progress.update(other, completed=progress.tasks[other].total)
                tasks[stage] = progress.add_task(stage, total=max(total, 1))
            progress.update(tasks[stage], completed=done, total=max(total, 1))

        yield report
        for task in tasks.values():
            progress.update(task, completed=progress.tasks[task].total)


def main(opts: ExportCommand) -> dict:
    from plift_nerfstudio.export.crop import CropBox
    from plift_nerfstudio.export.export_folder import check_export_folder, staged_export
    from plift_nerfstudio.core.runs import load_trained_pipeline

    crop = CropBox.from_options(opts.crop_min, opts.crop_max)
    check_export_folder(opts.output_dir, opts.overwrite)  # before the (slow) loading
    start = time.perf_counter()
    _, pipeline, _, step = load_trained_pipeline(opts.load_config)
    model = pipeline.model
    with stage_progress() as progress:
        if isinstance(opts, PointCloudOptions):
            from plift_nerfstudio.export.point_cloud_export import (PointCloudSettings, labelled_cloud,
                                                                    write_point_cloud_export)

            settings = PointCloudSettings(num_points=opts.num_points, min_accumulation=opts.min_accumulation,
                                          outlier_std_ratio=opts.outlier_std_ratio,
                                          min_instance_points=opts.min_instance_points)
            cameras = pipeline.datamanager.train_dataset.cameras
            cloud = labelled_cloud(model, cameras, settings, crop, opts.instances, progress)
            with staged_export(opts.output_dir, opts.overwrite) as folder:
                content = write_point_cloud_export(folder, cloud, model, opts.load_config, step, crop, settings)
        else:
            from plift_nerfstudio.export.mesh_export import MeshSettings, object_meshes, write_mesh_export

            settings = MeshSettings(resolution=opts.resolution, level=opts.density_level, min_faces=opts.min_faces)
            meshes, left_out, level = object_meshes(model, pipeline.datamanager.train_dataset.cameras, settings, crop,
                                             opts.instances, progress)
            with staged_export(opts.output_dir, opts.overwrite) as folder:
                content = write_mesh_export(folder, meshes, left_out, model, opts.load_config, step, crop, settings,
                                            level)
    seconds = time.perf_counter() - start
    content["seconds"] = seconds
    things, stuff = content["instances"], content["stuff"]
    CONSOLE.print(f"[bold green]Exported[/] {len(things)} instances and {len(stuff)} stuff classes to "
                  f"{opts.output_dir} in {seconds:.0f} s (manifest.json; coordinates in the dataset's frame)")
    for entry in things:
        size = [hi - lo for lo, hi in zip(entry["aabb"]["min"], entry["aabb"]["max"])]
        CONSOLE.print(f"  {entry['class']} {entry['instance_id']}: " + ", ".join(f"{s:.2f}" for s in size)
                      + f"  ({entry['files']['ply']})")
    if content["left_out"]:
        CONSOLE.print(f"  left out (too small): {len(content['left_out'])} groups, listed in manifest.json")
    return content


def entrypoint() -> None:
    run_cli(main, ExportCommand, description=__doc__, prog="plift-export")  # type: ignore[arg-type]


if __name__ == "__main__":
    entrypoint()
