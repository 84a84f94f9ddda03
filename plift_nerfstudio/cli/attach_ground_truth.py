"""``plift-attach-ground-truth``: add a capture's ground-truth panoptic maps and test split to its dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from plift_nerfstudio.cli.runner import run_cli
from plift_nerfstudio.labels.ground_truth import AttachReport, attach_ground_truth


@dataclass
class AttachOptions:
    """Attach ground-truth maps (e.g. the demo capture's) so that plift-eval and ns-eval can score the test frames."""

    data: Path
    """The labelled nerfstudio dataset (folder with transforms.json)."""
    ground_truth: Path
    """Ground-truth file (frames.json, as plift-synth --images-only writes under ground_truth/)."""
    overwrite: bool = False
    """Replace ground truth or a train/test split that transforms.json already has."""


def main(opts: AttachOptions) -> AttachReport:
    report = attach_ground_truth(opts.data, opts.ground_truth, opts.overwrite)
    console = Console()
    console.print(f"[green]Ground truth attached to {len(report.with_ground_truth)} frames[/] of {report.transforms}: "
                  f"{len(report.train_frames)} train frames, {len(report.test_frames)} test frames.")
    errors = report.camera_centre_errors
    if errors is not None:
        console.print(f"Camera centres of the dataset vs the true poses (after similarity alignment, "
                      f"{len(errors)} frames): mean {errors.mean():.3f}, max {errors.max():.3f} "
                      f"(in the ground truth's units: metres for the demo capture).")
    if report.test_images_missing:
        console.print(f"[yellow]{len(report.test_images_missing)} test images are not frames of the dataset[/] "
                      f"(not registered by COLMAP?): {', '.join(report.test_images_missing[:6])}")
    if report.frames_without_ground_truth:
        console.print(f"{len(report.frames_without_ground_truth)} frames have no ground truth, "
                      f"e.g. {report.frames_without_ground_truth[0]}.")
    return report


def entrypoint() -> None:
    run_cli(main, AttachOptions, __doc__ or "", "plift-attach-ground-truth")


if __name__ == "__main__":
    entrypoint()
