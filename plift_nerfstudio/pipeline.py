"""Pipeline whose eval averaging also reports the scene-level panoptic metrics (so ``ns-eval`` prints them), and
which keeps distributed training's replicas identical through the model's structure changes.

nerfstudio averages per-image metrics over the eval views; PQscene cannot be averaged per image (its segments
span all views), so :meth:`PanopticPipeline.get_average_eval_image_metrics` renders each view once, averages the
per-image metrics as nerfstudio does, and adds the scene-level and per-frame segmentation metrics computed on all
views together under every evaluation protocol, for our renders and for the machine 2D labels by the same rules:
keys ``<protocol>_<metric>`` (e.g. ``panopticapi_scene_pq``, ``authors_miou``) and ``labels_<protocol>_<metric>``.

With ``world_size > 1`` the model is wrapped in DDP here rather than by nerfstudio (which passes ``device_ids`` a CPU
module refuses, and whose wrapper goes stale when the grids are replaced); see :mod:`plift_nerfstudio.distributed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Type

import torch
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig
from nerfstudio.utils.rich_utils import CONSOLE
from torch.cuda.amp.grad_scaler import GradScaler

from plift_nerfstudio.distributed import Replicas


@dataclass
class PanopticPipelineConfig(VanillaPipelineConfig):
    """Vanilla pipeline plus scene-level panoptic metrics in its eval averaging."""

    _target: Type = field(default_factory=lambda: PanopticPipeline)


def average_per_image(per_image: list, get_std: bool) -> Dict[str, float]:
    """nerfstudio's convention: mean (and ``<key>_std``) of each per-image metric."""
    out: Dict[str, float] = {}
    for key in per_image[0]:
        values = torch.tensor([m[key] for m in per_image], dtype=torch.float64)
        out[key] = float(values.mean())
        if get_std:
            out[f"{key}_std"] = float(values.std()) if len(values) > 1 else 0.0
    return out


class PanopticPipeline(VanillaPipeline):
    config: PanopticPipelineConfig

    def __init__(
        self,
        config: PanopticPipelineConfig,
        device: str,
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        grad_scaler: Optional[GradScaler] = None,
    ) -> None:
        # nerfstudio's pipeline with one process; the DDP wrapper is ours (below)
        super().__init__(config, device, test_mode=test_mode, world_size=1, local_rank=local_rank,
                         grad_scaler=grad_scaler)
        self.world_size = world_size
        self.datamanager.world_size = world_size
        self.replicas: Optional[Replicas] = None
        if world_size > 1:
            self.replicas = Replicas(self.model)
            self._model = self.replicas.wrap()  # type: ignore[assignment]
        # editing finds each instance where the training views see it
        train_dataset = getattr(self.datamanager, "train_dataset", None)
        if train_dataset is not None and hasattr(self.model, "view_cameras"):
            self.model.view_cameras = train_dataset.cameras

    def sync_replicas(self) -> None:
        """Distributed training: after the model replaced parameters or changed its space skipping, wrap it again or
        broadcast rank 0's buffers (every rank calls this at the same step; nothing happens with one process)."""
        if self.replicas is None:
            return
        wrapper = self.replicas.after_step()
        if wrapper is not None:
            self._model = wrapper  # type: ignore[assignment]

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        callbacks = super().get_training_callbacks(training_callback_attributes)
        if self.replicas is not None:  # after the model's own callbacks, which change its structure
            callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                                              lambda step: self.sync_replicas(), update_every_num_iters=1))
        return callbacks

    def get_average_eval_image_metrics(
        self, step: Optional[int] = None, output_path: Optional[Path] = None, get_std: bool = False
    ) -> Dict[str, float]:
        # imported here: every ns-* command imports the method config, and with it this module
        from plift_nerfstudio.evaluation.eval_views import dataset_has_ground_truth, flat_metrics, render_eval_views, score_views

        views = render_eval_views(self, output_path=output_path)
        metrics = average_per_image(views.per_image_metrics, get_std)
        if not dataset_has_ground_truth(self, views.image_filenames):
            CONSOLE.print(
                "[yellow]The eval frames have no ground-truth panoptic maps: only image metrics are reported "
                "(scene-level PQ and mIoU need 'gt_semantics_path'/'gt_instances_path' per frame)."
            )
            return metrics
        result = score_views(self, views)
        # the 2D labels' PQscene is undefined (per-frame ids) and left out
        metrics.update({k: float(v) for k, v in flat_metrics(result).items() if v is not None and k not in metrics})
        return metrics
