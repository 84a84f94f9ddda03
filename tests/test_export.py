"""plift-export: labelled point clouds and per-object meshes that open in open3d and trimesh, in the dataset's frame;
the grouping, box and baseline maths on hand-made data; bad input refused without losing anything."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plift_nerfstudio.core.errors import BAD_INPUT_EXIT_CODE, CheckpointError
from plift_nerfstudio.bench.export_accuracy import stuff_scores, thing_scores
from plift_nerfstudio.export.boxes import BOX_TRIM, box_iou, inside_extent, obb_of, robust_extent
from plift_nerfstudio.export.crop import CropBox, model_bounds
from plift_nerfstudio.editing.dataset_frame import DatasetFrame
from plift_nerfstudio.export.groups import GroupKey, clean_groups, group_indices, select_instances
from plift_nerfstudio.bench.label_baseline import merge_back_projected
from plift_nerfstudio.export.surface_mesh import DensityLattice, main_components, nearest_point_labeller, split_surface
from plift_nerfstudio.export.export_folder import staged_export
from plift_nerfstudio.export.ply import write_labelled_points
from plift_nerfstudio.scenes.procedural.geometry import distance_to_boxes


# ------------------------------------------------------------------------------------------------ files
def test_labelled_ply_opens_in_open3d_and_trimesh_and_keeps_the_labels(tmp_path: Path) -> None:
    import open3d as o3d
    import trimesh
    from plyfile import PlyData

    rng = np.random.default_rng(0)
    positions = rng.uniform(-1, 1, (500, 3))
    colours = rng.uniform(0, 1, (500, 3))
    class_id = rng.integers(1, 4, 500)
    instance_id = np.where(class_id == 2, rng.integers(1, 5, 500), 0)
    path = tmp_path / "points.ply"
    write_labelled_points(path, positions, colours, class_id, np.full(500, 0.75), instance_id, np.full(500, 0.5),
                          ["wall", "chair", "floor"])
    cloud = o3d.io.read_point_cloud(str(path))
    assert len(cloud.points) == 500 and cloud.has_colors()
    np.testing.assert_allclose(np.asarray(cloud.points), positions, atol=1e-6)
    np.testing.assert_allclose(np.asarray(cloud.colors), np.round(colours * 255) / 255, atol=1e-6)
    loaded = trimesh.load(path)
    np.testing.assert_allclose(np.asarray(loaded.vertices), positions, atol=1e-6)
    ply = PlyData.read(str(path))
    np.testing.assert_array_equal(ply["vertex"]["class_id"], class_id)
    np.testing.assert_array_equal(ply["vertex"]["instance_id"], instance_id)
    np.testing.assert_allclose(ply["vertex"]["class_prob"], 0.75)
    assert "class 2 chair" in ply.comments


# ------------------------------------------------------------------------------------------------ grouping and boxes
def test_groups_split_things_by_id_and_class_and_drop_stray_specks() -> None:
    rng = np.random.default_rng(1)
    chair = rng.normal([0, 0, 0], 0.05, (200, 3))
    speck = rng.normal([3, 3, 3], 0.01, (5, 3))  # a few rays that rendered the chair's id far away
    sofa_same_id = rng.normal([1, 0, 0], 0.05, (150, 3))  # another class with the same surrogate id
    wall = rng.uniform(-2, 2, (300, 3))
    positions = np.concatenate([chair, speck, sofa_same_id, wall])
    class_id = np.array([5] * 205 + [6] * 150 + [1] * 300)
    instance_id = np.array([7] * 205 + [7] * 150 + [0] * 300)
    groups = group_indices(class_id, instance_id)
    assert set(groups) == {GroupKey(5, 7), GroupKey(6, 7), GroupKey(1, 0)}
    cleaned, left_out = clean_groups(positions, class_id, instance_id, eps=0.1, min_points=30)
    assert len(cleaned[GroupKey(5, 7)]) == 200 and cleaned[GroupKey(5, 7)].max() < 200  # the speck is gone
    assert len(cleaned[GroupKey(1, 0)]) == 300  # stuff keeps all its points
    cleaned, left_out = clean_groups(positions, class_id, instance_id, eps=0.1, min_points=160)
    assert GroupKey(6, 7) not in cleaned and left_out[0]["instance_id"] == 7 and left_out[0]["class_id"] == 6


def test_instances_are_chosen_by_class_and_id_and_unknown_ones_are_refused_with_those_there_are() -> None:
    from plift_nerfstudio.labels.class_table import scannet21_class_table

    table = scannet21_class_table()  # 5 chair, 6 sofa, 1 wall
    keys = [GroupKey(5, 3), GroupKey(6, 3), GroupKey(5, 9), GroupKey(1, 0)]
    assert select_instances(keys, ["3"], table) == [GroupKey(5, 3), GroupKey(6, 3)]  # an id: both objects on it
    assert select_instances(keys, ["sofa-3"], table) == [GroupKey(6, 3)]  # the chair sharing its id stays out
    assert select_instances(keys, ["chair-9", 3], table) == [GroupKey(5, 9), GroupKey(5, 3), GroupKey(6, 3)]
    with pytest.raises(ValueError, match=r"no instance 12 \(its instances: chair-3, sofa-3, chair-9"):
        select_instances(keys, ["3", "12"], table)
    with pytest.raises(ValueError, match="no instance chair-12"):
        select_instances(keys, ["chair-12"], table)


def test_oriented_box_of_a_turned_box_has_its_extent() -> None:
    rng = np.random.default_rng(2)
    local = rng.uniform([-1.0, -0.3, -0.2], [1.0, 0.3, 0.2], (3000, 3))
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    points = local @ rotation.T + [4, 5, 6]
    obb = obb_of(points)
    assert sorted(obb["extent"]) == pytest.approx([0.4, 0.6, 2.0], abs=0.05)
    np.testing.assert_allclose(obb["center"], [4, 5, 6], atol=0.05)
    assert len(obb["corners"]) == 8
    assert box_iou(np.zeros(3), np.ones(3), np.zeros(3), np.ones(3)) == pytest.approx(1.0)
    assert box_iou(np.zeros(3), np.ones(3), np.array([0.5, 0, 0]), np.array([1.5, 1, 1])) == pytest.approx(1 / 3)


def test_a_few_stray_points_do_not_set_an_objects_box() -> None:
    """A chair-sized box of 2000 points plus 8 strays up to 40 cm off: the manifest's box is the chair's, the box of
    all points is not."""
    rng = np.random.default_rng(5)
    chair = rng.uniform([1.0, 2.0, 0.0], [1.5, 2.5, 0.9], (2000, 3))
    strays = np.array([[1.25, 1.6, 0.4], [1.25, 2.9, 0.5], [0.6, 2.2, 0.3], [1.9, 2.3, 0.2],
                       [1.2, 1.7, 0.6], [1.3, 2.8, 0.1], [0.7, 2.4, 0.5], [1.8, 2.1, 0.7]])
    points = np.concatenate([chair, strays])
    lo, hi = robust_extent(points)
    assert box_iou(lo, hi, np.array([1.0, 2.0, 0.0]), np.array([1.5, 2.5, 0.9])) > 0.95
    all_lo, all_hi = robust_extent(points, trim=0.0)
    np.testing.assert_allclose(all_lo, points.min(0))
    np.testing.assert_allclose(all_hi, points.max(0))
    assert box_iou(all_lo, all_hi, np.array([1.0, 2.0, 0.0]), np.array([1.5, 2.5, 0.9])) < 0.4
    assert np.all(inside_extent(points) <= hi + 1e-12) and len(inside_extent(points)) > 1900
    obb = obb_of(inside_extent(points))
    assert sorted(obb["extent"]) == pytest.approx([0.5, 0.5, 0.9], abs=0.05)
    with pytest.raises(ValueError, match="box trim"):
        robust_extent(points, trim=0.5)


def test_crop_box_options_are_checked() -> None:
    assert CropBox.from_options(None, None) is None
    with pytest.raises(ValueError, match="go together"):
        CropBox.from_options((0, 0, 0), None)
    with pytest.raises(ValueError, match="empty crop box"):
        CropBox.from_options((0, 0, 0), (1, -1, 1))
    frame = DatasetFrame(np.eye(4)[:3], 0.5)  # model = 0.5 * dataset
    aabb = np.array([[-1.0, -1, -1], [1, 1, 1]])  # the dataset's -2..2
    lo, hi = model_bounds(aabb, CropBox.from_options((0, 0, 0), (1, 1, 9)), frame)
    np.testing.assert_allclose(lo, [0, 0, 0])
    np.testing.assert_allclose(hi, [0.5, 0.5, 1])
    with pytest.raises(ValueError, match=r"misses the scene, which spans \[-2.0, -2.0, -2.0\]"):
        model_bounds(aabb, CropBox.from_options((5, 5, 5), (6, 6, 6)), frame)


# ------------------------------------------------------------------------------------------------ meshes
def box_surface_points(lo, hi, count: int, seed: int) -> np.ndarray:
    """``count`` points on the faces of the box (lo, hi)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(lo, hi, (count, 3))
    axis, side = rng.integers(0, 3, count), rng.integers(0, 2, count)
    points[np.arange(count), axis] = np.where(side == 1, np.asarray(hi)[axis], np.asarray(lo)[axis])
    return points


