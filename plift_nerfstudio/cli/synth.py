"""``plift-synth``: write a procedural indoor scene as a labelled nerfstudio dataset."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from plift_nerfstudio.cli.runner import run_cli

from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset


def main(opts: SynthOptions) -> Path:
    start = time.perf_counter()
    root = write_dataset(opts)
    Console().print(
        f"[green]Wrote {opts.num_frames} frames ({opts.width}x{opts.height}, scene {opts.scene!r}, "
        f"noise {opts.noise!r}, seed {opts.seed}) to {root} in {time.perf_counter() - start:.1f} s; "
        f"contact sheet: {root / 'contact_sheet.png'}"
    )
    return root


def entrypoint() -> None:
    run_cli(main, SynthOptions, __doc__ or "", "plift-synth")

if __name__ == "__main__":
    entrypoint()
