"""Classical feature correspondences (no learned weights): SIFT, matching, geometric verification, tracks.

pycolmap does the work: ``FeatureExtractor`` (SIFT on the grey image),
``FeatureMatcher`` (mutual nearest neighbours with a ratio test) and
``estimate_two_view_geometry`` (LO-RANSAC fundamental / essential / homography
matrices; only their inliers are kept). Verified pairwise matches are then
chained into multi-view tracks with a union-find, and a track that would hold
two different keypoints of one image is split off (kept only where it agrees).

Convention: pixel coordinates ``(x, y)`` with pixel centres at integers, in each
frame's *original* image (COLMAP's own keypoints put the centre at 0.5: we
subtract it). Tracks are returned as flat observation lists (see
:class:`~vggt3d.refine.tracks.Observations`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .tracks import Observations

__all__ = ["FeatureConfig", "extract_features", "feature_tracks", "match_pairs"]

log = logging.getLogger(__name__)


@dataclass
class FeatureConfig:
    """Settings of the classical correspondences.

    ``max_image_size`` caps the longer image side SIFT sees (pixels; keypoints are
    mapped back to the original image); ``max_features`` per image; ``ratio`` of
    the matcher's ratio test; ``max_error`` the RANSAC threshold of the
    verification in pixels; ``min_inliers`` per verified pair; ``window`` the
    number of neighbours each frame is matched with (0 = all pairs, else frames
    ``i`` and ``i+1 .. i+window``, for videos); ``peak_threshold`` SIFT's contrast
    threshold (COLMAP's default 0.0067; lower finds more keypoints in weak
    texture); ``seed`` of RANSAC.
    """

    max_image_size: int = 1600
    max_features: int = 8192
    ratio: float = 0.8
    max_error: float = 4.0
    min_inliers: int = 15
    window: int = 0
    peak_threshold: float = 0.004
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_image_size < 32 or self.max_features < 8:
            raise ValueError(f"FeatureConfig needs max_image_size >= 32 and max_features >= 8, got "
                             f"{self.max_image_size} and {self.max_features}")
        if not 0.0 < self.ratio <= 1.0 or self.max_error <= 0 or self.min_inliers < 5 or self.window < 0:
            raise ValueError("FeatureConfig: ratio must be in (0, 1], max_error > 0, min_inliers >= 5, window >= 0")


def _quiet_pycolmap() -> None:
    import pycolmap

    pycolmap.logging.minloglevel = max(int(pycolmap.logging.minloglevel), 2)  # no INFO lines from glog


def _grey(image: np.ndarray, max_size: int) -> tuple[np.ndarray, float]:
    """``[H, W, 3]`` uint8 or float image -> grey float32 ``[h, w]`` in [0, 1] no larger than ``max_size``, and the scale."""
    from PIL import Image

    rgb = np.asarray(image)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
    pil = Image.fromarray(rgb).convert("L")
    scale = min(1.0, max_size / max(pil.size))
    if scale < 1.0:
        pil = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))), Image.BICUBIC)
        scale = pil.width / rgb.shape[1]
    return np.ascontiguousarray(np.asarray(pil, dtype=np.float32) / 255.0), scale


def extract_features(images: Sequence[np.ndarray], config: FeatureConfig) -> list[tuple[np.ndarray, object, object]]:
    """SIFT per image: ``(xy [M, 2] original pixels, pycolmap keypoints, pycolmap descriptors)``."""
    import pycolmap

    _quiet_pycolmap()
    options = pycolmap.FeatureExtractionOptions()
    options.num_threads = 1
    options.sift.max_num_features = int(config.max_features)
    options.sift.peak_threshold = float(config.peak_threshold)
    extractor = pycolmap.FeatureExtractor.create(options, pycolmap.Device.cpu)
    out = []
    for image in images:
        grey, scale = _grey(image, config.max_image_size)
        keypoints, descriptors = extractor.extract_from_float32_array(grey)
        xy = np.array([[k.x, k.y] for k in keypoints], dtype=np.float64).reshape(-1, 2)
        xy = xy / scale - 0.5  # COLMAP: centre of the top-left pixel at (0.5, 0.5), at SIFT's scale
        out.append((xy, keypoints, descriptors))
    return out


def _camera(K: np.ndarray, size: Sequence[int]):
    import pycolmap

    return pycolmap.Camera(model="PINHOLE", width=int(size[0]), height=int(size[1]),
                           params=[K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5])


def match_pairs(features: list, intrinsics: np.ndarray, sizes: np.ndarray, config: FeatureConfig
                ) -> dict[tuple[int, int], np.ndarray]:
    """Verified matches ``{(i, j): [M, 2] keypoint indices}`` for ``i < j``.

    ``intrinsics [S, 3, 3]`` (original pixels) only seed the verification's
    essential-matrix model; a fundamental matrix is estimated as well, so wrong
    intrinsics do not lose the pair.
    """
    import pycolmap

    _quiet_pycolmap()
    options = pycolmap.FeatureMatchingOptions()
    options.num_threads = 1
    options.sift.max_ratio = float(config.ratio)
    matcher = pycolmap.FeatureMatcher.create(options, pycolmap.Device.cpu)
    verify = pycolmap.TwoViewGeometryOptions()
    verify.min_num_inliers = int(config.min_inliers)
    verify.ransac.max_error = float(config.max_error)
    verify.ransac.random_seed = int(config.seed)
    verify.detect_watermark = False
    S = len(features)
    cameras = [_camera(intrinsics[i], sizes[i]) for i in range(S)]
    pairs = {}
    for i in range(S):
        last = S if config.window == 0 else min(S, i + config.window + 1)
        for j in range(i + 1, last):
            (xy_i, kp_i, desc_i), (xy_j, kp_j, desc_j) = features[i], features[j]
            if len(xy_i) < config.min_inliers or len(xy_j) < config.min_inliers:
                continue
            matches = matcher.match(kp_i, desc_i, kp_j, desc_j)
            if len(matches) < config.min_inliers:
                continue
            geometry = pycolmap.estimate_two_view_geometry(cameras[i], xy_i + 0.5, cameras[j], xy_j + 0.5,
                                                           matches.astype(np.uint32), verify)
            inliers = np.asarray(geometry.inlier_matches, dtype=np.int64).reshape(-1, 2)
            if len(inliers) >= config.min_inliers:
                pairs[(i, j)] = inliers
    log.debug("feature matching: %d of %d pairs verified", len(pairs), S * (S - 1) // 2)
    return pairs


def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def feature_tracks(images: Sequence[np.ndarray], intrinsics: np.ndarray, sizes: np.ndarray,
                   config: FeatureConfig | None = None) -> Observations:
    """Multi-view tracks of SIFT keypoints verified pair by pair (observations in original pixels).

    Args:
        images: ``S`` images ``[height, width, 3]`` at original resolution (uint8, or floats in [0, 1]).
        intrinsics: ``[S, 3, 3]`` original pixels (only to seed the verification).
        sizes: ``[S, 2]`` (width, height).

    A track that links two keypoints of one image is inconsistent; it keeps the
    observations of the image's first keypoint only (later ones leave the track).
    """
    config = config or FeatureConfig()
    features = extract_features(images, config)
    pairs = match_pairs(features, intrinsics, sizes, config)
    offsets = np.concatenate([[0], np.cumsum([len(f[0]) for f in features])])
    parent = np.arange(offsets[-1])
    for (i, j), m in pairs.items():
        for a, b in zip(m[:, 0] + offsets[i], m[:, 1] + offsets[j]):
            ra, rb = _find(parent, int(a)), _find(parent, int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    matched = np.zeros(offsets[-1], dtype=bool)
    for (i, j), m in pairs.items():
        matched[m[:, 0] + offsets[i]] = True
        matched[m[:, 1] + offsets[j]] = True
    node = np.flatnonzero(matched)
    roots = np.array([_find(parent, int(n)) for n in node], dtype=np.int64)
    frame = np.searchsorted(offsets, node, side="right") - 1
    xy = np.concatenate([f[0] for f in features])[node] if len(node) else np.zeros((0, 2))
    # one observation per (track, frame): the first keypoint wins
    order = np.lexsort((node, frame, roots))
    roots, frame, xy = roots[order], frame[order], xy[order]
    first = np.ones(len(roots), dtype=bool)
    first[1:] = (roots[1:] != roots[:-1]) | (frame[1:] != frame[:-1])
    roots, frame, xy = roots[first], frame[first], xy[first]
    _, track = np.unique(roots, return_inverse=True)
    obs = Observations(track=track.astype(np.int64), frame=frame.astype(np.int64), uv=xy, source="features")
    return obs.min_length(2)