def test_one_surface_is_cut_into_a_mesh_per_labelled_object_and_unseen_faces_go() -> None:
    shape = (40, 30, 30)
    density = np.zeros(shape, dtype=np.float32)
    density[5:15, 5:15, 5:15] = 10.0  # a chair: voxel centres 0.5 .. 1.4, surface half way to the next
    density[20:35, 5:25, 5:25] = 10.0  # a wall block
    density[30, 20, 20] = 0.0  # a hole inside: a small piece of surface
    density[5:10, 20:28, 20:28] = 10.0  # a block no view saw: no point near it
    lattice = DensityLattice(origin=np.zeros(3), spacing=np.full(3, 0.1), density=density, level=1.0)
    chair = box_surface_points([0.45] * 3, [1.45] * 3, 3000, seed=0)
    wall = box_surface_points([1.95, 0.45, 0.45], [3.45, 2.45, 2.45], 6000, seed=1)
    hole = np.array([3.0, 2.0, 2.0]) + np.random.default_rng(2).normal(0, 0.03, (20, 3))
    sofa_specks = chair[:2]  # two mislabelled points among the chair's: the majority of the nearest 8 wins
    positions = np.concatenate([chair, wall, hole, sofa_specks])
    class_id = np.array([5] * 3000 + [1] * 6020 + [6, 6])
    instance_id = np.array([2] * 3000 + [0] * 6020 + [2, 2])
    labeller = nearest_point_labeller(positions, class_id, instance_id, max_distance=0.15)
    meshes = split_surface(lattice, labeller)
    assert set(meshes) == {GroupKey(5, 2), GroupKey(1, 0)}
    chair_mesh = meshes[GroupKey(5, 2)]
    assert chair_mesh.vertices.min(0) == pytest.approx([0.45] * 3, abs=0.06)
    assert chair_mesh.vertices.max(0) == pytest.approx([1.45] * 3, abs=0.06)
    wall_mesh = meshes[GroupKey(1, 0)]
    assert wall_mesh.vertices[:, 0].min() > 1.8
    unseen = np.all((np.concatenate([m.vertices for m in meshes.values()]) > [0.4, 1.9, 1.9]) &
                    (np.concatenate([m.vertices for m in meshes.values()]) < [1.0, 2.8, 2.8]), axis=1)
    assert not unseen.any()  # the block no view saw is left out
    kept = main_components(wall_mesh, min_share=0.1)  # the small hole's inner surface goes
    assert kept is not None and len(kept.faces) < len(wall_mesh.faces) and kept.vertices[:, 0].min() > 1.8
    # normals point out of the solid (the colour is looked up from outside)
    outward = chair_mesh.vertices - chair_mesh.vertices.mean(0)
    assert (np.sum(outward * chair_mesh.normals, axis=1) > 0).mean() > 0.95


