"""Lay a generated clip onto a character's timeline: aligned to where it stands, as an NLA strip.

A clip starts wherever the model put it (near the origin, facing the model's forward). Laid at
frame F of a character that has walked somewhere, it must start where the character stands
and face where it faces at F (its *anchor*: the root's floor position and the heading of its
hips), or strips jump back to the origin when they blend. :func:`align_action` moves a keyed
action so: a turn about the vertical axis and a shift on the floor, applied to the root
bone's keys (every other bone hangs from it). It works the same on hmu's SMPL rig and on a
retargeted character, because it reads the clip's start the way Blender evaluates it.

:func:`add_strip` puts the action on the character's NLA at F, on a new track on top, blended
in from what the tracks below hold at F (Blender blends a strip with the tracks *below* it,
not with the previous strip of its own track, so each clip gets its own track).

The root bone's parents must not be animated by the action (hmu keys the pelvis bone and its
children only; a Rigify ``root``, a UE5 ``root`` stay at rest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from mathutils import Euler, Matrix, Quaternion

from exporter.scene.retarget import world_heads

__all__ = ["BLEND_SECONDS", "Anchor", "add_strip", "align_action", "anchor_of", "has_animation",
           "root_fcurves"]

BLEND_SECONDS = 0.25
"""How long a strip blends in from the pose below it."""


@dataclass(frozen=True)
class Anchor:
    """Where a character stands and faces: the root's world floor position (x, y) and the
    heading of its forward direction (radians about +Z, 0 = +X; Blender's front view looks
    along +Y at a character facing -Y, heading -90°)."""

    x: float
    y: float
    heading: float

    def matrix(self) -> Matrix:
        """World matrix of the anchor frame (on the floor, turned by ``heading``)."""
        return Matrix.Translation((self.x, self.y, 0.0)) @ Matrix.Rotation(self.heading, 4, "Z")


def anchor_of(armature: Any, root: str, left_hip: str, right_hip: str, frame: float,
              scene: Any) -> Anchor:
    """The anchor of ``armature`` as Blender evaluates it at ``frame``: ``root``'s head on the
    floor, facing ``(left_hip - right_hip) x up`` (a body's left cross its up is its front)."""
    heads = world_heads(armature, [root, left_hip, right_hip], [frame], scene)[0]
    across = heads[1] - heads[2]
    forward = np.array([across[1], -across[0]])
    return Anchor(float(heads[0, 0]), float(heads[0, 1]),
                  math.atan2(float(forward[1]), float(forward[0])))


def root_fcurves(action: Any, root: str) -> dict[str, list[Any]]:
    """The action's F-curves of bone ``root`` by property (``location``, ``rotation_*``),
    each in index order."""
    prefix = f'pose.bones["{root}"].'
    out: dict[str, list[Any]] = {}
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                for curve in bag.fcurves:
                    if curve.data_path.startswith(prefix):
                        out.setdefault(curve.data_path[len(prefix):], []).append(curve)
    for curves in out.values():
        curves.sort(key=lambda c: c.array_index)
    return out


def _values(curves: list[Any]) -> np.ndarray:
    """(T, len(curves)) key values (the curves share their key frames: hmu keys them so)."""
    out = []
    for curve in curves:
        co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
        curve.keyframe_points.foreach_get("co", co)
        out.append(co[1::2])
    return np.stack(out, axis=1).astype(np.float64)


def _set_values(curves: list[Any], values: np.ndarray) -> None:
    for k, curve in enumerate(curves):
        co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
        curve.keyframe_points.foreach_get("co", co)
        co[1::2] = values[:, k]
        curve.keyframe_points.foreach_set("co", co)
        curve.update()


def _evaluated_anchor(armature: Any, action: Any, bones: tuple[str, str, str], frame: float,
                      scene: Any) -> Anchor:
    """The anchor ``action`` alone gives ``armature`` at ``frame`` (made the active action for
    the evaluation, then the previous one is back)."""
    data = armature.animation_data or armature.animation_data_create()
    keep = (data.action, data.action_slot)
    try:
        data.action = action
        data.action_slot = action.slots[0]
        return anchor_of(armature, *bones, frame, scene)
    finally:
        data.action = keep[0]
        if keep[0] is not None:
            data.action_slot = keep[1]


def align_action(armature: Any, action: Any, bones: tuple[str, str, str], frame: float,
                 anchor: Anchor, scene: Any) -> None:
    """Turn and shift ``action`` so that at ``frame`` the character stands at ``anchor``.

    Args:
        armature: the object the action is for.
        action: a layered action keying ``bones[0]`` (the root: location and quaternion or
            Euler rotation keys), e.g. from ``key_motion`` or ``key_retarget``.
        bones: (root, left hip, right hip) bone names.
        frame: the scene frame of the clip's start.
        anchor: where it must start (:func:`anchor_of` the character at that frame).
    Raises:
        ValueError: the action has no location or rotation keys on the root bone.
    """
    start = _evaluated_anchor(armature, action, bones, frame, scene)
    world = anchor.matrix() @ start.matrix().inverted()  # the clip's start -> the anchor
    obj = armature.matrix_world
    rest = armature.data.bones[bones[0]].matrix_local
    # pose_arm = rest @ basis for a root whose parents are at rest, so moving the posed root
    # by ``world`` (armature space: obj^-1 @ world @ obj) changes its basis by ``change``.
    change = rest.inverted() @ obj.inverted() @ world @ obj @ rest
    turn, shift = change.to_quaternion(), np.array(change.translation)
    curves = root_fcurves(action, bones[0])
    if "location" not in curves:
        raise ValueError(f"{action.name}: no location keys on the root bone {bones[0]!r}")
    loc = _values(curves["location"])
    turn_m = np.array(change.to_3x3())
    _set_values(curves["location"], loc @ turn_m.T + shift)
    if "rotation_quaternion" in curves:
        quat = _values(curves["rotation_quaternion"])
        _set_values(curves["rotation_quaternion"],
                    np.array([tuple(turn @ Quaternion(q)) for q in quat]))
    elif "rotation_euler" in curves:
        order = armature.pose.bones[bones[0]].rotation_mode
        eulers, previous = [], None
        for e in _values(curves["rotation_euler"]):
            m = turn.to_matrix() @ Euler(e, order).to_matrix()
            new = m.to_euler(order) if previous is None else m.to_euler(order, previous)
            eulers.append(tuple(new))
            previous = new
        _set_values(curves["rotation_euler"], np.array(eulers))
    else:
        raise ValueError(f"{action.name}: no rotation keys on the root bone {bones[0]!r}")


def add_strip(armature: Any, action: Any, frame: int, name: str, *, blend_in: float,
              mute: bool = False) -> Any:
    """``action`` as a strip from ``frame`` on a new NLA track ``name`` on top of the others,
    blending in over ``blend_in`` frames (at most half the strip) and holding its last pose
    afterwards; ``mute`` mutes the track (a variation the user may switch to)."""
    data = armature.animation_data or armature.animation_data_create()
    track = data.nla_tracks.new()
    track.name = name
    strip = track.strips.new(name, frame, action)
    strip.extrapolation = "HOLD_FORWARD"
    strip.blend_type = "REPLACE"
    strip.use_auto_blend = False
    strip.blend_in = min(blend_in, (strip.frame_end - strip.frame_start) / 2.0)
    track.mute = mute
    return strip


def has_animation(armature: Any) -> bool:
    """True if the armature is animated (an action or an NLA strip): a new strip then blends
    in from that pose instead of from the rest pose."""
    data = armature.animation_data
    return data is not None and (data.action is not None or
                                 any(len(t.strips) for t in data.nla_tracks))
