"""Evaluate a trained model on the held-out views of a dataset that has ground truth (e.g. from plift-synth).

Renders every test view, then scores our panoptic output and the machine 2D labels of the same frames against
the ground truth. For the machine labels PQscene is meaningless (their instance ids are per frame), so it is
reported as None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from nerfstudio.pipelines.base_pipeline import Pipeline
from rich.progress import Progress
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.labels.dataset_labels import frames_for_images
from plift_nerfstudio.labels.errors import LabelFileError
from plift_nerfstudio.labels.frame_labels import read_label_png
from plift_nerfstudio.metrics import frame_panoptic_quality, mean_iou, scene_panoptic_quality


@dataclass
class ViewSet:
    """Class and instance maps of N views (ids may be per frame or scene-wide)."""

    semantics: torch.Tensor  # [N, H, W]
    instances: torch.Tensor  # [N, H, W]


@dataclass
class EvaluationResult:
    ours: Dict[str, float]
    machine_labels: Dict[str, Optional[float]]
    num_views: int
    renders: List[Dict[str, np.ndarray]] = field(default_factory=list)


def load_maps(root: Path, frames: List[dict], sem_key: str, inst_key: str, hw) -> ViewSet:
    sems, insts = [], []
    for frame in frames:
        if sem_key not in frame or inst_key not in frame:
            raise LabelFileError(root / "transforms.json", f"frame {frame['file_path']} has no {sem_key}/{inst_key}")
        sem = read_label_png(root / frame[sem_key])
        inst = read_label_png(root / frame[inst_key])
        if sem.shape != tuple(hw):
            raise LabelFileError(root / frame[sem_key], f"size {sem.shape[::-1]} differs from the render {tuple(hw)[::-1]}")
        sems.append(sem.astype(np.int64))
        insts.append(inst.astype(np.int64))
    return ViewSet(torch.from_numpy(np.stack(sems)), torch.from_numpy(np.stack(insts)))


def segmentation_scores(pred: ViewSet, gt: ViewSet, table: ClassTable, scene_level: bool) -> Dict[str, Optional[float]]:
    frame = frame_panoptic_quality(pred.semantics, pred.instances, gt.semantics, gt.instances, table)
    scores: Dict[str, Optional[float]] = {"miou": mean_iou(pred.semantics, gt.semantics, table.num_classes)}
    scores.update(frame.as_dict(""))
    if scene_level:
        scores.update(scene_panoptic_quality(pred.semantics, pred.instances, gt.semantics, gt.instances, table).as_dict("scene_"))
    else:
        scores.update({"scene_pq": None, "scene_sq": None, "scene_rq": None})
    return scores


@torch.no_grad()
def evaluate_pipeline(pipeline: Pipeline, data: Path, keep_renders: int = 4) -> EvaluationResult:
    """Render the pipeline's eval (test) views and score them and the machine labels against ground truth."""
    datamanager = pipeline.datamanager
    dataset = datamanager.eval_dataset  # type: ignore[attr-defined]
    frames, transforms_path = frames_for_images(data, dataset.image_filenames, datamanager.image_path_of_frame)  # type: ignore[attr-defined]
    data_dir = transforms_path.parent
    table: ClassTable = pipeline.model.class_table  # type: ignore[attr-defined]
    model = pipeline.model
    model.eval()
    sems, insts, psnrs, ssims, renders = [], [], [], [], []
    with Progress(transient=True) as progress:
        task = progress.add_task("Rendering test views", total=len(dataset))
        for i in range(len(dataset)):
            camera = dataset.cameras[i : i + 1].to(model.device)
            out = model.get_outputs_for_camera(camera)
            image = dataset.get_image_float32(i)[..., :3].to(out["rgb"].device)
            a, b = out["rgb"].permute(2, 0, 1)[None], image.permute(2, 0, 1)[None]
            psnrs.append(float(peak_signal_noise_ratio(a, b, data_range=1.0)))
            ssims.append(float(structural_similarity_index_measure(a, b, data_range=1.0)))
            sems.append(out["semantic_id"][..., 0].long().cpu())
            insts.append(out["instance_id"][..., 0].long().cpu())
            if len(renders) < keep_renders:
                renders.append({k: out[k].cpu().numpy() for k in ("rgb", "semantics", "instances", "panoptic")} | {"image": image.cpu().numpy(), "index": i})
            progress.advance(task)
    hw = sems[0].shape
    ours = ViewSet(torch.stack(sems), torch.stack(insts))
    gt = load_maps(data_dir, frames, "gt_semantics_path", "gt_instances_path", hw)
    machine = load_maps(data_dir, frames, "semantics_path", "instances_path", hw)
    our_scores = segmentation_scores(ours, gt, table, scene_level=True)
    our_scores.update({"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))})
    machine_scores = segmentation_scores(machine, gt, table, scene_level=False)
    machine_scores.update({"psnr": None, "ssim": None})
    return EvaluationResult(our_scores, machine_scores, len(dataset), renders)  # type: ignore[arg-type]