# ------------------------------------------------------------------------------------------------ baseline, scores
def test_back_projected_labels_join_one_object_seen_in_two_frames() -> None:
    rng = np.random.default_rng(3)
    chair = rng.uniform([0, 0, 0], [0.5, 0.5, 0.9], (400, 3))
    sofa = rng.uniform([2, 0, 0], [3.5, 0.9, 0.8], (400, 3))
    positions = np.concatenate([chair, sofa])
    frame = np.array([0, 1] * 400)  # each object seen in two frames, with per-frame ids
    local_id = np.array([1] * 400 + [2] * 400)
    local_id = np.where(frame == 1, 3 - local_id + 5, local_id)  # frame 1 numbers them 7 (chair) and 6 (sofa)
    segment = (frame + 1) * 1000 + local_id
    class_2d = np.array([5] * 400 + [6] * 400)
    class_2d[:20] = 6  # a few noisy pixels: the majority wins
    is_thing = np.zeros(22, dtype=bool)
    is_thing[[4, 5, 6]] = True
    class_id, instance = merge_back_projected(positions, class_2d, segment, voxel=0.2, is_thing_lut=is_thing)
    assert len(np.unique(instance[:400])) == 1 and len(np.unique(instance[400:])) == 1
    assert instance[0] != instance[400] and instance[0] > 0
    assert (class_id[:400] == 5).mean() > 0.9 and (class_id[400:] == 6).all()


