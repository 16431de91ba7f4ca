"""The interactive browser viewer of a :class:`~vggt3d.viewer.scene.Scene`, built on viser.

Why viser: it is what the field uses for feed-forward reconstruction (the
VGGT, VGGT-X and StreamVGGT demos), it is a pip package whose browser client
ships prebuilt inside the wheel (no Node, no network at run time), and its
Python API gives exactly the pieces needed here (point clouds, camera frustums
with images and click events, GUI sliders) in one process. Rerun records to a
separate viewer application with its own data model; that is the better tool
for logging time series, not for one scene with a few controls.

Controls: point set (``depth`` / ``pointmap`` / ``points.ply`` where several
exist), confidence percentile, point size, frame range, per-frame show/hide,
cameras and tracks on/off; clicking a camera frustum (which shows its image)
flies the view to that camera. The viewer only reads the scene.

Convention: the scene's world frame, OpenCV axes (x right, y down, z forward);
the viewer's "up" is -y.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .scene import DEFAULT_MAX_POINTS, Scene, load_scene

log = logging.getLogger(__name__)

__all__ = ["LiveViewer", "PortInUseError", "ViewerConfig", "serve"]

#: Per-frame checkboxes are listed up to this many frames (the frame range covers longer videos).
MAX_FRAME_CHECKBOXES = 200


class PortInUseError(ValueError):
    """The port cannot be bound; the message is one line naming host, port and what to do."""


@dataclass
class ViewerConfig:
    """How :class:`LiveViewer` serves and draws."""

    host: str = "127.0.0.1"  # localhost only by default; 0.0.0.0 to share on the network
    port: int = 8080  # 0: any free port
    max_points: int = DEFAULT_MAX_POINTS  # points read from depth maps (strided per frame)
    conf_percentile: float = 50.0  # initial confidence-percentile cut
    thumbnail_size: int = 256  # longer side of the images on the frustums

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if not 0.0 <= self.conf_percentile < 100.0:
            raise ValueError(f"conf_percentile must be in [0, 100), got {self.conf_percentile}")
        if self.max_points < 1 or self.thumbnail_size < 8:
            raise ValueError("max_points must be >= 1 and thumbnail_size >= 8")


def check_port(host: str, port: int) -> None:
    """Raise :class:`PortInUseError` if ``(host, port)`` cannot be bound (viser would silently take the next)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PortInUseError(f"cannot resolve host {host!r} ({exc.strerror}); use e.g. --host 127.0.0.1") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            raise PortInUseError(f"port {port} on {host} is in use or not allowed ({exc.strerror}); choose another "
                                 "with --port (or --port 0 for any free port)") from None


