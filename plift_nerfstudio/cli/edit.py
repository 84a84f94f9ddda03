"""``plift-edit``: delete, duplicate or move instances of a trained scene, as a run folder every ``ns-*`` command loads.

    plift-edit --load-config outputs/demo/panoptic-lifting-lite/RUN/config.yml            # list the instances
    plift-edit --load-config .../config.yml --edits edits.json --output-dir edited/      # write the edited run
    ns-render camera-path --load-config edited/config.yml ...                            # render it
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.table import Table

from plift_nerfstudio.cli.runner import run_cli

CONSOLE = Console()


@dataclass
class EditOptions:
    """Options of plift-edit."""

    load_config: Path
    """config.yml of a training run (outputs/.../config.yml)."""
    edits: Optional[Path] = None
    """Edit list (JSON; docs/editing.md). Without it, the instances of the scene are listed."""
    output_dir: Optional[Path] = None
    """Folder of the edited run (config.yml, edits.json, instances.json); must not be inside the original run."""
    overwrite: bool = False
    """Replace an earlier output of plift-edit in --output-dir (only a folder plift-edit wrote and nobody changed
    since: anything else is refused and left as it is)."""


def main(opts: EditOptions) -> Optional[Path]:
    from plift_nerfstudio.editing.edit_list import load_edit_list
    from plift_nerfstudio.editing.edited_run import explicit_edit_list, instances_json, write_edited_run
    from plift_nerfstudio.core.runs import load_trained_pipeline

    if opts.edits is not None and opts.output_dir is None:
        raise ValueError("--edits needs --output-dir: the folder the edited run is written to")
    edit_list = load_edit_list(opts.edits) if opts.edits is not None else None  # a bad file stops before loading
    if opts.output_dir is not None:
        from plift_nerfstudio.editing.edited_run import check_output_folder

        check_output_folder(opts.output_dir, opts.load_config.parent, opts.overwrite)
    config, pipeline, _, step = load_trained_pipeline(opts.load_config)
    model = pipeline.model
    with CONSOLE.status("Finding the instances (dense query of the field)..."):
        regions = model.instance_regions()
    instances = instances_json(regions, model.class_table, model.dataset_frame)
    table = Table(title=f"Instances of {opts.load_config} (step {step}; boxes in the dataset frame)")
    for column in ("id", "class", "centre", "size seen", "voxels"):
        table.add_column(column)
    for entry in instances["instances"]:
        table.add_row(str(entry["instance_id"]), entry["class"], fmt_vector(entry["centre"]),
                      fmt_vector(entry["seen_size"]), str(entry["voxels"]))
    CONSOLE.print(table)
    if edit_list is None:
        return None
    assert opts.output_dir is not None and opts.edits is not None
    model.apply_edits(edit_list, str(opts.edits), regions=regions)  # refuses unknown ids, stuff, wrong classes
    explicit = explicit_edit_list(edit_list, regions, model.class_table, model.dataset_frame)
    target = write_edited_run(config, opts.load_config, opts.output_dir, explicit, instances, opts.overwrite)
    if model.edited is None:
        CONSOLE.print(f"[yellow]{opts.edits}: the edit list holds no edits; the edited run renders the original scene")
    for edit in model.edited.edits if model.edited is not None else []:
        copy = f" -> copy id {edit.copy_id}" if edit.copy_id is not None else ""
        CONSOLE.print(f"  {edit.op} {model.class_table.names[edit.class_id - 1]} {edit.instance_id}{copy}")
    CONSOLE.print(f"[bold green]Edited run written: {target}[/] (checkpoints: {config.get_checkpoint_dir()}, unchanged)")
    CONSOLE.print(f"  render it: ns-render camera-path --load-config {target} --camera-path-filename PATH.json")
    return target


def fmt_vector(values) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def entrypoint() -> None:
    run_cli(main, EditOptions, description=__doc__, prog="plift-edit")


if __name__ == "__main__":
    entrypoint()