def test_thing_scores_count_recall_precision_and_spurious_instances() -> None:
    truth = np.array([[[0, 0, 0], [1, 1, 1]], [[3, 0, 0], [4, 1, 1]]], dtype=float)
    exported = np.array([[[0, 0, 0], [1, 1, 0.9]], [[3.6, 0, 0], [4.6, 1, 1]], [[8, 8, 8], [9, 9, 9]]], dtype=float)
    near = np.array([[0.95, 0.0], [0.0, 0.4], [0.0, 0.0]])
    scores = thing_scores(np.array([5, 5, 5]), exported, np.array([100, 100, 100]), np.array([5, 5]), truth, near)
    assert scores["recall"] == 0.5  # the second object's export is shifted: IoU 0.25
    assert scores["spurious"] == 2
    assert scores["exported"][0]["precision"] == 0.95 and scores["exported"][0]["class_agrees"]
    wrong_class = thing_scores(np.array([6]), exported[:1], np.array([10]), np.array([5, 5]), truth, near[:1])
    assert wrong_class["recall"] == 0.0 and not wrong_class["exported"][0]["class_agrees"]
    stuff = stuff_scores(np.array([0.01, 0.02, 0.2, np.inf]), np.array([0.01, 0.02, 0.2, 0.1]), np.array([1, 1, 2, 3]))
    assert stuff["mean_distance"] == pytest.approx(0.23 / 3) and stuff["within"] == 0.5
    assert distance_to_boxes(np.array([[0.5, 0.5, 0.5], [2.0, 0.5, 0.5]]), truth[:, 0], truth[:, 1]) == pytest.approx([0, 1])