class LiveViewer:
    """A running viser server showing ``scene``; :meth:`close` stops it."""

    def __init__(self, scene: Scene, config: ViewerConfig | None = None) -> None:
        import viser

        self.scene, self.config = scene, config or ViewerConfig()
        check_port(self.config.host, self.config.port)
        self.server = viser.ViserServer(host=self.config.host, port=self.config.port, verbose=False)
        if self.config.port and self.server.get_port() != self.config.port:  # lost a race for the port
            self.server.stop()
            raise PortInUseError(f"port {self.config.port} on {self.config.host} is in use; choose another with --port")
        self._lock = threading.Lock()
        self.shown_points = 0
        self.extent = scene.extent()
        S = len(scene.frames)
        self.frame_visible = np.ones(S, bool)
        self.server.scene.set_up_direction("-y")
        # No share button: it would open a public tunnel through viser's relay server.
        self.server.gui.configure_theme(show_share_button=False, control_width="medium")
        self._build_gui()
        self._add_cameras()
        self._set_initial_camera()
        self.update()

    # ------------------------------------------------------------------------------------------ set-up
    @property
    def url(self) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.server.get_port()}/"

    def _build_gui(self) -> None:
        gui, scene = self.server.gui, self.scene
        S = len(scene.frames)
        gui.add_markdown(f"**{scene.source.name}** ({scene.kind}, {S} cameras)")
        names = list(scene.point_sets)
        self.set_choice = gui.add_dropdown("points", names or ["none"], initial_value=names[0] if names else "none",
                                           hint="depth: unprojected depth maps; pointmap: the point-map head")
        self.set_choice.disabled = len(names) < 2
        self.conf = gui.add_slider("confidence percentile", 0, 99, 1, int(round(self.config.conf_percentile)),
                                   hint="hide the least confident points")
        self.size = gui.add_slider("point size", 0.25, 4.0, 0.25, 1.0, hint="relative to the point spacing")
        self.frame_range = gui.add_multi_slider("frame range", 0, max(S - 1, 1), 1, (0, max(S - 1, 1)),
                                                disabled=S < 2)
        self.show_cameras = gui.add_checkbox("cameras", True)
        self.show_tracks = gui.add_checkbox("tracks", True, disabled=scene.tracks is None)
        self.status = gui.add_markdown("")
        self.frame_boxes = []
        if 0 < S <= MAX_FRAME_CHECKBOXES:
            with gui.add_folder("frames", expand_by_default=False):
                for i, f in enumerate(scene.frames):
                    box = gui.add_checkbox(f"{i}: {f.name}", True)
                    box.on_update(lambda _e, i=i, box=box: self._toggle_frame(i, box.value))
                    self.frame_boxes.append(box)
        for handle in (self.set_choice, self.conf, self.size, self.frame_range, self.show_cameras, self.show_tracks):
            handle.on_update(lambda _e: self.update())

    def _toggle_frame(self, i: int, visible: bool) -> None:
        self.frame_visible[i] = visible
        self.update()

    def _add_cameras(self) -> None:
        import viser.transforms as vtf

        self.frustums = []
        for i, f in enumerate(self.scene.frames):
            wfc = f.world_from_cam
            thumb = f.thumbnail(self.config.thumbnail_size)
            handle = self.server.scene.add_camera_frustum(
                f"/cameras/{i}", fov=f.fov_y, aspect=f.width / f.height, scale=0.05 * self.extent,
                color=(230, 40, 40) if i == 0 else (40, 90, 230), image=thumb, format="jpeg",
                wxyz=vtf.SO3.from_matrix(wfc[:3, :3]).wxyz, position=wfc[:3, 3], thickness=2.0,
                thickness_units="screen")
            handle.on_click(lambda event, h=handle: self._fly_to(event.client, h))
            self.frustums.append(handle)

    def _fly_to(self, client, frustum) -> None:
        """Put the clicking browser's view at the camera of ``frustum`` (OpenCV axes, as viser's cameras)."""
        if client is None:
            return
        with client.atomic():
            client.camera.wxyz = frustum.wxyz
            client.camera.position = frustum.position

    def _set_initial_camera(self) -> None:
        points = self.scene.point_sets.get(self.scene.default_set) if self.scene.default_set else None
        centre = np.median(points.points, axis=0) if points is not None and len(points) else np.zeros(3)
        if self.scene.frames:
            wfc = self.scene.frames[0].world_from_cam
            eye = wfc[:3, 3] - wfc[:3, 2] * 0.6 * self.extent - wfc[:3, 1] * 0.3 * self.extent
        else:
            eye = centre + np.array([0.0, -0.4, -1.0]) * self.extent
        self.server.initial_camera.position = tuple(float(v) for v in eye)
        self.server.initial_camera.look_at = tuple(float(v) for v in centre)
        self.server.initial_camera.up = (0.0, -1.0, 0.0)
        self.server.initial_camera.fov = float(np.radians(55.0))  # as the static page

    # ------------------------------------------------------------------------------------------ updates
    def visible_frames(self) -> np.ndarray:
        """``[S]`` bool: inside the frame range and not hidden."""
        lo, hi = (int(v) for v in self.frame_range.value)
        inside = np.zeros(len(self.scene.frames), bool)
        inside[lo:hi + 1] = True
        return inside & self.frame_visible

    def update(self) -> None:
        """Redraw points, cameras and tracks from the current controls."""
        with self._lock:
            name = self.set_choice.value
            pts = self.scene.point_sets.get(name)
            visible = self.visible_frames()
            self.conf.disabled = pts is None or pts.confidence is None
            if pts is None or not len(pts):
                self.server.scene.add_point_cloud("/points", np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8))
                self.shown_points = 0
            else:
                keep = np.ones(len(pts), bool)
                if pts.confidence is not None and self.conf.value > 0:
                    keep &= pts.confidence >= np.percentile(pts.confidence, self.conf.value)
                if pts.frame is not None and len(visible):
                    keep &= visible[pts.frame]
                spacing = 1.2 * self.extent / np.sqrt(max(len(pts), 1))
                self.server.scene.add_point_cloud("/points", pts.points[keep], pts.colors[keep],
                                                  point_size=float(spacing * self.size.value), point_shape="square",
                                                  point_shading="flat")
                self.shown_points = int(keep.sum())
            for i, handle in enumerate(self.frustums):
                handle.visible = bool(self.show_cameras.value and visible[i])
            if self.scene.tracks is not None:
                segments = self.scene.tracks.segments(np.flatnonzero(visible))
                self.server.scene.add_line_segments(
                    "/tracks", segments if len(segments) else np.zeros((1, 2, 3), np.float32),
                    (255, 60, 200), thickness=2.0, thickness_units="screen",
                    visible=bool(self.show_tracks.value and len(segments)))
            total = len(pts) if pts is not None else 0
            self.status.content = f"showing {self.shown_points:,} of {total:,} points, {int(visible.sum())} frames"

    def close(self) -> None:
        self.server.stop()


def serve(path: str | Path, config: ViewerConfig | None = None, on_ready=None) -> int:
    """Load ``path`` (see :func:`~vggt3d.viewer.scene.load_scene`), serve it until Ctrl-C, then stop cleanly.

    ``on_ready(viewer)`` is called once the server runs (the CLI prints the URL there).
    """
    import time

    config = config or ViewerConfig()
    viewer = LiveViewer(load_scene(path, config.max_points), config)
    try:
        if on_ready is not None:
            on_ready(viewer)
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        viewer.close()
