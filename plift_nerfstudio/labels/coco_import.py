"""Import 2D panoptic predictions in COCO panoptic format as the label files of a nerfstudio dataset.

COCO panoptic format: one JSON file with ``annotations`` (per image: ``file_name`` of a PNG and its
``segments_info``, each ``{"id", "category_id"}`` and optionally ``"score"``) and optionally ``categories``; one RGB
PNG per image whose pixel value ``R + 256 G + 256^2 B`` is a segment id of ``segments_info`` (0 = unlabelled).

Each segment takes the target class its category maps to (segments of unused categories become void); thing
segments get instance ids 1..K per frame. With scores, a frame also gets a class-probability file: one-hot on its
class, confidence = the segment's score. Predictions are matched to frames by file stem (``frame_00001.png``
labels ``images/frame_00001.jpg``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np

from plift_nerfstudio.labels.class_mapping import ClassMapping, SourceCategory, load_class_mapping
from plift_nerfstudio.core.errors import LabelFileError, read_json_file
from plift_nerfstudio.labels.frame_labels import read_image
from plift_nerfstudio.labels.writer import FrameLabelArrays, ImportReport, ReadFrameLabels, import_frames_by_stem


def read_segment_ids(png: Path) -> np.ndarray:
    """Segment id per pixel of a COCO panoptic PNG (``R + 256 G + 256^2 B``)."""
    rgb = read_image(png, "panoptic PNG", cv2.IMREAD_COLOR)[..., ::-1].astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def labels_from_segments(
    segment_ids_hw: np.ndarray, segments_info: List[dict], mapping: ClassMapping, source: str
) -> FrameLabelArrays:
    """Class, instance and (with scores) confidence maps of one frame; ``source`` names the PNG in errors.

    ``segments_info`` must have passed :func:`check_segments_info`.
    """
    target_of = mapping.target_of_id()
    things = set(mapping.target.thing_ids)
    semantics = np.zeros(segment_ids_hw.shape, np.uint16)
    instances = np.zeros(segment_ids_hw.shape, np.uint16)
    confidence = np.zeros(segment_ids_hw.shape, np.float32)
    known = {0}
    scored = any("score" in s for s in segments_info)
    next_instance = 1
    for seg in segments_info:
        score = float(seg.get("score", 1.0))
        known.add(int(seg["id"]))
        cls = target_of[seg["category_id"]]
        mask = segment_ids_hw == int(seg["id"])
        if cls is None or not mask.any():
            continue
        semantics[mask] = cls
        if cls in things:
            instances[mask] = next_instance
            next_instance += 1
        confidence[mask] = score
    stray = np.setdiff1d(np.unique(segment_ids_hw), np.array(sorted(known)))
    if stray.size:
        raise LabelFileError(source, f"pixels carry segment ids not in segments_info: {stray[:8].tolist()}")
    if not scored:
        return FrameLabelArrays(semantics, instances, None, None)
    probs = np.zeros((*semantics.shape, mapping.target.num_classes), np.float32)
    labelled = semantics > 0
    probs[labelled, semantics[labelled].astype(np.int64) - 1] = 1.0
    confidence[~labelled] = 0.0
    return FrameLabelArrays(semantics, instances, probs, confidence)


def check_segments_info(segments_info: List[dict], categories: Dict[int, object], where: Path, frame: str) -> None:
    """Each segment of one annotation has an integer ``id``, a known ``category_id`` and, if given, a ``score`` in
    [0, 1] (whether or not it covers any pixel); else LabelFileError naming the JSON file and the frame."""
    for seg in segments_info:
        if not isinstance(seg, dict) or "id" not in seg or "category_id" not in seg:
            raise LabelFileError(where, f"annotation {frame!r}: segments_info entry {seg!r} lacks 'id' or 'category_id'")
        if isinstance(seg["id"], bool) or not isinstance(seg["id"], int):
            raise LabelFileError(where, f"annotation {frame!r}: segment id {seg['id']!r} is not an integer")
        if seg["category_id"] not in categories:
            raise LabelFileError(where, f"annotation {frame!r}: segment {seg['id']} has category_id "
                                        f"{seg['category_id']}, which is not a category of the predictions")
        score = seg.get("score", 1.0)
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise LabelFileError(where, f"annotation {frame!r}: segment {seg['id']} has score {score!r}, which is not "
                                        "a number")
        if not 0.0 <= float(score) <= 1.0:
            raise LabelFileError(where, f"annotation {frame!r}: segment {seg['id']} has score {score}, outside [0, 1]")


def _read_frame(png: Path, segments_info: List[dict], mapping: ClassMapping, image: Path) -> FrameLabelArrays:
    segment_ids = read_segment_ids(png)
    image_hw = read_image(image, "image").shape[:2]
    if segment_ids.shape != image_hw:
        raise LabelFileError(png, f"size {segment_ids.shape[1]}x{segment_ids.shape[0]} differs from its image "
                                  f"{image} ({image_hw[1]}x{image_hw[0]})")
    return labels_from_segments(segment_ids, segments_info, mapping, str(png))


def _source_categories(predictions: dict, path: Path) -> Optional[List[SourceCategory]]:
    cats = predictions.get("categories")
    if cats is None:
        return None  # COCO panoptic's 133
    try:
        return [SourceCategory(int(c["id"]), str(c["name"]), bool(c.get("isthing", c.get("thing", False)))) for c in cats]
    except (TypeError, KeyError, ValueError):
        raise LabelFileError(path, "'categories' must be a list of objects with 'id' and 'name'") from None


def import_coco_panoptic(
    data: Path,
    predictions_json: Path,
    png_dir: Optional[Path] = None,
    mapping: str = "scannet21",
    overwrite: bool = False,
) -> ImportReport:
    """Write label files for every frame of ``data`` that has a prediction; record them in transforms.json.

    Frames already labelled are skipped unless ``overwrite``. ``png_dir`` defaults to the folder named like the
    JSON file (COCO's ``panoptic_val2017.json`` + ``panoptic_val2017/``).
    """
    predictions = read_json_file(predictions_json, "COCO panoptic predictions")
    if not isinstance(predictions, dict) or not isinstance(predictions.get("annotations"), list):
        raise LabelFileError(predictions_json, "expected an object with a list 'annotations' (COCO panoptic format)")
    png_dir = png_dir or predictions_json.with_suffix("")
    class_mapping = load_class_mapping(mapping, _source_categories(predictions, predictions_json))
    readers_by_stem: Dict[str, ReadFrameLabels] = {}
    for ann in predictions["annotations"]:
        if not isinstance(ann, dict) or "file_name" not in ann or not isinstance(ann.get("segments_info"), list):
            raise LabelFileError(predictions_json, f"annotation {str(ann)[:80]} lacks 'file_name' or 'segments_info'")
        check_segments_info(ann["segments_info"], class_mapping.target_of_id(), predictions_json, str(ann["file_name"]))
        readers_by_stem[Path(ann["file_name"]).stem] = partial(_read_frame, png_dir / ann["file_name"],
                                                               ann["segments_info"], class_mapping)
    return import_frames_by_stem(data, readers_by_stem, class_mapping.target, overwrite, "panoptic predictions")
