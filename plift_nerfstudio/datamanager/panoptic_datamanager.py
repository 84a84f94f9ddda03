"""DataManager that yields, each step, rays across the whole scene plus rays from one single image, with labels.

Scene rays feed the RGB and semantic losses; the single-image rays feed the instance loss (whose linear assignment
needs rays of one image) and the segment consistency loss. Both sets go into one ray bundle so the model runs once.
"""

from __future__ import annotations

import os

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Type

import numpy as np
import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.data.datasets.base_dataset import InputDataset
from nerfstudio.data.utils.dataloaders import CacheDataloader
from nerfstudio.model_components.ray_generators import RayGenerator
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor
from torch.utils.data import Dataset as TorchDataset

from plift_nerfstudio.labels.dataset_labels import (
    check_transforms,
    frame_label_files,
    frames_for_images,
    load_class_table_of_dataset,
    load_label_store,
    transforms_path_of,
)
from plift_nerfstudio.labels.store import (
    PanopticLabelStore,
    frames_with_labels,
    sample_distinct_pixels_in_mask,
    sample_pixels_in_mask,
)
from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.sparse_depth.points import SPARSE_DEPTH_FILE, load_sparse_depth, match_frames
from plift_nerfstudio.sparse_depth.rays import SparseDepthRays, concatenate_ray_bundles
from plift_nerfstudio.metadata import CLASS_TABLE_METADATA_KEY, DATASET_FRAME_METADATA_KEY


@dataclass
class PanopticDataManagerConfig(VanillaDataManagerConfig):
    """Scene-wide rays plus single-image rays, with the machine panoptic labels of each ray."""

    _target: Type = field(default_factory=lambda: PanopticDataManager)
    dataparser: NerfstudioDataParserConfig = field(default_factory=NerfstudioDataParserConfig)  # type: ignore[assignment]
    """Reads the nerfstudio dataset (transforms.json) that `ns-process-data` writes."""
    train_num_rays_per_batch: int = 2048
    """Rays drawn across all training images per step (RGB and semantic losses)."""
    single_image_num_rays: int = 1024
    """Rays drawn uniformly over the labelled pixels of one training image per step (segment consistency loss;
    the instance loss also uses those that fall on thing pixels)."""
    instance_num_rays: int = 1024
    """Extra rays from the same image, drawn among its thing pixels that carry a 2D instance id, for the instance
    loss (the authors sample up to 1024 thing rays). Distinct pixels: an image with fewer thing pixels gives fewer
    rays, none where it has none. 0 = the instance loss sees only the thing pixels among the uniform rays."""
    sparse_depth_num_rays: int = 0
    """Rays per step through points triangulated by plift-sparse-depth, each carrying its point's distance, for
    the model's sparse depth loss (--pipeline.model.sparse-depth-loss-mult). 0 = none."""
    sparse_depth_file: Optional[Path] = None
    """The points file; default: sparse_depth/points.npz beside the dataset's transforms.json."""


