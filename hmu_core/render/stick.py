"""Stick-figure animations of ``Motion`` values (GIF or MP4) for a quick look.

Headless: a bare matplotlib ``Figure`` on the Agg canvas (no pyplot, no display, no global
backend switch). Several motions play side by side, each in its own 3-D panel with a title; a
shorter clip holds its last frame. The scene (axes, floor, root path, titles) is drawn once and
each frame only restores it and draws the moving bones on top (blitting): a full 3-D redraw per
frame cost ~0.19 s, almost all of it re-laying out axes that never move. Frames go to Pillow
(GIF, matplotlib's own dependency) or are piped as raw RGB to the ffmpeg binary that
``imageio-ffmpeg`` bundles (MP4), so no system ffmpeg is needed. The file is rendered in a
temporary directory and then written atomically.

HumanML3D is Y-up; matplotlib's 3-D axes are Z-up, so a joint (x, y, z) is drawn at (x, z, y).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from hmu_core.atomic import write_bytes
from hmu_core.errors import ConfigError, MotionError
from hmu_core.motion.motion import Motion
from hmu_core.motion.skeleton import KINEMATIC_CHAIN
from hmu_core.progress import Progress, no_progress, track

SUFFIXES = (".gif", ".mp4")
# One colour per chain of skeleton.KINEMATIC_CHAIN: right leg, left leg, spine, right/left arm.
CHAIN_COLOURS = ("#d62728", "#1f77b4", "#333333", "#ff7f0e", "#2ca02c")


def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's bundled ffmpeg binary.

    Raises:
        ConfigError: imageio-ffmpeg is not installed.
    """
    try:
        import imageio_ffmpeg
    except ModuleNotFoundError:
        raise ConfigError("MP4 output needs the imageio-ffmpeg package (it bundles ffmpeg): "
                          "pip install imageio-ffmpeg, or write a .gif") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _write_gif(frames: Iterable[np.ndarray], path: Path, fps: float) -> None:
    """RGB frames -> a looping GIF with one palette, taken from the first frame (it already
    holds the scene and every bone colour): mapping each frame onto it is ~10x faster than
    Pillow's per-frame adaptive palette, and the file is smaller."""
    from PIL import Image

    rgb = iter(frames)
    first = Image.fromarray(next(rgb))
    palette = first.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    rest = (Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in rgb)
    first.quantize(palette=palette, dither=Image.Dither.NONE).save(
        path, save_all=True, append_images=rest, duration=round(1000 / fps), loop=0)


