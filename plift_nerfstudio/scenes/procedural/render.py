"""A small numpy ray caster for box rooms: colour, depth, class and instance per pixel from the same rays.

Procedural value-noise textures (seeded per surface, in world coordinates: no two surfaces repeat), Lambert
shading from one point light with hard shadows plus ambient light. Cameras follow the nerfstudio/OpenGL convention
(camera looks along -z, y up); ``camera_path`` walks an ellipse through the room looking across it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from plift_nerfstudio.scenes.dataset_writer import Rendered
from plift_nerfstudio.scenes.procedural.scene import CLASS_ID, Room

EPS = 1e-6


@dataclass
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, horizontal_fov_deg: float = 75.0) -> "Intrinsics":
        f = 0.5 * width / np.tan(np.radians(horizontal_fov_deg) / 2)
        return cls(width, height, f, f, width / 2, height / 2)


def look_at(position: np.ndarray, target: np.ndarray, up=np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """4x4 camera-to-world matrix (OpenGL axes) at ``position`` looking at ``target``."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    right = right / np.linalg.norm(right)
    true_up = np.cross(right, forward)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, -forward, position
    return c2w


def camera_path(room: Room, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """[N, 4, 4] poses on a wobbly ellipse through the middle of the room, looking across it at the furniture."""
    W, D, H = room.size
    centre = np.array([W / 2, D / 2])
    radius = np.array([W, D]) * rng.uniform(0.23, 0.26)
    phase = rng.uniform(0, 2 * np.pi)
    poses = []
    for i in range(num_frames):
        t = phase + 2 * np.pi * i / num_frames
        wobble = 1.0 + 0.18 * np.sin(3 * t + phase)
        xy = centre + radius * wobble * np.array([np.cos(t), np.sin(t)])
        z = 1.45 + 0.2 * np.sin(2 * t + 1.3 * phase)
        position = np.array([xy[0], xy[1], z])
        look = t + np.pi + 0.7 * np.sin(2 * t) + 0.35 * np.sin(5 * t + phase)
        reach = np.array([W, D]) * (0.45 + 0.1 * np.cos(4 * t))
        target_xy = centre + reach * np.array([np.cos(look), np.sin(look)])
        target = np.array([target_xy[0], target_xy[1], 0.75 + 0.25 * np.sin(3 * t + 0.5)])
        poses.append(look_at(position, target))
    return np.stack(poses)


def camera_rays(c2w: np.ndarray, intr: Intrinsics) -> Tuple[np.ndarray, np.ndarray]:
    """Origins and unit directions [H*W, 3] through pixel centres."""
    j, i = np.meshgrid(np.arange(intr.height) + 0.5, np.arange(intr.width) + 0.5, indexing="ij")
    dirs_cam = np.stack([(i - intr.cx) / intr.fx, -(j - intr.cy) / intr.fy, -np.ones_like(i)], axis=-1).reshape(-1, 3)
    dirs = dirs_cam @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origins = np.broadcast_to(c2w[:3, 3], dirs.shape)
    return origins, dirs


def _hash3(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: np.ndarray) -> np.ndarray:
    h = np.sin(ix * 127.1 + iy * 311.7 + iz * 74.7 + seed * 17.3) * 43758.5453
    return h - np.floor(h)


def value_noise(p: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Smooth 3D value noise in [0, 1] at points p [N, 3] (per-point seed [N])."""
    base = np.floor(p)
    f = p - base
    f = f * f * (3 - 2 * f)
    out = np.zeros(len(p))
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                w = (f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1]) * (f[:, 2] if dz else 1 - f[:, 2])
                out += w * _hash3(base[:, 0] + dx, base[:, 1] + dy, base[:, 2] + dz, seed)
    return out


def fbm(p: np.ndarray, seed: np.ndarray, octaves: int = 3) -> np.ndarray:
    total, amp, norm = np.zeros(len(p)), 1.0, 0.0
    for o in range(octaves):
        total += amp * value_noise(p * (2.0**o), seed + 31.0 * o)
        norm += amp
        amp *= 0.5
    return total / norm


def _intersect_boxes(origins, dirs, lo, hi):
    """Entry distance [N, M] (inf where missed) and the axis of entry [N, M]."""
    inv = 1.0 / np.where(np.abs(dirs) < EPS, EPS, dirs)
    t1 = (lo[None] - origins[:, None]) * inv[:, None]
    t2 = (hi[None] - origins[:, None]) * inv[:, None]
    tmin_axes = np.minimum(t1, t2)
    t_near = tmin_axes.max(-1)
    t_far = np.maximum(t1, t2).min(-1)
    hit = (t_far >= t_near) & (t_near > 1e-4)
    return np.where(hit, t_near, np.inf), tmin_axes.argmax(-1)


def _intersect_posed_boxes(origins, dirs, lo, hi, world_to_box):
    """As ``_intersect_boxes`` for boxes placed by a pose each ([M, 4, 4] world -> box): rays are taken into each
    box's own frame, where it is axis-aligned; distances along the ray stay the same (the directions are mapped, not
    renormalised). Returns entry distances [N, M], entry axes [N, M] and the rays in the boxes' frames."""
    linear, offset = world_to_box[:, :3, :3], world_to_box[:, :3, 3]
    local_origins = np.einsum("mij,nj->nmi", linear, origins) + offset[None]
    local_dirs = np.einsum("mij,nj->nmi", linear, np.broadcast_to(dirs, origins.shape))
    inv = 1.0 / np.where(np.abs(local_dirs) < EPS, EPS, local_dirs)
    t1 = (lo[None] - local_origins) * inv
    t2 = (hi[None] - local_origins) * inv
    tmin_axes = np.minimum(t1, t2)
    t_near = tmin_axes.max(-1)
    t_far = np.maximum(t1, t2).min(-1)
    hit = (t_far >= t_near) & (t_near > 1e-4)
    return np.where(hit, t_near, np.inf), tmin_axes.argmax(-1), local_origins, local_dirs


def render(room: Room, c2w: np.ndarray, intr: Intrinsics) -> Rendered:
    if any(b.pose is not None for b in room.boxes):
        return _render_posed(room, c2w, intr)
    origins, dirs = camera_rays(c2w, intr)
    n = len(dirs)
    lo = np.stack([b.lo for b in room.boxes]) if room.boxes else np.zeros((0, 3))
    hi = np.stack([b.hi for b in room.boxes]) if room.boxes else np.zeros((0, 3))

    # room shell: the ray leaves the room box through the nearest wall
    inv = 1.0 / np.where(np.abs(dirs) < EPS, EPS, dirs)
    t_exit_axes = np.where(dirs > 0, room.size[None] - origins, -origins) * inv
    shell_axis = t_exit_axes.argmin(-1)
    t = t_exit_axes.min(-1)
    surface = np.where(shell_axis == 2, np.where(dirs[:, 2] < 0, 0, 1), 2 + 2 * shell_axis + (dirs[np.arange(n), shell_axis] > 0))
    # surface ids: 0 floor, 1 ceiling, 2..5 walls x=0, x=W, y=0, y=D; boxes are 6 + index
    normal_axis = shell_axis.copy()
    if len(lo):
        t_box, axis_box = _intersect_boxes(origins, dirs, lo, hi)
        nearest = t_box.argmin(-1)
        t_nearest = t_box[np.arange(n), nearest]
        closer = t_nearest < t
        t = np.where(closer, t_nearest, t)
        surface = np.where(closer, 6 + nearest, surface)
        normal_axis = np.where(closer, axis_box[np.arange(n), nearest], normal_axis)
    points = origins + dirs * t[:, None]
    normals = np.zeros_like(points)
    normals[np.arange(n), normal_axis] = -np.sign(dirs[np.arange(n), normal_axis])

    shadow_hits = (lambda o, d: _intersect_boxes(o, d, lo, hi)[0]) if len(lo) else None
    return _shade(room, intr, surface, t, points, points, normals, shadow_hits)


def _shade(room: Room, intr: Intrinsics, surface: np.ndarray, t: np.ndarray, points: np.ndarray,
           texture_points: np.ndarray, normals: np.ndarray, shadow_hits) -> Rendered:
    """Colour, class and instance of the surfaces the rays hit: textures read at ``texture_points``, Lambert shading
    from the room's light with shadows where ``shadow_hits(origins, directions)`` (entry distances [N, boxes]) finds
    a box before the light."""
    shell_class = np.array([CLASS_ID["floor"], CLASS_ID["ceiling"]] + [CLASS_ID["wall"]] * 4)
    classes = np.concatenate([shell_class, [CLASS_ID[b.class_name] for b in room.boxes]]).astype(np.uint16)
    instances = np.concatenate([np.zeros(6), [b.instance for b in room.boxes]]).astype(np.uint16)
    albedo = np.concatenate([room.wall_albedo, np.stack([b.albedo for b in room.boxes])]) if room.boxes else room.wall_albedo
    seeds = np.concatenate([room.wall_seeds, [b.texture_seed for b in room.boxes]])
    scales = np.concatenate([[4.0, 3.0, 5.0, 5.5, 6.0, 4.5], [b.texture_scale for b in room.boxes]])

    seed = seeds[surface]
    scale = scales[surface][:, None]
    texture = fbm(texture_points * scale, seed)
    detail = value_noise(texture_points * scale * 6.0, seed + 7.0)
    colour = albedo[surface] * (0.55 + 0.55 * texture[:, None] + 0.15 * (detail[:, None] - 0.5))
    floor = surface == 0
    if floor.any():  # floor boards
        plank = np.floor(points[floor, 0] * 5.0 + 100 * seed[floor])
        tone = 0.85 + 0.3 * _hash3(plank, plank * 0.5, plank * 0.25, seed[floor])
        colour[floor] *= tone[:, None]

    to_light = room.light[None] - points
    dist = np.linalg.norm(to_light, axis=-1)
    to_light /= dist[:, None]
    lambert = np.clip((normals * to_light).sum(-1), 0, 1)
    if shadow_hits is not None:
        t_shadow = shadow_hits(points + normals * 1e-3, to_light)
        shadowed = (t_shadow < dist[:, None] - 1e-3).any(-1)
        lambert = np.where(shadowed, 0.25 * lambert, lambert)
    falloff = 1.0 / (1.0 + 0.04 * dist**2)
    shade = 0.38 + 0.75 * lambert * falloff
    rgb = np.clip(colour * shade[:, None], 0, 1) ** (1 / 1.3)

    shape = (intr.height, intr.width)
    return Rendered(
        rgb=(rgb.reshape(*shape, 3) * 255 + 0.5).astype(np.uint8),
        depth=t.reshape(shape).astype(np.float32),
        semantics=classes[surface].reshape(shape),
        instances=instances[surface].reshape(shape),
    )


def _render_posed(room: Room, c2w: np.ndarray, intr: Intrinsics) -> Rendered:
    """``render`` for rooms whose boxes may be placed copies (edited scenes): a copy looks as its original does in
    the original's frame (same texture), lit where it stands."""
    origins, dirs = camera_rays(c2w, intr)
    origins = np.ascontiguousarray(origins)
    n = len(dirs)
    lo = np.stack([b.lo for b in room.boxes])
    hi = np.stack([b.hi for b in room.boxes])
    poses = np.stack([b.pose if b.pose is not None else np.eye(4) for b in room.boxes])
    world_to_box = np.linalg.inv(poses)

    inv = 1.0 / np.where(np.abs(dirs) < EPS, EPS, dirs)
    t_exit_axes = np.where(dirs > 0, room.size[None] - origins, -origins) * inv
    shell_axis = t_exit_axes.argmin(-1)
    t = t_exit_axes.min(-1)
    surface = np.where(shell_axis == 2, np.where(dirs[:, 2] < 0, 0, 1), 2 + 2 * shell_axis + (dirs[np.arange(n), shell_axis] > 0))
    shell_normals = np.zeros((n, 3))
    shell_normals[np.arange(n), shell_axis] = -np.sign(dirs[np.arange(n), shell_axis])
    points = origins + dirs * t[:, None]
    texture_points = points.copy()

    t_box, axis_box, local_origins, local_dirs = _intersect_posed_boxes(origins, dirs, lo, hi, world_to_box)
    nearest = t_box.argmin(-1)
    t_nearest = t_box[np.arange(n), nearest]
    closer = t_nearest < t
    t = np.where(closer, t_nearest, t)
    surface = np.where(closer, 6 + nearest, surface)
    points = origins + dirs * t[:, None]
    # a copy's surface point in its original's frame: where its texture is read
    local = local_origins[np.arange(n), nearest] + local_dirs[np.arange(n), nearest] * t[:, None]
    texture_points = np.where(closer[:, None], local, points)
    axis = axis_box[np.arange(n), nearest]
    local_normal = np.zeros((n, 3))
    local_normal[np.arange(n), axis] = -np.sign(local_dirs[np.arange(n), nearest, axis])
    box_linear = poses[nearest, :3, :3]
    box_normals = np.einsum("nij,nj->ni", np.linalg.inv(box_linear).transpose(0, 2, 1), local_normal)
    box_normals /= np.linalg.norm(box_normals, axis=-1, keepdims=True)
    normals = np.where(closer[:, None], box_normals, shell_normals)

    shadow_hits = lambda o, d: _intersect_posed_boxes(o, d, lo, hi, world_to_box)[0]  # noqa: E731
    return _shade(room, intr, surface, t, points, texture_points, normals, shadow_hits)