# ------------------------------------------------------------------------------------------------ the export folder
def test_export_folder_is_replaced_only_when_asked_and_only_when_it_is_an_export(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="--overwrite"):
        with staged_export(mine, overwrite=False):
            pass
    with pytest.raises(FileExistsError, match="not an earlier plift-export folder"):
        with staged_export(mine, overwrite=True):
            pass
    assert (mine / "notes.txt").read_text() == "keep me"

    out = tmp_path / "export"
    with staged_export(out, overwrite=False) as folder:
        (folder / "manifest.json").write_text(json.dumps({"generator": "plift-export"}))
        (folder / "scene.ply").write_text("first")
    (out / "README.txt").write_text("the user's own file")
    with pytest.raises(RuntimeError):
        with staged_export(out, overwrite=True) as folder:
            (folder / "scene.ply").write_text("half")
            raise RuntimeError("the export failed half way")
    assert (out / "scene.ply").read_text() == "first"  # a failed export leaves the earlier one whole
    with staged_export(out, overwrite=True) as folder:
        (folder / "manifest.json").write_text(json.dumps({"generator": "plift-export"}))
        (folder / "scene.ply").write_text("second")
    assert (out / "scene.ply").read_text() == "second" and (out / "README.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


# ------------------------------------------------------------------------------------------------ on a trained run
@pytest.fixture(scope="module")
def point_cloud_export(trained_tiny_run: Path, tmp_path_factory) -> Path:
    from plift_nerfstudio.cli.export import PointCloudOptions, main

    out = tmp_path_factory.mktemp("export") / "points"
    main(PointCloudOptions(load_config=trained_tiny_run, output_dir=out, num_points=20000, min_instance_points=10))
    return out


def test_point_cloud_export_opens_and_lies_in_the_dataset_frame(point_cloud_export: Path, trained_tiny_run: Path) -> None:
    import open3d as o3d
    import trimesh
    from plyfile import PlyData

    from plift_nerfstudio.scenes.procedural.scene import make_room

    manifest = json.loads((point_cloud_export / "manifest.json").read_text())
    assert manifest["kind"] == "pointcloud" and manifest["instances"], "the tiny run exports no thing instance"
    scene = o3d.io.read_point_cloud(str(point_cloud_export / "scene.ply"))
    assert 1000 < len(scene.points) <= 20000 and scene.has_colors()
    points = np.asarray(scene.points)
    # the tiny scene is plift-synth's small room (seed 3): its frame is the room's, metres; nerfstudio's dataparser
    # moved and scaled it, the export undoes that
    room = make_room(3, "small-room")
    inside = np.all((points > -0.3) & (points < room.size + 0.3), axis=1)
    assert inside.mean() > 0.9
    assert manifest["dataparser_scale"] != 1.0  # so the test would see a forgotten scale
    for entry in manifest["instances"] + manifest["stuff"]:
        ply = PlyData.read(str(point_cloud_export / entry["files"]["ply"]))
        vertex = ply["vertex"]
        assert len(vertex) == entry["points"]
        assert (vertex["class_id"] == entry["class_id"]).all()
        if entry["thing"]:
            assert (vertex["instance_id"] == entry["instance_id"]).all()
            xyz = np.stack([vertex[a] for a in "xyz"], 1)
            lo, hi = np.array(entry["aabb_all_points"]["min"]), np.array(entry["aabb_all_points"]["max"])
            assert np.all(xyz >= lo - 1e-5) and np.all(xyz <= hi + 1e-5)
            lo, hi = np.array(entry["aabb"]["min"]), np.array(entry["aabb"]["max"])  # without the outer 0.5% per end
            assert np.all((xyz >= lo - 1e-5) & (xyz <= hi + 1e-5), axis=1).mean() >= 1 - 6 * BOX_TRIM - 1e-9
            np.testing.assert_allclose(entry["centroid"], xyz.mean(0), atol=1e-4)
    mesh_like = trimesh.load(point_cloud_export / "scene.ply")
    assert len(mesh_like.vertices) == len(scene.points)


def test_mesh_export_opens_in_trimesh_and_open3d(trained_tiny_run: Path, tmp_path: Path) -> None:
    import open3d as o3d
    import trimesh

    from plift_nerfstudio.cli.export import MeshOptions, main

    out = tmp_path / "meshes"
    manifest = main(MeshOptions(load_config=trained_tiny_run, output_dir=out, resolution=64))
    assert manifest["kind"] == "mesh" and (out / "scene.glb").is_file()
    scene = trimesh.load(out / "scene.glb")
    entries = manifest["instances"] + manifest["stuff"]
    assert set(scene.geometry) == {Path(e["files"]["glb"]).stem for e in entries}
    for entry in entries:
        mesh = o3d.io.read_triangle_mesh(str(out / entry["files"]["ply"]))
        assert len(mesh.triangles) == entry["faces"] and mesh.has_vertex_colors()
        glb = trimesh.load(out / entry["files"]["glb"], force="mesh")
        assert len(glb.faces) == entry["faces"]


def test_export_refuses_bad_input_and_keeps_what_is_there(trained_tiny_run: Path, point_cloud_export: Path,
                                                         tmp_path: Path) -> None:
    import yaml

    from plift_nerfstudio.cli.export import PointCloudOptions, main

    # an instance id that does not exist, an empty crop: exit code 2 and one line naming the problem
    before = (point_cloud_export / "scene.ply").read_bytes()
    for extra, expected in ((["--instances", "999"], "has no instance 999"),
                            (["--crop-min", "50", "50", "50", "--crop-max", "51", "51", "51"], "empty crop"),
                            ([], "not empty")):
        out = point_cloud_export if not extra else tmp_path / "new"
        run = subprocess.run([sys.executable, "-m", "plift_nerfstudio.cli.export", "pointcloud", "--load-config",
                              str(trained_tiny_run), "--output-dir", str(out), "--num-points", "2000", *extra],
                             capture_output=True, text=True)
        assert run.returncode == BAD_INPUT_EXIT_CODE, run.stderr[-2000:]
        assert expected in run.stderr and "plift-export:" in run.stderr
        assert not (tmp_path / "new").exists()
    assert (point_cloud_export / "scene.ply").read_bytes() == before

    # a run without a checkpoint
    outputs = trained_tiny_run.parents[3]
    shutil.copytree(outputs, tmp_path / "outputs")
    config_path = tmp_path / "outputs" / trained_tiny_run.relative_to(outputs)
    config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    config.output_dir = tmp_path / "outputs"
    config_path.write_text(yaml.dump(config))
    for checkpoint in (config_path.parent / "nerfstudio_models").glob("*.ckpt"):
        checkpoint.unlink()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        main(PointCloudOptions(load_config=config_path, output_dir=tmp_path / "out"))


def test_nerfstudio_ns_export_pointcloud_works_on_our_runs(trained_tiny_run: Path, tmp_path: Path) -> None:
    import open3d as o3d

    ns_export = Path(sys.executable).parent / "ns-export"
    run = subprocess.run([str(ns_export), "pointcloud", "--load-config", str(trained_tiny_run), "--output-dir",
                          str(tmp_path), "--num-points", "2000", "--remove-outliers", "False", "--normal-method",
                          "open3d"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    cloud = o3d.io.read_point_cloud(str(tmp_path / "point_cloud.ply"))
    assert len(cloud.points) > 1000 and cloud.has_colors()


def test_an_edited_run_exports_the_edited_scene(trained_tiny_run: Path, point_cloud_export: Path, tmp_path: Path) -> None:
    from plift_nerfstudio.cli.edit import EditOptions
    from plift_nerfstudio.cli.edit import main as plift_edit
    from plift_nerfstudio.cli.export import MeshOptions, PointCloudOptions, main

    unedited = json.loads((point_cloud_export / "manifest.json").read_text())
    biggest = max(unedited["instances"], key=lambda e: e["points"])
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"version": 1, "edits": [
        {"op": "delete", "instance_id": biggest["instance_id"], "class": biggest["class"]}]}))
    edited_config = plift_edit(EditOptions(load_config=trained_tiny_run, edits=edits, output_dir=tmp_path / "edited"))
    manifest = main(PointCloudOptions(load_config=edited_config, output_dir=tmp_path / "points", num_points=20000,
                                      min_instance_points=10))
    gone = (biggest["instance_id"], biggest["class_id"])

    def size_of(content: dict, key: str) -> int:
        return sum(e[key] for e in content["instances"] if (e["instance_id"], e["class_id"]) == gone)

    # the deletion of a 300-step run's fog leaves a few specks at the region's edge (the demo run keeps none)
    assert size_of(manifest, "points") < 0.1 * biggest["points"]
    unedited_meshes = main(MeshOptions(load_config=trained_tiny_run, output_dir=tmp_path / "meshes0", resolution=64))
    meshes = main(MeshOptions(load_config=edited_config, output_dir=tmp_path / "meshes", resolution=64))
    assert size_of(unedited_meshes, "faces") > 0
    assert size_of(meshes, "faces") < 0.1 * size_of(unedited_meshes, "faces")


def test_chosen_instances_are_exported_alone(trained_tiny_run: Path, point_cloud_export: Path, tmp_path: Path) -> None:
    from plift_nerfstudio.cli.export import PointCloudOptions, main

    biggest = max(json.loads((point_cloud_export / "manifest.json").read_text())["instances"], key=lambda e: e["points"])
    manifest = main(PointCloudOptions(load_config=trained_tiny_run, output_dir=tmp_path / "one", num_points=20000,
                                      min_instance_points=10, instances=(biggest["instance_id"],)))
    assert manifest["stuff"] == [] and manifest["instances"]
    assert {e["instance_id"] for e in manifest["instances"]} == {biggest["instance_id"]}
