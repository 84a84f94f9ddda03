"""``plift-realistic-scene``: render a furnished room with Blender (Cycles, CPU) as a labelled benchmark dataset."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from plift_nerfstudio.cli.runner import run_cli
from plift_nerfstudio.scenes.realistic.dataset import RealisticSceneOptions, score_machine_labels, write_realistic_scene
from plift_nerfstudio.scenes.realistic.label_structure import measure_label_structure


def main(opts: RealisticSceneOptions) -> Path:
    start = time.perf_counter()
    root = write_realistic_scene(opts)
    console = Console()
    console.print(f"[green]Wrote {opts.num_frames} frames ({opts.width}x{opts.height}, {opts.kind!r}, seed {opts.seed}, "
                  f"noise {opts.noise!r}) to {root} in {time.perf_counter() - start:.1f} s; contact sheet: "
                  f"{root / 'contact_sheet.png'}")
    scores = score_machine_labels(root)["panopticapi"]
    structure = measure_label_structure(root)
    console.print(f"labels against the ground truth (per frame, panopticapi): PQ {scores['pq']:.1f}, mIoU "
                  f"{scores['miou']:.1f}\nstructure of their errors: {structure.summary()}")
    return root


def entrypoint() -> None:
    run_cli(main, RealisticSceneOptions, __doc__ or "", "plift-realistic-scene")


if __name__ == "__main__":
    entrypoint()
