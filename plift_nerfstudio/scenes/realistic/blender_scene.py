"""Build a :class:`RoomLayout` in Blender (``bpy``) and render it with Cycles on the CPU.

Colour comes from Cycles (path tracing, denoised); ground truth comes from the same geometry by casting one ray
per pixel centre into the scene (``scene.ray_cast``): the hit object gives the class and the scene-wide instance
id, the hit distance gives the depth along the ray. No compositor or render-pass file formats are involved, so the
ground truth is exact and does not depend on the Blender release.

``bpy`` is an optional dependency (``pip install 'plift-nerfstudio[scenes]'``); this module imports it lazily.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np

from plift_nerfstudio.scenes.realistic.layout import CLASS_ID, Material, Part, RoomLayout
from plift_nerfstudio.scenes.procedural.render import Intrinsics, camera_rays


def import_bpy():
    try:
        import bpy  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise ImportError(
            "the realistic scene generator needs Blender as a Python package: pip install 'plift-nerfstudio[scenes]' "
            "(or pip install bpy); the shipped scenes under benchmarks/realistic/ need no Blender"
        ) from err
    return bpy


@dataclass
class RenderSettings:
    samples: int = 24
    """Cycles samples per pixel (denoised with OpenImageDenoise afterwards)."""
    max_bounces: int = 4
    exposure: float = -2.5
    view_transform: str = "Standard"
    """Blender's colour management: "Standard" looks like a phone photo (more contrast than "AgX")."""


@dataclass
class GroundTruthFrame:
    semantics: np.ndarray  # [H, W] uint16 class id (0 = nothing hit)
    instances: np.ndarray  # [H, W] uint16 scene-wide instance id (0 = stuff)
    depth: np.ndarray  # [H, W] float32, distance along the ray in metres
    objects: np.ndarray  # [H, W] uint16 index + 1 of the layout object hit (0 = nothing)


def _ramp(nodes, links, fac_socket, colors, constant: bool = False):
    ramp = nodes.new("ShaderNodeValToRGB")
    if constant:
        ramp.color_ramp.interpolation = "CONSTANT"
    els = ramp.color_ramp.elements
    while len(els) < len(colors):
        els.new(0.5)
    for k, c in enumerate(colors):
        els[k].position = k / max(1, len(colors) - 1) if not constant else k / len(colors)
        els[k].color = (*c, 1.0)
    links.new(fac_socket, ramp.inputs["Fac"])
    return ramp.outputs["Color"]


def _coords(nodes, links, seed: float, scale: float = 1.0):
    tex = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Location"].default_value = (seed, seed * 0.37, seed * 0.71)
    mapping.inputs["Scale"].default_value = (scale, scale, scale)
    links.new(tex.outputs["Object"], mapping.inputs["Vector"])
    return mapping.outputs["Vector"]


