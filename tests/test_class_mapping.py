"""Class mappings from COCO panoptic to the 21- and 31-class tables, and checks of a user's mapping file."""

import json

import numpy as np
import pytest

from plift_nerfstudio.labels.class_mapping import SourceCategory, coco_panoptic_categories, load_class_mapping
from plift_nerfstudio.labels.class_table import scannet21_class_table
from plift_nerfstudio.core.errors import LabelFileError


def test_coco_categories_are_the_133_panoptic_classes():
    cats = coco_panoptic_categories()
    assert len(cats) == 133 and sum(c.thing for c in cats) == 80
    assert cats[0].name == "person" and cats[-1].id == 200


def test_scannet21_mapping_targets_the_demo_table():
    mapping = load_class_mapping("scannet21")
    assert mapping.target == scannet21_class_table()
    by_name = {c.name: t for c, t in zip(mapping.source, mapping.target_of_source)}
    names = mapping.target.names
    assert names[by_name["wall-brick"] - 1] == "wall"
    assert names[by_name["couch"] - 1] == "sofa"
    assert names[by_name["tv"] - 1] == "television"
    assert by_name["car"] is None and by_name["sky-other-merged"] is None


def test_scannet31_mapping_for_captures():
    mapping = load_class_mapping("scannet31")
    assert mapping.target.num_classes == 31
    names = mapping.target.names
    assert "laptop" in names and mapping.target.is_thing[names.index("laptop")]
    assert mapping.target.is_thing[names.index("refrigerator")]
    laptop = [t for c, t in zip(mapping.source, mapping.target_of_source) if c.name == "laptop"][0]
    assert names[laptop - 1] == "laptop"


def _load(content, source, tmp_path):
    path = tmp_path / "mapping.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return load_class_mapping(path, source)


def test_probabilities_are_summed_into_targets_and_unused_mass_dropped(tmp_path):
    source = [SourceCategory(1, "brick", False), SourceCategory(2, "plaster", False), SourceCategory(3, "sky", False),
              SourceCategory(4, "chair", True)]
    mapping_file = {"version": 1, "classes": [{"id": 1, "name": "wall", "thing": False, "color": [1, 2, 3]},
                                              {"id": 2, "name": "chair", "thing": True, "color": [4, 5, 6]}],
                    "map": {"brick": "wall", "plaster": "wall", "sky": None, "chair": "chair"}}
    mapping = _load(mapping_file, source, tmp_path)
    probs = np.array([[0.2, 0.3, 0.4, 0.1], [0.0, 0.0, 0.0, 1.0]], np.float32)
    np.testing.assert_allclose(mapping.map_probs(probs), [[0.5, 0.1], [0.0, 1.0]])
    assert mapping.target_of_id() == {1: 1, 2: 1, 3: None, 4: 2}
    with pytest.raises(ValueError, match="4 source class"):
        mapping.map_probs(np.ones((1, 3), np.float32))


SOURCE = [SourceCategory(1, "brick", False), SourceCategory(2, "chair", True)]
TABLE = [{"id": 1, "name": "wall", "thing": False, "color": [1, 2, 3]}]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not readable JSON"),
        ({"classes": TABLE, "map": {}}, "version"),
        ({"version": 1, "classes": TABLE, "map": {"brick": "wall"}}, "not in 'map': chair"),
        ({"version": 1, "classes": TABLE, "map": {"brick": "wall", "chair": None, "sofa": None}}, "does not have: sofa"),
        ({"version": 1, "classes": TABLE, "map": {"brick": "wall", "chair": "seat"}}, "not classes of its table: seat"),
        ({"version": 1, "classes": TABLE, "map": {"brick": None, "chair": None}}, "nothing would be labelled"),
        ({"version": 1, "classes": [], "map": {"brick": None, "chair": None}}, "non-empty"),
    ],
)
def test_a_malformed_mapping_file_is_refused_naming_it(tmp_path, content, message):
    with pytest.raises(LabelFileError, match=message) as err:
        _load(content, SOURCE, tmp_path)
    assert "mapping.json" in str(err.value)
