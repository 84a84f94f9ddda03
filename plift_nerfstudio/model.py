"""Panoptic Lifting as a nerfstudio model: renders colour, depth, semantics and 3D-consistent instance ids.

This module holds the model's config and nerfstudio's interface (``populate_modules``, ``get_outputs``,
``get_loss_dict``, the metrics, the training callbacks); the machinery is in ``model_components/`` (marching, space
skipping, sparse rendering, the grid schedule), ``losses/assembly.py`` (the loss dict), ``editing/controller.py``
(rendering edits) and ``panoptic.py`` (labels and pictures).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
import tyro
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.configs.config_utils import to_immutable_dict
from nerfstudio.data.scene_box import OrientedBox
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.model_components.ray_samplers import UniformSampler
from nerfstudio.model_components.renderers import AccumulationRenderer, DepthRenderer, RGBRenderer
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps
from torch import Tensor
from torch.nn import Parameter

from plift_nerfstudio.editing.controller import EditController
from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.editing.edit_list import EditList
from plift_nerfstudio.editing.edited_field import EditedScene
from plift_nerfstudio.editing.regions import InstanceRegion
from plift_nerfstudio.editing.viewer_panel import PanopticViewerPanel
from plift_nerfstudio.fields.occupancy import OccupancyGrid
from plift_nerfstudio.fields.panoptic_field import PanopticTensoRFField, resolve_implementation
from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.losses.assembly import loss_dict, split_sparse_depth_rays
from plift_nerfstudio.metadata import CLASS_TABLE_METADATA_KEY, DATASET_FRAME_METADATA_KEY
from plift_nerfstudio.model_components import grid_schedule, marching, space_skipping
from plift_nerfstudio.model_components.sparse_render import render_rays
from plift_nerfstudio.panoptic import (
    MIN_SEGMENT_SHARE,
    VOID_ACCUMULATION,
    class_palette,
    instance_palette,
    merge_small_segments_of_image,
    panoptic_labels,
    panoptic_pictures,
)


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
    loss_coefficients: tyro.conf.Suppress[Dict[str, float]] = to_immutable_dict({})
    """nerfstudio's loss weights, not read by this model (hidden from --help): the *_loss_mult options weigh its
    losses."""

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
    segmentation_grid_components: int = 0
    """Components of a VM grid of each segmentation head's own (0 = none: the heads see position only, as in the
    paper). Its features join the position in the head's MLP; it follows the density grids' box and resolution (times
    ``segmentation_grid_scale``), is trained at the grids' learning rate and only by that head's losses (the
    stop-gradient to density is kept)."""
    segmentation_grid_scale: float = 1.0
    """Resolution of the segmentation heads' own grids as a multiple of the density grids' (1 = the same). Finer head
    grids can draw class and instance boundaries that the geometry does not have (a door in a wall); their memory
    grows with the square of the scale."""
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
    """Edit list (JSON; docs/editing.md) applied when rendering: instances deleted, duplicated or moved.
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
    self_training_start_step: int = 0
    """Step from which the semantic loss's targets merge the labels with the field's own class on each ray
    (self-training on pseudo labels; 0 = never). Off in every preset: on the realistic rooms it cost mIoU, as it
    reinforces the field's own errors (docs/results.md)."""
    self_training_share: float = 0.5
    """Share of the field's own class in the merged semantic target (with self_training_start_step)."""

    # --- robustness components (paper Table 2); switch off to reproduce the ablation ---
    use_segment_consistency: bool = True
    """Segment consistency loss (Eq. 7)."""
    use_confidence: bool = True
    """Weight losses by per-pixel confidences and use the soft class distributions (TTA); off = one-hot, weight 1."""
    bounded_fields: bool = True
    """Render probabilities (softmax per sample); off = render logits and softmax afterwards."""
    block_segmentation_gradients: bool = True
    """Render segmentation with detached weights so its losses cannot move density."""



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
                "(use the panoptic-lifting datamanager; see docs/labels.md, 'The label data contract')"
            )
        self.class_table = class_table
        cfg = self.config
        self.field = PanopticTensoRFField(
            aabb=self.scene_box.aabb, num_classes=class_table.num_classes, num_surrogate_ids=cfg.num_surrogate_ids,
            init_resolution=cfg.init_resolution, density_components=cfg.density_components,
            color_components=cfg.color_components, appearance_dim=cfg.appearance_dim, density_shift=cfg.density_shift,
            density_scale=cfg.density_scale, color_mlp_width=cfg.color_mlp_width,
            semantic_mlp_layers=cfg.semantic_mlp_layers, semantic_mlp_width=cfg.semantic_mlp_width,
            instance_mlp_layers=cfg.instance_mlp_layers, instance_mlp_width=cfg.instance_mlp_width,
            position_frequencies=cfg.position_frequencies, segmentation_grid_components=cfg.segmentation_grid_components,
            segmentation_grid_scale=cfg.segmentation_grid_scale,
            implementation=resolve_implementation(cfg.implementation),
        )
        self.occupancy = OccupancyGrid(cfg.occupancy_grid_resolution) if cfg.occupancy_grid_resolution > 0 else None
        self.sampler = UniformSampler(num_samples=cfg.num_samples, single_jitter=True)
        self.max_kept_samples = cfg.max_kept_samples_per_ray
        grid_schedule.set_sample_counts(self)
        self.collider = marching.FieldBoxCollider(self.field, near_plane=cfg.collider_params["near_plane"])
        self.renderer_rgb = RGBRenderer(background_color=cfg.background_color)
        self.renderer_depth = DepthRenderer(method="expected")
        self.renderer_median_depth = DepthRenderer(method="median")
        self.renderer_accumulation = AccumulationRenderer()
        self.register_buffer("is_thing_lut", torch.tensor([False, *class_table.is_thing]), persistent=False)
        self.register_buffer("class_colors", class_palette(class_table), persistent=False)
        self.register_buffer("instance_colors", instance_palette(cfg.num_surrogate_ids), persistent=False)
        frame = metadata.get(DATASET_FRAME_METADATA_KEY)
        self.dataset_frame: DatasetFrame = frame if isinstance(frame, DatasetFrame) else DatasetFrame.identity()
        self.view_cameras: Optional[Cameras] = None  # training cameras (the pipeline sets them): instance regions
        self.editing = EditController(self, cfg.edits)  # a bad edit list stops here
        self.panoptic_panel = PanopticViewerPanel(self)  # the viewer's panel (holds no parameters)
        from torchmetrics.functional import structural_similarity_index_measure
        from torchmetrics.image import PeakSignalNoiseRatio

        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = structural_similarity_index_measure
        self.step = 0
        self.structure_version = 0  # bumped when space skipping or the grids change (distributed sync)
        self.loss_timings: Optional[Dict[str, float]] = None  # a benchmark sets {} to time each loss
        self.unassigned_instances_total = 0
        self.last_overflow_warning_step = -(10**9)

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

    # ------------------------------------------------------------------ training
    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        f = self.field
        return {
            "fields": list(f.color_mlp.parameters()) + list(f.appearance_basis.parameters()),
            "encodings": [p for encoding in f.grid_encodings() for p in encoding.parameters()],
            "semantic_head": f.semantic_head.mlp_parameters(),
            "instance_head": f.instance_head.mlp_parameters(),
        }

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        def set_step(step: int) -> None:
            self.step = step

        callbacks = [TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], set_step,
                                      update_every_num_iters=1)]
        callbacks += space_skipping.space_skipping_callbacks(self, training_callback_attributes)
        if self.config.upsampling_iters:
            callbacks.append(grid_schedule.upsampling_callback(self, training_callback_attributes))
        return callbacks

    def update_occupancy(self, step: int, cameras: Optional[Cameras] = None) -> None:
        """Refresh the occupancy grid (and, with ``cameras``, which cells they see) as training does at ``step``."""
        space_skipping.update_occupancy(self, step, cameras)

    def update_visibility(self, cameras: Cameras, seed: int = 0, chunk: int = 4096) -> float:
        """Mark the occupancy cells that rays of ``cameras`` reach; returns the visible share of the grid."""
        return space_skipping.update_visibility(self, cameras, seed, chunk)

    def shrink_box(self, cameras: Cameras, chunk: int = 4096) -> None:
        """Shrink the field's box to the surfaces ``cameras`` see now."""
        space_skipping.shrink_box(self, cameras, chunk)

    def update_to_step(self, step: int) -> None:
        """Grow the grids to the size they had at ``step`` (called before a checkpoint is loaded)."""
        grid_schedule.update_to_step(self, step)

    def ray_weights(self, ray_bundle: RayBundle) -> Tuple[Float[Tensor, "R S"], Float[Tensor, "R S"]]:
        """Rendering weights of each ray's samples and the samples' mid-distances, sampled as the model renders."""
        return marching.ray_weights(self, ray_bundle)

    # ------------------------------------------------------------------ rendering
    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:  # type: ignore[override]
        outputs = render_rays(self, ray_bundle)
        if not self.training:
            class_id, instance_id = panoptic_labels(outputs["semantic_probs"], outputs["instance_probs"],
                                                    self.is_thing_lut, outputs["accumulation"],
                                                    self.config.void_accumulation)
            outputs.update(panoptic_pictures(outputs["rgb"], class_id, instance_id, outputs["instance_probs"].shape[-1],
                                             self.class_colors, self.instance_colors))
            # the viewer and ns-render need one value per ray and output; per-class vectors stay in training
            del outputs["semantic_probs"], outputs["instance_probs"]
        return outputs

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box: Optional[OrientedBox] = None) -> Dict[str, Tensor]:
        """nerfstudio's whole-image render (viewer, ns-render, evaluation), with the image's small panoptic
        segments merged into their neighbours (``min_segment_share``)."""
        outputs = super().get_outputs_for_camera(camera, obb_box=obb_box)
        return merge_small_segments_of_image(outputs, self.config.min_segment_share, self.class_colors,
                                             self.instance_colors)

    @torch.no_grad()
    def render_surface(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        """What the export needs of rays (eval mode, edits applied): colour, accumulation, expected and median depth
        (where the accumulated weight passes a half: on the surface, never between a foreground edge and what lies
        behind), the rendered class and surrogate-id distributions and the panoptic labels the renders show."""
        outputs = render_rays(self, self.collider(ray_bundle), median_depth=True)
        outputs["semantic_id"], outputs["instance_id"] = panoptic_labels(
            outputs["semantic_probs"], outputs["instance_probs"], self.is_thing_lut, outputs["accumulation"],
            self.config.void_accumulation)
        return outputs

    @torch.no_grad()
    def density_at_points(self, unit_positions: Float[Tensor, "N 3"]) -> Float[Tensor, "N"]:
        """Density of the scene the renders show (edits applied, the stray specks of deleted instances too) at
        box-normalised points; zero where the occupancy grid skips, as along rays (the export's dense queries)."""
        edited = self.editing.active()
        queried = marching.queried_positions(self, unit_positions, edited)
        out = unit_positions.new_zeros(len(unit_positions))
        index = torch.arange(len(unit_positions), device=out.device) if queried is None else queried.nonzero()[:, 0]
        if len(index) == 0:
            return out
        if edited is None:
            sigma = self.field.density(unit_positions[index])
        else:
            sigma = edited.density(unit_positions[index], remove_fragments=True)
        out[index] = sigma[:, 0].to(out.dtype)
        return out

    @torch.no_grad()
    def rgb_at_points(self, unit_positions: Float[Tensor, "N 3"], directions: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        """Colour of the scene the renders show (edits applied) at box-normalised points seen along ``directions``."""
        edited = self.editing.active()
        if edited is None:
            return self.field.rgb(unit_positions, directions)
        return edited.shade(unit_positions, directions)[0]

    # ------------------------------------------------------------------ losses and metrics
    def get_metrics_dict(self, outputs, batch) -> Dict[str, Tensor]:
        outputs, _ = split_sparse_depth_rays(outputs, batch)
        image = batch["image"][..., :3].to(outputs["rgb"].device)
        return {"psnr": self.psnr(outputs["rgb"].detach(), image)}

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        return loss_dict(self, outputs, batch, metrics_dict)

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

    # ------------------------------------------------------------------ editing (editing/controller.py)
    @property
    def edited(self) -> Optional[EditedScene]:
        """The edited scene the model renders (None: unedited)."""
        return self.editing.edited

    def instance_regions(self) -> Dict[Tuple[int, int], InstanceRegion]:
        """Where each instance of the trained field is (model frame), by (instance id, class id)."""
        return self.editing.instance_regions()

    def apply_edits(self, edit_list: Optional[EditList], source: str = "<edit list>",
                    regions: Optional[Dict[Tuple[int, int], InstanceRegion]] = None,
                    isolate: Optional[Tuple[int, int]] = None) -> None:
        """Render with ``edit_list`` applied from now on (None: unedited); ``isolate``: show only that (instance id,
        class id). Bad edits raise ``EditListError`` naming ``source``."""
        self.editing.apply(edit_list, source, regions, isolate)