def _write_mp4(frames: Iterable[np.ndarray], path: Path, fps: float, size: tuple[int, int]
               ) -> None:
    """RGB frames of ``size`` (width, height) -> H.264 MP4 through the bundled ffmpeg.

    Raises:
        ConfigError: imageio-ffmpeg is missing, or ffmpeg failed (its last words quoted).
    """
    # yuv420p: plays everywhere (browsers, QuickTime); needs even frame sizes (see render_stick).
    command = [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{size[0]}x{size[1]}", "-r", f"{fps:g}", "-i", "-", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", "-preset", "veryfast", str(path)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            for frame in frames:
                proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped early; its exit status and message say why
        finally:
            proc.stdin.close()
        error = proc.stderr.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise ConfigError(f"ffmpeg could not write {path.name} (exit {proc.returncode}): "
                          f"{error[-300:] or 'no message'}")


def _check(motions: Motion | Sequence[Motion], titles: Sequence[str] | None
           ) -> tuple[list[Motion], list[str]]:
    items = [motions] if isinstance(motions, Motion) else list(motions)
    if not items or not all(isinstance(m, Motion) for m in items):
        raise MotionError("render_stick needs one or more Motion values")
    if len({m.fps for m in items}) > 1:
        raise MotionError(f"motions side by side must share one fps, got "
                          f"{sorted({m.fps for m in items})}")
    names = list(titles) if titles is not None else [m.text for m in items]
    if len(names) != len(items):
        raise ConfigError(f"got {len(names)} titles for {len(items)} motions")
    return items, names


def _panel(fig: object, index: int, count: int, motion: Motion, title: str
           ) -> Callable[[int], None]:
    """Lay out one motion's static parts; return ``draw(frame)``, which draws its bones at
    ``frame`` over the restored scene."""
    ax = fig.add_subplot(1, count, index + 1, projection="3d")
    joints = motion.joints.astype(np.float64)  # (T, 22, 3) metres, Y-up
    lo, hi = joints.reshape(-1, 3).min(0), joints.reshape(-1, 3).max(0)
    centre, half = (lo + hi) / 2, max(float((hi - lo)[[0, 2]].max()) / 2 + 0.3, 1.0)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[2] - half, centre[2] + half)
    bottom = min(float(lo[1]), 0.0)
    top = max(float(hi[1]) + 0.1, bottom + 2 * half)
    ax.set_zlim(bottom, top)
    ax.set_box_aspect((1, 1, (top - bottom) / (2 * half)))
    ax.view_init(elev=15, azim=-60)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    ax.set_title(title if len(title) <= 40 else title[:37] + "...", fontsize=9)
    floor = float(lo[1])
    gx, gz = np.meshgrid(np.linspace(centre[0] - half, centre[0] + half, 2),
                         np.linspace(centre[2] - half, centre[2] + half, 2))
    ax.plot_surface(gx, gz, np.full_like(gx, floor), color="0.85", alpha=0.5)
    ax.plot(joints[:, 0, 0], joints[:, 0, 2], np.full(len(joints), floor), color="0.5", lw=1)
    # animated: left out of the scene's full draw, drawn by draw() over it (always on top of
    # the floor, as a stick figure should be).
    lines = [ax.plot([], [], [], color=c, lw=2.5, animated=True)[0]
             for c in CHAIN_COLOURS[: len(KINEMATIC_CHAIN)]]

    def draw(frame: int) -> None:
        pose = joints[min(frame, len(joints) - 1)]
        for line, chain in zip(lines, KINEMATIC_CHAIN, strict=True):
            pts = pose[list(chain)]
            line.set_data_3d(pts[:, 0], pts[:, 2], pts[:, 1])
            ax.draw_artist(line)

    return draw


def render_stick(motions: Motion | Sequence[Motion], path: str | os.PathLike, *,
                 titles: Sequence[str] | None = None, panel_inches: float = 4.0, dpi: int = 80,
                 progress: Progress = no_progress) -> Path:
    """Animate ``motions`` side by side as stick figures into ``path`` (.gif or .mp4).

    Args:
        motions: one ``Motion`` or several (same fps); played in parallel.
        titles: one per motion; default: each motion's text.
        panel_inches, dpi: size of one panel (pixels rounded to even for H.264).
        progress: reports the rendered frames (stage ``rendering``).
    Returns:
        ``path`` as a ``Path``.
    Raises:
        ConfigError: unknown suffix, missing imageio-ffmpeg (MP4) or an ffmpeg failure, titles
            not matching.
        MotionError: no motions, or motions with different fps.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"{target}: stick-figure output must end in .gif or .mp4")
    items, names = _check(motions, titles)
    side = 2 * round(panel_inches * dpi / 2)  # even pixel sizes for yuv420p
    fig = Figure(figsize=(side * len(items) / dpi, side / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.92, wspace=0)
    panels = [_panel(fig, i, len(items), m, t) for i, (m, t) in enumerate(zip(items, names,
                                                                              strict=True))]
    canvas.draw()  # the scene, once; it also fixes each panel's projection for draw_artist
    scene = canvas.copy_from_bbox(fig.bbox)

    def frames() -> Iterable[np.ndarray]:
        for frame in track(range(max(m.num_frames for m in items)), progress, "rendering"):
            canvas.restore_region(scene)
            for draw in panels:
                draw(frame)
            yield np.asarray(canvas.buffer_rgba())[..., :3].copy()

    with tempfile.TemporaryDirectory(prefix="hmu-render-") as tmp:
        out = Path(tmp) / f"clip{suffix}"
        if suffix == ".gif":
            _write_gif(frames(), out, items[0].fps)
        else:
            _write_mp4(frames(), out, items[0].fps, canvas.get_width_height())
        write_bytes(target, out.read_bytes())
    return target