class Uint8Images(TorchDataset):
    """A dataset's frames with their images as uint8, for nerfstudio's image cache (``dataset[i]`` itself stays
    float32: the viewer and evaluation read it)."""

    def __init__(self, dataset: InputDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Dict:
        return self.dataset.get_data(index, image_type="uint8")


def unit_colours(image: Tensor) -> Tensor:
    """Pixel colours in [0, 1] as float32 (from cached uint8, as nerfstudio's float32 images are: value / 255)."""
    return image.float() / 255.0 if image.dtype == torch.uint8 else image


class PanopticDataManager(VanillaDataManager[InputDataset]):
    config: PanopticDataManagerConfig
    labels: Optional[PanopticLabelStore] = None
    sparse_depth: Optional[SparseDepthRays] = None

    def __init__(self, config: PanopticDataManagerConfig, *args, **kwargs) -> None:
        # nerfstudio's parser would stop on a malformed transforms.json without naming it (ns-train's --data sets
        # the datamanager's data, which nerfstudio copies to the dataparser's in super().__init__)
        check_transforms(config.data if config.data is not None else config.dataparser.data)
        super().__init__(config, *args, **kwargs)

    def create_train_dataset(self) -> InputDataset:
        self.class_table = load_class_table_of_dataset(self.config.dataparser.data)
        self.train_dataparser_outputs.metadata[CLASS_TABLE_METADATA_KEY] = self.class_table
        # edit lists and exports are in the dataset's frame: the model needs nerfstudio's map to its own
        self.train_dataparser_outputs.metadata[DATASET_FRAME_METADATA_KEY] = DatasetFrame(
            transform=self.train_dataparser_outputs.dataparser_transform.cpu().numpy().astype("float64"),
            scale=float(self.train_dataparser_outputs.dataparser_scale),
        )
        return super().create_train_dataset()

    def setup_train(self) -> None:
        # labels are checked before any image is cached: a bad file stops here, before the first step
        self.labels = self._load_labels()
        labelled = frames_with_labels(self.labels)
        if not labelled:
            raise ValueError(f"{self.config.dataparser.data}: no training frame has a labelled pixel")
        self._frame_has_labels = torch.zeros(self.labels.num_frames, dtype=torch.bool)
        self._frame_has_labels[labelled] = True
        CONSOLE.print(
            f"Panoptic labels: {self.labels.num_frames} frames, {self.class_table.num_classes} classes "
            f"({len(self.class_table.thing_ids)} thing classes), {self.labels.nbytes / 2**20:.0f} MB in memory"
        )
        # nerfstudio's own setup_train, with the training images cached as uint8 (a quarter of float32: 400 frames
        # of 960x540 take 0.6 GB instead of 2.5 GB); rays' colours become float when a batch is drawn
        assert self.train_dataset is not None
        CONSOLE.print("Setting up training dataset...")
        self.train_image_dataloader = CacheDataloader(
            Uint8Images(self.train_dataset),
            num_images_to_sample_from=self.config.train_num_images_to_sample_from,
            num_times_to_repeat_images=self.config.train_num_times_to_repeat_images,
            device=self.device,
            # nerfstudio's 4 loader processes per device, but no more than the CPUs this process may use (torch
            # warns about more, and they only read the images once into the cache)
            num_workers=min(self.world_size * 4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else
                            os.cpu_count() or 1),
            pin_memory=True,
            collate_fn=self.config.collate_fn,
            exclude_batch_keys_from_device=self.exclude_batch_keys_from_device,
        )
        self.iter_train_image_dataloader = iter(self.train_image_dataloader)
        self.train_pixel_sampler = self._get_pixel_sampler(self.train_dataset, self.config.train_num_rays_per_batch)
        self.train_ray_generator = RayGenerator(self.train_dataset.cameras.to(self.device))
        if self.config.sparse_depth_num_rays > 0:
            self.sparse_depth = self._load_sparse_depth()

    def _load_sparse_depth(self) -> SparseDepthRays:
        path = self.config.sparse_depth_file or transforms_path_of(self.config.dataparser.data).parent / SPARSE_DEPTH_FILE
        if not Path(path).is_file():
            data = transforms_path_of(self.config.dataparser.data).parent
            raise FileNotFoundError(
                f"{path}: no sparse depth file, which this preset trains with (--pipeline.datamanager."
                f"sparse-depth-num-rays {self.config.sparse_depth_num_rays}). Make it with `plift-sparse-depth --data "
                f"{data}` (needs COLMAP), or train without it: --pipeline.datamanager.sparse-depth-num-rays 0"
            )
        points = load_sparse_depth(Path(path))
        meta = check_transforms(self.config.dataparser.data)
        frames, _ = frames_for_images(self.config.dataparser.data, self.train_dataparser_outputs.image_filenames,
                                      self.image_path_of_frame)
        training_names = [str(frame["file_path"]) for frame in frames]
        full_widths = np.array([float(frame.get("w", meta.get("w", 0))) for frame in frames])
        if (full_widths <= 0).any():
            raise ValueError(f"{transforms_path_of(self.config.dataparser.data)}: the sparse depth loss needs each "
                             "frame's image width 'w'")
        rays = SparseDepthRays.build(points, match_frames(points, training_names, Path(path)), self.train_dataset.cameras,
                                     self.train_dataparser_outputs.dataparser_transform,
                                     float(self.train_dataparser_outputs.dataparser_scale), full_widths,
                                     device=self.device)
        CONSOLE.print(f"Sparse depth: {rays.num_observations} observations of {points.num_points} points from {path}")
        return rays

    def image_path_of_frame(self, file_path: Path) -> Path:
        """The image path the dataparser uses for a frame's ``file_path`` (maybe in a downscaled folder)."""
        data_dir = transforms_path_of(self.config.dataparser.data).parent
        return self.dataparser._get_fname(file_path, data_dir)  # type: ignore[attr-defined]

    def _load_labels(self) -> PanopticLabelStore:
        files = frame_label_files(
            self.config.dataparser.data, self.train_dataparser_outputs.image_filenames, self.image_path_of_frame
        )
        cameras = self.train_dataset.cameras
        image_hw: List[Tuple[int, int]] = [(int(h), int(w)) for h, w in zip(cameras.height.flatten(), cameras.width.flatten())]
        grow = float(getattr(self.dataparser, "downscale_factor", 1) or 1) / float(self.config.camera_res_scale_factor)
        original_hw = [(round(h * grow), round(w * grow)) for h, w in image_hw]
        return load_label_store(files, self.class_table, image_hw, original_hw)

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        self.train_count += 1
        image_batch = next(self.iter_train_image_dataloader)
        assert self.train_pixel_sampler is not None and self.labels is not None
        scene = self.train_pixel_sampler.sample(image_batch)
        image_rays = self._single_image_rays(image_batch, scene["indices"].device)
        indices = torch.cat([scene["indices"], image_rays["indices"]])
        num_scene, num_image = len(scene["indices"]), len(image_rays["indices"])
        batch: Dict[str, Tensor] = {
            "indices": indices,
            "image": unit_colours(torch.cat([scene["image"], image_rays["image"].to(scene["image"].device)])),
            "is_single_image_ray": torch.cat(
                [torch.zeros(num_scene, dtype=torch.bool), torch.ones(num_image, dtype=torch.bool)]
            ).to(indices.device),
            "is_instance_ray": torch.cat(
                [torch.zeros(num_scene, dtype=torch.bool), image_rays["is_instance_ray"]]
            ).to(indices.device),
        }
        batch.update(self.labels.gather(indices))
        ray_bundle = self.train_ray_generator(indices)
        if self.sparse_depth is not None:  # after the labelled rays; the model splits them off by count
            depth_rays, batch["sparse_depth"] = self.sparse_depth.sample(self.config.sparse_depth_num_rays)
            ray_bundle = concatenate_ray_bundles(ray_bundle, depth_rays)
        return ray_bundle, batch

    def _single_image_rays(self, image_batch: Dict, device: torch.device) -> Dict[str, Tensor]:
        """Rays from one training image (chosen at random among those with labels): ``single_image_num_rays``
        uniformly inside its labelled pixels, then up to ``instance_num_rays`` distinct thing pixels with a 2D
        instance id (flagged ``is_instance_ray``)."""
        assert self.labels is not None
        frame_ids = torch.as_tensor(image_batch["image_idx"]).cpu()
        candidates = torch.nonzero(self._frame_has_labels[frame_ids]).flatten()
        if len(candidates) == 0:
            raise ValueError("none of the cached training images has labelled pixels")
        position = int(candidates[torch.randint(len(candidates), (1,))])
        frame = int(frame_ids[position])
        mask = self.labels.labelled_mask(frame)
        if "mask" in image_batch:
            mask = mask & image_batch["mask"][position, ..., 0].cpu().bool()
        uniform = sample_pixels_in_mask(mask, self.config.single_image_num_rays)
        things = sample_distinct_pixels_in_mask(mask & self.labels.instance_mask(frame), self.config.instance_num_rays)
        yx = torch.cat([uniform, things])
        rgb = image_batch["image"][position][yx[:, 0].to(image_batch["image"].device), yx[:, 1].to(image_batch["image"].device)]
        indices = torch.cat([torch.full((len(yx), 1), frame, dtype=yx.dtype), yx], dim=1).to(device)
        is_instance_ray = torch.cat([torch.zeros(len(uniform), dtype=torch.bool), torch.ones(len(things), dtype=torch.bool)])
        return {"indices": indices, "image": rgb, "is_instance_ray": is_instance_ray}

    def get_train_rays_per_batch(self) -> int:
        """Rays per step at most (an image with few thing pixels gives fewer instance rays)."""
        return (self.config.train_num_rays_per_batch + self.config.single_image_num_rays + self.config.instance_num_rays
                + self.config.sparse_depth_num_rays)
