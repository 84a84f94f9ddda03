"""Panoptic Lifting as a nerfstudio model: renders colour, depth, semantics and 3D-consistent instance ids."""

from __future__ import annotations

from dataclasses import dataclass, field
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Literal, Optional, Tuple, Type

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle, RaySamples
from nerfstudio.configs.config_utils import to_immutable_dict
from nerfstudio.data.scene_box import OrientedBox
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.model_components.losses import tv_loss
from nerfstudio.model_components.ray_samplers import UniformSampler
from nerfstudio.model_components.renderers import AccumulationRenderer, DepthRenderer, RGBRenderer
from nerfstudio.model_components.scene_colliders import AABBBoxCollider
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor
from torch.nn import Parameter

from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.editing.edit_list import EditList, load_edit_list
from plift_nerfstudio.editing.edited_field import EditedScene
from plift_nerfstudio.editing.regions import (
    InstanceRegion,
    attach_cells,
    find_instance_regions,
    owned_cells,
    regions_from_points,
)
from plift_nerfstudio.editing.resolve import resolve_edits
from plift_nerfstudio.editing.viewer_panel import PanopticViewerPanel
from plift_nerfstudio.fields.occupancy import OccupancyGrid, cells_seen
from plift_nerfstudio.fields.panoptic_field import PanopticTensoRFField, resolve_implementation
from plift_nerfstudio.fields.scene_bounds import box_around_points, ray_surface_points
from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.losses import (
    assign_surrogate_ids,
    distortion_loss,
    instance_loss,
    segment_consistency_loss,
    segment_ids_of,
    semantic_loss,
    sparse_depth_loss,
)
from plift_nerfstudio.panoptic import (
    MIN_SEGMENT_SHARE,
    VOID_ACCUMULATION,
    class_palette,
    colourise,
    instance_palette,
    merge_small_segments,
    panoptic_labels,
)

CLASS_TABLE_METADATA_KEY = "panoptic_class_table"
DATASET_FRAME_METADATA_KEY = "panoptic_dataset_frame"
EDITED_MARCHES = 4
"""Marches of an edited render at most: shaded samples of deleted instances found outside their regions are emptied
and the rays marched again."""


def split_sparse_depth_rays(
    outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
) -> Tuple[Dict[str, Tensor], Optional[Dict[str, Tensor]]]:
    """The outputs of the labelled rays, and those of the sparse depth rays the datamanager put after them (None
    when the batch has none). Per-ray tensors are split; anything else (scalars) stays with the labelled rays."""
    if "sparse_depth" not in batch:
        return outputs, None
    num_depth = len(batch["sparse_depth"])
    num_rays = outputs["rgb"].shape[0]
    labelled, depth = {}, {}
    for key, value in outputs.items():
        if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == num_rays:
            labelled[key], depth[key] = value[: num_rays - num_depth], value[num_rays - num_depth:]
        else:
            labelled[key] = value
    return labelled, depth


