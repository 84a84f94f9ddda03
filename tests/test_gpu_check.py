"""The GPU check: on a machine without a GPU the script says so and exits 0; its GPU branches (speed against
TensoRF, the paper preset trained and scored, one device against two with DDP) run on the CPU at small sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from plift_nerfstudio.bench.gpu_check import GpuCheckOptions, main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the script would run the check")
def test_script_without_a_gpu_says_so_and_exits_zero() -> None:
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], capture_output=True, text=True,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PLIFT_VENV": str(Path(sys.executable).parents[1])})
    assert done.returncode == 0, done.stderr
    assert "no GPU" in done.stdout


def test_gpu_branches_rehearsed_on_the_cpu_write_every_section(tmp_path: Path) -> None:
    results = main(GpuCheckOptions(output_dir=tmp_path, rehearsal=True))
    assert results is not None
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["device"]["rehearsal"] and saved["device"]["field_implementation"] == "torch"
    rows = saved["speed"]["rows"]
    for name in ("paper preset, untrained: train step (s)", "paper preset, untrained: render 2048 rays (s)"):
        assert rows[name]["ours"] > 0 and rows[name]["tensorf"] > 0
    room = saved["room"]
    assert room["steps"] == 20 and room["psnr"] is not None and room["panopticapi_pq"] is not None
    multi = saved["multi_device"]
    assert multi["2_devices"]["world_size"] == 2 and multi["1_devices"]["world_size"] == 1
    assert multi["2_devices"]["steps_timed"] == multi["1_devices"]["steps_timed"] > 0
    assert multi["speedup_rays_per_s"] > 0
    table = (tmp_path / "results.md").read_text()
    assert "REHEARSAL" in table and "One device and two" in table and "TensoRF" in table