def make_material(bpy, mat: Material, name: str):
    m = bpy.data.materials.new(name)
    m.use_nodes = True
    nodes, links = m.node_tree.nodes, m.node_tree.links
    bsdf = nodes.get("Principled BSDF")
    out = nodes.get("Material Output")
    c = [tuple(x) for x in mat.colors]
    base = bsdf.inputs["Base Color"]
    bsdf.inputs["Roughness"].default_value = 0.6
    if mat.kind == "wood":
        wave = nodes.new("ShaderNodeTexWave")
        wave.inputs["Scale"].default_value = mat.scale
        wave.inputs["Distortion"].default_value = 6.0
        wave.inputs["Detail"].default_value = 3.0
        links.new(_coords(nodes, links, mat.seed), wave.inputs["Vector"])
        links.new(_ramp(nodes, links, wave.outputs["Fac"], [c[0], c[1]]), base)
        bsdf.inputs["Roughness"].default_value = 0.45
    elif mat.kind in ("fabric", "paint", "books"):
        noise = nodes.new("ShaderNodeTexNoise")
        noise.inputs["Scale"].default_value = {"fabric": 60.0, "paint": 4.0, "books": 20.0}[mat.kind]
        noise.inputs["Detail"].default_value = 8.0
        links.new(_coords(nodes, links, mat.seed), noise.inputs["Vector"])
        spread = {"fabric": (0.7, 1.1), "paint": (0.93, 1.03), "books": (0.8, 1.05)}[mat.kind]
        dark = tuple(min(1.0, v * spread[0]) for v in c[0])
        light = tuple(min(1.0, v * spread[1]) for v in c[0])
        links.new(_ramp(nodes, links, noise.outputs["Fac"], [dark, light]), base)
        bsdf.inputs["Roughness"].default_value = {"fabric": 0.95, "paint": 0.8, "books": 0.55}[mat.kind]
        if mat.kind == "fabric":
            bump = nodes.new("ShaderNodeBump")
            bump.inputs["Strength"].default_value = 0.3
            links.new(noise.outputs["Fac"], bump.inputs["Height"])
            links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    elif mat.kind == "tiles":
        brick = nodes.new("ShaderNodeTexBrick")
        brick.inputs["Color1"].default_value = (*c[0], 1)
        brick.inputs["Color2"].default_value = (*(v * 0.9 for v in c[0]), 1)
        brick.inputs["Mortar"].default_value = (*c[1], 1)
        brick.inputs["Scale"].default_value = mat.scale
        brick.inputs["Mortar Size"].default_value = 0.015
        brick.offset = 0.0
        links.new(_coords(nodes, links, mat.seed), brick.inputs["Vector"])
        links.new(brick.outputs["Color"], base)
        bsdf.inputs["Roughness"].default_value = 0.3
    elif mat.kind == "stripes":
        wave = nodes.new("ShaderNodeTexWave")
        wave.wave_profile = "SAW"
        wave.inputs["Scale"].default_value = mat.scale
        wave.inputs["Distortion"].default_value = 0.5
        links.new(_coords(nodes, links, mat.seed), wave.inputs["Vector"])
        links.new(_ramp(nodes, links, wave.outputs["Fac"], c, constant=True), base)
        bsdf.inputs["Roughness"].default_value = 0.9
    elif mat.kind == "picture":
        magic = nodes.new("ShaderNodeTexMagic")
        magic.turbulence_depth = 4
        magic.inputs["Scale"].default_value = mat.scale
        links.new(_coords(nodes, links, mat.seed), magic.inputs["Vector"])
        links.new(_ramp(nodes, links, magic.outputs["Fac"], c), base)
        bsdf.inputs["Roughness"].default_value = 0.35
    elif mat.kind == "metal":
        base.default_value = (*c[0], 1)
        bsdf.inputs["Metallic"].default_value = 1.0
        bsdf.inputs["Roughness"].default_value = 0.3
    elif mat.kind in ("plastic", "screen"):
        base.default_value = (*c[0], 1)
        bsdf.inputs["Roughness"].default_value = 0.4 if mat.kind == "plastic" else 0.08
    elif mat.kind in ("window", "lampshade"):
        base.default_value = (*c[0], 1)
        bsdf.inputs["Emission Color"].default_value = (*c[0], 1)
        bsdf.inputs["Emission Strength"].default_value = 2.5 if mat.kind == "window" else 1.5
    else:
        raise ValueError(f"unknown material kind {mat.kind!r}")
    del out
    return m


def _part_mesh(bpy, part: Part, name: str):
    import bmesh

    bm = bmesh.new()
    if part.shape == "box":
        bmesh.ops.create_cube(bm, size=1.0)
        bmesh.ops.scale(bm, vec=part.size, verts=bm.verts)
    else:
        bmesh.ops.create_cone(bm, cap_ends=True, segments=24, radius1=part.size[0] / 2, radius2=part.size[0] / 2,
                              depth=part.size[2])
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    return mesh


