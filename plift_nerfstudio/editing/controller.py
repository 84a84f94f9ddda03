"""The edits a model renders with: the edit list of its config (read when the model is built, applied at its first
render, once the checkpoint is loaded: instance regions come from the trained field) or the viewer's, the regions of
its instances, and the shading of an edited scene's samples.

Shading an edited scene also removes the stray specks of deleted instances that lie outside their regions: a shaded
sample that the field gives to a deleted instance is emptied and its ray marched again, up to ``EDITED_MARCHES``
times, querying the samples behind it (the first march may have ended the ray there), so what lies behind shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from jaxtyping import Bool, Float, Int
from nerfstudio.cameras.rays import RaySamples
from torch import Tensor

from plift_nerfstudio.editing.edit_list import EditList, load_edit_list
from plift_nerfstudio.editing.edited_field import EditedScene
from plift_nerfstudio.editing.regions import InstanceRegion, attach_cells, find_instance_regions, owned_cells, regions_from_points
from plift_nerfstudio.editing.resolve import resolve_edits
from plift_nerfstudio.model_components.marching import pixel_lattice_rays, scene_density_along_rays
from plift_nerfstudio.model_components.sparse_render import samples_to_shade

EDITED_MARCHES = 4
"""Marches of an edited render at most: shaded samples of deleted instances found outside their regions are emptied
and the rays marched again."""


@dataclass
class ShadedSamples:
    """The kept samples of an edited render and what they hold."""

    ray_index: Int[Tensor, "M"]
    sample_index: Int[Tensor, "M"]
    weights: Float[Tensor, "R S 1"]  # of all samples, after the specks were emptied
    rgb: Float[Tensor, "M 3"]
    semantic: Float[Tensor, "M C"]
    instance: Float[Tensor, "M K"]


class EditController:
    """The edits of one model (``model.editing``)."""

    def __init__(self, model, edits_file=None) -> None:
        self.model = model
        self.edited: Optional[EditedScene] = None
        # the config's edit list is read now (a bad file stops here) and applied at the first render
        self.pending: Optional[Tuple[EditList, str]] = None
        if edits_file is not None:
            self.pending = (load_edit_list(edits_file), str(edits_file))

    @torch.no_grad()
    def instance_regions(self) -> Dict[Tuple[int, int], InstanceRegion]:
        """Where each instance of the trained field is (model frame): boxes around the surface points the training
        views render with its id (``model.view_cameras``, set by the pipeline), with the lattice cells attached to
        them where the views see it or a dense query finds it; without cameras, from a dense query."""
        model = self.model
        lookup = model.occupancy.lookup if model.occupancy is not None else None
        if model.view_cameras is None:
            return find_instance_regions(model.field, model.is_thing_lut, model.config.edit_region_resolution,
                                         queried=lookup)
        was_training, edited, pending = model.training, self.edited, self.pending
        model.eval()
        self.edited, self.pending = None, None  # the unedited scene's instances
        try:
            bundle = pixel_lattice_rays(model.view_cameras.to(model.device), model.config.edit_region_rays, seed=0)
            points, classes, instances = [], [], []
            for start in range(0, len(bundle), model.config.eval_num_rays_per_chunk):
                part = bundle[start : start + model.config.eval_num_rays_per_chunk]
                out = model.get_outputs(model.collider(part))
                hit = (out["accumulation"][:, 0] > 0.5) & (out["instance_id"][:, 0] > 0)
                points.append((part.origins + part.directions * out["depth"])[hit].cpu())
                classes.append(out["semantic_id"][hit, 0].long().cpu())
                instances.append(out["instance_id"][hit, 0].long().cpu())
        finally:
            model.train(was_training)
            self.edited, self.pending = edited, pending
        regions = regions_from_points(torch.cat(points).numpy(), torch.cat(classes).numpy(),
                                      torch.cat(instances).numpy(), model.field.aabb.cpu().numpy(),
                                      model.config.edit_region_resolution)
        # where the field holds each instance but the views' rays fell between: edits cover those cells too, in the
        # pieces attached to the instance's box (specks elsewhere are removed where they show)
        dense = owned_cells(model.field, model.config.edit_region_resolution, queried=lookup)
        return {key: attach_cells(region, dense.get(key)) for key, region in regions.items()}

    def apply(self, edit_list: Optional[EditList], source: str = "<edit list>",
              regions: Optional[Dict[Tuple[int, int], InstanceRegion]] = None,
              isolate: Optional[Tuple[int, int]] = None) -> None:
        """Render with ``edit_list`` applied from now on (None: unedited); ``isolate``: show only that (instance id,
        class id). Bad edits raise ``EditListError`` naming ``source``."""
        model = self.model
        self.pending = None
        if (edit_list is None or not edit_list.edits) and isolate is None:
            self.edited = None
            return
        if not model.config.bounded_fields:
            raise ValueError("editing needs bounded fields (--pipeline.model.bounded-fields True)")
        resolved = []
        if edit_list is not None and edit_list.edits:
            regions = self.instance_regions() if regions is None else regions
            resolved = resolve_edits(edit_list, regions, model.class_table, model.dataset_frame,
                                     model.config.num_surrogate_ids, source)
        skipped = model.occupancy.lookup if model.occupancy is not None else None
        self.edited = EditedScene(model.field, model.is_thing_lut, resolved, model.config.num_surrogate_ids, isolate,
                                  skipped)

    def active(self) -> Optional[EditedScene]:
        """The edited scene the model renders now (never in training); a pending edit list is applied first."""
        if self.model.training:
            return None
        if self.pending is not None:
            self.apply(*self.pending)
        return self.edited

    def shade(self, edited: EditedScene, ray_samples: RaySamples, positions: Float[Tensor, "R S 3"],
              density: Float[Tensor, "R S 1"], keep: Bool[Tensor, "R S"]) -> ShadedSamples:
        """Shade the kept samples of an edited scene, marching again the rays that met a speck of a deleted
        instance; the other rays keep their samples."""
        model = self.model
        weights = ray_samples.get_weights(density)
        ray_index, sample_index = keep.nonzero(as_tuple=True)
        directions_all = ray_samples.frustums.directions
        removed = torch.zeros_like(density[..., 0])  # [R, S] speck density emptied so far
        parts = []  # per march: the kept samples of the rays settled in it
        redo = torch.ones(keep.shape[0], dtype=torch.bool, device=keep.device)
        for march in range(EDITED_MARCHES):
            rgb, semantic, instance, missed = edited.shade(positions[ray_index, sample_index],
                                                           directions_all[ray_index, sample_index])
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
            density = density.index_put((rays,), scene_density_along_rays(model, positions[rays], ray_samples.deltas[rays],
                                                                          edited, removed[rays]))
            weights = ray_samples.get_weights(density)
            keep = samples_to_shade(weights[..., 0], model.config.weight_threshold, model.max_kept_samples) & redo[:, None]
            ray_index, sample_index = keep.nonzero(as_tuple=True)
        ray_index, sample_index, rgb, semantic, instance = (torch.cat(x) for x in zip(*parts))
        return ShadedSamples(ray_index, sample_index, weights, rgb, semantic, instance)
