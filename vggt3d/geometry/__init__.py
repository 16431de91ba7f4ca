"""Camera geometry in pure torch: rotations, VGGT pose encoding, projection, rigid transforms.

Convention (package-wide): ``cam_from_world = [R | t]`` with ``X_cam = R @ X_world + t``
and OpenCV camera axes (x right, y down, z forward); quaternions are scalar last
(``quat_xyzw``); intrinsics are in pixels with pixel centres at integer coordinates.
"""

from .pose_encoding import cameras_to_pose_encoding, pose_encoding_to_cameras
from .projection import cam_points_to_world, depth_to_cam_points, depth_to_world_points, project_points
from .rotation import quat_xyzw_to_rotation_matrix, rotation_matrix_to_quat_xyzw
from .transforms import invert_rigid, relative_to_first, to_homogeneous_transform

__all__ = [
    "cam_points_to_world",
    "cameras_to_pose_encoding",
    "depth_to_cam_points",
    "depth_to_world_points",
    "invert_rigid",
    "pose_encoding_to_cameras",
    "project_points",
    "quat_xyzw_to_rotation_matrix",
    "relative_to_first",
    "rotation_matrix_to_quat_xyzw",
    "to_homogeneous_transform",
]
