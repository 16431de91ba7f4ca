"""Procedurally generated multi-view scenes with exact geometry (no downloads, no GPU).

Each scene index gives, deterministically from ``(seed, index)``, a set of
analytic primitives (a textured room, or objects on a ground slab under a sky),
a camera path (orbit, forward motion or random look-at) with random
intrinsics, and renders exact depth, point maps and tracks by ray casting
(:mod:`vggt3d.data.render`).

Convention: samples are in the scene's own world frame (a random rigid frame,
not normalised); ``cam_from_world`` with OpenCV axes (x right, y down, z
forward); intrinsics in pixels with pixel centres at integers. Cameras and
intrinsics are rounded to float32 before rendering, so the stored float32
cameras are exactly the ones the pixels were rendered with.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch

from .augment import MultiViewAugment
from .base import VALIDATION, FrameCameras, MultiViewDataset
from .render import PATTERNS, Material, Primitive, Scene, pixel_rays
from .tracks import BORDER, select_tracks
from .views import View

__all__ = ["SyntheticConfig", "SyntheticScene", "SyntheticScenes", "make_synthetic_scene"]

SceneType = Literal["room", "objects", "corridor"]
CameraPath = Literal["orbit", "forward", "lookat"]
SCENE_TYPES: tuple[str, ...] = ("room", "objects", "corridor")
CAMERA_PATHS: tuple[str, ...] = ("orbit", "forward", "lookat")
_UP = np.array([0.0, 0.0, 1.0])


@dataclass
class SyntheticConfig:
    """Settings of :class:`SyntheticScenes`.

    ``num_frames`` is the number of frames of a scene (an int, or an inclusive
    ``(lo, hi)`` range drawn per scene from the seed); ``ds[i]`` returns all of them.
    ``image_size`` is ``(H, W)``; ``fov_deg`` the range of horizontal fields of view;
    ``principal_point_jitter`` the largest principal point offset from the image
    centre as a fraction of the size; ``focal_ratio_jitter`` the range of ``fy/fx - 1``;
    ``frame_focal_jitter`` a per-frame zoom range (0 = intrinsics shared by frames);
    ``baseline_scale`` scales every camera path's extent (orbit arc, walk length,
    spread of look-at views; < 1 gives small baselines, e.g. for a curriculum).
    Scene types: ``room`` (a box room with furniture-like objects), ``objects``
    (objects on a ground slab under a sky), ``corridor`` (a long narrow room with
    objects along the walls, walked through forwards).
    """

    num_scenes: int = 1000
    num_frames: int | tuple[int, int] = 8
    image_size: tuple[int, int] = (224, 224)
    seed: int = 0
    num_tracks: int = 0
    scene_types: tuple[SceneType, ...] = ("room", "objects")
    camera_paths: tuple[CameraPath, ...] = ("orbit", "forward", "lookat")
    num_objects: tuple[int, int] = (3, 8)
    fov_deg: tuple[float, float] = (45.0, 90.0)
    principal_point_jitter: float = 0.03
    focal_ratio_jitter: float = 0.02
    frame_focal_jitter: float = 0.0
    baseline_scale: float = 1.0

    def __post_init__(self) -> None:
        if int(self.num_scenes) < 1:
            raise ValueError(f"SyntheticConfig.num_scenes must be >= 1, got {self.num_scenes}")
        lo, hi = self.frame_range
        if not 1 <= lo <= hi:
            raise ValueError(f"SyntheticConfig.num_frames must be >= 1 (or a range lo <= hi), got {self.num_frames}")
        height, width = (int(s) for s in self.image_size)
        if height < 8 or width < 8:
            raise ValueError(f"SyntheticConfig.image_size must be (H, W) >= 8 pixels, got {self.image_size}")
        self.image_size = (height, width)
        if int(self.num_tracks) < 0:
            raise ValueError(f"SyntheticConfig.num_tracks must be >= 0, got {self.num_tracks}")
        self.scene_types = tuple(self.scene_types)
        self.camera_paths = tuple(self.camera_paths)
        for name, values, allowed in (("scene_types", self.scene_types, SCENE_TYPES),
                                      ("camera_paths", self.camera_paths, CAMERA_PATHS)):
            bad = [v for v in values if v not in allowed]
            if not values or bad:
                raise ValueError(f"SyntheticConfig.{name} must be a non-empty subset of {allowed}, got {values}")
        if not 0 <= self.num_objects[0] <= self.num_objects[1]:
            raise ValueError(f"SyntheticConfig.num_objects must be a range 0 <= lo <= hi, got {self.num_objects}")
        if not 0.0 < float(self.baseline_scale) <= 4.0:
            raise ValueError(f"SyntheticConfig.baseline_scale must be in (0, 4], got {self.baseline_scale}")
        if not 1.0 <= self.fov_deg[0] <= self.fov_deg[1] < 170.0:
            raise ValueError(f"SyntheticConfig.fov_deg must be a range within [1, 170), got {self.fov_deg}")

    @property
    def frame_range(self) -> tuple[int, int]:
        """``(lo, hi)`` inclusive range of frames per scene."""
        if isinstance(self.num_frames, (tuple, list)):
            return int(self.num_frames[0]), int(self.num_frames[1])
        return int(self.num_frames), int(self.num_frames)


@dataclass
class SyntheticScene:
    """One generated scene: geometry, and its frames' cameras at the config's image size.

    Convention: ``cam_from_world [F, 3, 4]`` and ``intrinsics [F, 3, 3]`` float64
    holding float32-representable values; OpenCV axes (x right, y down, z forward).
    """

    scene: Scene
    cam_from_world: np.ndarray
    intrinsics: np.ndarray
    image_size: tuple[int, int]
    scene_type: str
    camera_path: str

    def render(self, cam_from_world: np.ndarray, intrinsics: np.ndarray, size: tuple[int, int], frame_id: int,
               original_size: tuple[int, int] | None = None) -> View:
        """Render one view at ``size`` (H, W) with the given camera."""
        image, depth, _ = self.scene.render(cam_from_world, intrinsics, size[0], size[1])
        return View(image=image, depth=depth.astype(np.float32), intrinsics=intrinsics, cam_from_world=cam_from_world,
                    frame_id=frame_id, original_size=original_size or self.image_size)

    def raycast_pixels(self, cam_from_world: np.ndarray, intrinsics: np.ndarray, uv: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Exact depth ``[N]`` (inf on a miss) and world point ``[N, 3]`` seen at sub-pixel ``uv [N, 2]``."""
        origin, directions = pixel_rays(cam_from_world, intrinsics, uv)
        t, _ = self.scene.raycast(origin, directions)
        return t, origin + np.where(np.isfinite(t), t, 0.0)[:, None] * directions


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """``cam_from_world [3, 4]`` of a camera at ``eye`` looking at ``target`` (world up +z, OpenCV axes)."""
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, _UP)
    if np.linalg.norm(right) < 1e-6:  # looking straight up/down
        right = np.cross(forward, np.array([1.0, 0.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])  # rows: camera axes in world
    c, s = np.cos(roll), np.sin(roll)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ rotation
    return np.concatenate([rotation, -(rotation @ eye)[:, None]], axis=1)


def _material(rng: np.random.Generator, size_hint: float) -> Material:
    direction = rng.normal(size=3)
    pattern = str(rng.choice(PATTERNS))
    modulate = pattern != "noise" and rng.random() < 0.3
    return Material(
        pattern=pattern,
        color_a=rng.uniform(0.05, 0.95, 3),
        color_b=rng.uniform(0.05, 0.95, 3),
        scale=float(size_hint * rng.uniform(0.15, 0.6)),
        direction=direction / np.linalg.norm(direction),
        phase=rng.uniform(0.0, 10.0, 3),
        noise_amount=float(rng.uniform(0.1, 0.4)) if modulate else 0.0,
        seed=int(rng.integers(1 << 30)),
    )


def _objects(rng: np.random.Generator, count: int, radius: float) -> list[Primitive]:
    out = []
    for _ in range(count):
        kind = str(rng.choice(["box", "sphere", "cylinder"]))
        angle, dist = rng.uniform(0, 2 * np.pi), radius * np.sqrt(rng.uniform(0, 1))
        x, y = dist * np.cos(angle), dist * np.sin(angle)
        floating = rng.random() < 0.2
        rotation = _random_rotation(rng) if floating else _rot_z(rng.uniform(0, 2 * np.pi))
        if kind == "box":
            half = rng.uniform(0.15, 0.7, 3)
        elif kind == "sphere":
            half = np.full(3, rng.uniform(0.15, 0.6))
        else:
            r = rng.uniform(0.1, 0.4)
            half = np.array([r, r, rng.uniform(0.2, 0.9)])
        rest = float(np.linalg.norm(half)) if floating else float(half[2])
        z = rest + (rng.uniform(0.2, 1.5) if floating else 0.0)
        out.append(Primitive(kind, np.array([x, y, z]), rotation, half, _material(rng, float(half.max()) * 2)))
    return out


def _camera_centres(rng: np.random.Generator, path: str, count: int, scene_type: str, radius: float,
                    room: tuple[float, float, float] | None, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres ``[F, 3]`` and look-at targets ``[F, 3]`` of a path, in the canonical frame (z up).

    ``scale`` multiplies the path's extent (arc, walk length, look-at spread).
    """
    target = np.array([rng.normal(0, 0.3), rng.normal(0, 0.3), rng.uniform(0.2, 1.0)])
    if room is not None:
        hx, hy, height = room
        lo_r, hi_r = radius + 0.4, min(hx, hy) - 0.3
        z_range = (0.4, height - 0.4)
    else:
        lo_r, hi_r = radius + 1.0, radius + 5.0
        z_range = (0.3, 3.5)
    ring = rng.uniform(lo_r, max(lo_r, hi_r))
    t = np.linspace(0.0, 1.0, count) if count > 1 else np.zeros(1)
    if path == "orbit":
        start, span = rng.uniform(0, 2 * np.pi), scale * np.deg2rad(rng.uniform(20, 120)) * rng.choice([-1, 1])
        angles = start + span * t
        heights = rng.uniform(*z_range) + rng.uniform(-0.2, 0.2) * t
        eyes = np.stack([ring * np.cos(angles), ring * np.sin(angles), heights], axis=1)
        targets = target + rng.normal(0, 0.05, (count, 3))
    elif path == "forward":
        angle = rng.uniform(0, 2 * np.pi)
        start = np.array([ring * np.cos(angle), ring * np.sin(angle), rng.uniform(*z_range)])
        heading = -start[:2] / np.linalg.norm(start[:2])
        heading = _rot_z(rng.uniform(-0.5, 0.5))[:2, :2] @ heading
        length = scale * rng.uniform(0.4, 0.9) * (ring - radius * 0.5)
        eyes = start + np.outer(t * length, np.array([heading[0], heading[1], 0.0]))
        look = np.array([heading[0], heading[1], rng.uniform(-0.3, 0.1)])
        yaw = scale * rng.uniform(-0.3, 0.3) * t
        targets = np.stack([eyes[i] + _rot_z(yaw[i]) @ look for i in range(count)])
    else:  # lookat
        angles = rng.uniform(0, 2 * np.pi, count)
        angles = angles[0] + scale * (angles - angles[0])
        rings = rng.uniform(lo_r, max(lo_r, hi_r), count)
        eyes = np.stack([rings * np.cos(angles), rings * np.sin(angles), rng.uniform(*z_range, count)], axis=1)
        targets = target + min(scale, 1.0) * rng.normal(0, 0.4, (count, 3))
    if room is not None:
        hx, hy, height = room
        eyes = np.clip(eyes, [-hx + 0.3, -hy + 0.3, 0.3], [hx - 0.3, hy - 0.3, height - 0.3])
    return eyes, targets


def _corridor(rng: np.random.Generator, count: int, room: tuple[float, float, float], objects: list[Primitive],
              scale: float) -> tuple[list[Primitive], np.ndarray, np.ndarray]:
    """Objects moved against the long walls of a corridor ``room`` and a forward walk along it.

    Returns the objects, camera centres ``[F, 3]`` and look-at targets ``[F, 3]`` (canonical frame, z up).
    """
    hx, hy, height = room
    moved = []
    for o in objects:
        half = np.minimum(o.half_size, 0.3 * hy)
        side = rng.choice([-1.0, 1.0])
        centre = np.array([rng.uniform(-hx + 0.5, hx - 0.5), side * (hy - float(half.max()) - 0.02), float(half[2])])
        moved.append(Primitive(o.kind, centre, _rot_z(rng.uniform(0, 2 * np.pi)) if o.kind != "sphere" else np.eye(3),
                               half, o.material))
    direction = rng.choice([-1.0, 1.0])
    length = scale * rng.uniform(0.25, 0.6) * 2 * hx
    start_x = -direction * (hx - 0.4) + direction * rng.uniform(0.0, max(0.0, 2 * hx - 0.8 - length))
    t = np.linspace(0.0, 1.0, count) if count > 1 else np.zeros(1)
    eyes = np.stack([start_x + direction * length * t, rng.uniform(-0.2, 0.2) * hy + rng.normal(0, 0.03, count),
                     rng.uniform(1.0, min(1.8, height - 0.4)) + rng.normal(0, 0.02, count)], axis=1)
    yaw = rng.uniform(-0.35, 0.35) + scale * rng.uniform(-0.3, 0.3) * t
    pitch = rng.uniform(-0.25, 0.1)
    look = np.stack([direction * np.cos(yaw), direction * np.sin(yaw), np.full(count, pitch)], axis=1)
    return moved, eyes, eyes + look


def make_synthetic_scene(config: SyntheticConfig, index: int) -> SyntheticScene:
    """Generate scene ``index`` of ``config`` (deterministic in ``(config.seed, index)``)."""
    rng = np.random.default_rng([int(config.seed), int(index), 0x5CE7E])
    lo, hi = config.frame_range
    count = int(rng.integers(lo, hi + 1))
    scene_type = str(rng.choice(config.scene_types))
    path = str(rng.choice(config.camera_paths))
    primitives: list[Primitive] = []
    if scene_type in ("room", "corridor"):
        if scene_type == "room":
            hx, hy, height = rng.uniform(2.5, 5.0), rng.uniform(2.5, 5.0), rng.uniform(2.5, 4.0)
        else:
            hx, hy, height = rng.uniform(4.0, 8.0), rng.uniform(0.9, 1.6), rng.uniform(2.4, 3.2)
        room = (hx, hy, height)
        radius = 0.5 * min(hx, hy)
        primitives.append(Primitive("box", np.array([0.0, 0.0, height / 2 - 0.01]), np.eye(3),
                                    np.array([hx, hy, height / 2 + 0.01]), _material(rng, 2.0), inside=True))
        primitives.append(Primitive("box", np.array([0.0, 0.0, -0.01]), np.eye(3),
                                    np.array([hx - 0.002, hy - 0.002, 0.01]), _material(rng, 2.0)))  # floor slab
    else:
        room = None
        radius = rng.uniform(1.5, 3.0)
        ground = rng.uniform(6.0, 12.0)
        primitives.append(Primitive("box", np.array([0.0, 0.0, -0.05]), _rot_z(rng.uniform(0, np.pi)),
                                    np.array([ground, ground, 0.05]), _material(rng, 3.0)))
    objects = _objects(rng, int(rng.integers(config.num_objects[0], config.num_objects[1] + 1)), radius)
    if scene_type == "corridor":
        path = "forward"
        objects, eyes, targets = _corridor(rng, count, room, objects, config.baseline_scale)
    else:
        eyes, targets = _camera_centres(rng, path, count, scene_type, radius, room, config.baseline_scale)
    # Drop objects a camera would sit in or too close to.
    keep = [o for o in objects if np.linalg.norm(eyes - o.center, axis=1).min() > o.bounding_radius + 0.2]
    primitives.extend(keep)
    rolls = rng.uniform(-0.08, 0.08, count)
    cams = np.stack([_look_at(eyes[i], targets[i], rolls[i]) for i in range(count)])  # [F, 3, 4]

    # Intrinsics for the configured image size.
    height, width = config.image_size
    fov = np.deg2rad(rng.uniform(*config.fov_deg))
    fx = (width / 2.0) / np.tan(fov / 2.0)
    fy = fx * (1.0 + rng.uniform(-config.focal_ratio_jitter, config.focal_ratio_jitter))
    cx = (width - 1) / 2.0 + rng.uniform(-1, 1) * config.principal_point_jitter * width
    cy = (height - 1) / 2.0 + rng.uniform(-1, 1) * config.principal_point_jitter * height
    zoom = 1.0 + rng.uniform(-config.frame_focal_jitter, config.frame_focal_jitter, count)
    intrinsics = np.zeros((count, 3, 3))
    intrinsics[:, 0, 0], intrinsics[:, 1, 1] = fx * zoom, fy * zoom
    intrinsics[:, 0, 2], intrinsics[:, 1, 2], intrinsics[:, 2, 2] = cx, cy, 1.0

    # Express everything in a random world frame: X_world = G_R X_canonical + G_t.
    g_rot, g_t = _random_rotation(rng), rng.normal(0.0, 3.0, 3)
    primitives = [Primitive(p.kind, g_rot @ p.center + g_t, g_rot @ p.rotation, p.half_size, p.material, p.inside)
                  for p in primitives]
    rotation = cams[:, :, :3] @ g_rot.T  # [F, 3, 3]
    translation = cams[:, :, 3] - np.einsum("fij,j->fi", rotation, g_t)
    cams = _f32(np.concatenate([rotation, translation[:, :, None]], axis=2))
    light = g_rot @ np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 1.0])
    scene = Scene(primitives, light_dir=light / np.linalg.norm(light), up=g_rot @ _UP,
                  ambient=float(rng.uniform(0.25, 0.45)))
    return SyntheticScene(scene, cams, _f32(intrinsics), (height, width), scene_type, path)


class SyntheticScenes(MultiViewDataset):
    """A torch Dataset of procedurally generated scenes; ``ds[i]`` is deterministic in ``(seed, i)``.

    ``ds[i]`` renders all frames of scene i at ``config.image_size`` (with tracks
    when ``config.num_tracks > 0``), in the scene's own world frame (not
    normalised). Training requests (:class:`~vggt3d.data.base.SampleRequest`)
    render directly at the augmented cameras, so crops and resizes stay exact.
    """

    name = "synthetic"

    def __init__(self, config: SyntheticConfig | None = None, min_overlap: float = 0.2, cache_size: int = 64) -> None:
        self.config = config or SyntheticConfig()
        if not isinstance(self.config, SyntheticConfig):
            raise TypeError(f"SyntheticScenes takes a SyntheticConfig, got {type(self.config).__name__}")
        super().__init__(None, None, self.config.num_tracks, min_overlap, self.config.seed)
        self._cache: OrderedDict[int, SyntheticScene] = OrderedDict()
        self._cache_size = int(cache_size)

    def __len__(self) -> int:
        return int(self.config.num_scenes)

    def scene_name(self, index: int) -> str:
        return f"synthetic-s{self.config.seed}-{index:06d}"

    def scene(self, index: int) -> SyntheticScene:
        """The generated scene ``index`` (cached)."""
        if not 0 <= index < len(self):
            raise IndexError(f"synthetic scene index {index} out of range [0, {len(self)})")
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        scene = make_synthetic_scene(self.config, index)
        self._cache[index] = scene
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return scene

    def frame_cameras(self, index: int) -> FrameCameras:
        s = self.scene(index)
        sizes = np.tile(np.array(s.image_size, dtype=np.int64), (len(s.cam_from_world), 1))
        return FrameCameras(s.cam_from_world, s.intrinsics, sizes)

    def frame_points(self, index: int) -> list[np.ndarray]:
        """A 6 x 6 grid of exact surface points per frame (one ray cast for all frames)."""
        s = self.scene(index)
        height, width = s.image_size
        grid = np.stack(np.meshgrid((np.arange(6) + 0.5) * width / 6 - 0.5, (np.arange(6) + 0.5) * height / 6 - 0.5,
                                    indexing="xy"), -1).reshape(-1, 2)  # [36, 2]
        rays = [pixel_rays(cam, k, grid) for cam, k in zip(s.cam_from_world, s.intrinsics)]
        origins = np.concatenate([np.broadcast_to(o, d.shape) for o, d in rays])  # [F * 36, 3]
        directions = np.concatenate([d for _, d in rays])
        t, _ = s.scene.raycast(origins, directions)
        points = (origins + np.where(np.isfinite(t), t, 0.0)[:, None] * directions).reshape(len(rays), -1, 3)
        hit = np.isfinite(t).reshape(len(rays), -1)
        return [p[h] for p, h in zip(points, hit)]

    def default_frame_ids(self, index: int) -> list[int]:
        return list(range(len(self.scene(index).cam_from_world)))

    def load_views(self, index: int, frame_ids: Sequence[int]) -> list[View]:
        s = self.scene(index)
        return [s.render(s.cam_from_world[f], s.intrinsics[f], s.image_size, int(f)) for f in frame_ids]

    def _processed_views(self, index: int, frame_ids: list[int], image_size: tuple[int, int] | None,
                         augment: MultiViewAugment | None, rng: np.random.Generator) -> list[View]:
        s = self.scene(index)
        if image_size is None or (augment is None and tuple(image_size) == s.image_size):
            return self.load_views(index, frame_ids)
        processor = augment or VALIDATION
        views = []
        for f in frame_ids:
            plan = processor.plan(s.intrinsics[f], s.image_size, tuple(image_size), rng if augment else None)
            views.append(s.render(s.cam_from_world[f], _f32(plan.intrinsics), plan.output_size, int(f)))
        return views

    def _tracks(self, index: int, sample: dict[str, Any], num_tracks: int, rng: np.random.Generator) -> dict:
        """Exact tracks: sub-pixel queries in frame 0, visibility by ray casting each projection."""
        return exact_tracks(self.scene(index), sample, num_tracks, rng)


def exact_tracks(scene: SyntheticScene, sample: dict[str, Any], num_tracks: int, rng: np.random.Generator,
                 candidates: int = 4) -> dict[str, torch.Tensor]:
    """Tracks whose visibility is an exact depth test by ray casting.

    Convention: queries are uniform sub-pixel positions of frame 0 at least
    ``BORDER`` pixels from the border whose ray hits a surface; in frame s the
    point is visible iff its projection is ``BORDER`` pixels inside the image, in
    front of the camera, and the surface ray-cast at that sub-pixel position has
    the point's depth (relative 1e-6).

    Returns:
        ``{"tracks": [S, N, 2] float32 pixels (x, y), "track_visibility": [S, N] bool}``.
    """
    cams = sample["cam_from_world"].double().numpy()  # [S, 3, 4]
    ks = sample["intrinsics"].double().numpy()  # [S, 3, 3]
    S, _, H, W = sample["images"].shape
    m = candidates * num_tracks
    uv0 = np.stack([rng.uniform(BORDER, W - 1 - BORDER, m), rng.uniform(BORDER, H - 1 - BORDER, m)], axis=1)
    t0, points = scene.raycast_pixels(cams[0], ks[0], uv0)
    hit = np.isfinite(t0)
    uv = np.zeros((S, m, 2))
    visible = np.zeros((S, m), dtype=bool)
    for s in range(S):
        cam = points @ cams[s, :, :3].T + cams[s, :, 3]  # [M, 3]
        z = cam[:, 2]
        zs = np.where(z > 1e-9, z, 1.0)
        uv[s] = np.stack([ks[s, 0, 0] * cam[:, 0] / zs + ks[s, 0, 2], ks[s, 1, 1] * cam[:, 1] / zs + ks[s, 1, 2]], 1)
        inside = hit & (z > 1e-9) & np.all((uv[s] >= BORDER) & (uv[s] <= [W - 1 - BORDER, H - 1 - BORDER]), axis=1)
        t = np.full(m, np.inf)
        if inside.any():
            t[inside], _ = scene.raycast_pixels(cams[s], ks[s], uv[s][inside])
        visible[s] = inside & (np.abs(t - z) <= 1e-6 * np.maximum(z, 1.0))
    uv[0] = uv0
    chosen = select_tracks(visible, num_tracks, rng)
    return {"tracks": torch.from_numpy(uv[:, chosen]).float(), "track_visibility": torch.from_numpy(visible[:, chosen])}
