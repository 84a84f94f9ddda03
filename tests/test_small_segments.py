"""Small rendered panoptic segments are merged into the neighbour they border most (panoptic.merge_small_segments)."""

from __future__ import annotations

import torch

from plift_nerfstudio.panoptic import merge_small_segments

WALL, FLOOR, CHAIR = 1, 2, 5


def _room() -> tuple:
    """10x10: wall (stuff) on the left six columns, floor (stuff) on the right four, chair 1 (thing) in rows 6-9 of
    the wall part."""
    classes = torch.full((10, 10), WALL)
    classes[:, 6:] = FLOOR
    instances = torch.zeros(10, 10, dtype=torch.long)
    classes[6:, 1:5], instances[6:, 1:5] = CHAIR, 1
    return classes, instances


def test_a_speck_takes_the_class_and_instance_of_the_segment_it_borders_most() -> None:
    classes, instances = _room()
    classes[2, 2], instances[2, 2] = CHAIR, 3  # a one-pixel chair id 3 inside the wall
    classes[7, 2], instances[7, 2] = CHAIR, 2  # a one-pixel second chair inside chair 1
    merged_classes, merged_instances = merge_small_segments(classes, instances, min_pixels=4)
    expected_classes, expected_instances = _room()
    assert torch.equal(merged_classes, expected_classes) and torch.equal(merged_instances, expected_instances)


def test_a_speck_on_a_border_goes_to_the_longer_border() -> None:
    classes, instances = _room()
    classes[1:4, 5], instances[1:4, 5] = CHAIR, 4  # 3 pixels: wall on the left (and above, below), floor on the right
    merged_classes, merged_instances = merge_small_segments(classes, instances, min_pixels=4)
    assert (merged_classes[1:4, 5] == WALL).all() and (merged_instances[1:4, 5] == 0).all()


def test_segments_at_the_threshold_and_void_are_kept() -> None:
    classes, instances = _room()
    classes[0, 0:2] = 0  # two void pixels
    classes[0:2, 8:10], instances[0:2, 8:10] = CHAIR, 7  # a 4-pixel chair
    merged_classes, merged_instances = merge_small_segments(classes, instances, min_pixels=4)
    assert torch.equal(merged_classes, classes) and torch.equal(merged_instances, instances)
    unchanged = merge_small_segments(classes, instances, min_pixels=0)
    assert unchanged[0] is classes and unchanged[1] is instances


def test_a_speck_in_void_becomes_void_and_neighbouring_specks_join_a_large_segment() -> None:
    classes = torch.zeros(8, 8, dtype=torch.long)
    instances = torch.zeros(8, 8, dtype=torch.long)
    classes[1, 1], instances[1, 1] = CHAIR, 1  # alone in the void
    classes[4:, :] = FLOOR  # 32 floor pixels
    classes[3, 5:7], instances[3, 5:7] = CHAIR, 2  # two pixels on the floor
    classes[3, 4], instances[3, 4] = CHAIR, 3  # one pixel beside them
    merged_classes, merged_instances = merge_small_segments(classes, instances, min_pixels=3)
    assert merged_classes[1, 1] == 0 and merged_instances[1, 1] == 0
    assert (merged_classes[3, 4:7] == FLOOR).all() and (merged_instances[3, 4:7] == 0).all()
    assert (merged_classes[4:] == FLOOR).all()
