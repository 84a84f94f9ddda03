"""``plift-import-labels``: label a nerfstudio dataset with 2D panoptic predictions made elsewhere.

Either COCO panoptic format (JSON + PNGs, any segmenter) or a label folder in this project's format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rich.console import Console

from plift_nerfstudio.cli.runner import run_cli
from plift_nerfstudio.labels.coco_import import import_coco_panoptic
from plift_nerfstudio.labels.folder_import import import_label_folder, is_label_folder
from plift_nerfstudio.labels.writer import ImportReport


@dataclass
class ImportOptions:
    """Import another segmenter's panoptic predictions as the dataset's machine labels."""

    data: Path
    """The nerfstudio dataset (folder with transforms.json, as ns-process-data writes it)."""
    predictions: Path
    """COCO panoptic JSON (annotations with file_name and segments_info; optional categories and scores), or a
    label folder in this project's format (classes.json, semantics/, instances/, optional probs/; e.g. the demo
    capture's machine_labels/). Frames are matched by file stem."""
    png_dir: Optional[Path] = None
    """COCO: folder of the panoptic PNGs (default: the JSON's path without .json, as in COCO)."""
    mapping: Optional[str] = None
    """COCO: class mapping, 'scannet21' (the demo scenes' 21 classes, the default), 'scannet31' (captures) or a
    mapping JSON file. A label folder brings its own class table."""
    overwrite: bool = False
    """Relabel the frames that have a prediction, into a new label set that replaces the old one in one atomic
    switch of transforms.json (default: skip labelled frames, so an interrupted import resumes). Refused when
    labelled frames without a prediction would keep labels under another class table."""


def main(opts: ImportOptions) -> ImportReport:
    if is_label_folder(opts.predictions):
        if opts.mapping is not None or opts.png_dir is not None:
            raise ValueError(f"{opts.predictions}: a label folder brings its own class table and PNGs; "
                             "--mapping and --png-dir are for COCO panoptic predictions")
        report = import_label_folder(opts.data, opts.predictions, opts.overwrite)
    elif opts.predictions.is_dir():
        raise ValueError(f"{opts.predictions}: a folder without classes.json; give a COCO panoptic JSON file or a "
                         "label folder (classes.json, semantics/, instances/, optional probs/)")
    else:
        report = import_coco_panoptic(opts.data, opts.predictions, opts.png_dir, opts.mapping or "scannet21",
                                      opts.overwrite)
    console = Console()
    if report.label_set is not None:
        console.print(f"[green]Imported {len(report.imported)} frames[/] into the label set {report.label_set}/ of "
                      f"{report.transforms} (the file as it was before the first change is kept as "
                      f"{report.transforms.name}.orig)")
    else:
        console.print(f"Nothing to import into {report.transforms}.")
    if report.skipped_labelled:
        console.print(f"Skipped {len(report.skipped_labelled)} frames that already have labels (--overwrite relabels).")
    if report.kept_without_prediction:
        console.print(f"{len(report.kept_without_prediction)} frames have no prediction and keep the labels they had "
                      f"(same class table), e.g. {report.kept_without_prediction[0]}.")
    unlabelled = [f for f in report.frames_without_prediction if f not in set(report.kept_without_prediction)]
    if unlabelled:
        console.print(f"[yellow]{len(unlabelled)} frames have no prediction[/] and stay unlabelled, e.g. "
                      f"{unlabelled[0]}; training needs every frame labelled.")
    if report.predictions_without_frame:
        console.print(f"[yellow]{len(report.predictions_without_frame)} predictions match no frame[/] "
                      f"(matched by file stem), e.g. {report.predictions_without_frame[0]}.")
    return report


def entrypoint() -> None:
    run_cli(main, ImportOptions, __doc__ or "", "plift-import-labels")


if __name__ == "__main__":
    entrypoint()
