"""The label-majority diagnostic: each true object takes the class the training labels vote for."""

import pytest
import torch

from plift_nerfstudio.evaluation.label_majority import majority_of_votes, majority_panoptic_maps, object_class_votes


def object_majority_classes(objects_nhw, label_classes_nhw, num_objects, num_classes):
    """One vote per labelled pixel, summed over the frames."""
    return majority_of_votes(sum(object_class_votes(o, c, num_objects, num_classes)
                                 for o, c in zip(objects_nhw, label_classes_nhw)))


def test_each_object_takes_its_majority_class_and_void_does_not_vote():
    objects = torch.tensor([[[1, 1, 1, 2], [2, 2, 3, 0]],
                            [[1, 1, 2, 2], [3, 3, 0, 0]]])
    labels = torch.tensor([[[4, 4, 5, 0], [0, 0, 0, 6]],
                           [[5, 4, 0, 0], [0, 0, 6, 6]]])
    majority = object_majority_classes(objects, labels, num_objects=3, num_classes=6)
    # object 1: 4,4,5,5,4 -> 4; object 2: void except nothing -> all void -> 0; object 3: all void -> 0
    assert majority.tolist() == [0, 4, 0, 0]
    # a void-heavy object still takes its only non-void class
    labels[0, 1, 0] = 2
    assert object_majority_classes(objects, labels, 3, 6)[2] == 2


def test_majority_beats_the_frame_the_test_view_shows():
    """Three training views call the object class 2, one calls it 1: the majority is 2 whatever a test view says."""
    objects = torch.ones(4, 2, 2, dtype=torch.long)
    labels = torch.tensor([2, 2, 1, 2]).view(4, 1, 1).expand(4, 2, 2)
    assert object_majority_classes(objects, labels, 1, 3).tolist() == [0, 2]


def test_maps_give_thing_objects_one_instance_and_merge_stuff():
    objects = torch.tensor([[[1, 2], [3, 0]]])
    majority = torch.tensor([0, 1, 1, 3])  # objects 1 and 2 voted stuff class 1, object 3 thing class 3
    classes, instances = majority_panoptic_maps(objects, majority, thing_class_ids=[3])
    assert classes.tolist() == [[[1, 1], [3, 0]]]
    assert instances.tolist() == [[[0, 0], [3, 0]]]


def test_bad_ids_are_refused():
    with pytest.raises(ValueError, match="object ids"):
        object_majority_classes(torch.tensor([[[5]]]), torch.tensor([[[1]]]), num_objects=3, num_classes=4)
    with pytest.raises(ValueError, match="class ids"):
        object_majority_classes(torch.tensor([[[1]]]), torch.tensor([[[9]]]), num_objects=3, num_classes=4)
    with pytest.raises(ValueError, match="shape"):
        object_class_votes(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long), 1, 1)


def test_the_loss_vote_weighs_confidence_and_distribution_not_pixel_counts():
    """Three unsure pixels say class 1 (half of their mass on class 2), two sure ones say class 2: one vote per pixel
    gives class 1, the semantic loss's weighting (confidence x distribution) gives class 2. A void-labelled pixel
    does not vote whatever its distribution says."""
    objects = torch.tensor([[1, 1, 1, 1, 1, 1]])
    labels = torch.tensor([[1, 1, 1, 2, 2, 0]])
    probs = torch.tensor([[[0.5, 0.45, 0.05]] * 3 + [[0.1, 0.9, 0.0]] * 2 + [[0.0, 0.0, 1.0]]])
    confidence = torch.tensor([[0.5, 0.5, 0.5, 1.0, 1.0, 1.0]])
    assert majority_of_votes(object_class_votes(objects, labels, 1, 3)).tolist() == [0, 1]
    votes = object_class_votes(objects, labels, 1, 3, probs, confidence)
    assert torch.allclose(votes[1], torch.tensor([0.0, 0.95, 2.475, 0.075], dtype=torch.float64))
    assert majority_of_votes(votes).tolist() == [0, 2]
    # the votes of several frames add up: a third frame of sure class-1 pixels turns the object back
    more = object_class_votes(torch.ones(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.long), 1, 3)
    assert majority_of_votes(votes + more).tolist() == [0, 1]


def test_a_distribution_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="class distributions"):
        object_class_votes(torch.ones(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.long), 1, 3,
                           torch.full((1, 2, 4), 0.25), torch.ones(1, 2))
