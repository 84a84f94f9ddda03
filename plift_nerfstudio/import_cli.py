"""``plift-import-labels``: label a nerfstudio dataset with 2D panoptic predictions in COCO panoptic format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rich.console import Console

from plift_nerfstudio.cli_utils import run_cli
from plift_nerfstudio.labels.coco_import import ImportReport, import_coco_panoptic


@dataclass
class ImportOptions:
    """Import another segmenter's panoptic predictions as the dataset's machine labels."""

    data: Path
    """The nerfstudio dataset (folder with transforms.json, as ns-process-data writes it)."""
    predictions: Path
    """COCO panoptic JSON (annotations with file_name and segments_info; optional categories and scores)."""
    png_dir: Optional[Path] = None
    """Folder of the panoptic PNGs (default: the JSON's path without .json, as in COCO)."""
    mapping: str = "scannet21"
    """Class mapping: 'scannet21' (the demo scenes' 21 classes), 'scannet31' (captures) or a mapping JSON file."""
    overwrite: bool = False
    """Relabel frames that already have labels (default: skip them, so an interrupted import resumes)."""


def main(opts: ImportOptions) -> ImportReport:
    report = import_coco_panoptic(opts.data, opts.predictions, opts.png_dir, opts.mapping, opts.overwrite)
    console = Console()
    console.print(f"[green]Imported {len(report.imported)} frames[/] into {report.transforms} "
                  f"(kept a copy of the original as {report.transforms.name}.orig)")
    if report.skipped_labelled:
        console.print(f"Skipped {len(report.skipped_labelled)} frames that already have labels (--overwrite relabels).")
    if report.frames_without_prediction:
        console.print(f"[yellow]{len(report.frames_without_prediction)} frames have no prediction[/] and stay "
                      f"unlabelled, e.g. {report.frames_without_prediction[0]}; training needs every frame labelled.")
    if report.predictions_without_frame:
        console.print(f"[yellow]{len(report.predictions_without_frame)} predictions match no frame[/] "
                      f"(matched by file stem), e.g. {report.predictions_without_frame[0]}.")
    return report


def entrypoint() -> None:
    run_cli(main, ImportOptions, __doc__ or "", "plift-import-labels")


if __name__ == "__main__":
    entrypoint()
