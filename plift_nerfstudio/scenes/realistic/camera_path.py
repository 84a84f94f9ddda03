"""Hand-held camera paths through a furnished room: a person walking with a phone (pure numpy).

The walk visits waypoints spread over the free floor (farthest-point sampled, visited in order around the room).
Some waypoints are close-ups: the person steps up to a piece of furniture and points the phone down at it; at
the others the phone points across the room at furniture on the far side. Between waypoints the view turns smoothly, except at a few fast
turns where it swings round within three frames. The walk between waypoints goes round the furniture (shortest
routes over the free floor). Hand shake adds centimetre jitter and a little roll.
"""

from __future__ import annotations

from typing import List

import numpy as np

from plift_nerfstudio.scenes.realistic.layout import RoomLayout


def look_at(position: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """[4, 4] camera-to-world pose (OpenGL/nerfstudio convention: the camera looks down its -z, +y up)."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    c, s = np.cos(roll), np.sin(roll)
    right, up = c * right + s * up, -s * right + c * up
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, -forward, position
    return pose


def free_floor(layout: RoomLayout, spacing: float = 0.1, clearance: float = 0.35) -> np.ndarray:
    """[M, 2] floor points at least ``clearance`` from every wall and furniture footprint."""
    W, D, _ = layout.size
    xs, ys = np.meshgrid(np.arange(clearance, W - clearance + 1e-9, spacing), np.arange(clearance, D - clearance + 1e-9, spacing))
    pts = np.stack([xs.ravel(), ys.ravel()], -1)
    ok = np.ones(len(pts), bool)
    for x0, y0, x1, y1 in layout.footprints:
        ok &= ~((pts[:, 0] > x0 - clearance) & (pts[:, 0] < x1 + clearance) & (pts[:, 1] > y0 - clearance) & (pts[:, 1] < y1 + clearance))
    return pts[ok]


def largest_connected(points: np.ndarray, spacing: float = 0.1) -> np.ndarray:
    """The points of the largest 8-connected group of a grid of floor points (furniture may cut the floor in parts)."""
    from scipy import ndimage

    ij = np.round(points / spacing).astype(int)
    ij -= ij.min(0)
    grid = np.zeros(ij.max(0) + 1, bool)
    grid[ij[:, 0], ij[:, 1]] = True
    labels, count = ndimage.label(grid, structure=np.ones((3, 3)))
    if count <= 1:
        return points
    of_point = labels[ij[:, 0], ij[:, 1]]
    return points[of_point == np.argmax(np.bincount(of_point)[1:]) + 1]


def _route(free: np.ndarray, a: int, b: int, spacing: float) -> List[int]:
    """Shortest walk (8-neighbour steps over the free floor points) from point ``a`` to point ``b``."""
    import heapq

    keys = {(round(x / spacing), round(y / spacing)): k for k, (x, y) in enumerate(free)}
    dist = {a: 0.0}
    back = {a: a}
    heap = [(0.0, a)]
    while heap:
        d, k = heapq.heappop(heap)
        if k == b:
            break
        if d > dist[k]:
            continue
        ix, iy = round(free[k][0] / spacing), round(free[k][1] / spacing)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                n = keys.get((ix + dx, iy + dy))
                if n is None or n == k:
                    continue
                nd = d + float(np.hypot(dx, dy))
                if nd < dist.get(n, np.inf):
                    dist[n], back[n] = nd, k
                    heapq.heappush(heap, (nd, n))
    if b not in back:
        raise ValueError("the free floor is split in parts: no walk between two waypoints")
    path = [b]
    while path[-1] != a:
        path.append(back[path[-1]])
    return path[::-1]


def _furniture_targets(layout: RoomLayout) -> List[np.ndarray]:
    """Centres of the objects worth a close-up: things and furniture-sized stuff."""
    out = []
    for obj in layout.objects:
        if obj.class_name in ("wall", "floor", "ceiling", "window", "curtain", "door") or obj.name == "book":
            continue
        c = np.mean([p.centre for p in obj.parts], axis=0)
        out.append(c)
    return out


def hand_held_path(layout: RoomLayout, num_frames: int, rng: np.random.Generator, num_waypoints: int = 7,
                   close_up_share: float = 0.45, fast_turns: int = 2) -> np.ndarray:
    """[num_frames, 4, 4] camera-to-world poses of a walk through ``layout``."""
    W, D, H = layout.size
    free = largest_connected(free_floor(layout))
    if len(free) < num_waypoints:
        raise ValueError(f"room {layout.kind} seed {layout.seed}: too little free floor for a camera path ({len(free)} points)")
    centre = np.array([W / 2, D / 2])
    # farthest-point sampling over the free floor, visited in angular order around the room centre
    picks = [int(rng.integers(len(free)))]
    for _ in range(num_waypoints - 1):
        dist = np.min(np.stack([np.linalg.norm(free - free[p], axis=1) for p in picks]), axis=0)
        picks.append(int(np.argmax(dist * rng.uniform(0.7, 1.0, len(dist)))))
    picks = [picks[k] for k in np.argsort([np.arctan2(free[p][1] - centre[1], free[p][0] - centre[0]) for p in picks])]
    way = free[picks]
    # the walk: shortest routes around the furniture between consecutive waypoints, smoothed a little
    legs = [_route(free, picks[i], picks[(i + 1) % len(picks)], 0.1) for i in range(len(picks))]
    targets = _furniture_targets(layout)
    looks = []
    heights = []
    for p in way:
        dist = np.array([np.linalg.norm(c[:2] - p) for c in targets])
        close_up = rng.uniform() < close_up_share
        # close-up: one of the three nearest objects; room-wide: an object across the room (the person films the
        # furniture, not the bare walls)
        pool = np.argsort(dist)[:3] if close_up else np.nonzero(dist > 1.8)[0]
        if len(pool) == 0:
            pool = np.argsort(dist)[-3:]
        t = targets[int(pool[int(rng.integers(len(pool)))])].copy()
        t[2] = max(0.3, min(t[2], 1.4))
        looks.append(t)
        heights.append(rng.uniform(1.15, 1.4) if close_up else rng.uniform(1.4, 1.7))
    looks = np.array(looks)
    # the fast turns: where the view has the farthest to swing from one waypoint's target to the next's
    def bearing(i: int) -> float:
        d = looks[i][:2] - way[i]
        return float(np.arctan2(d[1], d[0]))

    swing = [abs((bearing((i + 1) % len(way)) - bearing(i) + np.pi) % (2 * np.pi) - np.pi) for i in range(len(way))]
    fast = set(np.argsort(swing)[::-1][:fast_turns].tolist())

    # frames spread over the walk by distance; the view turns from one waypoint's target to the next's
    points, leg_of, frac = [], [], []
    for i, leg in enumerate(legs):
        pts = free[leg[:-1]] if len(leg) > 1 else free[leg]
        points.append(pts)
        leg_of += [i] * len(pts)
        frac += list(np.arange(len(pts)) / max(1, len(pts)))
    walk = np.concatenate(points)
    kernel = np.ones(5) / 5  # smooth the grid steps (a closed loop: wrap around)
    walk = np.stack([np.convolve(np.concatenate([walk[-2:, d], walk[:, d], walk[:2, d]]), kernel, "valid") for d in range(2)], -1)
    step = np.linalg.norm(np.diff(np.concatenate([walk, walk[:1]]), axis=0), axis=1)
    cum = np.concatenate([[0], np.cumsum(step)])
    leg_frames = np.bincount(np.array(leg_of), minlength=len(legs)) / len(walk) * num_frames
    poses = []
    for k in range(num_frames):
        s = cum[-1] * k / num_frames
        n = min(int(np.searchsorted(cum, s, side="right") - 1), len(walk) - 1)
        pos_xy = walk[n] + (s - cum[n]) / max(step[n], 1e-9) * (walk[(n + 1) % len(walk)] - walk[n])
        i, t = leg_of[n], frac[n]
        j = (i + 1) % len(way)
        ease = t * t * (3 - 2 * t)
        z = heights[i] + ease * (heights[j] - heights[i])
        if i in fast:  # swing round within the last three frames of the leg
            turn = np.clip((t * leg_frames[i] - (leg_frames[i] - 3)) / 3, 0, 1)
        else:
            turn = ease
        look = looks[i] + turn * (looks[j] - looks[i])
        position = np.array([*pos_xy, z]) + rng.normal(0, 0.01, 3)
        if np.linalg.norm(look[:2] - position[:2]) < 0.6:  # never look straight down
            away = (look[:2] - position[:2]) / max(1e-6, np.linalg.norm(look[:2] - position[:2]))
            look = np.array([*(position[:2] + away * 0.6), look[2]])
        poses.append(look_at(position, look, roll=float(rng.normal(0, 0.02))))
    return np.stack(poses)


OFF_WALK_KINDS = ("corner", "sitting", "looking down")
"""Viewpoints a walk with a phone at chest height seldom takes: standing in a corner of the free floor, sitting
(0.9-1.1 m), and holding the phone high (1.85-2.0 m) looking down at furniture."""


def off_walk_views(layout: RoomLayout, walk: np.ndarray, num_views: int, rng: np.random.Generator,
                   min_distance: float = 0.7) -> np.ndarray:
    """[num_views, 4, 4] poses away from the walk ``walk`` [N, 4, 4]: positions on the free floor at least
    ``min_distance`` from every walk position where the floor allows (else the farthest ones), at heights and
    angles of OFF_WALK_KINDS in turn, each looking at a piece of furniture at least 1 m away (looking down: 1-2 m
    away, at its lower part)."""
    W, D, _ = layout.size
    free = largest_connected(free_floor(layout))
    walk_xy = walk[:, :2, 3]
    distance_to_walk = np.min(np.linalg.norm(free[:, None, :] - walk_xy[None], axis=-1), axis=1)
    far = free[distance_to_walk >= min_distance]
    if len(far) < num_views:
        far = free[np.argsort(distance_to_walk)[::-1][: max(num_views, len(free) // 4)]]
    corners = np.array([[0, 0], [W, 0], [0, D], [W, D]], float)
    targets = _furniture_targets(layout)
    poses = []
    used: List[np.ndarray] = []
    for k in range(num_views):
        kind = OFF_WALK_KINDS[k % len(OFF_WALK_KINDS)]
        spread = np.min([np.linalg.norm(far - u, axis=1) for u in used], axis=0) if used else np.full(len(far), 9.0)
        if kind == "corner":  # the free point nearest a room corner (a different corner each time)
            corner = corners[(k // len(OFF_WALK_KINDS)) % 4]
            score = -np.linalg.norm(far - corner, axis=1) + 0.5 * np.minimum(spread, 1.0)
        else:
            score = np.minimum(spread, 2.0) + rng.uniform(0, 0.3, len(far))
        position_xy = far[int(np.argmax(score))]
        used.append(position_xy)
        height = {"corner": rng.uniform(1.5, 1.7), "sitting": rng.uniform(0.9, 1.1),
                  "looking down": rng.uniform(1.85, 2.0)}[kind]
        reach = (1.0, 2.0) if kind == "looking down" else (1.0, np.inf)  # looking down: at something near
        pool = [t for t in targets if reach[0] < np.linalg.norm(t[:2] - position_xy) < reach[1]] or \
            [t for t in targets if np.linalg.norm(t[:2] - position_xy) > 1.0] or targets
        target = pool[int(rng.integers(len(pool)))].copy()
        target[2] = max(0.2, min(target[2], 1.2)) if kind != "looking down" else max(0.0, target[2] - 0.4)
        position = np.array([*position_xy, height])
        poses.append(look_at(position, target, roll=float(rng.normal(0, 0.02))))
    return np.stack(poses)