@dataclass
class PanopticLiftingModelConfig(ModelConfig):
    """Panoptic Lifting: TensoRF radiance field with bounded semantic and surrogate-id fields."""

    _target: Type = field(default_factory=lambda: PanopticLiftingModel)
    enable_collider: bool = True
    """Clip rays to the scene box."""
    collider_params: Dict[str, float] = to_immutable_dict({"near_plane": 0.05, "far_plane": 1000.0})
    """Near plane of rays (scene units); the far end is where rays leave the scene box."""
    eval_num_rays_per_chunk: int = 4096
    """Rays rendered at once when rendering whole images."""
    loss_coefficients: Dict[str, float] = to_immutable_dict({})
    """Unused; loss weights are the *_loss_mult options."""

    # --- radiance field (TensoRF VM) ---
    init_resolution: int = 128
    """Voxels per side of the VM grids at the start."""
    final_resolution: int = 192
    """Voxels per side after the last upsampling."""
    upsampling_iters: Tuple[int, ...] = (2000, 3000, 4000, 5500, 7000)
    """Steps after which the grids are upsampled (resolutions log-spaced from init to final)."""
    density_components: int = 16
    """VM components of the density grid."""
    color_components: int = 48
    """VM components of the appearance grid."""
    appearance_dim: int = 27
    """Appearance features decoded by the colour MLP."""
    density_shift: float = -10.0
    """Shift inside softplus(feature + shift): the scene starts (almost) empty, as in TensoRF."""
    density_scale: float = 25.0
    """Multiplier of the density (TensoRF's distance scale)."""
    num_samples: int = 256
    """Uniform samples per ray (density is evaluated at each)."""
    occupancy_grid_resolution: int = 64
    """Cells per side of the occupancy grid that skips empty space (0 = off: the field is queried at every
    sample)."""
    occupancy_update_every: int = 16
    """Training steps between occupancy grid refreshes."""
    occupancy_warmup_steps: int = 256
    """Step of the first refresh; until then every sample is queried."""
    visibility_update_every: int = 0
    """Training steps between re-measurements of which occupancy cells the training cameras see (0 = never: density
    alone decides). Cells no training ray reaches before its transmittance falls below termination_transmittance
    (behind walls, inside furniture) get no gradient; they are skipped, which also keeps their untrained density out
    of novel views."""
    visibility_rays: int = 65536
    """Rays cast per visibility measurement, on a pixel lattice spread over all training images."""
    box_shrink_step: int = 0
    """Step after which the scene box shrinks to the surfaces the training cameras see (0 = never): the grids'
    voxels and the ray samples then cover the scene instead of the whole cube nerfstudio's dataparser sets."""
    box_shrink_rays: int = 16384
    """Training-camera rays cast to find the seen surfaces for the box shrink."""
    box_shrink_margin: float = 0.15
    """Margin added on each side of the shrunk box, as a share of its size."""
    occupancy_alpha_threshold: float = 1e-3
    """A cell is occupied while its (decaying) maximum density gives a sample at least this opacity."""
    termination_transmittance: float = 1e-4
    """Early ray termination: samples behind the point where a ray's transmittance falls below this are not
    queried (their weights would be smaller still; 0 = off)."""
    marching_chunks: int = 4
    """Pieces a ray's samples are queried in, front to back, to find where it terminates."""
    distortion_loss_mult: float = 0.0
    """Weight of the distortion loss (mip-NeRF 360) that gathers each ray's weight into one tight interval;
    it removes fog, which lets occupancy and early termination skip more samples."""
    sparse_depth_loss_mult: float = 0.0
    """Weight of the sparse depth loss: rays through points triangulated by plift-sparse-depth should end at the
    point. Needs the datamanager's --pipeline.datamanager.sparse-depth-num-rays; 0 = off."""
    sparse_depth_relative_std: float = 0.03
    """Spread the sparse depth loss allows round a point, as a share of its distance from the camera."""
    weight_threshold: float = 1e-4
    """Colour, semantic and instance heads run only on samples with a larger rendering weight (and on each
    ray's heaviest sample, so that an empty scene at the start still gets gradient)."""
    max_kept_samples_per_ray: int = 0
    """If > 0, the heads run on at most this many of each ray's heaviest samples (bounds the cost per ray while
    the geometry is still foggy; 0 = no limit)."""
    samples_follow_resolution: bool = False
    """Scale the samples per ray and the cap on shaded samples with the grid resolution, as TensoRF ties its step
    to the voxel size: num_samples and max_kept_samples_per_ray hold from the last upsampling on, proportionally
    fewer before it (cheaper early steps while the grids are coarse)."""
    color_mlp_width: int = 128
    """Width of the colour MLP (3 layers)."""
    background_color: Literal["random", "black", "white"] = "random"
    """Colour behind the scene; 'random' in training pushes the field to be opaque where images are."""
    tv_density_mult: float = 1e-3
    """Total-variation weight on the density planes."""
    tv_color_mult: float = 1e-4
    """Total-variation weight on the appearance planes."""
    l1_density_mult: float = 0.0
    """Weight of the mean absolute value of the density grid's planes and lines (TensoRF's L1 sparsity; nerfstudio's
    tensorf uses 5e-4): density the images do not ask for fades, which removes fog and lets the occupancy grid
    and early ray termination skip more samples."""

    # --- segmentation heads ---
    semantic_mlp_layers: int = 5
    """Layers of the semantic MLP (paper: 5)."""
    semantic_mlp_width: int = 256
    """Width of the semantic MLP (paper: 256)."""
    instance_mlp_layers: int = 3
    """Layers of the surrogate-id MLP (paper: 3)."""
    instance_mlp_width: int = 256
    """Width of the surrogate-id MLP."""
    num_surrogate_ids: int = 50
    """Number of surrogate 3D instance ids (paper: 50); more 2D instances in one image are counted and warned."""
    position_frequencies: int = 0
    """Sine/cosine bands of position fed to the segmentation MLPs (paper: 0, raw xyz)."""
    void_accumulation: float = VOID_ACCUMULATION
    """Rays whose rendered opacity is below this are void (class 0, instance 0) in the semantic_id/instance_id
    outputs and the pictures: they saw (almost) nothing."""
    min_segment_share: float = MIN_SEGMENT_SHARE
    """Rendered images (viewer, ns-render, evaluation): a panoptic segment (class and instance) covering less than
    this share of the image is merged into the segment it borders most, as panoptic inference drops segments under
    a minimum area (speckle where the argmax flips between neighbours); 0 keeps every segment."""
    implementation: Literal["auto", "tcnn", "torch"] = "auto"
    """MLP implementation: 'auto' uses tinycudann when installed and CUDA is present."""

    # --- editing ---
    edits: Optional[Path] = None
    """Edit list (JSON; README 'Editing the scene') applied when rendering: instances deleted, duplicated or moved.
    plift-edit writes run folders that set it; training ignores it."""
    edit_region_resolution: int = 96
    """Voxels per side of the lattice on which each instance's region (for editing) is found."""
    edit_region_rays: int = 65536
    """Rays of the training views rendered to find each instance's surface points (for editing)."""

    # --- losses ---
    rgb_loss_mult: float = 1.0
    """lambda_RGB (Eq. 3)."""
    semantic_loss_mult: float = 1.0
    """lambda_sem (Eq. 4)."""
    instance_loss_mult: float = 1.0
    """lambda_ins (Eq. 5)."""
    consistency_loss_mult: float = 1.35
    """lambda_con (Eq. 7)."""
    semantic_loss_start_step: int = 0
    """Step from which the semantic loss is on."""
    instance_loss_start_step: int = 0
    """Step from which the instance loss is on."""
    consistency_loss_start_step: int = 0
    """Step from which the segment consistency loss is on."""

    # --- robustness components (paper Table 2); switch off to reproduce the ablation ---
    use_segment_consistency: bool = True
    """Segment consistency loss (Eq. 7)."""
    use_confidence: bool = True
    """Weight losses by per-pixel confidences and use the soft class distributions (TTA); off = one-hot, weight 1."""
    bounded_fields: bool = True
    """Render probabilities (softmax per sample); off = render logits and softmax afterwards."""
    block_segmentation_gradients: bool = True
    """Render segmentation with detached weights so its losses cannot move density."""


def upsampling_resolutions(init_resolution: int, final_resolution: int, num_upsamples: int) -> List[int]:
    """Log-spaced grid resolutions reached after each upsampling step."""
    res = np.exp(np.linspace(np.log(init_resolution), np.log(final_resolution), num_upsamples + 1))
    return [int(r) for r in np.round(res)[1:]]


def resolution_at_step(config: PanopticLiftingModelConfig, step: int) -> int:
    """Grid resolution after the upsamplings done at or before ``step``."""
    done = sum(1 for it in config.upsampling_iters if it <= step)
    if done == 0:
        return config.init_resolution
    return upsampling_resolutions(config.init_resolution, config.final_resolution, len(config.upsampling_iters))[
        done - 1
    ]


def samples_at_resolution(
    num_samples: int, max_kept: int, resolution: int, final_resolution: int
) -> Tuple[int, int]:
    """(samples per ray, cap on shaded samples) at grid ``resolution`` when both are set for ``final_resolution``
    and scale with the voxel size; a cap of 0 (no cap) stays 0."""
    share = min(resolution / final_resolution, 1.0)
    samples = max(8, round(num_samples * share))
    kept = max(1, round(max_kept * share)) if max_kept > 0 else 0
    return samples, kept


def render_sparse(
    values: Float[Tensor, "M D"], weights: Float[Tensor, "M"], ray_index: Int[Tensor, "M"], num_rays: int
) -> Float[Tensor, "R D"]:
    """sum_i w_i * f_i per ray, over the kept samples only (others have negligible weight)."""
    out = torch.zeros(num_rays, values.shape[-1], dtype=values.dtype, device=values.device)
    return out.index_add(0, ray_index, values * weights[:, None])