@contextlib.contextmanager
def _blender_output_silenced():
    """Blender prints a line per render to the process's stdout (not through Python); keep it off the terminal."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


class BlenderRoom:
    """One room built in a fresh Blender scene; render colour and ground truth from camera poses."""

    def __init__(self, layout: RoomLayout, intrinsics: Intrinsics, settings: RenderSettings = RenderSettings()) -> None:
        self.bpy = bpy = import_bpy()
        self.layout = layout
        self.intr = intrinsics
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        self.scene = scene
        self.labels: Dict[str, Tuple[int, int, int]] = {}
        materials: Dict[int, object] = {}
        for k, obj in enumerate(layout.objects):
            for j, part in enumerate(obj.parts):
                name = f"o{k:03d}_{obj.name}_{j}"
                mesh = _part_mesh(bpy, part, name)
                key = id(part.material)
                if key not in materials:
                    materials[key] = make_material(bpy, part.material, f"m{len(materials):03d}_{part.material.kind}")
                mesh.materials.append(materials[key])
                ob = bpy.data.objects.new(name, mesh)
                ob.location = part.centre
                ob.rotation_euler = (0.0, 0.0, part.turn)
                if part.bevel > 0:
                    mod = ob.modifiers.new("bevel", "BEVEL")
                    mod.width = part.bevel
                    mod.segments = 3
                scene.collection.objects.link(ob)
                self.labels[name] = (CLASS_ID[obj.class_name], obj.instance, k + 1)
        for k, spec in enumerate(layout.lights):
            light = bpy.data.lights.new(f"light{k}", "AREA" if spec.kind == "area" else "POINT")
            light.energy = spec.power
            light.color = spec.color
            if spec.kind == "area":
                light.size = spec.size
            else:
                light.shadow_soft_size = spec.size
            lo = bpy.data.objects.new(f"light{k}", light)
            lo.location = spec.position
            from mathutils import Vector

            lo.rotation_euler = Vector(spec.direction).to_track_quat("-Z", "Y").to_euler()
            scene.collection.objects.link(lo)
        world = bpy.data.worlds.new("world")
        world.use_nodes = True
        world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.05, 0.05, 0.06, 1)
        scene.world = world
        cam_data = bpy.data.cameras.new("camera")
        cam_data.sensor_fit = "HORIZONTAL"
        cam_data.angle = 2 * np.arctan(intrinsics.width / (2 * intrinsics.fx))
        cam_data.clip_start = 0.02
        cam_data.clip_end = 50
        self.camera = bpy.data.objects.new("camera", cam_data)
        scene.collection.objects.link(self.camera)
        scene.camera = self.camera
        r = scene.render
        r.engine = "CYCLES"
        r.resolution_x, r.resolution_y, r.resolution_percentage = intrinsics.width, intrinsics.height, 100
        r.image_settings.file_format = "PNG"
        r.image_settings.color_depth = "8"
        scene.cycles.device = "CPU"
        scene.cycles.samples = settings.samples
        scene.cycles.use_adaptive_sampling = True
        scene.cycles.max_bounces = settings.max_bounces
        scene.cycles.use_denoising = True
        scene.cycles.seed = layout.seed
        scene.view_settings.view_transform = settings.view_transform
        scene.view_settings.exposure = settings.exposure
        self._tmp = Path(tempfile.mkdtemp(prefix="plift-blender-"))

    def _place_camera(self, c2w: np.ndarray) -> None:
        from mathutils import Matrix

        self.camera.matrix_world = Matrix([list(map(float, row)) for row in c2w])
        self.bpy.context.view_layer.update()

    def render_rgb(self, c2w: np.ndarray) -> np.ndarray:
        """[H, W, 3] uint8 colour image seen from ``c2w``."""
        self._place_camera(c2w)
        path = self._tmp / "frame.png"
        self.scene.render.filepath = str(path)
        with _blender_output_silenced():
            self.bpy.ops.render.render(write_still=True)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RuntimeError(f"Blender wrote no image to {path}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def ground_truth(self, c2w: np.ndarray) -> GroundTruthFrame:
        """Class, instance and depth per pixel centre, by ray casting the same geometry."""
        from mathutils import Vector

        self._place_camera(c2w)
        depsgraph = self.bpy.context.evaluated_depsgraph_get()
        origins, dirs = camera_rays(c2w, self.intr)
        n = len(dirs)
        sem = np.zeros(n, np.uint16)
        inst = np.zeros(n, np.uint16)
        depth = np.zeros(n, np.float32)
        objects = np.zeros(n, np.uint16)
        origin = Vector(origins[0])
        cast = self.scene.ray_cast
        labels = self.labels
        for k in range(n):
            hit, loc, _normal, _index, obj, _m = cast(depsgraph, origin, Vector(dirs[k]), distance=100.0)
            if hit:
                sem[k], inst[k], objects[k] = labels[obj.name]
                depth[k] = (loc - origin).length
        H, W = self.intr.height, self.intr.width
        return GroundTruthFrame(sem.reshape(H, W), inst.reshape(H, W), depth.reshape(H, W), objects.reshape(H, W))
