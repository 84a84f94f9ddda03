"""Evaluate a trained model on the held-out views of a dataset that has ground truth (e.g. from plift-synth).

One render loop (:func:`render_eval_views`) serves ``plift-eval`` and ``ns-eval``: it renders every eval (test)
view once, keeps nerfstudio's per-image metrics (PSNR, SSIM, fps) and the panoptic id maps. The id maps are then
scored against the ground truth next to the machine 2D labels of the same frames, by the same rules, under every
protocol of ``metrics`` (``panopticapi``, ``min_share`` and ``authors``). The labels are scored as they are and with
the small-segment merge our renders get (a level comparison). For the machine labels PQscene is meaningless (their
instance ids are per frame), so it is reported as None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.utils as vutils
from jaxtyping import Int
from nerfstudio.pipelines.base_pipeline import Pipeline
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.labels.dataset_labels import frames_for_images
from plift_nerfstudio.core.errors import LabelFileError
from plift_nerfstudio.labels.frame_labels import INSTANCES_KEY, SEMANTICS_KEY, check_panoptic_maps, read_label_png
from plift_nerfstudio.labels.ground_truth import GT_INSTANCES_KEY, GT_SEMANTICS_KEY
from plift_nerfstudio.evaluation.metrics import protocol_scores, psnr
from plift_nerfstudio.panoptic import class_palette, colourise, instance_palette, merge_small_segments


@dataclass
class ViewSet:
    """Class and instance maps of N views (ids may be per frame or scene-wide)."""

    semantics: Int[Tensor, "N H W"]
    instances: Int[Tensor, "N H W"]


@dataclass
class RenderedViews:
    """What one pass over the eval views produced."""

    ids: ViewSet
    image_filenames: List[Path]
    per_image_metrics: List[Dict[str, float]]  # nerfstudio's: psnr, ssim, num_rays_per_sec, fps
    renders: List[Dict[str, np.ndarray]] = field(default_factory=list)  # a few views kept for pictures


Scores = Dict[str, Dict[str, Optional[float]]]
"""Metrics per protocol (``metrics.PROTOCOLS``): ``{"panopticapi": {"scene_pq": ..., "pq": ..., "miou": ...}, ...}``."""


@dataclass
class EvaluationResult:
    ours: Scores
    """Our renders as the viewer shows them (segments under the model's ``min_segment_share`` merged)."""
    machine_labels: Scores
    """The 2D labels as they are."""
    image_metrics: Dict[str, float]
    """Ours only: PSNR and SSIM averaged over the test views."""
    num_views: int
    renders: List[Dict[str, np.ndarray]] = field(default_factory=list)
    machine_labels_merged: Optional[Scores] = None
    """The 2D labels with the same small-segment merge as our renders (None when the model merges nothing): the
    level comparison with ``ours``."""
    min_segment_share: float = 0.0
    """The merge's share of the image (the model's ``min_segment_share``)."""


def load_maps(root: Path, frames: List[dict], sem_key: str, inst_key: str, hw, table: ClassTable) -> ViewSet:
    """The class and instance maps the frames' ``sem_key``/``inst_key`` point to, checked against the table."""
    sems, insts = [], []
    for frame in frames:
        if sem_key not in frame or inst_key not in frame:
            raise LabelFileError(root / "transforms.json", f"frame {frame['file_path']} has no {sem_key}/{inst_key}")
        sem = read_label_png(root / frame[sem_key])
        inst = read_label_png(root / frame[inst_key])
        if sem.shape != tuple(hw) or inst.shape != tuple(hw):
            raise LabelFileError(root / frame[sem_key], f"size {sem.shape[::-1]} differs from the render {tuple(hw)[::-1]}")
        check_panoptic_maps(sem, inst, root / frame[sem_key], root / frame[inst_key], table)
        sems.append(sem.astype(np.int64))
        insts.append(inst.astype(np.int64))
    return ViewSet(torch.from_numpy(np.stack(sems)), torch.from_numpy(np.stack(insts)))


def segmentation_scores(pred: ViewSet, gt: ViewSet, table: ClassTable, scene_level: bool) -> Scores:
    """Every segmentation metric under every protocol (see ``metrics``); PQscene only when ``scene_level``."""
    return protocol_scores(pred.semantics, pred.instances, gt.semantics, gt.instances, table.num_classes, scene_level)


def flat_metrics(result: EvaluationResult) -> Dict[str, Optional[float]]:
    """One flat dict (ns-eval, benchmark tables): ``<protocol>_<metric>`` for ours, ``labels_<protocol>_<metric>``
    for the 2D labels, ``labels_merged_<protocol>_<metric>`` for them with our small-segment merge (when the model
    merges), and ``psnr``/``ssim``."""
    flat: Dict[str, Optional[float]] = dict(result.image_metrics)
    for prefix, scores in (("", result.ours), ("labels_", result.machine_labels),
                           ("labels_merged_", result.machine_labels_merged)):
        for protocol, metrics in (scores or {}).items():
            flat.update({f"{prefix}{protocol}_{key}": value for key, value in metrics.items()})
    return flat


@torch.no_grad()
def render_cameras(model, cameras, keys: Sequence[str] = ("rgb", "depth", "accumulation", "semantic_id", "instance_id",
                                                            "panoptic")) -> Tuple[Dict[str, np.ndarray], float]:
    """Whole-image renders of each of ``cameras`` (as the viewer and ns-render make them) stacked per output, the id
    maps as integers and depth without its channel; and the seconds the renders took."""
    out: Dict[str, List[np.ndarray]] = {k: [] for k in keys}
    start = perf_counter()
    for i in range(len(cameras)):
        rendered = model.get_outputs_for_camera(cameras[i : i + 1])
        for k in keys:
            out[k].append(rendered[k].cpu().numpy())
    seconds = perf_counter() - start
    views = {k: np.stack(v) for k, v in out.items()}
    for key in ("semantic_id", "instance_id"):
        if key in views:
            views[key] = views[key][..., 0].astype(np.int64)
    if "depth" in views:
        views["depth"] = views["depth"][..., 0]
    return views, seconds


@torch.no_grad()
def render_eval_views(pipeline: Pipeline, keep_renders: int = 0, output_path: Optional[Path] = None) -> RenderedViews:
    """Render every eval view once (with a progress bar); optionally save nerfstudio's images per view."""
    model = pipeline.model
    datamanager = pipeline.datamanager
    dataset = datamanager.eval_dataset  # type: ignore[attr-defined]
    loader = datamanager.fixed_indices_eval_dataloader  # type: ignore[attr-defined]
    if output_path is not None:
        output_path.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    sems, insts, metrics_list, renders, names = [], [], [], [], []
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("Rendering eval views", total=len(loader))
        for view, (camera, batch) in enumerate(loader):
            start = perf_counter()
            outputs = model.get_outputs_for_camera(camera=camera)
            metrics, images = model.get_image_metrics_and_images(outputs, batch)
            num_rays = int(camera.height.item() * camera.width.item())
            metrics["num_rays_per_sec"] = num_rays / (perf_counter() - start)
            metrics["fps"] = metrics["num_rays_per_sec"] / num_rays
            metrics_list.append({k: float(v) for k, v in metrics.items()})
            if output_path is not None:
                for key, image in images.items():
                    vutils.save_image(image.permute(2, 0, 1).cpu(), output_path / f"eval_{key}_{view:04d}.png")
            sems.append(outputs["semantic_id"][..., 0].long().cpu())
            insts.append(outputs["instance_id"][..., 0].long().cpu())
            index = int(batch["image_idx"])
            names.append(Path(dataset.image_filenames[index]))
            if len(renders) < keep_renders:
                kept = {k: outputs[k].cpu().numpy() for k in ("rgb", "semantics", "instances", "panoptic")}
                renders.append(kept | {"image": batch["image"][..., :3].cpu().numpy(), "index": index})
            progress.advance(task)
    if was_training:
        model.train()
    return RenderedViews(ViewSet(torch.stack(sems), torch.stack(insts)), names, metrics_list, renders)


def frames_have_ground_truth(frames: List[dict], transforms_path: Path) -> bool:
    """True when every frame entry names ground-truth maps; False when none does (a real capture).

    Frames where only some entries have ground truth are refused: scores over a subset would mislead.
    """
    with_gt = [GT_SEMANTICS_KEY in f and GT_INSTANCES_KEY in f for f in frames]
    if all(with_gt):
        return True
    if not any(with_gt):
        return False
    missing = [f["file_path"] for f, has in zip(frames, with_gt) if not has]
    raise LabelFileError(
        transforms_path,
        f"{len(missing)} of {len(frames)} eval frames lack '{GT_SEMANTICS_KEY}'/'{GT_INSTANCES_KEY}' "
        f"(first: {missing[0]}); give ground truth for all eval frames or for none",
    )


def dataset_frames(pipeline: Pipeline, image_filenames: Sequence[Path]) -> List[dict]:
    """The ``transforms.json`` frames of a pipeline's images, in their order (as the dataparser found the images)."""
    datamanager = pipeline.datamanager
    data = Path(datamanager.config.dataparser.data)  # type: ignore[attr-defined]
    frames, _ = frames_for_images(data, image_filenames, datamanager.image_path_of_frame)  # type: ignore[attr-defined]
    return frames


def dataset_has_ground_truth(pipeline: Pipeline, image_filenames: List[Path]) -> bool:
    """Whether the pipeline's dataset has ground truth for these (eval) images; see frames_have_ground_truth."""
    datamanager = pipeline.datamanager
    data = Path(datamanager.config.dataparser.data)  # type: ignore[attr-defined]
    frames, transforms_path = frames_for_images(data, image_filenames, datamanager.image_path_of_frame)  # type: ignore[attr-defined]
    return frames_have_ground_truth(frames, transforms_path)


def score_views(pipeline: Pipeline, views: RenderedViews) -> EvaluationResult:
    """Score rendered views and the machine labels of the same frames against the dataset's ground truth."""
    datamanager = pipeline.datamanager
    data = Path(datamanager.config.dataparser.data)  # type: ignore[attr-defined]
    frames, transforms_path = frames_for_images(data, views.image_filenames, datamanager.image_path_of_frame)  # type: ignore[attr-defined]
    data_dir = transforms_path.parent
    image_metrics = {k: float(np.mean([m[k] for m in views.per_image_metrics])) for k in ("psnr", "ssim")}
    result = score_against_ground_truth(pipeline, views.ids, data_dir, frames, image_metrics)
    for i, render in enumerate(views.renders):  # the kept views are the first ones, in render order
        render["gt_panoptic"] = panoptic_picture(render["image"], result.gt.semantics[i], result.gt.instances[i],
                                                 pipeline.model.class_table)  # type: ignore[attr-defined]
        render["machine_panoptic"] = panoptic_picture(render["image"], result.machine.semantics[i],
                                                      result.machine.instances[i], pipeline.model.class_table)  # type: ignore[attr-defined]
    result.scores.renders = views.renders
    return result.scores


@dataclass
class _Scored:
    scores: EvaluationResult
    gt: ViewSet
    machine: ViewSet


def score_against_ground_truth(pipeline: Pipeline, ours: ViewSet, data_dir: Path, frames: List[dict],
                               image_metrics: Dict[str, float]) -> _Scored:
    """Our id maps of ``frames`` and the frames' machine labels (as they are, and merged as our renders are) scored
    against the frames' ground truth; with the maps read."""
    table: ClassTable = pipeline.model.class_table  # type: ignore[attr-defined]
    hw = tuple(ours.semantics.shape[1:])
    gt = load_maps(data_dir, frames, GT_SEMANTICS_KEY, GT_INSTANCES_KEY, hw, table)
    machine = load_maps(data_dir, frames, SEMANTICS_KEY, INSTANCES_KEY, hw, table)
    share = float(getattr(pipeline.model.config, "min_segment_share", 0.0))
    merged_scores = (segmentation_scores(merge_small_segments_of_views(machine, share), gt, table, scene_level=False)
                     if share > 0 else None)
    scores = EvaluationResult(segmentation_scores(ours, gt, table, scene_level=True),
                              segmentation_scores(machine, gt, table, scene_level=False),  # per-frame ids: no PQscene
                              image_metrics, len(frames), [], merged_scores, share)
    return _Scored(scores, gt, machine)


def merge_small_segments_of_views(views: ViewSet, min_share: float) -> ViewSet:
    """Each view's segments under ``min_share`` of its pixels merged into the neighbour they border most: the rule
    the model applies to its whole-image renders, here for label maps (the 2D labels) to compare like with like."""
    merged = [merge_small_segments(s, i, round(min_share * s.numel())) for s, i in zip(views.semantics, views.instances)]
    return ViewSet(torch.stack([m[0] for m in merged]), torch.stack([m[1] for m in merged]))


def panoptic_picture(image_hw3: np.ndarray, semantics_hw: Tensor, instances_hw: Tensor, table: ClassTable) -> np.ndarray:
    """A label map drawn like the model's ``panoptic`` output: thing ids and stuff classes blended over the image."""
    h, w = semantics_hw.shape
    rgb = torch.from_numpy(np.asarray(image_hw3, np.float32)).reshape(-1, 3)
    instances = instances_hw.reshape(-1).long()
    _, _, panoptic = colourise(rgb, semantics_hw.reshape(-1).long(), instances, class_palette(table),
                               instance_palette(int(instances.max()) if instances.numel() else 0))
    return panoptic.reshape(h, w, 3).numpy()


def evaluate_pipeline(pipeline: Pipeline, keep_renders: int = 4) -> EvaluationResult:
    """Render the pipeline's eval (test) views and score them and the machine labels against ground truth."""
    views = render_eval_views(pipeline, keep_renders=keep_renders)
    return score_views(pipeline, views)


def cameras_of_frames(pipeline: Pipeline, frames: List[dict], meta: dict):
    """nerfstudio Cameras of frame entries that are not in the dataset's transforms.json (e.g. views off the walk),
    in the trained scene's frame: their poses oriented, centred and scaled as the dataparser did the dataset's."""
    from nerfstudio.cameras.cameras import Cameras, CameraType

    outputs = pipeline.datamanager.train_dataparser_outputs  # type: ignore[attr-defined]
    transform = outputs.dataparser_transform.float()  # [3, 4]
    poses = torch.tensor(np.array([f["transform_matrix"] for f in frames]), dtype=torch.float32)  # [N, 4, 4]
    c2w = transform @ poses  # [N, 3, 4]
    c2w[:, :3, 3] *= float(outputs.dataparser_scale)
    return Cameras(camera_to_worlds=c2w, fx=float(meta["fl_x"]), fy=float(meta["fl_y"]), cx=float(meta["cx"]),
                   cy=float(meta["cy"]), width=int(meta["w"]), height=int(meta["h"]),
                   camera_type=CameraType.PERSPECTIVE).to(pipeline.device)


def evaluate_extra_views(pipeline: Pipeline, data_root: Path, frames: List[dict]) -> EvaluationResult:
    """Render views listed apart from the dataset (``frames``: entries like transforms.json's, with ground truth)
    and score them and their machine labels as :func:`score_views` scores the test views."""
    import cv2

    meta = json.loads((data_root / "transforms.json").read_text())
    model = pipeline.model
    was_training = model.training
    model.eval()
    views, _ = render_cameras(model, cameras_of_frames(pipeline, frames, meta), keys=("rgb", "semantic_id", "instance_id"))
    if was_training:
        model.train()
    ours = ViewSet(torch.from_numpy(views["semantic_id"]), torch.from_numpy(views["instance_id"]))
    images = np.stack([cv2.cvtColor(cv2.imread(str(data_root / f["file_path"])), cv2.COLOR_BGR2RGB) for f in frames])
    psnr_value = float(np.mean([psnr(r, i / 255.0) for r, i in zip(views["rgb"], images)]))
    return score_against_ground_truth(pipeline, ours, data_root, frames, {"psnr": psnr_value}).scores