def samples_to_shade(weights: Float[Tensor, "R S"], threshold: float, max_per_ray: int) -> Bool[Tensor, "R S"]:
    """Samples whose colour and segmentation are evaluated: weight above ``threshold`` (at most ``max_per_ray``
    of the heaviest per ray when > 0), and always each ray's heaviest sample so an empty scene gets gradient."""
    keep = weights > threshold
    if 0 < max_per_ray < weights.shape[1]:
        top = torch.zeros_like(keep)
        top.scatter_(1, weights.topk(max_per_ray, dim=1).indices, True)
        keep &= top
    keep[torch.arange(weights.shape[0], device=weights.device), weights.argmax(dim=1)] = True
    return keep


def pixel_lattice_rays(cameras: Cameras, num_rays: int, seed: int) -> RayBundle:
    """About ``num_rays`` rays spread evenly over all images of ``cameras``: every ``stride``-th pixel in both
    directions, from a random offset (so successive calls see different pixels)."""
    camera_index, coords = pixel_lattice(cameras, num_rays, seed)
    device = cameras.device
    return cameras.generate_rays(camera_indices=camera_index[:, None].to(device), coords=coords.to(device))


def pixel_lattice(cameras: Cameras, num_rays: int, seed: int) -> Tuple[Int[Tensor, "N"], Float[Tensor, "N 2"]]:
    """The camera index and (y, x) pixel-centre coordinates of :func:`pixel_lattice_rays`' rays."""
    heights, widths = cameras.height.flatten().tolist(), cameras.width.flatten().tolist()
    pixels = sum(h * w for h, w in zip(heights, widths))
    stride = max(1, int(round((pixels / max(num_rays, 1)) ** 0.5)))
    generator = torch.Generator().manual_seed(seed)
    index, coords = [], []
    for camera, (h, w) in enumerate(zip(heights, widths)):
        dy, dx = (torch.randint(stride, (2,), generator=generator) + 0.5).tolist()
        ys, xs = torch.arange(dy, h, stride), torch.arange(dx, w, stride)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).view(-1, 2)
        coords.append(grid)
        index.append(torch.full((len(grid),), camera, dtype=torch.long))
    return torch.cat(index), torch.cat(coords)


class FieldBoxCollider(AABBBoxCollider):
    """nerfstudio's box collider on the field's current box (which shrinks in training and reloads with the
    checkpoint) instead of the dataparser's fixed scene box."""

    def __init__(self, field: PanopticTensoRFField, near_plane: float) -> None:
        super().__init__(scene_box=None, near_plane=near_plane)  # type: ignore[arg-type]
        self._box = lambda: field.aabb  # a closure, so the field is not registered twice as a submodule

    def set_nears_and_fars(self, ray_bundle: RayBundle) -> RayBundle:
        nears, fars = self._intersect_with_aabb(ray_bundle.origins, ray_bundle.directions, self._box())
        ray_bundle.nears = nears[..., None]
        ray_bundle.fars = fars[..., None]
        return ray_bundle


