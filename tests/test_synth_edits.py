"""plift-synth renders the truth of an edited room: the same edit list applied to its own boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plift_nerfstudio.editing.edit_list import EditListError, parse_edit_list
from plift_nerfstudio.scenes.procedural.dataset import SynthOptions, write_dataset
from plift_nerfstudio.scenes.procedural.edits import edit_room, instance_boxes, instance_centre
from plift_nerfstudio.scenes.procedural.render import Intrinsics, camera_path, camera_rays, render
from plift_nerfstudio.scenes.procedural.scene import make_room


def first_of_class(room, name: str) -> int:
    return next(i for i, boxes in sorted(instance_boxes(room).items()) if boxes[0].class_name == name)


def views(room, count: int = 12):
    poses = camera_path(room, count, np.random.default_rng(1))
    return poses, Intrinsics.from_fov(96, 72)


def test_edited_room_deletes_copies_and_moves_its_boxes() -> None:
    room = make_room(0, "small-room")
    sofa = first_of_class(room, "sofa")
    other = next(i for i in instance_boxes(room) if i != sofa)
    centre = instance_centre(instance_boxes(room)[sofa])
    edit_list = parse_edit_list({"version": 1, "up": [0, 0, 1], "edits": [
        {"op": "delete", "instance_id": other, "class": instance_boxes(room)[other][0].class_name},
        {"op": "duplicate", "instance_id": sofa, "class": "sofa",
         "transform": {"translation": [0.0, 0.0, 0.0], "rotation_deg": 90.0, "pivot": centre.tolist()}},
    ]})
    edited = edit_room(room, edit_list)
    new_id = room.num_instances + 1
    poses, intr = views(room)
    seen_copy = 0
    for c2w in poses:
        before, after = render(room, c2w, intr), render(edited, c2w, intr)
        assert not (after.instances == other).any()
        copy = after.instances.reshape(-1) == new_id
        seen_copy += int(copy.sum())
        if copy.any():
            # the copy's surface points, turned back by -90 degrees about its centre, lie on the original chair
            origins, dirs = camera_rays(c2w, intr)
            points = origins[copy] + dirs[copy] * after.depth.reshape(-1)[copy, None]
            back = (points - centre) @ np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).T + centre
            inside = np.zeros(len(back), dtype=bool)
            for box in instance_boxes(room)[sofa]:
                inside |= np.all((back >= box.lo - 1e-3) & (back <= box.hi + 1e-3), axis=-1)
            assert inside.all()
        # where neither the deleted object nor the copy is, nothing changed
        untouched = (before.instances != other) & (after.instances != new_id)
        assert np.array_equal(after.instances[untouched], before.instances[untouched])
        assert np.array_equal(after.depth[untouched], before.depth[untouched])
    assert seen_copy > 50


def test_edits_naming_what_the_room_lacks_are_refused() -> None:
    room = make_room(0, "small-room")
    sofa = first_of_class(room, "sofa")
    with pytest.raises(EditListError, match="no instance 999"):
        edit_room(room, parse_edit_list({"version": 1, "edits": [{"op": "delete", "instance_id": 999, "class": "chair"}]}))
    with pytest.raises(EditListError, match="not a 'bed'"):
        edit_room(room, parse_edit_list({"version": 1, "edits": [{"op": "delete", "instance_id": sofa, "class": "bed"}]}))


def test_plift_synth_writes_the_edited_truth_of_the_test_frames(tmp_path: Path) -> None:
    room = make_room(3, "small-room")
    sofa = first_of_class(room, "sofa")
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"version": 1, "edits": [{"op": "delete", "instance_id": sofa, "class": "sofa"}]}))
    options = dict(seed=3, num_frames=12, width=48, height=36, scene="small-room", test_every=4)
    write_dataset(SynthOptions(output=tmp_path / "truth", edits=edits, **options))
    meta = json.loads((tmp_path / "truth" / "edited_truth.json").read_text())
    assert [Path(f["file_path"]).name for f in meta["frames"]] == ["frame_00004.png", "frame_00008.png", "frame_00012.png"]
    from plift_nerfstudio.labels.frame_labels import read_label_png

    for frame in meta["frames"]:
        assert (tmp_path / "truth" / frame["file_path"]).is_file()
        assert not (read_label_png(tmp_path / "truth" / frame["gt_instances_path"]) == sofa).any()