class PanopticLiftingModel(Model):
    """Panoptic radiance field (paper Sec. 3). Needs the dataset's class table in ``metadata``."""

    config: PanopticLiftingModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        metadata = self.kwargs.get("metadata") or {}
        class_table = metadata.get(CLASS_TABLE_METADATA_KEY)
        if not isinstance(class_table, ClassTable):
            raise ValueError(
                "panoptic-lifting needs a labelled dataset: its transforms.json must point to a class table "
                "(use the panoptic-lifting datamanager; see README, 'Label data contract')"
            )
        self.class_table = class_table
        cfg = self.config
        self.field = PanopticTensoRFField(
            aabb=self.scene_box.aabb,
            num_classes=class_table.num_classes,
            num_surrogate_ids=cfg.num_surrogate_ids,
            init_resolution=cfg.init_resolution,
            density_components=cfg.density_components,
            color_components=cfg.color_components,
            appearance_dim=cfg.appearance_dim,
            density_shift=cfg.density_shift,
            density_scale=cfg.density_scale,
            color_mlp_width=cfg.color_mlp_width,
            semantic_mlp_layers=cfg.semantic_mlp_layers,
            semantic_mlp_width=cfg.semantic_mlp_width,
            instance_mlp_layers=cfg.instance_mlp_layers,
            instance_mlp_width=cfg.instance_mlp_width,
            position_frequencies=cfg.position_frequencies,
            implementation=resolve_implementation(cfg.implementation),
        )
        self.occupancy = OccupancyGrid(cfg.occupancy_grid_resolution) if cfg.occupancy_grid_resolution > 0 else None
        self.sampler = UniformSampler(num_samples=cfg.num_samples, single_jitter=True)
        self.max_kept_samples = cfg.max_kept_samples_per_ray
        self._set_sample_counts()
        self.collider = FieldBoxCollider(self.field, near_plane=cfg.collider_params["near_plane"])
        self.renderer_rgb = RGBRenderer(background_color=cfg.background_color)
        self.renderer_depth = DepthRenderer(method="expected")
        self.renderer_median_depth = DepthRenderer(method="median")
        self.renderer_accumulation = AccumulationRenderer()
        self.register_buffer("is_thing_lut", torch.tensor([False, *class_table.is_thing]), persistent=False)
        self.register_buffer("class_colors", class_palette(class_table), persistent=False)
        self.register_buffer("instance_colors", instance_palette(cfg.num_surrogate_ids), persistent=False)
        frame = metadata.get(DATASET_FRAME_METADATA_KEY)
        self.dataset_frame: DatasetFrame = frame if isinstance(frame, DatasetFrame) else DatasetFrame.identity()
        self.edited: Optional[EditedScene] = None
        self.view_cameras: Optional[Cameras] = None  # training cameras (the pipeline sets them): instance regions
        # the config's edit list is read now (a bad file stops here) and applied at the first render, once the
        # checkpoint is loaded: instance regions come from the trained field
        self._pending_edits: Optional[Tuple[EditList, str]] = None
        if cfg.edits is not None:
            self._pending_edits = (load_edit_list(cfg.edits), str(cfg.edits))
        # the viewer's panel: class legend, click to select, edit buttons (holds no parameters)
        self.panoptic_panel = PanopticViewerPanel(self)
        from torchmetrics.functional import structural_similarity_index_measure
        from torchmetrics.image import PeakSignalNoiseRatio

        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = structural_similarity_index_measure
        self.step = 0
        self.loss_timings: Optional[Dict[str, float]] = None  # a benchmark sets {} to time each loss
        self.unassigned_instances_total = 0
        self._last_overflow_warning_step = -(10**9)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # checkpoints written before the occupancy grid existed: keep everything occupied (it refreshes in
        # training). Only when this model's own keys are being loaded: nerfstudio's pipeline loads the model, then
        # itself with the model's keys left out, and that second pass must not reset the grid just loaded.
        if self.occupancy is not None and any(key.startswith(prefix + "field.") for key in state_dict):
            grid = prefix + "occupancy."
            state_dict.setdefault(grid + "density_max", torch.full_like(self.occupancy.density_max, float("inf")))
            state_dict.setdefault(grid + "occupied", torch.ones_like(self.occupancy.occupied))
            state_dict.setdefault(grid + "visible", torch.ones_like(self.occupancy.visible))
        # checkpoints written before the box could shrink: the heads' box is the grids' box
        if prefix + "field.aabb" in state_dict:
            state_dict.setdefault(prefix + "field.head_aabb", state_dict[prefix + "field.aabb"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ training plumbing
    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        f = self.field
        return {
            "fields": list(f.color_mlp.parameters()) + list(f.appearance_basis.parameters()),
            "encodings": list(f.density_encoding.parameters()) + list(f.color_encoding.parameters()),
            "semantic_head": list(f.semantic_head.parameters()),
            "instance_head": list(f.instance_head.parameters()),
        }

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        def set_step(step: int) -> None:
            self.step = step

        def rebuild_grid_optimiser() -> None:
            optimizers = training_callback_attributes.optimizers
            assert optimizers is not None and training_callback_attributes.pipeline is not None
            group = optimizers.config["encodings"]
            params = training_callback_attributes.pipeline.get_param_groups()["encodings"]
            optimizers.optimizers["encodings"] = group["optimizer"].setup(params=params)
            optimizers.parameters["encodings"] = params
            if group["scheduler"]:
                optimizers.schedulers["encodings"] = (
                    group["scheduler"].setup().get_scheduler(optimizer=optimizers.optimizers["encodings"], lr_init=group["optimizer"].lr)
                )

        def upsample_and_rebuild_optimiser(step: int) -> None:
            self.field.upsample_grids(resolution_at_step(self.config, step))
            self._set_sample_counts()
            rebuild_grid_optimiser()
            counts = (f", {self.sampler.num_samples} samples per ray, at most {self.max_kept_samples} shaded"
                      if self.config.samples_follow_resolution else "")
            CONSOLE.print(f"[dim]step {step}: grids upsampled to {self.field.grid_resolution}^3{counts}")

        def shrink_box_and_rebuild_optimiser(step: int) -> None:
            pipeline = training_callback_attributes.pipeline
            assert pipeline is not None
            old = self.field.aabb.clone()
            self.shrink_box(pipeline.datamanager.train_dataset.cameras)
            rebuild_grid_optimiser()
            share = float((self.field.aabb[1] - self.field.aabb[0]).prod() / (old[1] - old[0]).prod())
            CONSOLE.print(f"[dim]step {step}: scene box shrunk to the seen surfaces, {100 * share:.0f}% of its volume "
                          f"({self.field.aabb.cpu().numpy().round(2).tolist()})")

        callbacks = [
            TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], set_step, update_every_num_iters=1)
        ]
        if self.occupancy is not None:
            def update_occupancy(step: int) -> None:
                pipeline = training_callback_attributes.pipeline
                assert pipeline is not None
                self.update_occupancy(step, pipeline.datamanager.train_dataset.cameras)

            callbacks.append(
                TrainingCallback(
                    [TrainingCallbackLocation.AFTER_TRAIN_ITERATION], update_occupancy, update_every_num_iters=1
                )
            )
        if self.config.box_shrink_step > 0:
            callbacks.append(
                TrainingCallback(
                    [TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                    shrink_box_and_rebuild_optimiser,
                    iters=(self.config.box_shrink_step,),
                )
            )
        if self.config.upsampling_iters:
            callbacks.append(
                TrainingCallback(
                    [TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                    upsample_and_rebuild_optimiser,
                    iters=tuple(self.config.upsampling_iters),
                )
            )
        return callbacks

    def update_occupancy(self, step: int, cameras: Optional[Cameras] = None) -> None:
        """Refresh the occupancy grid every ``occupancy_update_every`` steps once warmed up, and which cells the
        training ``cameras`` see every ``visibility_update_every`` steps (never without cameras)."""
        cfg = self.config
        if self.occupancy is None or step < cfg.occupancy_warmup_steps:
            return
        since = step - cfg.occupancy_warmup_steps
        if since % cfg.occupancy_update_every:
            return
        if cameras is not None and cfg.visibility_update_every > 0 and since % cfg.visibility_update_every == 0:
            self.update_visibility(cameras, seed=step)
        # the longest step a sample can span: the box diagonal split into num_samples (conservative)
        extent = self.field.aabb[1] - self.field.aabb[0]
        step_size = float(extent.norm()) / self.sampler.num_samples
        self.occupancy.update(self.field.density, step_size, cfg.occupancy_alpha_threshold)

    @torch.no_grad()
    def update_visibility(self, cameras: Cameras, seed: int = 0, chunk: int = 4096) -> float:
        """Mark as visible the occupancy cells that rays of the training ``cameras`` reach (``visibility_rays`` rays
        on a pixel lattice with a random offset); returns the visible share of the grid."""
        assert self.occupancy is not None
        cfg = self.config
        threshold = cfg.termination_transmittance if cfg.termination_transmittance > 0 else 1e-4
        bundle = pixel_lattice_rays(cameras.to(self.device), cfg.visibility_rays, seed)
        seen = torch.zeros_like(self.occupancy.visible)
        for start in range(0, len(bundle), chunk):
            samples, positions, density = self._march(bundle[start : start + chunk])
            step_depth = (density * samples.deltas)[..., 0]
            optical_depth = torch.cumsum(step_depth, dim=1) - step_depth  # up to each sample, not through it
            seen |= cells_seen(positions, torch.exp(-optical_depth), self.occupancy.resolution, threshold)
        self.occupancy.set_visible(seen)
        return float(seen.float().mean())

    def _march(self, ray_bundle: RayBundle) -> Tuple[RaySamples, Float[Tensor, "R S 3"], Float[Tensor, "R S 1"]]:
        """Samples of rays as the model renders them (the collider sets their near and far ends), their
        box-normalised positions and the density there (skipped cells and terminated rays: zero)."""
        samples = self.sampler(self.collider(ray_bundle))
        positions = self.field.normalise_positions(samples.frustums.get_positions())
        return samples, positions, self._density_along_rays(positions, samples.deltas)

    def ray_weights(self, ray_bundle: RayBundle) -> Tuple[Float[Tensor, "R S"], Float[Tensor, "R S"]]:
        """Rendering weights of each ray's samples and the samples' mid-distances, sampled as the model renders."""
        samples, _, density = self._march(ray_bundle)
        t_mid = ((samples.frustums.starts + samples.frustums.ends) / 2)[..., 0]
        return samples.get_weights(density)[..., 0], t_mid

    @torch.no_grad()
    def shrink_box(self, cameras: Cameras, chunk: int = 4096) -> None:
        """Shrink the field's box to the surfaces that ``box_shrink_rays`` random rays of ``cameras`` see now,
        and start the occupancy grid afresh over it."""
        cfg = self.config
        generator = torch.Generator().manual_seed(self.step)
        num = cfg.box_shrink_rays
        index = torch.randint(len(cameras), (num,), generator=generator)
        size = torch.stack([cameras.height[index, 0], cameras.width[index, 0]], dim=-1).float()
        coords = torch.rand(num, 2, generator=generator) * size
        bundle = cameras.to(self.device).generate_rays(camera_indices=index[:, None].to(self.device), coords=coords.to(self.device))
        points = []
        for start in range(0, num, chunk):
            part = bundle[start : start + chunk]
            weights, t_mid = self.ray_weights(part)
            points.append(ray_surface_points(part.origins, part.directions, weights, t_mid))
        box = box_around_points(torch.cat(points), self.field.aabb, margin=cfg.box_shrink_margin)
        self.field.shrink_box(box)
        if self.occupancy is not None:
            self.occupancy.reset()
            if self.step >= cfg.occupancy_warmup_steps:
                self.update_occupancy(cfg.occupancy_warmup_steps, cameras)

    def update_to_step(self, step: int) -> None:
        """Grow the grids to the size they had at ``step`` (called before a checkpoint is loaded)."""
        self.step = step
        resolution = resolution_at_step(self.config, step)
        if resolution != self.field.grid_resolution:
            self.field.upsample_grids(resolution)
        self._set_sample_counts()

    def _set_sample_counts(self) -> None:
        """Samples per ray and the shaded-sample cap for the grids' current resolution
        (``samples_follow_resolution``; otherwise the configured counts)."""
        cfg = self.config
        if not cfg.samples_follow_resolution:
            return
        self.sampler.num_samples, self.max_kept_samples = samples_at_resolution(
            cfg.num_samples, cfg.max_kept_samples_per_ray, self.field.grid_resolution, cfg.final_resolution
        )

    # ------------------------------------------------------------------ rendering
    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:  # type: ignore[override]
        outputs = self._render(ray_bundle)
        if not self.training:
            outputs.update(self._panoptic_views(outputs["rgb"], outputs["semantic_probs"], outputs["instance_probs"],
                                                outputs["accumulation"]))
            # the viewer and ns-render need one value per ray and output; per-class vectors stay in training
            del outputs["semantic_probs"], outputs["instance_probs"]
        return outputs

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box: Optional[OrientedBox] = None) -> Dict[str, Tensor]:
        """nerfstudio's whole-image render (viewer, ns-render, evaluation), with the image's small panoptic
        segments merged into their neighbours (``min_segment_share``)."""
        outputs = super().get_outputs_for_camera(camera, obb_box=obb_box)
        if self.config.min_segment_share <= 0 or "semantic_id" not in outputs:
            return outputs
        class_map, instance_map = outputs["semantic_id"][..., 0].long(), outputs["instance_id"][..., 0].long()
        height, width = class_map.shape
        merged_classes, merged_instances = merge_small_segments(
            class_map, instance_map, round(self.config.min_segment_share * height * width)
        )
        if merged_classes is class_map:  # nothing to merge: the pictures the rays rendered stand
            return outputs
        class_map, instance_map = merged_classes, merged_instances
        rgb = outputs["rgb"].reshape(-1, 3)
        instance_ids = instance_map.reshape(-1).to(rgb.device)
        views = self._panoptic_pictures(rgb, class_map.reshape(-1).to(rgb.device), instance_ids, int(instance_ids.max()))
        outputs.update({key: value.reshape(height, width, -1) for key, value in views.items()})
        return outputs

    @torch.no_grad()
    def render_surface(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        """What the export needs of rays (eval mode, edits applied): colour, accumulation, expected and median depth
        (where the accumulated weight passes a half: on the surface, never between a foreground edge and what lies
        behind), the rendered class and surrogate-id distributions and the panoptic labels the renders show."""
        outputs = self._render(self.collider(ray_bundle), median_depth=True)
        class_id, instance_id = panoptic_labels(outputs["semantic_probs"], outputs["instance_probs"], self.is_thing_lut,
                                                outputs["accumulation"], self.config.void_accumulation)
        outputs["semantic_id"], outputs["instance_id"] = class_id, instance_id
        return outputs

    @torch.no_grad()
    def density_at_points(self, unit_positions: Float[Tensor, "N 3"]) -> Float[Tensor, "N"]:
        """Density of the scene the renders show (edits applied) at box-normalised points; zero where the occupancy
        grid skips, as along rays (the export's dense queries)."""
        edited = self._active_edits()
        queried = self._queried(unit_positions, edited)
        out = unit_positions.new_zeros(len(unit_positions))
        index = torch.arange(len(unit_positions), device=out.device) if queried is None else queried.nonzero()[:, 0]
        if len(index) == 0:
            return out
        if edited is None:
            sigma = self.field.density(unit_positions[index])
        else:  # the stray specks of deleted instances go here too, as they do where the renders show them
            sigma = edited.density(unit_positions[index], remove_fragments=True)
        out[index] = sigma[:, 0].to(out.dtype)
        return out

    @torch.no_grad()
    def rgb_at_points(self, unit_positions: Float[Tensor, "N 3"], directions: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        """Colour of the scene the renders show (edits applied) at box-normalised points seen along ``directions``."""
        edited = self._active_edits()
        if edited is None:
            return self.field.rgb(unit_positions, directions)
        return edited.shade(unit_positions, directions)[0]

    def _render(self, ray_bundle: RayBundle, median_depth: bool = False) -> Dict[str, Tensor]:
        cfg = self.config
        edited = self._active_edits()
        ray_samples = self.sampler(ray_bundle)
        num_rays, num_samples = ray_samples.shape[:2]
        positions = self.field.normalise_positions(ray_samples.frustums.get_positions())
        density = self._density_along_rays(positions, ray_samples.deltas, edited)
        weights = ray_samples.get_weights(density)  # [R, S, 1]
        keep = samples_to_shade(weights[..., 0], cfg.weight_threshold, self.max_kept_samples)
        ray_index, sample_index = keep.nonzero(as_tuple=True)
        kept_positions = positions[ray_index, sample_index]
        kept_weights = weights[ray_index, sample_index, 0]
        directions = ray_samples.frustums.directions[ray_index, sample_index]
        if edited is None:
            rgb_samples = self.field.rgb(kept_positions, directions)
        else:
            (ray_index, sample_index, kept_positions, kept_weights, directions, weights, rgb_samples, semantic_samples,
             instance_samples) = self._shade_edited(edited, ray_samples, positions, density, weights, keep)
        # with a 'random' background the loss blends one in (nerfstudio's convention); black when rendering
        rgb = self.renderer_rgb(rgb=rgb_samples, weights=kept_weights[:, None], ray_indices=ray_index, num_rays=num_rays)
        accumulation = self.renderer_accumulation(weights)
        depth = self.renderer_depth(weights, ray_samples)

        seg_weights = kept_weights.detach() if cfg.block_segmentation_gradients else kept_weights
        if edited is None:
            semantic_probs = self._render_segmentation(self.field.semantic_scores(kept_positions), seg_weights, ray_index, num_rays)
            instance_probs = self._render_segmentation(self.field.instance_scores(kept_positions), seg_weights, ray_index, num_rays)
        else:  # the edited scene mixes probabilities (bounded fields)
            semantic_probs = render_sparse(semantic_samples, seg_weights, ray_index, num_rays)
            instance_probs = render_sparse(instance_samples, seg_weights, ray_index, num_rays)

        outputs = {
            "rgb": rgb,
            "accumulation": accumulation,
            "depth": depth,
            "semantic_probs": semantic_probs,
            "instance_probs": instance_probs,
        }
        if self.training and cfg.distortion_loss_mult > 0:
            spacing = ray_samples.spacing_starts, ray_samples.spacing_ends  # normalised distance along the ray
            outputs["distortion"] = distortion_loss(weights[..., 0], spacing[0][..., 0], spacing[1][..., 0])  # type: ignore[index]
        if self.training and cfg.sparse_depth_loss_mult > 0:  # per-sample weights for the sparse depth loss
            outputs.update(sample_weights=weights, sample_starts=ray_samples.frustums.starts,
                           sample_ends=ray_samples.frustums.ends)
        if median_depth:
            outputs["depth_median"] = self.renderer_median_depth(weights, ray_samples)
        return outputs

    def _shade_edited(self, edited: EditedScene, ray_samples: RaySamples, positions: Float[Tensor, "R S 3"],
                      density: Float[Tensor, "R S 1"], weights: Float[Tensor, "R S 1"], keep: Bool[Tensor, "R S"]):
        """Shade the kept samples of an edited scene. A shaded sample that the field gives to a deleted instance but
        lies outside its support (a speck) is emptied and its ray marched again, up to ``EDITED_MARCHES`` times:
        the samples behind it, which the first march may not have queried (the ray had ended there), are queried
        now, so what lies behind shows. The other rays keep their samples."""
        cfg = self.config
        ray_index, sample_index = keep.nonzero(as_tuple=True)
        directions_all = ray_samples.frustums.directions
        removed = torch.zeros_like(density[..., 0])  # [R, S] speck density emptied so far
        parts = []  # per march: the kept samples of the rays settled in it
        redo = torch.ones(keep.shape[0], dtype=torch.bool, device=keep.device)
        for march in range(EDITED_MARCHES):
            kept_positions = positions[ray_index, sample_index]
            directions = directions_all[ray_index, sample_index]
            rgb, semantic, instance, missed = edited.shade(kept_positions, directions)
            redo = torch.zeros_like(redo)
            if march < EDITED_MARCHES - 1:
                redo[ray_index[missed > 0]] = True
            settled = ~redo[ray_index]
            parts.append((ray_index[settled], sample_index[settled], rgb[settled], semantic[settled], instance[settled]))
            if not bool(redo.any()):
                break
            # empty the deleted instance's density there and march those rays again, behind it too
            hit = missed > 0
            removed = removed.index_put((ray_index[hit], sample_index[hit]), missed[hit], accumulate=True)
            rays = redo.nonzero()[:, 0]
            density = density.index_put((rays,), self._density_along_rays(positions[rays], ray_samples.deltas[rays],
                                                                          edited, removed[rays]))
            weights = ray_samples.get_weights(density)
            keep = samples_to_shade(weights[..., 0], cfg.weight_threshold, self.max_kept_samples) & redo[:, None]
            ray_index, sample_index = keep.nonzero(as_tuple=True)
        ray_index, sample_index, rgb, semantic, instance = (torch.cat(x) for x in zip(*parts))
        return (ray_index, sample_index, positions[ray_index, sample_index], weights[ray_index, sample_index, 0],
                directions_all[ray_index, sample_index], weights, rgb, semantic, instance)

    def _queried(self, unit_positions: Float[Tensor, "N 3"], edited: Optional[EditedScene]) -> Optional[Bool[Tensor, "N"]]:
        """Where the renders query the field: the occupancy grid's occupied cells, and where an edit's copies stand
        (the unedited grid may be empty there); None while the grid holds everything (before its first refresh)."""
        if self.occupancy is None or bool(self.occupancy.occupied.all()):
            return None
        queried = self.occupancy.lookup(unit_positions)
        if edited is not None:
            queried = queried | edited.covers(unit_positions)
        return queried

    def _density_along_rays(
        self, positions: Float[Tensor, "R S 3"], deltas: Float[Tensor, "R S 1"], edited: Optional[EditedScene] = None,
        removed: Optional[Float[Tensor, "R S"]] = None,
    ) -> Float[Tensor, "R S 1"]:
        """Field density at the samples (of the ``edited`` scene if given, less ``removed`` where given); zero (not
        queried) in unoccupied cells and behind terminated rays.

        Samples are queried front to back in ``marching_chunks`` pieces; after each piece, rays whose
        transmittance fell below ``termination_transmittance`` stop.
        """
        cfg = self.config
        num_rays, num_samples = positions.shape[:2]
        query = self.field.density if edited is None else edited.density
        removed_flat = removed.reshape(-1) if removed is not None else None

        def density_at(unit: Float[Tensor, "N 3"], flat_index: Int[Tensor, "N"]) -> Float[Tensor, "N 1"]:
            sigma = query(unit)
            return sigma if removed_flat is None else (sigma - removed_flat[flat_index][:, None]).clamp_min(0)
        queried = self._queried(positions.view(-1, 3), edited)
        if queried is None and cfg.termination_transmittance <= 0:
            every = torch.arange(num_rays * num_samples, device=positions.device)
            return density_at(positions.view(-1, 3), every).view(num_rays, num_samples, 1)
        if queried is None:
            queried = torch.ones(num_rays, num_samples, dtype=torch.bool, device=positions.device)
        else:
            queried = queried.view(num_rays, num_samples)
        chunks = cfg.marching_chunks if cfg.termination_transmittance > 0 else 1
        bounds = np.linspace(0, num_samples, chunks + 1).round().astype(int)
        alive = torch.ones(num_rays, dtype=torch.bool, device=positions.device)
        optical_depth = torch.zeros(num_rays, device=positions.device)
        flat_index, values = [], []
        for start, end in zip(bounds[:-1], bounds[1:]):
            ray_index, sample_index = (queried[:, start:end] & alive[:, None]).nonzero(as_tuple=True)
            sample_index = sample_index + int(start)
            flat = ray_index * num_samples + sample_index
            sigma = density_at(positions[ray_index, sample_index], flat)
            flat_index.append(flat)
            values.append(sigma)
            with torch.no_grad():
                optical_depth.index_add_(0, ray_index, sigma[:, 0].detach() * deltas[ray_index, sample_index, 0])
                alive = torch.exp(-optical_depth) > cfg.termination_transmittance
        density = positions.new_zeros(num_rays * num_samples, 1)
        density = density.index_put((torch.cat(flat_index),), torch.cat(values))
        return density.view(num_rays, num_samples, 1)

    def _render_segmentation(
        self, scores: Float[Tensor, "M K"], weights: Float[Tensor, "M"], ray_index: Int[Tensor, "M"], num_rays: int
    ) -> Float[Tensor, "R K"]:
        if self.config.bounded_fields:
            # probabilities per sample: the rendered vector sums to the ray's opacity, never more than 1
            return render_sparse(F.softmax(scores, dim=-1), weights, ray_index, num_rays)
        # ablation: render unbounded logits, turn them into a distribution afterwards
        return F.softmax(render_sparse(scores, weights, ray_index, num_rays), dim=-1)

    def _panoptic_views(
        self, rgb: Float[Tensor, "R 3"], semantic_probs: Float[Tensor, "R C"], instance_probs: Float[Tensor, "R K"],
        accumulation: Float[Tensor, "R 1"],
    ) -> Dict[str, Tensor]:
        class_id, instance_id = panoptic_labels(semantic_probs, instance_probs, self.is_thing_lut, accumulation,
                                                self.config.void_accumulation)
        return self._panoptic_pictures(rgb, class_id, instance_id, instance_probs.shape[-1])

    def _panoptic_pictures(self, rgb: Float[Tensor, "R 3"], class_id: Int[Tensor, "R"], instance_id: Int[Tensor, "R"],
                           num_ids: int) -> Dict[str, Tensor]:
        palette = self.instance_colors
        if num_ids + 1 > len(palette):  # copies made by edits have ids after the surrogate ids
            palette = instance_palette(num_ids).to(rgb.device)
        semantics, instances, panoptic = colourise(rgb, class_id, instance_id, self.class_colors, palette)
        return {
            "semantics": semantics,
            "instances": instances,
            "panoptic": panoptic,
            "semantic_id": class_id[:, None].float(),
            "instance_id": instance_id[:, None].float(),
        }

    # ------------------------------------------------------------------ losses and metrics
    def get_metrics_dict(self, outputs, batch) -> Dict[str, Tensor]:
        outputs, _ = split_sparse_depth_rays(outputs, batch)
        image = batch["image"][..., :3].to(outputs["rgb"].device)
        return {"psnr": self.psnr(outputs["rgb"].detach(), image)}

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        cfg = self.config
        outputs, depth_rays = split_sparse_depth_rays(outputs, batch)
        device = outputs["rgb"].device
        with self._timed("rgb_loss"):
            pred_rgb, gt_rgb = self.renderer_rgb.blend_background_for_loss_computation(
                pred_image=outputs["rgb"], pred_accumulation=outputs["accumulation"], gt_image=batch["image"].to(device)
            )
            losses: Dict[str, Tensor] = {"rgb_loss": cfg.rgb_loss_mult * F.mse_loss(pred_rgb, gt_rgb)}
        if self.training:
            if cfg.tv_density_mult > 0:
                losses["tv_density"] = cfg.tv_density_mult * tv_loss(self.field.density_encoding.plane_coef)
            if cfg.distortion_loss_mult > 0 and "distortion" in outputs:
                losses["distortion_loss"] = cfg.distortion_loss_mult * outputs["distortion"]
            if cfg.l1_density_mult > 0:
                encoding = self.field.density_encoding
                coefficients = torch.cat([encoding.plane_coef.view(-1), encoding.line_coef.view(-1)])
                losses["l1_density"] = cfg.l1_density_mult * coefficients.abs().mean()
            if cfg.tv_color_mult > 0:
                losses["tv_color"] = cfg.tv_color_mult * tv_loss(self.field.color_encoding.plane_coef)
            if depth_rays is not None and cfg.sparse_depth_loss_mult > 0:
                with self._timed("sparse_depth_loss"):
                    losses["sparse_depth_loss"] = cfg.sparse_depth_loss_mult * sparse_depth_loss(
                        depth_rays["sample_weights"], depth_rays["sample_starts"], depth_rays["sample_ends"],
                        batch["sparse_depth"].to(device), cfg.sparse_depth_relative_std,
                    )
        if "semantics" not in batch:  # evaluation batches carry no machine labels
            return losses

        semantics = batch["semantics"].to(device)
        instances = batch["instances"].to(device)
        is_thing = batch["is_thing"].to(device)
        labelled = (semantics > 0).float()
        if cfg.use_confidence:
            targets, confidence = batch["class_probs"].to(device), batch["confidence"].to(device)
        else:
            targets = batch["class_probs"].new_zeros(batch["class_probs"].shape).to(device)
            targets[semantics > 0, semantics[semantics > 0] - 1] = 1.0
            confidence = labelled
        image_rays = batch["is_single_image_ray"].to(device)
        scene_rays = ~image_rays

        if self.step >= cfg.semantic_loss_start_step and bool(scene_rays.any()):
            with self._timed("semantic_loss"):
                losses["semantic_loss"] = cfg.semantic_loss_mult * semantic_loss(
                    outputs["semantic_probs"][scene_rays], targets[scene_rays], confidence[scene_rays]
                )
        if self.step >= cfg.instance_loss_start_step:
            thing_rays = image_rays & is_thing & (instances > 0)
            probs = outputs["instance_probs"][thing_rays]
            with self._timed("linear_assignment"):
                assignment = assign_surrogate_ids(probs, instances[thing_rays])
            with self._timed("instance_loss"):
                losses["instance_loss"] = cfg.instance_loss_mult * instance_loss(
                    probs, assignment.target, confidence[thing_rays]
                )
            self._count_unassigned(assignment.num_instances, assignment.num_unassigned, metrics_dict)
        if cfg.use_segment_consistency and self.step >= cfg.consistency_loss_start_step:
            # the uniform rays of the image only: the extra thing rays would over-weight thing segments
            uniform = image_rays & ~batch["is_instance_ray"].to(device) if "is_instance_ray" in batch else image_rays
            with self._timed("consistency_loss"):
                segments = segment_ids_of(semantics[uniform], instances[uniform], is_thing[uniform])
                losses["consistency_loss"] = cfg.consistency_loss_mult * segment_consistency_loss(
                    outputs["semantic_probs"][uniform], segments, confidence[uniform]
                )
        return losses

    @contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        """Adds the seconds spent in the block to ``loss_timings[name]`` when a benchmark set it to a dict."""
        if self.loss_timings is None:
            yield
            return
        start = time.perf_counter()
        yield
        self.loss_timings[name] = self.loss_timings.get(name, 0.0) + time.perf_counter() - start

    def _count_unassigned(self, num_instances: int, num_unassigned: int, metrics_dict) -> None:
        if metrics_dict is not None:
            metrics_dict["instances_2d_in_image"] = torch.tensor(float(num_instances))
            metrics_dict["instances_without_surrogate_id"] = torch.tensor(float(num_unassigned))
        if num_unassigned == 0:
            return
        self.unassigned_instances_total += num_unassigned
        if self.step - self._last_overflow_warning_step >= 500:
            self._last_overflow_warning_step = self.step
            CONSOLE.print(
                f"[bold yellow]step {self.step}: an image has {num_instances} 2D instances but only "
                f"{self.config.num_surrogate_ids} surrogate ids; {num_unassigned} were left out of the instance loss "
                f"({self.unassigned_instances_total} so far). Raise --pipeline.model.num-surrogate-ids."
            )

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        image = batch["image"][..., :3].to(outputs["rgb"].device)
        rgb = outputs["rgb"]
        a, b = torch.moveaxis(image, -1, 0)[None], torch.moveaxis(rgb, -1, 0)[None]
        metrics = {"psnr": float(self.psnr(b, a).item()), "ssim": float(self.ssim(b, a).item())}  # type: ignore[union-attr]
        depth = colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"])
        images = {
            "img": torch.cat([image, rgb], dim=1),
            "depth": depth,
            "panoptic": torch.cat([outputs["semantics"], outputs["instances"], outputs["panoptic"]], dim=1),
        }
        return metrics, images

    # ------------------------------------------------------------------ editing
    @torch.no_grad()
    def instance_regions(self) -> Dict[Tuple[int, int], InstanceRegion]:
        """Where each instance of the trained field is (model frame): boxes around the surface points the training
        views render with its id (``view_cameras``, set by the pipeline); without cameras, from a dense query."""
        if self.view_cameras is None:
            lookup = self.occupancy.lookup if self.occupancy is not None else None
            return find_instance_regions(self.field, self.is_thing_lut, self.config.edit_region_resolution,
                                         queried=lookup)
        was_training, edited = self.training, self.edited
        self.eval()
        self.edited, pending = None, self._pending_edits  # the unedited scene's instances
        self._pending_edits = None
        try:
            bundle = pixel_lattice_rays(self.view_cameras.to(self.device), self.config.edit_region_rays, seed=0)
            points, classes, instances = [], [], []
            for start in range(0, len(bundle), self.config.eval_num_rays_per_chunk):
                part = bundle[start : start + self.config.eval_num_rays_per_chunk]
                out = self.get_outputs(self.collider(part))
                hit = (out["accumulation"][:, 0] > 0.5) & (out["instance_id"][:, 0] > 0)
                points.append((part.origins + part.directions * out["depth"])[hit].cpu())
                classes.append(out["semantic_id"][hit, 0].long().cpu())
                instances.append(out["instance_id"][hit, 0].long().cpu())
        finally:
            self.train(was_training)
            self.edited, self._pending_edits = edited, pending
        regions = regions_from_points(torch.cat(points).numpy(), torch.cat(classes).numpy(),
                                      torch.cat(instances).numpy(), self.field.aabb.cpu().numpy(),
                                      self.config.edit_region_resolution)
        # where the field holds each instance but the views' rays fell between: edits cover those cells too, in the
        # pieces attached to the instance's box (specks elsewhere are removed where they show)
        lookup = self.occupancy.lookup if self.occupancy is not None else None
        dense = owned_cells(self.field, self.config.edit_region_resolution, queried=lookup)
        return {key: attach_cells(region, dense.get(key)) for key, region in regions.items()}

    def apply_edits(self, edit_list: Optional[EditList], source: str = "<edit list>",
                    regions: Optional[Dict[Tuple[int, int], InstanceRegion]] = None,
                    isolate: Optional[Tuple[int, int]] = None) -> None:
        """Render with ``edit_list`` applied from now on (None: unedited); ``isolate``: show only that
        (instance id, class id).
        Bad edits raise ``EditListError`` naming ``source``."""
        self._pending_edits = None
        if (edit_list is None or not edit_list.edits) and isolate is None:
            self.edited = None
            return
        if not self.config.bounded_fields:
            raise ValueError("editing needs bounded fields (--pipeline.model.bounded-fields True)")
        resolved = []
        if edit_list is not None and edit_list.edits:
            regions = self.instance_regions() if regions is None else regions
            resolved = resolve_edits(edit_list, regions, self.class_table, self.dataset_frame,
                                     self.config.num_surrogate_ids, source)
        skipped = self.occupancy.lookup if self.occupancy is not None else None
        self.edited = EditedScene(self.field, self.is_thing_lut, resolved, self.config.num_surrogate_ids, isolate,
                                  skipped)

    def _active_edits(self) -> Optional[EditedScene]:
        if self.training:
            return None
        if self._pending_edits is not None:
            self.apply_edits(*self._pending_edits)
        return self.edited
